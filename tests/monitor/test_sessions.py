"""Sessionizer: flagged hits of one device on one platform become one incident.

Hits are built by hand. Times are seconds from T0 (Tuesday 2026-03-10 10:00:00 UTC).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.sessions import (
    OUT_OF_ORDER_TOLERANCE_S,
    EmbeddedCount,
    Sessionizer,
    build_incident_key,
    utc_day,
)
from monitor.values import (
    Attribution,
    Basis,
    Category,
    Device,
    Evidence,
    Flag,
    Hit,
    Incident,
    IncidentState,
    Match,
    Observation,
    Presence,
    Proto,
    SegmentRole,
)

T0 = 1_773_136_800.0
"""2026-03-10 10:00:00 UTC."""
LAPTOP = Device(
    ip="10.1.0.10", mac="aa:bb:cc:00:00:01", host_name="staff-laptop-12", segment="staff"
)
PHONE = Device(ip="10.1.0.20", mac="aa:bb:cc:00:00:02", segment="staff")
NO_MAC = Device(ip="10.1.0.30", segment="staff")

PLATFORM_OF = {
    "www.instagram.com": ("instagram", Presence.PRIMARY),
    "i.instagram.com": ("instagram", Presence.PRIMARY),
    "scontent.cdninstagram.com": ("instagram", Presence.EMBEDDED),
    "www.facebook.com": ("facebook", Presence.PRIMARY),
    "connect.facebook.net": ("facebook", Presence.EMBEDDED),
    "www.tiktok.com": ("tiktok", Presence.PRIMARY),
}


def hit(
    t: float,
    name: str = "www.instagram.com",
    *,
    device: Device = LAPTOP,
    proto: Proto = Proto.DNS,
    via: Attribution = Attribution.NAME,
    flagged: bool = True,
    response: bool = False,
) -> Hit:
    """A hit on ``name`` at T0 + ``t`` seconds; platform and presence come from PLATFORM_OF."""
    platform, presence = PLATFORM_OF[name]
    observation = Observation(
        ts=T0 + t,
        proto=proto,
        name=name,
        client_ip=device.ip,
        client_mac=device.mac,
        server_ip="10.1.0.1" if proto is Proto.DNS else "157.240.1.1",
        server_port=53 if proto is Proto.DNS else 443,
        flags=frozenset({Flag.RESPONSE}) if response else frozenset(),
    )
    match = Match(platform, Category.SOCIAL, presence, name.split(".", 1)[1], via)
    return Hit(observation, match, device, SegmentRole.STAFF, flagged)


def run(hits: Iterable[Hit], sessionizer: Sessionizer | None = None) -> list[Incident]:
    """Feed every hit, close everything; return every snapshot in the order emitted."""
    sessionizer = sessionizer or Sessionizer(site="school")
    snapshots = [snapshot for each in hits for snapshot in sessionizer.feed(each)]
    return snapshots + sessionizer.close_all()


def final(snapshots: list[Incident]) -> list[Incident]:
    return [s for s in snapshots if s.state is IncidentState.CLOSED]


def summary(snapshots: list[Incident]) -> list[tuple[str, str, float, float, int]]:
    """(platform, device ip, start, end, hits) of each closed incident, times from T0."""
    return [
        (s.platform, s.device.ip, s.start - T0, s.end - T0, s.hit_count) for s in final(snapshots)
    ]


# --- opening, growing, closing ------------------------------------------------------------


@pytest.mark.parametrize(
    ("hits", "expected"),
    [
        pytest.param([hit(0)], [("instagram", "10.1.0.10", 0, 0, 1)], id="one primary opens"),
        pytest.param(
            [hit(0), hit(30, proto=Proto.TLS), hit(400, "scontent.cdninstagram.com")],
            [("instagram", "10.1.0.10", 0, 400, 3)],
            id="primary and embedded hits within the gap grow it",
        ),
        pytest.param(
            [hit(0), hit(600)],
            [("instagram", "10.1.0.10", 0, 600, 2)],
            id="a hit exactly at the idle gap still grows it",
        ),
        pytest.param(
            [hit(0), hit(601)],
            [("instagram", "10.1.0.10", 0, 0, 1), ("instagram", "10.1.0.10", 601, 601, 1)],
            id="a primary hit after the gap closes it and opens another",
        ),
        pytest.param(
            [hit(0), hit(700, "scontent.cdninstagram.com")],
            [("instagram", "10.1.0.10", 0, 0, 1)],
            id="an embedded hit after the gap closes it and opens nothing",
        ),
        pytest.param(
            [hit(0, "scontent.cdninstagram.com"), hit(5, "scontent.cdninstagram.com")],
            [],
            id="embedded only never opens",
        ),
        pytest.param(
            [hit(0, "scontent.cdninstagram.com"), hit(10), hit(20, "scontent.cdninstagram.com")],
            [("instagram", "10.1.0.10", 10, 20, 2)],
            id="embedded before the primary hit is not part of the incident",
        ),
        pytest.param(
            [hit(0, flagged=False), hit(10, flagged=False)], [], id="unflagged hits never open"
        ),
        pytest.param(
            [hit(0), hit(10, flagged=False), hit(700, flagged=False)],
            [("instagram", "10.1.0.10", 0, 0, 1)],
            id="unflagged hits neither grow nor close",
        ),
        pytest.param(
            [hit(0), hit(5, device=PHONE), hit(10), hit(15, device=PHONE)],
            [("instagram", "10.1.0.10", 0, 10, 2), ("instagram", "10.1.0.20", 5, 15, 2)],
            id="two devices, two incidents",
        ),
        pytest.param(
            [hit(0), hit(5, "www.tiktok.com"), hit(10), hit(15, "www.tiktok.com")],
            [("instagram", "10.1.0.10", 0, 10, 2), ("tiktok", "10.1.0.10", 5, 15, 2)],
            id="two platforms, two incidents",
        ),
        pytest.param(
            [hit(0, device=NO_MAC), hit(5, device=Device(ip="10.1.0.31"))],
            [("instagram", "10.1.0.30", 0, 0, 1), ("instagram", "10.1.0.31", 5, 5, 1)],
            id="without a MAC the address is the identity",
        ),
    ],
)
def test_sessionizer_groups_hits_into_incidents(
    hits: list[Hit], expected: list[tuple[str, str, float, float, int]]
) -> None:
    assert summary(run(hits)) == expected


def test_sessionizer_widget_on_a_page_is_no_incident_but_a_visit_is() -> None:
    # A news page: its own names never match a platform, so only the Facebook widget's names
    # reach the sessionizer, as a DNS query, its answer and the TLS connection.
    sessionizer = Sessionizer(site="school")
    widget = [
        hit(0.10, "connect.facebook.net"),
        hit(0.12, "connect.facebook.net", response=True),
        hit(0.15, "connect.facebook.net", proto=Proto.TLS),
    ]
    assert run(widget, sessionizer) == []
    assert sessionizer.drain_embedded_counts() == [
        EmbeddedCount(date(2026, 3, 10), LAPTOP.ip, LAPTOP.mac, "facebook", 3)
    ]
    visit = [hit(60, "www.facebook.com"), hit(60.25, "www.facebook.com", proto=Proto.TLS)]
    assert summary(run(visit, sessionizer)) == [("facebook", LAPTOP.ip, 60, 60.25, 2)]


def test_sessionizer_freezes_the_opening_device_across_an_address_change() -> None:
    moved = Device(ip="10.1.0.99", mac=LAPTOP.mac, host_name="renamed", segment="guest")
    snapshots = run([hit(0), hit(30, device=moved), hit(60, device=moved)])
    (incident,) = final(snapshots)
    assert incident.device == LAPTOP
    assert incident.role is SegmentRole.STAFF
    assert incident.hit_count == 3


def test_sessionizer_caps_evidence_and_counts_the_rest() -> None:
    hits = [hit(i, proto=Proto.TLS if i % 2 else Proto.DNS) for i in range(10)]
    (incident,) = final(run(hits, Sessionizer(site="school", max_evidence=3)))
    assert incident.hit_count == 10
    assert incident.evidence == (
        Evidence(T0, Proto.DNS, "www.instagram.com", Attribution.NAME),
        Evidence(T0 + 1, Proto.TLS, "www.instagram.com", Attribution.NAME),
        Evidence(T0 + 2, Proto.DNS, "www.instagram.com", Attribution.NAME),
    )


def test_sessionizer_snapshot_carries_the_incident_fields() -> None:
    sessionizer = Sessionizer(site="north")
    (opened,) = sessionizer.feed(hit(0))
    assert opened == Incident(
        key=build_incident_key("north", LAPTOP.mac or "", "instagram", T0),
        site="north",
        platform="instagram",
        category=Category.SOCIAL,
        device=LAPTOP,
        role=SegmentRole.STAFF,
        start=T0,
        end=T0,
        active_minutes=1.0,
        confidence=0.5,
        evidence=(Evidence(T0, Proto.DNS, "www.instagram.com", Attribution.NAME),),
        hit_count=1,
        state=IncidentState.OPEN,
        basis=Basis(lookups=1),
    )
    assert sessionizer.open_count() == 1


def test_the_same_device_at_two_sites_at_the_same_time_gives_two_incident_keys() -> None:
    """A trust's schools share address ranges (and a visiting laptop its MAC): keys carry the site."""
    (north,) = Sessionizer(site="north").feed(hit(0))
    (south,) = Sessionizer(site="south").feed(hit(0))
    assert (north.device, north.start) == (south.device, south.start)
    assert north.key != south.key
    assert (north.site, south.site) == ("north", "south")


