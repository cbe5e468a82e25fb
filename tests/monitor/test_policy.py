"""Segments, the school calendar (daylight saving, terms, closures) and the policy's verdict."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time
from ipaddress import ip_network

import pytest

from monitor.policy import DEFAULT_FLAGS, Policy, SchoolCalendar, Segment, Segments
from monitor.values import (
    Category,
    Device,
    Match,
    Observation,
    Presence,
    Proto,
    SegmentRole,
)

ALL = frozenset(Category)


def utc(text: str) -> float:
    """Epoch seconds of a UTC wall-clock time written as ISO 8601."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def hours(*ranges: str) -> list[tuple[time, time]]:
    """``"08:00-12:15"`` ranges as ``(time, time)`` pairs."""
    pairs = []
    for text in ranges:
        start, end = text.split("-")
        pairs.append((time.fromisoformat(start), time.fromisoformat(end)))
    return pairs


def every_day(*ranges: str) -> dict[int, list[tuple[time, time]]]:
    return {weekday: hours(*ranges) for weekday in range(7)}


WEEKDAYS_ONLY = {weekday: hours("08:00-16:30") for weekday in range(5)}

SEGMENTS = Segments(
    [
        Segment("pupils", SegmentRole.PUPIL, (ip_network("10.0.0.0/8"),), flags=ALL),
        Segment("staff", SegmentRole.STAFF, (ip_network("10.20.0.0/16"),), frozenset({20}), ALL),
        Segment("office", SegmentRole.ADMIN, (ip_network("10.20.5.0/24"),)),
        Segment("guests", SegmentRole.GUEST, vlans=frozenset({90})),
        Segment(
            "staff6",
            SegmentRole.STAFF,
            (ip_network("2001:db8:20::/48"), ip_network("2001:db8::/32")),
            flags=frozenset({Category.SOCIAL}),
        ),
    ]
)


# --- segments ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ip", "vlan", "expected"),
    [
        ("10.1.2.3", None, "pupils"),
        ("10.20.1.1", None, "staff"),  # /16 beats /8
        ("10.20.5.9", None, "office"),  # /24 beats /16 and /8
        ("10.20.6.0", None, "staff"),
        ("10.1.2.3", 20, "staff"),  # a configured VLAN wins over the address
        ("10.20.5.9", 90, "guests"),
        ("10.1.2.3", 77, "pupils"),  # an unconfigured VLAN: the address decides
        ("192.168.1.10", 90, "guests"),
        ("192.168.1.10", None, None),  # in no segment
        ("192.168.1.10", 77, None),
        ("2001:db8:20::1", None, "staff6"),
        ("2001:db8:99::1", None, "staff6"),
        ("2001:db9::1", None, None),
        ("::ffff:10.20.5.9", None, "office"),  # IPv4-mapped IPv6 is looked up as IPv4
        ("not an address", None, None),
        ("", None, None),
    ],
)
def test_segments_find_vlan_first_then_most_specific_network(
    ip: str, vlan: int | None, expected: str | None
) -> None:
    found = SEGMENTS.find(ip, vlan)
    assert (found.name if found else None) == expected
    again = SEGMENTS.find(ip, vlan)  # second lookup comes from the cache
    assert (again.name if again else None) == expected


def test_segments_find_most_specific_whatever_the_order_given() -> None:
    wide = Segment("wide", SegmentRole.PUPIL, (ip_network("10.0.0.0/8"),))
    narrow = Segment("narrow", SegmentRole.STAFF, (ip_network("10.9.9.0/24"),))
    for order in ([wide, narrow], [narrow, wide]):
        segments = Segments(order)
        assert segments.find("10.9.9.9", None) is narrow
        assert segments.find("10.9.8.9", None) is wide


def test_segments_cache_is_bounded_and_stays_correct() -> None:
    segments = Segments([Segment("s", SegmentRole.STAFF, (ip_network("10.0.0.0/24"),))])
    segments.CACHE_LIMIT = 8
    for host in range(40):
        found = segments.find(f"10.0.0.{host}", None)
        assert found is not None and found.name == "s"
        assert segments.find(f"10.0.1.{host}", None) is None
        assert len(segments._cache) <= 8


