"""The review queue, an incident's page, the review workflow and the CSV export."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from bs4 import BeautifulSoup
from sqlalchemy import select, update

from api.pages.incidents import IncidentView, QueuePage, QueueQuery
from monitor.store.models import AuditEventRecord, IncidentRecord
from monitor.store.users import create_user
from monitor.store.workflow import UserRole
from tests.api.conftest import FAST_HASHER, PASSWORD, AppHarness
from tests.monitor.store.queries.factories import (
    OTHER_SITE,
    PUPIL_TABLET,
    add_incident,
    add_observation,
)

T0 = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)
"""Tuesday 10 March 2026, 10:00 GMT (10:00 in London)."""


def seed(harness: AppHarness) -> dict[str, int]:
    """Four incidents: two on the staff laptop, one pupil tablet, one at the other site."""
    with harness.db() as db:
        first = add_incident(db, start=T0 - timedelta(days=7), platform="tiktok")
        laptop = add_incident(db, start=T0, platform="instagram")
        add_observation(db, laptop, ts=T0 + timedelta(seconds=5))
        tablet = add_incident(
            db, start=T0 + timedelta(hours=1), platform="snapchat", device=PUPIL_TABLET,
            host_name="PUPIL-TAB-3", segment="pupil-wifi", role="pupil", status="closed",
            outcome="no_action",
        )  # fmt: skip
        annex = add_incident(db, start=T0, site=OTHER_SITE, platform="instagram")
        ids = {"first": first.id, "laptop": laptop.id, "tablet": tablet.id, "annex": annex.id}
        db.commit()
    return ids


def sign_in_at_site(harness: AppHarness, site: str) -> None:
    with harness.db() as db:
        create_user(
            db, "annexhead", "Annex Head", UserRole.REVIEWER, PASSWORD, site=site,
            hasher=FAST_HASHER,
        )  # fmt: skip
        db.commit()
    assert harness.post_login("annexhead", PASSWORD).status_code == 303


def queue_page(harness: AppHarness, query: str = "") -> QueuePage:
    response = harness.client.get("/incidents" + query)
    assert response.status_code == 200, response.text
    assert response.template.name == "pages/incidents/queue.html"  # type: ignore[attr-defined]
    page = response.context["page"]  # type: ignore[attr-defined]
    assert isinstance(page, QueuePage)
    return page


def queue_ids(page: QueuePage) -> list[int]:
    assert page.result is not None
    return [item.id for item in page.result.items]


# --- the queue -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ["tablet", "annex", "laptop", "first"]),  # newest first; ties: latest id first
        ("?status=new", ["annex", "laptop", "first"]),
        ("?status=new&status=closed", ["tablet", "annex", "laptop", "first"]),
        ("?platform=instagram", ["annex", "laptop"]),
        ("?segment=pupil-wifi", ["tablet"]),
        ("?device=pupil-tab", ["tablet"]),
        ("?device=AA:BB:CC:00:00:02", ["tablet"]),
        ("?date_from=2026-03-10&date_to=2026-03-10", ["tablet", "annex", "laptop"]),
        ("?date_to=2026-03-09", ["first"]),
        ("?sort=start", ["first", "laptop", "annex", "tablet"]),
        ("?sort=-start&status=&platform=&segment=&device=", ["tablet", "annex", "laptop", "first"]),
    ],
)
def test_queue_filters_and_sorts(harness: AppHarness, query: str, expected: list[str]) -> None:
    ids = seed(harness)
    harness.sign_in(UserRole.REVIEWER)
    assert queue_ids(queue_page(harness, query)) == [ids[name] for name in expected]


def test_queue_is_a_get_form_that_echoes_its_filters(harness: AppHarness) -> None:
    seed(harness)
    harness.sign_in(UserRole.REVIEWER)
    page = queue_page(harness, "?status=new&platform=instagram&device=laptop")
    assert page.query == QueueQuery(statuses=("new",), platform="instagram", device="laptop")
    soup = BeautifulSoup(
        harness.client.get("/incidents?status=new&device=laptop").text, "html.parser"
    )
    form = soup.find("form", class_="filters")
    assert form is not None and form["method"] == "get"
    for field in form.find_all(["input", "select"], id=True):
        assert soup.find("label", attrs={"for": field["id"]}) is not None, field["id"]
    checked = [box["value"] for box in form.select('input[name="status"][checked]')]
    assert checked == ["new"]
    device = form.find("input", attrs={"name": "device"})
    assert device is not None and device["value"] == "laptop"


def test_queue_export_link_keeps_the_filters(harness: AppHarness) -> None:
    seed(harness)
    harness.sign_in(UserRole.REVIEWER)
    page = queue_page(harness, "?status=new&platform=instagram")
    assert page.export_href == "/incidents.csv?status=new&platform=instagram"


def test_queue_pages_with_links_that_keep_the_filters(harness: AppHarness) -> None:
    with harness.db() as db:
        for n in range(55):
            add_incident(db, start=T0 + timedelta(minutes=n))
        db.commit()
    harness.sign_in(UserRole.REVIEWER)
    first = queue_page(harness, "?status=new")
    assert first.result is not None and (first.result.total, first.result.pages) == (55, 2)
    assert first.previous_href is None
    assert first.next_href == "/incidents?status=new&page=2"
    second = queue_page(harness, "?status=new&page=2")
    assert second.result is not None and len(second.result.items) == 5
    assert (second.previous_href, second.next_href) == ("/incidents?status=new&page=1", None)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("?date_from=10/03/2026", "use the form YYYY-MM-DD"),
        ("?date_from=2026-03-10&date_to=2026-03-01", "end before start"),
        ("?status=archived", "status 'archived'"),
        ("?sort=colour", "Unknown sort order"),
    ],
)
def test_queue_explains_filters_it_cannot_use(
    harness: AppHarness, query: str, message: str
) -> None:
    harness.sign_in(UserRole.REVIEWER)
    response = harness.client.get("/incidents" + query)
    assert response.status_code == 400
    page = response.context["page"]  # type: ignore[attr-defined]
    assert page.result is None and message in (page.error or "")
    alert = BeautifulSoup(response.text, "html.parser").select_one("[role=alert]")
    assert alert is not None and message in alert.get_text()


def test_a_reviewer_limited_to_a_site_sees_only_that_site(harness: AppHarness) -> None:
    ids = seed(harness)
    sign_in_at_site(harness, OTHER_SITE)
    assert queue_ids(queue_page(harness)) == [ids["annex"]]
    assert harness.client.get(f"/incidents/{ids['laptop']}").status_code == 404
    assert harness.client.get(f"/incidents/{ids['annex']}").status_code == 200
    csv_text = harness.client.get("/incidents.csv").text
    assert [row["id"] for row in csv.DictReader(io.StringIO(csv_text))] == [str(ids["annex"])]


def test_an_all_sites_reviewer_filters_the_queue_by_site_and_sees_a_site_column(
    harness: AppHarness,
) -> None:
    ids = seed(harness)
    harness.sign_in(UserRole.REVIEWER)
    page = queue_page(harness, f"?site={OTHER_SITE}")
    assert (page.sites, queue_ids(page)) == ((OTHER_SITE, "school"), [ids["annex"]])
    soup = BeautifulSoup(harness.client.get("/incidents").text, "html.parser")
    options = [(o["value"], "selected" in o.attrs) for o in soup.select("select#site option")]
    assert options == [("", False), (OTHER_SITE, False), ("school", False)]
    headings = [th.get_text() for th in soup.select("table.queue th")]
    assert headings[:3] == ["Incident", "Started", "Site"]
    sites = [tr.select("td")[2].get_text() for tr in soup.select("table.queue tbody tr")]
    assert sites == ["school", OTHER_SITE, "school", "school"]
    assert page.export_href == f"/incidents.csv?site={OTHER_SITE}"
    csv_text = harness.client.get(page.export_href).text
    assert [row["id"] for row in csv.DictReader(io.StringIO(csv_text))] == [str(ids["annex"])]


def test_a_site_limited_reviewer_has_no_site_filter_or_column(harness: AppHarness) -> None:
    seed(harness)
    sign_in_at_site(harness, OTHER_SITE)
    assert queue_page(harness).sites == ()
    soup = BeautifulSoup(harness.client.get("/incidents").text, "html.parser")
    assert soup.select("select#site") == []
    assert "Site" not in [th.get_text() for th in soup.select("table.queue th")]
    assert queue_ids(queue_page(harness, "?site=school")) == []


def test_a_single_school_has_no_site_filter(harness: AppHarness) -> None:
    with harness.db() as db:
        add_incident(db, start=T0)
        db.commit()
    harness.sign_in(UserRole.ADMIN)
    assert queue_page(harness).sites == ()


# --- one incident ----------------------------------------------------------------------------


def test_incident_page_shows_evidence_history_and_earlier_incidents(harness: AppHarness) -> None:
    ids = seed(harness)
    harness.sign_in(UserRole.REVIEWER)
    response = harness.client.get(f"/incidents/{ids['laptop']}")
    assert response.template.name == "pages/incidents/incident.html"  # type: ignore[attr-defined]
    page = response.context["page"]  # type: ignore[attr-defined]
    assert isinstance(page, IncidentView)
    assert page.actions == ("in_review",)
    assert [item.id for item in page.detail.earlier] == [ids["first"]]
    soup = BeautifulSoup(response.text, "html.parser")
    assert soup.h1 is not None and soup.h1.get_text() == f"Incident {ids['laptop']}: instagram"
    times = [t.get_text() for t in soup.select(".timeline time")]
    assert times == ["Tue 10 Mar 10:00:05"]  # GMT in March: the school's clock equals UTC
    assert "social networking" in soup.select_one(".policy").get_text()  # type: ignore[union-attr]
    assert soup.select_one(f'.earlier a[href="/incidents/{ids["first"]}"]') is not None
    assert soup.select_one('a[href="/incidents?device=aa%3Abb%3Acc%3A00%3A00%3A01"]') is not None


def test_incident_times_are_shown_on_the_school_clock(harness: AppHarness) -> None:
    with harness.db() as db:
        summer = add_incident(db, start=datetime(2026, 6, 9, 9, 0, tzinfo=UTC)).id
        db.commit()
    harness.sign_in(UserRole.REVIEWER)
    soup = BeautifulSoup(harness.client.get(f"/incidents/{summer}").text, "html.parser")
    assert [t.get_text() for t in soup.select(".timeline time")][0] == "Tue 09 Jun 10:00:00"


def test_every_view_of_an_incident_writes_one_audit_row(harness: AppHarness) -> None:
    ids = seed(harness)
    harness.sign_in(UserRole.REVIEWER)
    before = harness.audit_count()
    harness.client.get(f"/incidents/{ids['laptop']}")
    assert harness.audit_count() == before + 1
    row = harness.audit_rows()[-1]
    assert (row.action, row.target_type, row.target_id) == (
        "view_incident", "incident", str(ids["laptop"]),
    )  # fmt: skip


def test_a_missing_incident_is_404_and_not_audited(harness: AppHarness) -> None:
    harness.sign_in(UserRole.REVIEWER)
    before = harness.audit_count()
    response = harness.client.get("/incidents/999")
    assert response.status_code == 404 and "No incident 999." in response.text
    assert harness.audit_count() == before


# --- the review workflow ---------------------------------------------------------------------


def post_review(harness: AppHarness, incident_id: int, **fields: str) -> object:
    data = {"csrf_token": harness.session_csrf(), **fields}
    return harness.client.post(
        f"/incidents/{incident_id}/review", data=data, follow_redirects=False
    )


def test_review_new_to_in_review_to_closed_with_history(harness: AppHarness) -> None:
    ids = seed(harness)
    harness.sign_in(UserRole.REVIEWER, "head")
    harness.add_user(UserRole.REVIEWER, "deputy")
    incident = ids["laptop"]
    first = post_review(harness, incident, to_status="in_review")
    assert (first.status_code, first.headers["location"]) == (303, f"/incidents/{incident}")  # type: ignore[attr-defined]
    closed = post_review(
        harness, incident, to_status="closed", outcome="informal_conversation",
        note="Spoke to the member of staff.", second_reviewer="deputy",
    )  # fmt: skip
    assert closed.status_code == 303  # type: ignore[attr-defined]
    page = harness.client.get(f"/incidents/{incident}").context["page"]  # type: ignore[attr-defined]
    assert page.detail.incident.status == "closed"
    assert page.detail.incident.outcome == "informal_conversation"
    assert [(c.from_status, c.to_status) for c in page.detail.history] == [
        ("new", "in_review"), ("in_review", "closed"),
    ]  # fmt: skip
    assert page.actions == ("in_review",)
    soup = BeautifulSoup(harness.client.get(f"/incidents/{incident}").text, "html.parser")
    history = soup.select_one(".history")
    assert history is not None and "Spoke to the member of staff." in history.get_text()
    assert "second reviewer deputy" in history.get_text()


def test_each_review_change_writes_exactly_one_review_audit_row(harness: AppHarness) -> None:
    ids = seed(harness)
    harness.sign_in(UserRole.REVIEWER)
    token = harness.session_csrf()
    before = harness.audit_count()
    response = harness.client.post(
        f"/incidents/{ids['laptop']}/review",
        data={"csrf_token": token, "to_status": "in_review"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert harness.audit_count() == before + 1
    row = harness.audit_rows()[-1]
    assert (row.action, row.target_id, row.detail["from"], row.detail["to"]) == (
        "review", str(ids["laptop"]), "new", "in_review",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"to_status": "closed", "outcome": "no_action", "note": "x"}, "cannot move to closed"),
        ({"to_status": "in_review", "outcome": "no_action"}, "only when closing"),
        ({"to_status": "archived"}, "Status 'archived': allowed"),
    ],
)
def test_a_refused_review_shows_the_page_again_with_the_reason(
    harness: AppHarness, fields: dict[str, str], message: str
) -> None:
    ids = seed(harness)
    harness.sign_in(UserRole.REVIEWER)
    response = post_review(harness, ids["laptop"], **fields)
    assert response.status_code == 400  # type: ignore[attr-defined]
    assert response.template.name == "pages/incidents/incident.html"  # type: ignore[attr-defined]
    page = response.context["page"]  # type: ignore[attr-defined]
    assert message in (page.error or "")
    with harness.db() as db:
        assert db.scalar(select(IncidentRecord.status).where(IncidentRecord.id == ids["laptop"])) == "new"  # fmt: skip
        actions = list(db.scalars(select(AuditEventRecord.action)))
    assert "review" not in actions
    assert actions.count("view_incident") == 1  # the page shown again is one view


def test_closing_without_a_note_keeps_what_was_entered(harness: AppHarness) -> None:
    ids = seed(harness)
    harness.sign_in(UserRole.REVIEWER)
    post_review(harness, ids["laptop"], to_status="in_review")
    response = post_review(
        harness, ids["laptop"], to_status="closed", outcome="formal_process", note="  "
    )
    assert response.status_code == 400  # type: ignore[attr-defined]
    soup = BeautifulSoup(response.text, "html.parser")  # type: ignore[attr-defined]
    assert "closing needs a note" in soup.select_one("#review-problem").get_text().lower()  # type: ignore[union-attr]
    assert soup.select_one('input[value="formal_process"][checked]') is not None


def test_review_without_the_csrf_token_is_refused(harness: AppHarness) -> None:
    ids = seed(harness)
    harness.sign_in(UserRole.REVIEWER)
    before = harness.audit_count()
    response = harness.client.post(
        f"/incidents/{ids['laptop']}/review",
        data={"to_status": "in_review", "csrf_token": "x" * 43},
        follow_redirects=False,
    )
    assert response.status_code == 403
    assert harness.audit_count() == before
    with harness.db() as db:
        assert db.scalar(select(IncidentRecord.status).where(IncidentRecord.id == ids["laptop"])) == "new"  # fmt: skip


def test_a_reviewer_limited_to_a_site_cannot_review_another_sites_incident(
    harness: AppHarness,
) -> None:
    ids = seed(harness)
    sign_in_at_site(harness, OTHER_SITE)
    assert post_review(harness, ids["laptop"], to_status="in_review").status_code == 404  # type: ignore[attr-defined]


def test_a_queue_page_writes_one_list_read_audit_row_with_its_filters(
    harness: AppHarness,
) -> None:
    seed(harness)
    harness.sign_in(UserRole.REVIEWER)
    page = queue_page(harness, "?platform=instagram&status=new")
    assert page.result is not None
    assert harness.audit_count("view_list") == 1
    row = harness.audit_rows()[-1]
    assert (row.target_type, row.target_id) == ("incidents", None)
    assert row.detail == {
        "via": "page", "page": 1, "per_page": page.result.per_page,
        "returned": len(page.result.items), "total": page.result.total,
        "filters": {"statuses": ["new"], "platform": "instagram"},
    }  # fmt: skip


def test_a_queue_page_showing_no_one_is_not_audited(harness: AppHarness) -> None:
    seed(harness)
    harness.sign_in(UserRole.REVIEWER)
    page = queue_page(harness, "?platform=nothing-like-it")
    assert page.result is not None and page.result.items == ()
    assert harness.audit_count("view_list") == 0


# --- CSV export ------------------------------------------------------------------------------


def test_csv_export_has_the_filtered_rows_and_writes_one_export_row(harness: AppHarness) -> None:
    ids = seed(harness)
    harness.sign_in(UserRole.REVIEWER)
    before = harness.audit_count()
    response = harness.client.get("/incidents.csv?platform=instagram&status=new")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"].startswith("attachment;")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert sorted(int(row["id"]) for row in rows) == sorted([ids["laptop"], ids["annex"]])
    assert harness.audit_count() == before + 1
    row = harness.audit_rows()[-1]
    assert (row.action, row.detail["filters"]) == (
        "export", {"statuses": ["new"], "platform": "instagram"},
    )  # fmt: skip


def test_csv_export_of_bad_filters_is_400_and_not_audited(harness: AppHarness) -> None:
    harness.sign_in(UserRole.REVIEWER)
    before = harness.audit_count()
    assert harness.client.get("/incidents.csv?date_from=yesterday").status_code == 400
    assert harness.audit_count() == before


def test_closing_a_growing_incident_asks_for_a_confirmation_and_says_why(
    harness: AppHarness,
) -> None:
    ids = seed(harness)
    harness.sign_in(UserRole.REVIEWER)
    with harness.db() as db:
        db.execute(update(IncidentRecord).where(IncidentRecord.id == ids["laptop"]).values(state="open"))  # fmt: skip
        db.commit()
    post_review(harness, ids["laptop"], to_status="in_review")
    soup = BeautifulSoup(harness.client.get(f"/incidents/{ids['laptop']}").text, "html.parser")
    growing = soup.select_one("#still-growing")
    assert growing is not None and "still growing" in growing.get_text()
    assert soup.select_one('input[name="confirm_growing"][required]') is not None
    close = {"to_status": "closed", "outcome": "no_action", "note": "Checked."}
    refused = post_review(harness, ids["laptop"], **close)
    assert refused.status_code == 400  # type: ignore[attr-defined]
    assert "still growing" in refused.context["page"].error  # type: ignore[attr-defined]
    closed = post_review(harness, ids["laptop"], confirm_growing="true", **close)
    assert closed.status_code == 303  # type: ignore[attr-defined]


def test_both_pages_of_a_continued_activity_show_the_link(harness: AppHarness) -> None:
    ids = seed(harness)
    harness.sign_in(UserRole.REVIEWER)
    with harness.db() as db:
        decided = db.get(IncidentRecord, ids["laptop"])
        assert decided is not None
        decided.status, decided.outcome = "closed", "informal_conversation"
        later = add_incident(db, start=decided.end_at, key=f"{decided.key}.1")
        later.continues_id, later.source_key = decided.id, decided.key
        later_id = later.id
        db.commit()
    first = BeautifulSoup(harness.client.get(f"/incidents/{ids['laptop']}").text, "html.parser")
    link = first.select_one("#continuation")
    assert link is not None and f"continues in incident {later_id}" in link.get_text()
    second = BeautifulSoup(harness.client.get(f"/incidents/{later_id}").text, "html.parser")
    back = second.select_one("#continuation")
    assert back is not None and f"continues incident {ids['laptop']}" in back.get_text()
