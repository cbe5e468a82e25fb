"""The privacy notice: public, generated from the configuration (school, retention, segments)."""

from __future__ import annotations

from bs4 import BeautifulSoup

from api.pages.privacy import PrivacyNotice, WatchedSegment
from monitor.config.settings import Settings
from monitor.store.workflow import UserRole
from tests.api.conftest import AppFactory, AppHarness


def configured(harness: AppHarness) -> None:
    extra = Settings.model_validate(
        {
            "site": {"name": "Hillside Academy"},
            "retention": {"observations_days": 14, "incidents_days": 200, "false_positive_days": 7},
            "segments": [
                {"name": "staff-wifi", "cidrs": ["10.1.0.0/16"], "role": "staff"},
                {"name": "guests", "cidrs": ["10.9.0.0/16"], "role": "guest"},
            ],
        }
    )
    harness.app.state.settings = harness.settings.model_copy(
        update={"site": extra.site, "retention": extra.retention, "segments": extra.segments}
    )


def test_the_notice_is_public_and_says_what_is_kept_and_for_how_long(
    app_client: AppFactory,
) -> None:
    harness = app_client()
    configured(harness)
    response = harness.client.get("/privacy", follow_redirects=False)
    assert response.status_code == 200
    assert response.template.name == "pages/privacy/notice.html"  # type: ignore[attr-defined]
    page = response.context["page"]  # type: ignore[attr-defined]
    assert isinstance(page, PrivacyNotice)
    assert (page.school, page.observations_days, page.incidents_days, page.false_positive_days) == (
        "Hillside Academy", 14, 200, 7,
    )  # fmt: skip
    assert page.segments == (
        WatchedSegment("staff-wifi", "staff", ("messaging", "social", "video")),
        WatchedSegment("guests", "guest", ()),
    )
    text = BeautifulSoup(response.text, "html.parser").get_text(" ", strip=True)
    for phrase in ("Hillside Academy", "14 days", "200 days", "7 days", "Governors", "anonymous"):
        assert phrase in text


def test_every_role_finds_the_notice_in_the_navigation(harness: AppHarness) -> None:
    for role in UserRole:
        harness.client.cookies.clear()
        harness.sign_in(role)
        soup = BeautifulSoup(harness.client.get("/privacy").text, "html.parser")
        assert [a.get_text() for a in soup.select('nav a[aria-current="page"]')] == ["Privacy"]
