"""Dashboard and reviewer-summary figures: incidents by platform, segment, role and local day,
the previous period, open items, the busiest devices, and capture health from the counters."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from monitor.store.queries.stats import Count, DayCount, capture_health, incident_stats, top_devices
from monitor.store.queries.weeks import school_week
from tests.monitor.store.queries.factories import (
    LONDON,
    OTHER_SITE,
    PUPIL_TABLET,
    ROUTED_PC,
    SITE,
    add_counter,
    add_incident,
)

WEEK = school_week("2026-W27", LONDON)  # Monday 29 June to Sunday 5 July 2026, BST
MONDAY = datetime(2026, 6, 29, 9, 0, tzinfo=UTC)


@pytest.fixture
def week_of_incidents(db: Session) -> None:
    add_incident(db, start=MONDAY)
    add_incident(db, start=MONDAY + timedelta(hours=1), platform="tiktok", status="closed", outcome="no_action")  # fmt: skip
    add_incident(db, start=MONDAY + timedelta(days=2), device=PUPIL_TABLET, segment="pupil-wifi", role="pupil", status="in_review")  # fmt: skip
    add_incident(db, start=MONDAY + timedelta(days=2), device=ROUTED_PC, segment=None, role=None)
    # Sunday 28 June 23:30 UTC is Monday 00:30 in London: in the week, on Monday
    add_incident(db, start=datetime(2026, 6, 28, 23, 30, tzinfo=UTC), platform="tiktok")
    # Sunday 5 July 23:30 UTC is Monday 6 July in London: next week
    add_incident(db, start=datetime(2026, 7, 5, 23, 30, tzinfo=UTC))
    add_incident(db, start=MONDAY, site=OTHER_SITE)
    # the week before, and an old one still waiting
    add_incident(db, start=MONDAY - timedelta(days=7), platform="tiktok", status="closed", outcome="false_positive")  # fmt: skip
    add_incident(db, start=MONDAY - timedelta(days=90), status="new")


def test_incident_stats_for_a_week(db: Session, week_of_incidents: None) -> None:
    stats = incident_stats(db, *WEEK, LONDON, SITE)
    assert stats.total == 5
    assert stats.by_platform == (Count("instagram", 3), Count("tiktok", 2))
    assert stats.by_segment == (Count("staff-wifi", 3), Count("pupil-wifi", 1), Count("unsegmented", 1))  # fmt: skip
    assert stats.by_role == (Count("staff", 3), Count("pupil", 1), Count("unsegmented", 1))
    assert stats.by_day == tuple(
        DayCount(date(2026, 6, 29) + timedelta(days=n), count)
        for n, count in enumerate([3, 0, 2, 0, 0, 0, 0])
    )
    # waiting for a decision, whenever they happened: everything not closed at this site
    assert stats.open_items == 6
    assert (stats.previous_total, stats.previous_by_platform, stats.change) == (1, (Count("tiktok", 1),), 4)  # fmt: skip


def test_incident_stats_for_every_site(db: Session, week_of_incidents: None) -> None:
    assert incident_stats(db, *WEEK, LONDON, None).total == 6
    assert incident_stats(db, *WEEK, LONDON, OTHER_SITE).by_platform == (Count("instagram", 1),)


def test_incident_stats_count_per_site_within_the_scope(
    db: Session, week_of_incidents: None
) -> None:
    assert incident_stats(db, *WEEK, LONDON, None).by_site == (Count(SITE, 5), Count(OTHER_SITE, 1))
    assert incident_stats(db, *WEEK, LONDON, OTHER_SITE).by_site == (Count(OTHER_SITE, 1),)


def test_incident_stats_of_an_empty_period(db: Session) -> None:
    stats = incident_stats(db, *WEEK, LONDON, SITE)
    assert (stats.total, stats.by_platform, stats.open_items) == (0, (), 0)
    assert [day.count for day in stats.by_day] == [0] * 7


def test_incident_stats_refuses_an_empty_period(db: Session) -> None:
    with pytest.raises(ValueError, match="end is not after start"):
        incident_stats(db, WEEK[1], WEEK[0], LONDON, None)


def test_top_devices_by_mac_else_address(db: Session) -> None:
    for n in range(3):
        add_incident(db, start=MONDAY + timedelta(hours=n), minutes=10)
    add_incident(db, start=MONDAY + timedelta(hours=5), device=("10.1.9.9", "aa:bb:cc:00:00:01"), label="Ms Smith")  # fmt: skip
    add_incident(db, start=MONDAY, device=ROUTED_PC, minutes=50)
    add_incident(db, start=MONDAY + timedelta(hours=1), device=ROUTED_PC, minutes=50)
    add_incident(db, start=MONDAY, device=PUPIL_TABLET)
    top = top_devices(db, *WEEK, SITE, limit=2)
    assert [
        (d.device_mac, d.device_ip, d.device_label, d.incidents, d.active_minutes) for d in top
    ] == [  # fmt: skip
        ("aa:bb:cc:00:00:01", "10.1.9.9", "Ms Smith", 4, 50.0),
        (None, "10.9.0.7", None, 2, 100.0),
    ]


def test_capture_health_from_the_counters(db: Session) -> None:
    monday, tuesday, wednesday = date(2026, 6, 29), date(2026, 6, 30), date(2026, 7, 1)
    for day, name, count in [
        (monday, "observations.dns", 9000), (monday, "observations.tls", 4000),
        (monday, "observations.quic", 1000), (monday, "observations.dhcp", 12),
        (monday, "matches.outside_school_time", 40), (monday, "matches.unsegmented", 3),
        (monday, "matches.not_flagged_for_segment", 17), (monday, "flags.ech", 250),
        (monday, "flags.encrypted-dns", 9), (monday, "sensor.restarts", 1),
        (wednesday, "observations.dns", 8000),
        (date(2026, 7, 6), "observations.dns", 5),  # next week
    ]:  # fmt: skip
        add_counter(db, day, name, count)
    add_counter(db, monday, "observations.dns", 100, site=OTHER_SITE)
    health = capture_health(db, monday, monday + timedelta(days=7), SITE)
    assert health.observations_total == 22012
    assert health.observations_by_proto == (Count("dns", 17000), Count("tls", 4000), Count("quic", 1000), Count("dhcp", 12))  # fmt: skip
    assert health.by_day[:3] == (DayCount(monday, 14012), DayCount(tuesday, 0), DayCount(wednesday, 8000))  # fmt: skip
    assert len(health.by_day) == 7
    assert health.days_with_data == 2
    assert (health.matches_outside_school_time, health.matches_unsegmented, health.matches_not_flagged) == (40, 3, 17)  # fmt: skip
    assert (health.ech, health.encrypted_dns) == (250, 9)
    assert health.other == (Count("sensor.restarts", 1),)
    assert capture_health(db, monday, monday + timedelta(days=1), None).observations_total == 14112


def test_capture_health_without_flag_counters(db: Session) -> None:
    health = capture_health(db, date(2026, 6, 29), date(2026, 7, 6), SITE)
    assert (health.observations_total, health.days_with_data, health.ech, health.encrypted_dns) == (0, 0, None, None)  # fmt: skip
    with pytest.raises(ValueError, match="end is not after start"):
        capture_health(db, date(2026, 6, 29), date(2026, 6, 29), SITE)