# --- snapshots: throttled while open, one CLOSED at the end -------------------------------


def test_sessionizer_throttles_snapshots_to_one_per_interval() -> None:
    sessionizer = Sessionizer(site="school", snapshot_interval_s=60)
    snapshots = run([hit(t) for t in range(0, 300, 10)], sessionizer)  # 0, 10, ... 290
    opened = [(s.end - T0, s.hit_count) for s in snapshots if s.state is IncidentState.OPEN]
    assert opened == [(0, 1), (60, 7), (120, 13), (180, 19), (240, 25)]
    assert [(s.state, s.hit_count) for s in snapshots[-1:]] == [(IncidentState.CLOSED, 30)]


def test_sessionizer_interval_zero_emits_every_hit() -> None:
    snapshots = run([hit(0), hit(1), hit(2)], Sessionizer(site="school", snapshot_interval_s=0))
    assert [(s.state, s.hit_count) for s in snapshots] == [
        (IncidentState.OPEN, 1),
        (IncidentState.OPEN, 2),
        (IncidentState.OPEN, 3),
        (IncidentState.CLOSED, 3),
    ]


def test_close_idle_waits_for_the_gap_and_the_tolerance() -> None:
    sessionizer = Sessionizer(site="school")
    sessionizer.feed(hit(0))
    assert sessionizer.close_idle(T0 + 602) == []
    (closed,) = sessionizer.close_idle(T0 + 602.5)
    assert closed.state is IncidentState.CLOSED
    assert sessionizer.open_count() == 0
    assert sessionizer.close_idle(T0 + 10_000) == []
    assert sessionizer.close_all() == []