@pytest.mark.parametrize(
    ("segments", "message"),
    [
        (
            [
                Segment("a", SegmentRole.STAFF, vlans=frozenset({20})),
                Segment("b", SegmentRole.PUPIL, vlans=frozenset({20})),
            ],
            "VLAN 20 is in both 'a' and 'b'",
        ),
        (
            [
                Segment("a", SegmentRole.STAFF, (ip_network("10.0.0.0/8"),)),
                Segment("b", SegmentRole.PUPIL, (ip_network("10.0.0.0/8"),)),
            ],
            "10.0.0.0/8 is in both 'a' and 'b'",
        ),
    ],
)
def test_segments_refuse_a_vlan_or_network_in_two_segments(
    segments: list[Segment], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        Segments(segments)


def test_segments_iterate_in_configured_order() -> None:
    assert [segment.name for segment in SEGMENTS] == [
        "pupils",
        "staff",
        "office",
        "guests",
        "staff6",
    ]
    assert len(SEGMENTS) == 5


def test_default_flags_per_role() -> None:
    assert dict(DEFAULT_FLAGS) == {
        SegmentRole.STAFF: ALL,
        SegmentRole.PUPIL: ALL,
        SegmentRole.GUEST: frozenset(),
        SegmentRole.ADMIN: frozenset(),
    }


# --- calendar: hours, daylight saving, time zones ------------------------------------------


@pytest.mark.parametrize(
    ("instant", "expected"),
    [
        ("2026-11-03T07:59:59", False),
        ("2026-11-03T08:00:00", True),  # start included
        ("2026-11-03T12:14:59", True),
        ("2026-11-03T12:15:00", False),  # end excluded
        ("2026-11-03T12:59:59", False),  # the lunch gap
        ("2026-11-03T13:00:00", True),
        ("2026-11-03T15:59:59", True),
        ("2026-11-03T16:00:00", False),
    ],
)
def test_calendar_hours_are_half_open_ranges(instant: str, expected: bool) -> None:
    # 3 November 2026 is a Tuesday; London is on GMT, so UTC is local time.
    calendar = SchoolCalendar("Europe/London", {1: hours("08:00-12:15", "13:00-16:00")})
    assert calendar.is_school_time(utc(instant)) is expected


def test_calendar_adjacent_ranges_leave_no_gap() -> None:
    calendar = SchoolCalendar("Europe/London", {1: hours("12:00-13:00", "08:00-12:00")})
    assert calendar.is_school_time(utc("2026-11-03T11:59:59"))
    assert calendar.is_school_time(utc("2026-11-03T12:00:00"))
    assert not calendar.is_school_time(utc("2026-11-03T13:00:00"))


@pytest.mark.parametrize(
    ("instant", "expected", "why"),
    [
        # Before the spring change (Friday 27 March 2026): GMT, local = UTC.
        ("2026-03-27T07:59:59", False, "07:59:59 GMT"),
        ("2026-03-27T08:00:00", True, "08:00 GMT"),
        ("2026-03-27T16:29:59", True, "16:29:59 GMT"),
        ("2026-03-27T16:30:00", False, "16:30 GMT"),
        # Sunday 29 March 2026: clocks go from 01:00 GMT to 02:00 BST at 01:00 UTC.
        ("2026-03-29T06:59:59", False, "07:59:59 BST"),
        ("2026-03-29T07:00:00", True, "08:00 BST"),
        ("2026-03-29T15:29:59", True, "16:29:59 BST"),
        ("2026-03-29T15:30:00", False, "16:30 BST"),
        # Monday 30 March: BST, local = UTC + 1.
        ("2026-03-30T06:59:59", False, "07:59:59 BST"),
        ("2026-03-30T07:00:00", True, "08:00 BST"),
        ("2026-03-30T15:30:00", False, "16:30 BST"),
        # Friday 23 October: still BST.
        ("2026-10-23T07:00:00", True, "08:00 BST"),
        ("2026-10-23T15:30:00", False, "16:30 BST"),
        # Sunday 25 October 2026: clocks go from 02:00 BST back to 01:00 GMT at 01:00 UTC.
        ("2026-10-25T06:59:59", False, "06:59:59 GMT"),
        ("2026-10-25T07:00:00", False, "07:00 GMT"),
        ("2026-10-25T08:00:00", True, "08:00 GMT"),
        ("2026-10-25T16:29:59", True, "16:29:59 GMT"),
        ("2026-10-25T16:30:00", False, "16:30 GMT"),
        # Monday 26 October: GMT again.
        ("2026-10-26T07:59:59", False, "07:59:59 GMT"),
        ("2026-10-26T08:00:00", True, "08:00 GMT"),
    ],
)
def test_calendar_london_daylight_saving_keeps_wall_clock_hours(
    instant: str, expected: bool, why: str
) -> None:
    calendar = SchoolCalendar("Europe/London", every_day("08:00-16:30"))
    assert calendar.is_school_time(utc(instant)) is expected, why


@pytest.mark.parametrize(
    ("instant", "expected", "why"),
    [
        ("2026-03-29T00:59:59", False, "00:59:59 GMT, before the range"),
        ("2026-03-29T01:00:00", False, "02:00 BST: 01:00-02:00 never happened that day"),
        ("2026-03-29T01:30:00", False, "02:30 BST"),
    ],
)
def test_calendar_range_in_the_skipped_spring_hour_never_matches(
    instant: str, expected: bool, why: str
) -> None:
    calendar = SchoolCalendar("Europe/London", {6: hours("01:00-02:00")})
    assert calendar.is_school_time(utc(instant)) is expected, why


@pytest.mark.parametrize(
    ("instant", "expected", "why"),
    [
        ("2026-10-24T23:59:59", False, "00:59:59 BST"),
        ("2026-10-25T00:00:00", True, "01:00 BST, the first time"),
        ("2026-10-25T00:29:59", True, "01:29:59 BST"),
        ("2026-10-25T00:30:00", False, "01:30 BST"),
        ("2026-10-25T01:00:00", True, "01:00 GMT, the second time"),
        ("2026-10-25T01:29:59", True, "01:29:59 GMT"),
        ("2026-10-25T01:30:00", False, "01:30 GMT"),
    ],
)
def test_calendar_range_in_the_repeated_autumn_hour_matches_both_times(
    instant: str, expected: bool, why: str
) -> None:
    calendar = SchoolCalendar("Europe/London", {6: hours("01:00-01:30")})
    assert calendar.is_school_time(utc(instant)) is expected, why


@pytest.mark.parametrize(
    ("tz", "instant", "expected", "why"),
    [
        # New York changes on Sunday 8 March 2026, three weeks before London.
        ("America/New_York", "2026-03-06T12:59:59", False, "07:59:59 EST"),
        ("America/New_York", "2026-03-06T13:00:00", True, "08:00 EST"),
        ("America/New_York", "2026-03-09T11:59:59", False, "07:59:59 EDT"),
        ("America/New_York", "2026-03-09T12:00:00", True, "08:00 EDT"),
        ("America/New_York", "2026-03-09T20:29:59", True, "16:29:59 EDT"),
        ("America/New_York", "2026-03-09T20:30:00", False, "16:30 EDT"),
        # The same instant is 12:00 in London (Monday 9 March, GMT): school time there.
        ("Europe/London", "2026-03-09T12:00:00", True, "12:00 GMT"),
        ("Europe/London", "2026-03-09T20:29:59", False, "20:29:59 GMT"),
        # A half-hour offset and no daylight saving.
        ("Asia/Kolkata", "2026-03-09T02:29:59", False, "07:59:59 IST"),
        ("Asia/Kolkata", "2026-03-09T02:30:00", True, "08:00 IST"),
        # Sydney leaves daylight saving on Sunday 5 April 2026 (AEDT +11 to AEST +10).
        ("Australia/Sydney", "2026-04-02T20:59:59", False, "Fri 07:59:59 AEDT"),
        ("Australia/Sydney", "2026-04-02T21:00:00", True, "Fri 08:00 AEDT"),
        ("Australia/Sydney", "2026-04-05T21:59:59", False, "Mon 07:59:59 AEST"),
        ("Australia/Sydney", "2026-04-05T22:00:00", True, "Mon 08:00 AEST"),
    ],
)
def test_calendar_other_time_zones(tz: str, instant: str, expected: bool, why: str) -> None:
    calendar = SchoolCalendar(tz, WEEKDAYS_ONLY)
    assert calendar.is_school_time(utc(instant)) is expected, why


def test_calendar_weekday_is_the_local_one() -> None:
    # 23:30 UTC on Sunday 5 April 2026 is 09:30 on Monday in Sydney: school time there.
    sydney = SchoolCalendar("Australia/Sydney", WEEKDAYS_ONLY)
    london = SchoolCalendar("Europe/London", WEEKDAYS_ONLY)
    assert sydney.is_school_time(utc("2026-04-05T23:30:00"))
    assert not london.is_school_time(utc("2026-04-05T23:30:00"))


# --- calendar: terms and closures ----------------------------------------------------------

AUTUMN_2026 = (date(2026, 9, 3), date(2026, 12, 18))
HALF_TERM = [date(2026, 10, 26 + day) for day in range(5)]
INSET = date(2026, 11, 2)
TERM_CALENDAR = SchoolCalendar("Europe/London", WEEKDAYS_ONLY, [AUTUMN_2026], [*HALF_TERM, INSET])


@pytest.mark.parametrize(
    ("instant", "expected", "why"),
    [
        ("2026-09-02T10:00:00", False, "Wednesday before term (BST)"),
        ("2026-09-03T07:00:00", True, "first day of term, 08:00 BST"),
        ("2026-10-23T09:00:00", True, "Friday before half term"),
        ("2026-10-26T10:00:00", False, "half term Monday"),
        ("2026-10-28T10:00:00", False, "half term Wednesday"),
        ("2026-10-30T10:00:00", False, "half term Friday"),
        ("2026-11-02T10:00:00", False, "INSET day inside the term"),
        ("2026-11-03T10:00:00", True, "the Tuesday after the INSET day"),
        ("2026-11-07T10:00:00", False, "a Saturday in term"),
        ("2026-12-18T10:00:00", True, "last day of term is included"),
        ("2026-12-21T10:00:00", False, "Christmas holidays"),
        ("2026-11-03T17:00:00", False, "after hours on a school day"),
    ],
)
def test_calendar_terms_and_closures(instant: str, expected: bool, why: str) -> None:
    assert TERM_CALENDAR.is_school_time(utc(instant)) is expected, why


def test_calendar_school_days_between_dates_both_included() -> None:
    days = TERM_CALENDAR.school_days(date(2026, 10, 19), date(2026, 11, 8))
    assert days == [
        *(date(2026, 10, day) for day in range(19, 24)),
        *(date(2026, 11, day) for day in range(3, 7)),
    ]
    assert TERM_CALENDAR.school_days(date(2026, 11, 3), date(2026, 11, 3)) == [date(2026, 11, 3)]
    assert TERM_CALENDAR.school_days(date(2026, 11, 4), date(2026, 11, 3)) == []


def test_calendar_without_terms_counts_every_week() -> None:
    calendar = SchoolCalendar("Europe/London", WEEKDAYS_ONLY, closures=[INSET])
    assert calendar.is_school_time(utc("2027-08-03T10:00:00"))  # a summer Tuesday
    assert not calendar.is_school_time(utc("2026-11-02T10:00:00"))  # closed
    assert calendar.is_school_day(date(2030, 1, 7))
    assert not calendar.is_school_day(date(2030, 1, 5))  # Saturday


def test_calendar_several_terms() -> None:
    calendar = SchoolCalendar(
        "Europe/London",
        WEEKDAYS_ONLY,
        [(date(2027, 1, 5), date(2027, 3, 26)), AUTUMN_2026],
    )
    assert calendar.is_school_day(date(2026, 12, 18))
    assert not calendar.is_school_day(date(2026, 12, 21))
    assert calendar.is_school_day(date(2027, 1, 5))
    assert calendar.terms[0] == AUTUMN_2026  # kept in date order


@pytest.mark.parametrize(
    ("tz", "week", "terms", "message"),
    [
        ("Europe/Londn", {}, [], "unknown time zone 'Europe/Londn'"),
        ("", {}, [], "unknown time zone ''"),
        ("Europe/London", {7: hours("08:00-09:00")}, [], "weekday 7 is not 0"),
        ("Europe/London", {0: hours("09:00-08:00")}, [], "weekday 0: 09:00:00-08:00:00 ends"),
        ("Europe/London", {0: hours("09:00-09:00")}, [], "ends before it starts"),
        (
            "Europe/London",
            {},
            [(date(2026, 12, 18), date(2026, 9, 3))],
            "term 2026-12-18 to 2026-09-03 ends before it starts",
        ),
    ],
)
def test_calendar_refuses_bad_arguments(
    tz: str,
    week: Mapping[int, Sequence[tuple[time, time]]],
    terms: list[tuple[date, date]],
    message: str,
) -> None:
    with pytest.raises(ValueError, match=message):
        SchoolCalendar(tz, week, terms)


# --- the policy's verdict ------------------------------------------------------------------

SCHOOL_TIME = utc("2026-11-03T10:00:00")  # Tuesday, in term
EVENING = utc("2026-11-03T19:00:00")
HALF_TERM_DAY = utc("2026-10-28T10:00:00")
POLICY = Policy(SEGMENTS, TERM_CALENDAR)


def observation(ip: str, ts: float = SCHOOL_TIME, vlan: int | None = None) -> Observation:
    return Observation(
        ts=ts,
        proto=Proto.TLS,
        name="www.instagram.com",
        client_ip=ip,
        client_mac="02:00:00:00:00:01",
        server_ip="157.240.1.174",
        server_port=443,
        vlan=vlan,
    )


def match(category: Category = Category.SOCIAL, presence: Presence = Presence.PRIMARY) -> Match:
    return Match("instagram", category, presence, "instagram.com")


@pytest.mark.parametrize(
    ("ip", "vlan", "ts", "the_match", "role", "flagged", "why"),
    [
        ("10.20.1.1", None, SCHOOL_TIME, match(), SegmentRole.STAFF, True, "staff, primary, term"),
        ("10.1.2.3", None, SCHOOL_TIME, match(), SegmentRole.PUPIL, True, "pupils flag social"),
        (
            "10.20.1.1",
            None,
            SCHOOL_TIME,
            match(presence=Presence.EMBEDDED),
            SegmentRole.STAFF,
            True,
            "embedded widgets are flagged for counting; only primary hits open incidents",
        ),
        ("10.20.1.1", None, EVENING, match(), SegmentRole.STAFF, False, "after school hours"),
        ("10.20.1.1", None, HALF_TERM_DAY, match(), SegmentRole.STAFF, False, "half term"),
        ("10.20.5.9", None, SCHOOL_TIME, match(), SegmentRole.ADMIN, False, "admin flags none"),
        ("10.1.2.3", 90, SCHOOL_TIME, match(), SegmentRole.GUEST, False, "guest VLAN"),
        (
            "2001:db8::5",
            None,
            SCHOOL_TIME,
            match(Category.VIDEO),
            SegmentRole.STAFF,
            False,
            "segment flags social only",
        ),
        (
            "2001:db8::5",
            None,
            SCHOOL_TIME,
            match(Category.SOCIAL),
            SegmentRole.STAFF,
            True,
            "segment flags social",
        ),
        ("192.168.1.10", None, SCHOOL_TIME, match(), None, False, "unsegmented: counted only"),
    ],
)
def test_policy_decide(
    ip: str,
    vlan: int | None,
    ts: float,
    the_match: Match,
    role: SegmentRole | None,
    flagged: bool,
    why: str,
) -> None:
    seen = observation(ip, ts, vlan)
    hit = POLICY.decide(seen, the_match, Device(ip))
    assert (hit.role, hit.flagged) == (role, flagged), why
    assert hit.observation is seen
    assert hit.match is the_match


def test_policy_decide_names_the_segment_on_the_device() -> None:
    device = Device("10.20.1.1", mac="02:00:00:00:00:01", host_name="room4-laptop")
    hit = POLICY.decide(observation("10.20.1.1"), match(), device)
    assert hit.device == Device(
        "10.20.1.1", mac="02:00:00:00:00:01", host_name="room4-laptop", segment="staff"
    )
    already = Device("10.20.1.1", segment="staff")
    assert POLICY.decide(observation("10.20.1.1"), match(), already).device is already
    unsegmented = Device("192.168.1.10")
    assert POLICY.decide(observation("192.168.1.10"), match(), unsegmented).device is unsegmented
