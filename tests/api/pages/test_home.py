"""The landing page greets each role and links only to pages that exist."""

from __future__ import annotations

import pytest
from bs4 import BeautifulSoup

from api.pages.home import HomePage
from monitor.store.workflow import UserRole
from tests.api.conftest import AppHarness


def test_anonymous_visitors_are_sent_to_login(harness: AppHarness) -> None:
    response = harness.client.get("/", follow_redirects=False)
    assert (response.status_code, response.headers["location"]) == (303, "/login?next=%2F")


@pytest.mark.parametrize("role", list(UserRole))
def test_home_greets_the_user_by_role(harness: AppHarness, role: UserRole) -> None:
    user = harness.sign_in(role)
    response = harness.client.get("/")
    assert response.status_code == 200
    assert response.template.name == "pages/home/index.html"  # type: ignore[attr-defined]
    page = response.context["page"]  # type: ignore[attr-defined]
    assert isinstance(page, HomePage)
    assert (page.display_name, page.role, page.role_label) == (
        user.display_name, role, role.label,
    )  # fmt: skip
    soup = BeautifulSoup(response.text, "html.parser")
    assert soup.h1 is not None and soup.h1.get_text() == f"Hello, {user.display_name}"
    assert role.label in soup.get_text()


@pytest.mark.parametrize("role", list(UserRole))
def test_every_link_on_home_opens_for_that_role(harness: AppHarness, role: UserRole) -> None:
    harness.sign_in(role)
    soup = BeautifulSoup(harness.client.get("/").text, "html.parser")
    hrefs = {a["href"] for a in soup.find_all("a", href=True)}
    for href in hrefs - {"#main"}:
        assert harness.client.get(str(href)).status_code == 200, href


def test_the_home_page_does_not_link_to_itself_in_its_list(harness: AppHarness) -> None:
    harness.sign_in(UserRole.REVIEWER)
    page = harness.client.get("/").context["page"]  # type: ignore[attr-defined]
    assert all(link.href != "/" for link in page.links)


def test_the_layout_marks_the_current_page_and_offers_sign_out(harness: AppHarness) -> None:
    harness.sign_in(UserRole.GOVERNOR)
    soup = BeautifulSoup(harness.client.get("/").text, "html.parser")
    current = soup.select('nav a[aria-current="page"]')
    assert [a.get_text() for a in current] == ["Home"]
    form = soup.find("form", class_="sign-out")
    assert form is not None and form.find("input", attrs={"name": "csrf_token"}) is not None