def test_close_idle_returns_snapshots_held_back_by_the_throttle() -> None:
    sessionizer = Sessionizer(site="school", snapshot_interval_s=60)
    sessionizer.feed(hit(0))
    assert sessionizer.feed(hit(20)) == []
    assert sessionizer.close_idle(T0 + 59) == []
    (update,) = sessionizer.close_idle(T0 + 60)
    assert (update.state, update.hit_count) == (IncidentState.OPEN, 2)
    assert sessionizer.close_idle(T0 + 200) == []  # nothing new since
    (closed,) = sessionizer.close_idle(T0 + 700)
    assert (closed.state, closed.hit_count) == (IncidentState.CLOSED, 2)


def test_close_all_closes_every_open_incident_once() -> None:
    sessionizer = Sessionizer(site="school")
    for each in (hit(0), hit(1, device=PHONE), hit(2, "www.tiktok.com")):
        sessionizer.feed(each)
    closed = sessionizer.close_all()
    assert [(s.platform, s.device.ip, s.state) for s in closed] == [
        ("instagram", LAPTOP.ip, IncidentState.CLOSED),
        ("instagram", PHONE.ip, IncidentState.CLOSED),
        ("tiktok", LAPTOP.ip, IncidentState.CLOSED),
    ]
    assert sessionizer.open_count() == 0
    assert sessionizer.close_all() == []


