"""From settings to the engine's rules: closures from files, segments, calendar, policy."""

from __future__ import annotations

from datetime import UTC, date, datetime
from ipaddress import ip_network
from pathlib import Path

import pytest

from monitor.config.loading import load_settings
from monitor.config.rules import build_policy, load_closures
from monitor.errors import ConfigError
from monitor.values import SegmentRole
from tests.monitor.config.conftest import ALL, CALENDARS, write

# --- closures from files, and the policy ---------------------------------------------------


def test_load_closures_merges_ical_and_bank_holidays() -> None:
    days = load_closures(
        [CALENDARS / "closures.ics"],
        CALENDARS / "bank-holidays.json",
        "england-and-wales",
        "Europe/London",
    )
    assert days[date(2026, 9, 2)] == "INSET day"
    assert days[date(2026, 10, 28)] == "Half term"
    assert days[date(2026, 11, 19)] == "Closed: polling station"
    assert days[date(2026, 12, 28)] == "Boxing Day"
    assert len(days) == 8 + 11


@pytest.mark.parametrize(
    ("ical", "bank", "division", "key", "message"),
    [
        (["absent.ics"], None, "england-and-wales", "calendar.ical_files[0]", "cannot read"),
        (
            ["bank-holidays.json"],
            None,
            "england-and-wales",
            "calendar.ical_files[0]",
            "not an iCalendar",
        ),
        ([], "absent.json", "england-and-wales", "calendar.bank_holidays_file", "cannot read"),
        ([], "closures.ics", "england-and-wales", "calendar.bank_holidays_file", "not JSON"),
        ([], "bank-holidays.json", "wales", "calendar.bank_holidays_file", "no division 'wales'"),
    ],
)
def test_load_closures_errors_name_the_key_and_file(
    ical: list[str], bank: str | None, division: str, key: str, message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_closures(
            [CALENDARS / name for name in ical],
            CALENDARS / bank if bank else None,
            division,
        )
    assert caught.value.key == key
    assert str(CALENDARS) in caught.value.message
    assert message in caught.value.message


def at(local: str) -> float:
    """Epoch seconds of a London wall-clock time."""
    from zoneinfo import ZoneInfo

    return datetime.fromisoformat(local).replace(tzinfo=ZoneInfo("Europe/London")).timestamp()


@pytest.mark.parametrize(
    ("local", "expected", "why"),
    [
        ("2026-11-03T10:00", True, "a Tuesday in term"),
        ("2026-11-02T10:00", False, "INSET day, from the config and the .ics file"),
        ("2026-10-28T10:00", False, "half term, from the .ics file"),
        ("2026-11-19T10:00", False, "polling station, a timed .ics event"),
        ("2026-12-28T10:00", False, "outside term anyway"),
        ("2026-11-02T10:00", False, "closure"),
        ("2026-11-09T12:30", False, "Monday lunch: between the configured ranges"),
        ("2026-11-09T13:00", True, "Monday afternoon"),
        ("2026-11-13T14:00", False, "Friday afternoon: school ends 13:00"),
        ("2026-11-14T10:00", True, "Saturday school 09:00-24:00"),
        ("2026-11-14T23:59", True, "Saturday, up to midnight"),
    ],
)
def test_build_policy_calendar_from_settings_and_files(
    school: Path, local: str, expected: bool, why: str
) -> None:
    policy = build_policy(load_settings(school, environ={}))
    assert policy.calendar.is_school_time(at(local)) is expected, why


def test_build_policy_segments_from_settings(school: Path) -> None:
    policy = build_policy(load_settings(school, environ={}))
    staff = policy.segments.find("10.1.1.1", 20)
    assert staff is not None
    assert (staff.name, staff.role, staff.flags) == ("staff", SegmentRole.STAFF, ALL)
    assert staff.networks == (ip_network("10.20.0.0/16"), ip_network("2001:db8:20::/48"))
    guests = policy.segments.find("192.0.2.1", 90)
    assert guests is not None and guests.flags == frozenset()
    assert policy.segments.find("192.0.2.1", None) is None


def test_build_policy_bank_holidays_in_term_close_the_day(tmp_path: Path) -> None:
    (tmp_path / "bh.json").write_bytes((CALENDARS / "bank-holidays.json").read_bytes())
    text = (
        "[calendar]\nbank_holidays_file = 'bh.json'\nbank_holidays_division = 'scotland'\n"
        "[[calendar.terms]]\nstart = 2026-08-17\nend = 2026-12-18\n"
    )
    policy = build_policy(load_settings(write(tmp_path, text), environ={}))
    assert not policy.calendar.is_school_time(at("2026-11-30T10:00"))  # St Andrew's Day
    assert policy.calendar.is_school_time(at("2026-08-31T10:00"))  # an English holiday only


def test_timestamps_helper_is_london_time() -> None:
    assert at("2026-07-01T09:00") == datetime(2026, 7, 1, 8, tzinfo=UTC).timestamp()
