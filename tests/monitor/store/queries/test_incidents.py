"""The review queue: filters, sorting, pages, site scope, and the confidence level filter."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from monitor.confidence import DEFAULT_FLOOR, LEVELS, Floor, Level, level_of
from monitor.store.queries.incident_page import (
    get_incident,
)
from monitor.store.queries.incidents import (
    IncidentFilters,
    incident_sites,
    list_incidents,
    sort_label,
)
from monitor.values import Basis
from tests.monitor.store.queries.factories import (
    LONDON,
    OTHER_SITE,
    PUPIL_TABLET,
    ROUTED_PC,
    SITE,
    T0,
    add_incident,
)


@pytest.fixture
def queue(db: Session) -> dict[str, int]:
    """Seven incidents over three days, two sites, three devices; names -> ids."""
    made = {
        "staff-insta": add_incident(db, start=T0, platform="instagram", confidence=0.9),
        "staff-tiktok": add_incident(
            db, start=T0 + timedelta(hours=2), platform="tiktok", confidence=0.5, status="in_review"
        ),  # fmt: skip
        "pupil-snap": add_incident(
            db,
            start=T0 + timedelta(days=1),
            platform="snapchat",
            device=PUPIL_TABLET,
            host_name="TAB-7",
            segment="pupil-wifi",
            role="pupil",
            label="Year 9 trolley",
            confidence=0.7,
        ),  # fmt: skip
        "routed-x": add_incident(
            db,
            start=T0 + timedelta(days=1, hours=1),
            platform="x",
            device=ROUTED_PC,
            host_name=None,
            segment=None,
            role=None,
            confidence=0.3,
            status="closed",
            outcome="no_action",
        ),  # fmt: skip
        "annex-insta": add_incident(
            db, start=T0 + timedelta(days=2), site=OTHER_SITE, confidence=0.8
        ),
        "late-evening": add_incident(
            db, start=datetime(2026, 3, 12, 23, 30, tzinfo=UTC), platform="facebook", confidence=0.6
        ),  # fmt: skip
        "formula": add_incident(
            db,
            start=T0 - timedelta(days=1),
            platform="facebook",
            label="=HYPERLINK(1)",
            confidence=0.95,
        ),  # fmt: skip
    }
    return {name: record.id for name, record in made.items()}


def names(page_items: object, queue: dict[str, int]) -> list[str]:
    by_id = {incident_id: name for name, incident_id in queue.items()}
    return [by_id[item.id] for item in page_items]  # type: ignore[attr-defined]


def listed(db: Session, queue: dict[str, int], filters: IncidentFilters | None = None, *, sort: str = "-start", site_scope: str | None = None) -> list[str]:  # fmt: skip
    page = list_incidents(db, filters or IncidentFilters(), sort=sort, page=1, per_page=50, site_scope=site_scope)  # fmt: skip
    return names(page.items, queue)


class TestFilters:
    @pytest.mark.parametrize(
        ("filters", "expected"),
        [
            (
                IncidentFilters(statuses=("new",)),
                {"staff-insta", "pupil-snap", "annex-insta", "late-evening", "formula"},
            ),  # fmt: skip
            (IncidentFilters(statuses=("in_review", "closed")), {"staff-tiktok", "routed-x"}),
            (IncidentFilters(platforms=("tiktok", "x")), {"staff-tiktok", "routed-x"}),
            (IncidentFilters(segments=("pupil-wifi",)), {"pupil-snap"}),
            (
                IncidentFilters(roles=("staff",)),
                {"staff-insta", "staff-tiktok", "annex-insta", "late-evening", "formula"},
            ),  # fmt: skip
            (IncidentFilters(site=OTHER_SITE), {"annex-insta"}),
            # device: a substring of the address, the MAC, the host name or the label, any case
            (IncidentFilters(device="10.2.0"), {"pupil-snap"}),
            (IncidentFilters(device="AA:BB:CC:00:00:02"), {"pupil-snap"}),
            (IncidentFilters(device="tab-"), {"pupil-snap"}),
            (IncidentFilters(device="trolley"), {"pupil-snap"}),
            (IncidentFilters(device="9.0.7"), {"routed-x"}),
            # LIKE wildcards are literal characters
            (IncidentFilters(device="%"), set()),
            (IncidentFilters(device="10_2"), set()),
        ],
    )
    def test_filter(self, db: Session, queue: dict[str, int], filters: IncidentFilters, expected: set[str]) -> None:  # fmt: skip
        assert set(listed(db, queue, filters)) == expected

    def test_dates_are_school_days(self, db: Session, queue: dict[str, int]) -> None:
        # 23:30 UTC on Thursday 12 March is still Thursday in London (GMT): on the 12th
        only_12th = IncidentFilters(date_from=date(2026, 3, 12), date_to=date(2026, 3, 12), tz=LONDON)  # fmt: skip
        assert set(listed(db, queue, only_12th)) == {"annex-insta", "late-evening"}
        since_11th = IncidentFilters(date_from=date(2026, 3, 11), tz=LONDON)
        assert set(listed(db, queue, since_11th)) == {"pupil-snap", "routed-x", "annex-insta", "late-evening"}  # fmt: skip
        until_9th = IncidentFilters(date_to=date(2026, 3, 9), tz=LONDON)
        assert listed(db, queue, until_9th) == ["formula"]

    def test_dates_follow_summer_time(self, db: Session) -> None:
        # 23:30 UTC on 1 July is 00:30 on 2 July in London (BST)
        late = add_incident(db, start=datetime(2026, 7, 1, 23, 30, tzinfo=UTC))
        july_2nd = IncidentFilters(date_from=date(2026, 7, 2), date_to=date(2026, 7, 2), tz=LONDON)
        page = list_incidents(db, july_2nd, sort="-start", page=1, per_page=10, site_scope=None)
        assert [item.id for item in page.items] == [late.id]

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"statuses": ("open",)}, "status 'open'"),
            ({"date_from": date(2026, 3, 1)}, "time zone"),
            (
                {"date_from": date(2026, 3, 2), "date_to": date(2026, 3, 1), "tz": LONDON},
                "end before start",
            ),  # fmt: skip
        ],
    )
    def test_bad_filters_are_refused(self, kwargs: dict[str, object], message: str) -> None:
        with pytest.raises(ValueError, match=message):
            IncidentFilters(**kwargs)  # type: ignore[arg-type]


class TestSorting:
    @pytest.mark.parametrize(
        ("sort", "expected"),
        [
            (
                "-start",
                "late-evening annex-insta routed-x pupil-snap staff-tiktok staff-insta formula",
            ),
            (
                "start",
                "formula staff-insta staff-tiktok pupil-snap routed-x annex-insta late-evening",
            ),
            # ties (two on instagram, two on facebook) go newest first
            (
                "platform",
                "late-evening formula annex-insta staff-insta pupil-snap staff-tiktok routed-x",
            ),
            (
                "-confidence",
                "formula staff-insta annex-insta pupil-snap late-evening staff-tiktok routed-x",
            ),
            # workflow order: new, in review, closed
            (
                "status",
                "late-evening annex-insta pupil-snap staff-insta formula staff-tiktok routed-x",
            ),
            # label, else host name, else address
            (
                "device",
                "routed-x formula late-evening annex-insta staff-tiktok staff-insta pupil-snap",
            ),
        ],
    )
    def test_sort(self, db: Session, queue: dict[str, int], sort: str, expected: str) -> None:
        assert listed(db, queue, sort=sort) == expected.split()

    @pytest.mark.parametrize(
        ("sort", "label"),
        [("-start", "Newest first"), ("start", "Oldest first"), ("status", "Status (new first)"),
         ("platform", "Platform"), ("-device", "Device (Z to A)"),
         ("-confidence", "Most certain first")],
    )  # fmt: skip
    def test_each_sort_order_reads_as_a_label(self, sort: str, label: str) -> None:
        assert sort_label(sort) == label

    def test_unknown_sort_is_refused(self, db: Session) -> None:
        with pytest.raises(ValueError, match="sort 'hostname': allowed confidence, device"):
            list_incidents(db, IncidentFilters(), sort="hostname", page=1, per_page=10, site_scope=None)  # fmt: skip


class TestPages:
    def test_pages_cover_every_row_once(self, db: Session, queue: dict[str, int]) -> None:
        pages = [
            list_incidents(
                db, IncidentFilters(), sort="-start", page=n, per_page=3, site_scope=None
            )
            for n in (1, 2, 3)
        ]
        assert [(p.total, p.pages, p.page, len(p.items)) for p in pages] == [(7, 3, 1, 3), (7, 3, 2, 3), (7, 3, 3, 1)]  # fmt: skip
        ids = [item.id for page in pages for item in page.items]
        assert sorted(ids) == sorted(queue.values())

    def test_a_page_past_the_end_is_empty(self, db: Session, queue: dict[str, int]) -> None:
        page = list_incidents(db, IncidentFilters(), sort="-start", page=9, per_page=3, site_scope=None)  # fmt: skip
        assert (page.items, page.total, page.pages) == ((), 7, 3)

    def test_an_empty_queue_has_one_empty_page(self, db: Session) -> None:
        page = list_incidents(db, IncidentFilters(), sort="-start", page=1, per_page=50, site_scope=None)  # fmt: skip
        assert (page.items, page.total, page.pages) == ((), 0, 1)

    def test_bad_page_is_refused(self, db: Session) -> None:
        with pytest.raises(ValueError, match="pages are numbered from 1"):
            list_incidents(db, IncidentFilters(), sort="-start", page=0, per_page=50, site_scope=None)  # fmt: skip

    def test_rows_carry_what_the_queue_shows(self, db: Session, queue: dict[str, int]) -> None:
        page = list_incidents(db, IncidentFilters(segments=("pupil-wifi",)), sort="-start", page=1, per_page=5, site_scope=None)  # fmt: skip
        (row,) = page.items
        assert (row.platform, row.device_ip, row.device_mac, row.device_name, row.role, row.status) == (  # fmt: skip
            "snapchat", "10.2.0.50", "aa:bb:cc:00:00:02", "Year 9 trolley", "pupil", "new",
        )  # fmt: skip
        assert row.start_at == T0 + timedelta(days=1)
        assert row.start_at.tzinfo == UTC


class TestSiteScope:
    def test_a_reviewer_limited_to_one_site_sees_only_it(self, db: Session, queue: dict[str, int]) -> None:  # fmt: skip
        assert listed(db, queue, site_scope=OTHER_SITE) == ["annex-insta"]
        assert "annex-insta" not in listed(db, queue, site_scope=SITE)
        # asking for another site through the filter shows nothing either
        assert listed(db, queue, IncidentFilters(site=OTHER_SITE), site_scope=SITE) == []

    @pytest.mark.parametrize("sort", ["-start", "start", "platform", "-platform", "device", "-confidence"])  # fmt: skip
    def test_a_device_search_within_a_site_keeps_order_and_pages(self, db: Session, queue: dict[str, int], sort: str) -> None:  # fmt: skip
        # within one site the search collects the matching ids first: same rows, same order
        search = IncidentFilters(device="AA:BB")
        everywhere = listed(db, queue, search, sort=sort)
        assert "routed-x" not in everywhere  # no MAC
        expected = [name for name in everywhere if name != "annex-insta"]
        assert listed(db, queue, search, sort=sort, site_scope=SITE) == expected
        assert listed(db, queue, IncidentFilters(device="AA:BB", site=SITE), sort=sort) == expected
        assert listed(db, queue, IncidentFilters(device="AA:BB", site=SITE), site_scope=OTHER_SITE) == []  # fmt: skip
        pages = [
            list_incidents(db, search, sort=sort, page=n, per_page=2, site_scope=SITE)
            for n in (1, 2, 3)
        ]
        assert [names(page.items, queue) for page in pages] == [expected[0:2], expected[2:4], expected[4:6]]  # fmt: skip
        assert {page.total for page in pages} == {len(expected)}

    def test_another_sites_incident_is_missing(self, db: Session, queue: dict[str, int]) -> None:
        with pytest.raises(LookupError, match="no incident"):
            get_incident(db, queue["annex-insta"], SITE)
        assert get_incident(db, queue["annex-insta"], OTHER_SITE).incident.site == OTHER_SITE
        assert get_incident(db, queue["annex-insta"], None).incident.site == OTHER_SITE

    def test_a_missing_incident_raises_lookup_error(self, db: Session) -> None:
        with pytest.raises(LookupError, match="no incident 1000000000"):
            get_incident(db, 10**9, None)


def test_incident_sites_names_each_site_with_incidents_once(
    db: Session, queue: dict[str, int]
) -> None:
    assert incident_sites(db, None) == tuple(sorted((OTHER_SITE, SITE)))
    assert incident_sites(db, OTHER_SITE) == (OTHER_SITE,)


def test_incident_sites_of_an_empty_database_is_empty(db: Session) -> None:
    assert incident_sites(db, None) == ()


# --- the confidence level filter: the SQL says what monitor.confidence.level_of says ----------

SCORES = (0.3, 0.55, 0.6, 0.65, 0.79, 0.8, 0.95)


CONNECTIONS = (0, 1, 2, 5)


MINUTES = (1.0, 1.5, 2.0, 3.0, 20.0)


@pytest.mark.parametrize("floor", [DEFAULT_FLOOR, Floor(1, 0), Floor(0, 0), Floor(5, 10)], ids=str)
def test_the_level_filter_agrees_with_level_of_on_every_stored_combination(
    db: Session, floor: Floor
) -> None:
    expected: dict[Level, set[int]] = {level: set() for level in Level}
    for score, connections, minutes in itertools.product(SCORES, CONNECTIONS, MINUTES):
        record = add_incident(
            db, confidence=score, connections=connections, lookups=1, minutes=minutes
        )
        basis = Basis(connections=connections, lookups=1)
        expected[level_of(basis, minutes, score, floor)].add(record.id)
    for level in LEVELS:
        found = list_incidents(
            db, IncidentFilters(levels=(level,), floor=floor), per_page=500, site_scope=None
        )
        assert {item.id for item in found.items} == expected[level], level
    default = list_incidents(
        db, IncidentFilters(levels=("high", "medium"), floor=floor), per_page=500, site_scope=None
    )
    assert default.low_hidden == len(expected[Level.LOW])
    assert default.total == len(expected[Level.HIGH]) + len(expected[Level.MEDIUM])


def test_an_unknown_level_is_refused_with_the_choices() -> None:
    with pytest.raises(ValueError, match="confidence 'certain': allowed high, medium, low"):
        IncidentFilters(levels=("certain",))