# --- keys ----------------------------------------------------------------------------------


def test_sessionizer_keys_are_the_same_on_a_replay() -> None:
    stream = [hit(0), hit(5, device=PHONE), hit(700), hit(710, "www.tiktok.com")]
    first = [s.key for s in final(run(stream))]
    second = [s.key for s in final(run(stream))]
    assert first == second
    assert len(set(first)) == 4


@pytest.mark.parametrize(
    "other",
    [
        ("south", "aa:bb:cc:00:00:01", "instagram", T0),
        ("north", "aa:bb:cc:00:00:02", "instagram", T0),
        ("north", "aa:bb:cc:00:00:01", "tiktok", T0),
        ("north", "aa:bb:cc:00:00:01", "instagram", T0 + 0.001),
    ],
)
def test_build_incident_key_differs_in_each_part(other: tuple[str, str, str, float]) -> None:
    key = build_incident_key("north", "aa:bb:cc:00:00:01", "instagram", T0)
    assert len(key) == 32
    assert int(key, 16) >= 0
    assert build_incident_key(*other) != key


def test_build_incident_key_ignores_sub_microsecond_float_noise() -> None:
    a = 1_700_000_000 + 123_456 / 1e6
    b = 1_700_000_000 + 123_456_000 / 1e9
    assert build_incident_key("s", "d", "p", a) == build_incident_key("s", "d", "p", b)


# --- active minutes and confidence ---------------------------------------------------------


@pytest.mark.parametrize(
    ("times", "minutes"),
    [
        pytest.param([0], 1, id="one hit is one minute"),
        pytest.param([0, 30, 59], 1, id="hits within the first minute"),
        pytest.param([0, 60], 2, id="two adjacent minutes"),
        pytest.param([0, 300], 2, id="two hits five minutes apart: two minutes"),
        pytest.param([0, 100, 200], 4, id="gaps under two minutes are bridged"),
        pytest.param([0, 130], 2, id="a gap of two minutes or more is not bridged"),
        pytest.param(list(range(0, 1801, 90)), 31, id="every 90 s for half an hour"),
    ],
)
def test_sessionizer_active_minutes(times: list[float], minutes: float) -> None:
    (incident,) = final(run([hit(t) for t in times]))
    assert incident.active_minutes == minutes


@pytest.mark.parametrize(
    ("hits", "confidence"),
    [
        pytest.param([hit(0)], 0.5, id="one primary lookup"),
        pytest.param(
            [hit(0), hit(0.01), hit(0.02, response=True), hit(0.03, response=True)],
            0.5,
            id="A and AAAA queries and answers are one lookup",
        ),
        pytest.param([hit(0), hit(5)], 0.6, id="two lookups"),
        pytest.param([hit(0), hit(5), hit(10), hit(15)], 0.7, id="more lookups add at most 0.2"),
        pytest.param([hit(0), hit(0.1, proto=Proto.TLS)], 0.75, id="a lookup and a connection"),
        pytest.param(
            [hit(0), hit(0.1, "scontent.cdninstagram.com", proto=Proto.QUIC)],
            0.5,
            id="an embedded connection (a shared CDN) is not a connection to the platform",
        ),
        pytest.param(
            [hit(t, proto=Proto.TLS) for t in range(0, 300, 20)],
            0.95,
            id="several minutes of connections",
        ),
        pytest.param([hit(0, via=Attribution.CNAME)], 0.4, id="only via a CNAME"),
        pytest.param(
            [hit(0, proto=Proto.TLS, via=Attribution.ADDRESS)],
            0.45,
            id="a connection attributed by address only",
        ),
        pytest.param(
            [hit(0, proto=Proto.TLS, via=Attribution.ADDRESS), hit(1, via=Attribution.NAME)],
            0.75,
            id="a name seen later lifts the address penalty",
        ),
    ],
)
def test_sessionizer_confidence(hits: list[Hit], confidence: float) -> None:
    (incident,) = final(run(hits))
    assert incident.confidence == confidence


