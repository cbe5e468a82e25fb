"""The capture watch: a site whose frame count stops moving for ten minutes has gone quiet."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from api.capture_watch import STALE_AFTER, CaptureWatch
from monitor.store.queries.health import FrameTotal

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
TODAY = date(2026, 11, 24)


def test_a_site_seen_for_the_first_time_is_not_stale() -> None:
    (site,) = CaptureWatch().observe({"st-marys": FrameTotal(TODAY, 100)}, T0)
    assert (site.site, site.frames, site.unchanged_for, site.stale) == (
        "st-marys",
        100,
        timedelta(0),
        False,
    )


def test_a_total_unchanged_for_ten_minutes_is_stale() -> None:
    watch = CaptureWatch()
    watch.observe({"st-marys": FrameTotal(TODAY, 100)}, T0)
    (early,) = watch.observe({"st-marys": FrameTotal(TODAY, 100)}, T0 + timedelta(minutes=9))
    (late,) = watch.observe({"st-marys": FrameTotal(TODAY, 100)}, T0 + STALE_AFTER)
    assert not early.stale and early.unchanged_for == timedelta(minutes=9)
    assert late.stale and late.unchanged_for == STALE_AFTER


def test_a_growing_total_is_never_stale() -> None:
    watch = CaptureWatch()
    for minute in range(0, 60, 5):
        (site,) = watch.observe(
            {"st-marys": FrameTotal(TODAY, 100 + minute)}, T0 + timedelta(minutes=minute)
        )
        assert not site.stale and site.unchanged_for == timedelta(0)


def test_a_new_day_counts_as_a_change_even_with_the_same_total() -> None:
    watch = CaptureWatch()
    watch.observe({"st-marys": FrameTotal(TODAY, 100)}, T0)
    tomorrow = TODAY + timedelta(days=1)
    (site,) = watch.observe({"st-marys": FrameTotal(tomorrow, 100)}, T0 + timedelta(hours=1))
    assert not site.stale and site.day == tomorrow


def test_sites_are_watched_apart_and_listed_in_order() -> None:
    watch = CaptureWatch()
    watch.observe({"b": FrameTotal(TODAY, 1), "a": FrameTotal(TODAY, 1)}, T0)
    later = T0 + timedelta(minutes=15)
    sites = watch.observe({"b": FrameTotal(TODAY, 1), "a": FrameTotal(TODAY, 2)}, later)
    assert [(site.site, site.stale) for site in sites] == [("a", False), ("b", True)]


def test_a_clock_that_goes_back_is_not_a_negative_age() -> None:
    watch = CaptureWatch()
    watch.observe({"a": FrameTotal(TODAY, 1)}, T0)
    (site,) = watch.observe({"a": FrameTotal(TODAY, 1)}, T0 - timedelta(minutes=5))
    assert site.unchanged_for == timedelta(0) and not site.stale
