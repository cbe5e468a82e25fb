"""The pure rules behind what reports and pages say: week labels, counter labels, "no data"."""

from __future__ import annotations

import logging
from datetime import date

import pytest

from monitor.engine import VISIBILITY_FLAGS
from monitor.reports.coverage import days_so_far, days_without_data, is_silent_site
from monitor.reports.data import CounterTotal
from monitor.reports.labels import COUNTER_LABELS, readable_counters, week_label

WEDNESDAY = date(2026, 12, 9)


@pytest.mark.parametrize(
    ("first_day", "label"),
    [
        (date(2026, 12, 7), "Week of 7 December"),
        (date(2026, 9, 3), "Week of 3 September"),  # a term's first, clipped week
        (date(2027, 1, 4), "Week of 4 January"),
    ],
)
def test_a_week_is_named_by_its_first_day(first_day: date, label: str) -> None:
    assert week_label(first_day) == label


def test_days_after_today_are_never_no_data() -> None:
    week = [date(2026, 12, 7 + n) for n in range(5)]
    counts = [(day, 0) for day in week]
    assert days_without_data(counts, WEDNESDAY) == tuple(week[:3])
    assert days_so_far(week, WEDNESDAY) == week[:3]


def test_a_school_is_silent_only_if_it_has_nothing_while_another_has_data() -> None:
    assert is_silent_site("Brook School", 0, 1)
    assert not is_silent_site("Brook School", 12, 1)  # it did send data
    assert not is_silent_site("Brook School", 0, 0)  # nobody sent data: plain "no data"
    assert not is_silent_site(None, 0, 2)  # a trust-wide report covers every school


def test_an_unlabelled_counter_is_left_out_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    rows = [CounterTotal("flags.ech", 3), CounterTotal("capture.new_thing", 1)]
    with caplog.at_level(logging.WARNING, logger="monitor.reports.labels"):
        kept = readable_counters(rows, lambda row: row.counter)
    assert kept == [CounterTotal("flags.ech", 3)]
    assert "capture.new_thing" in caplog.text


def test_every_visibility_flag_the_engine_counts_has_a_label() -> None:
    assert {f"flags.{flag.value}" for flag in VISIBILITY_FLAGS} <= set(COUNTER_LABELS)