# --- time out of order ---------------------------------------------------------------------


def test_sessionizer_tolerates_hits_a_little_out_of_order() -> None:
    (incident,) = final(run([hit(10), hit(12, proto=Proto.TLS), hit(8.5, "i.instagram.com")]))
    assert (incident.start - T0, incident.end - T0, incident.hit_count) == (8.5, 12, 3)
    assert [e.ts - T0 for e in incident.evidence] == [8.5, 10, 12]
    assert incident.key == build_incident_key("school", LAPTOP.mac or "", "instagram", T0 + 10)


def test_sessionizer_late_hit_inside_the_incident_grows_it() -> None:
    (incident,) = final(run([hit(0), hit(500), hit(1000), hit(300)]))
    assert (incident.start - T0, incident.end - T0, incident.hit_count) == (0, 1000, 4)


def test_sessionizer_clock_going_back_past_the_gap_closes_the_incident() -> None:
    sessionizer = Sessionizer(site="school")
    sessionizer.feed(hit(5000))
    closed, opened = sessionizer.feed(hit(0))
    assert (closed.state, closed.start - T0) == (IncidentState.CLOSED, 5000)
    assert (opened.state, opened.start - T0) == (IncidentState.OPEN, 0)
    assert [s.start - T0 for s in sessionizer.close_idle(T0 - 1000)] == [0]


# --- embedded counts -----------------------------------------------------------------------


def london_day(ts: float) -> date:
    return datetime.fromtimestamp(ts, ZoneInfo("Europe/London")).date()


def test_embedded_counts_per_device_platform_and_local_day() -> None:
    # 2026-06-30 22:30 UTC is 23:30 in London (BST); 30 minutes later it is 1 July there.
    evening = datetime(2026, 6, 30, 22, 30, tzinfo=ZoneInfo("UTC")).timestamp() - T0
    sessionizer = Sessionizer(site="school", day_of=london_day)
    for t in (evening, evening + 60, evening + 1800, evening + 1860):
        sessionizer.feed(hit(t, "connect.facebook.net"))
    sessionizer.feed(hit(evening, "connect.facebook.net", device=NO_MAC))
    sessionizer.feed(hit(evening, "scontent.cdninstagram.com"))
    sessionizer.feed(hit(evening, "connect.facebook.net", flagged=False))
    assert sessionizer.drain_embedded_counts() == [
        EmbeddedCount(date(2026, 6, 30), LAPTOP.ip, LAPTOP.mac, "facebook", 2),
        EmbeddedCount(date(2026, 7, 1), LAPTOP.ip, LAPTOP.mac, "facebook", 2),
        EmbeddedCount(date(2026, 6, 30), NO_MAC.ip, None, "facebook", 1),
        EmbeddedCount(date(2026, 6, 30), LAPTOP.ip, LAPTOP.mac, "instagram", 1),
    ]
    assert sessionizer.drain_embedded_counts() == []


def test_embedded_counts_default_to_the_utc_day() -> None:
    assert utc_day(datetime(2026, 6, 30, 23, 59, 59, tzinfo=ZoneInfo("UTC")).timestamp()) == date(
        2026, 6, 30
    )
    sessionizer = Sessionizer(site="school")
    sessionizer.feed(hit(0, "connect.facebook.net"))
    assert [c.day for c in sessionizer.drain_embedded_counts()] == [date(2026, 3, 10)]


def test_embedded_hits_inside_an_incident_are_not_counted_apart() -> None:
    sessionizer = Sessionizer(site="school")
    sessionizer.feed(hit(0, "www.facebook.com"))
    sessionizer.feed(hit(1, "connect.facebook.net"))
    assert sessionizer.drain_embedded_counts() == []


@pytest.mark.parametrize(
    ("argument", "value"),
    [("idle_gap_s", 0), ("max_evidence", 0), ("snapshot_interval_s", -1)],
)
def test_sessionizer_rejects_bad_settings(argument: str, value: float) -> None:
    with pytest.raises(ValueError, match=argument):
        Sessionizer(site="school", **{argument: value})  # type: ignore[arg-type]


# --- invariants over random streams --------------------------------------------------------

DEVICES = [LAPTOP, PHONE, NO_MAC, Device(ip="10.1.0.99", mac=LAPTOP.mac)]
random_hits = st.builds(
    hit,
    t=st.floats(0, 3000),
    name=st.sampled_from(sorted(PLATFORM_OF)),
    device=st.sampled_from(DEVICES),
    proto=st.sampled_from([Proto.DNS, Proto.TLS, Proto.QUIC]),
    via=st.sampled_from(Attribution),
    flagged=st.booleans(),
)


def check_snapshots(snapshots: list[Incident], hits: list[Hit], sessionizer: Sessionizer) -> None:
    """What must hold for any stream, in any order."""
    for s in snapshots:
        assert s.start <= s.end
        assert 1 <= len(s.evidence) <= min(s.hit_count, sessionizer.max_evidence)
        assert [e.ts for e in s.evidence] == sorted(e.ts for e in s.evidence)
        assert 0.0 <= s.confidence <= 1.0
        assert s.active_minutes >= 1
    opened = [s for s in snapshots if s.state is IncidentState.OPEN and s.hit_count == 1]
    closed = final(snapshots)
    assert len(closed) == len(opened)
    assert sessionizer.open_count() == 0
    embedded = sum(c.count for c in sessionizer.drain_embedded_counts())
    assert sum(s.hit_count for s in closed) + embedded == sum(h.flagged for h in hits)


@settings(max_examples=150, deadline=None)
@given(st.lists(random_hits, max_size=60), st.data())
def test_sessionizer_invariants_in_any_order(hits: list[Hit], data: st.DataObject) -> None:
    sessionizer = Sessionizer(site="school", max_evidence=4, snapshot_interval_s=30)
    snapshots: list[Incident] = []
    for each in hits:
        snapshots += sessionizer.feed(each)
        if data.draw(st.booleans()):
            snapshots += sessionizer.close_idle(each.observation.ts + data.draw(st.floats(0, 900)))
    snapshots += sessionizer.close_all()
    check_snapshots(snapshots, hits, sessionizer)


@settings(max_examples=150, deadline=None)
@given(st.lists(random_hits, max_size=60), st.data())
def test_sessionizer_invariants_in_capture_order(hits: list[Hit], data: st.DataObject) -> None:
    # Capture order: sorted, then each hit jittered by up to the 2 s tolerance.
    hits = sorted(hits, key=lambda h: h.observation.ts)
    jitters = data.draw(st.lists(st.floats(-2, 2), min_size=len(hits), max_size=len(hits)))
    hits = [
        hit(
            h.observation.ts - T0 + j,
            h.observation.name,
            device=h.device,
            proto=h.observation.proto,
            via=h.match.via,
            flagged=h.flagged,
        )
        for h, j in zip(hits, jitters, strict=True)
    ]
    sessionizer = Sessionizer(site="school", max_evidence=4, snapshot_interval_s=30)
    snapshots: list[Incident] = []
    for each in hits:
        snapshots += sessionizer.feed(each)
        if data.draw(st.booleans()):
            snapshots += sessionizer.close_idle(each.observation.ts)
    snapshots += sessionizer.close_all()
    check_snapshots(snapshots, hits, sessionizer)

    by_key: dict[str, list[Incident]] = {}
    for s in snapshots:
        by_key.setdefault(s.key, []).append(s)
    origins = set()
    for key, history in by_key.items():
        first = history[0]
        assert (first.state, first.hit_count) == (IncidentState.OPEN, 1)
        assert [s.state for s in history].count(IncidentState.CLOSED) == 1
        assert history[-1].state is IncidentState.CLOSED
        assert all(s.device == first.device for s in history)
        origin = (first.device.mac or first.device.ip, first.platform, first.start)
        assert key == build_incident_key("school", *origin)
        origins.add(origin)
    assert len(origins) == len(by_key)
    # The same stream fed twice gives the same incidents.
    first_run, second_run = (
        final(run(hits, Sessionizer(site="school", max_evidence=4))) for _ in range(2)
    )
    assert first_run == second_run


# --- carrying on what a previous run left open ----------------------------------------------


def left_open(hits: list[Hit]) -> Incident:
    """The OPEN snapshot a killed run left in the store after ``hits``."""
    sessionizer = Sessionizer(site="school", snapshot_interval_s=0)
    snapshots = [snapshot for each in hits for snapshot in sessionizer.feed(each)]
    return snapshots[-1]


def test_a_resumed_incident_grows_under_its_own_key_within_the_idle_gap() -> None:
    stored = left_open([hit(0), hit(30, proto=Proto.TLS), hit(60)])
    restarted = Sessionizer(site="school", snapshot_interval_s=0)
    assert restarted.resume(stored) == []
    (grown,) = restarted.feed(hit(300))
    assert (grown.key, grown.state, grown.hit_count) == (stored.key, IncidentState.OPEN, 4)
    assert (grown.start, grown.end) == (T0, T0 + 300)
    assert grown.active_minutes == stored.active_minutes + 1
    assert grown.confidence >= stored.confidence
    assert [e.ts for e in grown.evidence] == [T0, T0 + 30, T0 + 60, T0 + 300]


def test_a_resumed_incident_left_idle_closes_at_the_next_tick_unchanged() -> None:
    stored = left_open([hit(0), hit(60)])
    restarted = Sessionizer(site="school", idle_gap_s=600)
    restarted.resume(stored)
    assert restarted.close_idle(T0 + 600) == []
    (closed,) = restarted.close_idle(T0 + 60 + 600 + OUT_OF_ORDER_TOLERANCE_S + 1)
    assert closed == replace(stored, state=IncidentState.CLOSED)
    assert restarted.open_count() == 0


def test_a_hit_after_the_idle_gap_closes_the_resumed_incident_and_opens_another() -> None:
    stored = left_open([hit(0)])
    restarted = Sessionizer(site="school", idle_gap_s=600)
    restarted.resume(stored)
    closed, opened = restarted.feed(hit(900))
    assert (closed.key, closed.state) == (stored.key, IncidentState.CLOSED)
    assert opened.key != stored.key and opened.state is IncidentState.OPEN


def test_of_two_incidents_left_open_for_one_activity_the_later_carries_on() -> None:
    earlier = left_open([hit(0)])
    later = left_open([hit(120)])
    restarted = Sessionizer(site="school")
    assert restarted.resume(later) == []
    (closed,) = restarted.resume(earlier)
    assert (closed.key, closed.state) == (earlier.key, IncidentState.CLOSED)
    (grown,) = restarted.feed(hit(200))
    assert grown.key == later.key


def test_open_key_names_the_incident_a_hit_went_to_and_forget_drops_it_unsaid() -> None:
    sessionizer = Sessionizer(site="school")
    (opened,) = sessionizer.feed(hit(0))
    sessionizer.feed(hit(1, "connect.facebook.net"))  # embedded, no incident: only counted
    assert sessionizer.open_key(LAPTOP, "instagram") == opened.key
    assert sessionizer.open_key(LAPTOP, "facebook") is None
    assert sessionizer.forget(lambda device, since: device.mac == LAPTOP.mac and since < T0) == 0
    assert sessionizer.forget(lambda device, since: device.mac == LAPTOP.mac) == 1
    assert sessionizer.open_key(LAPTOP, "instagram") is None
    assert sessionizer.close_all() == []
    assert sessionizer.drain_embedded_counts() == []
