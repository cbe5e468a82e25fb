"""The engine: what each observation means for the store, under the school's rules."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from functools import cache
from ipaddress import ip_network

from monitor.classify import Classifier
from monitor.devices import DeviceDirectory
from monitor.engine import Engine
from monitor.lists.directories import load_lists
from monitor.policy import Policy, SchoolCalendar, Segment, Segments
from monitor.records import (
    CounterIncrement,
    DeviceSeen,
    EmbeddedCountRow,
    EngineItem,
    StoredObservation,
)
from monitor.sessions import Sessionizer
from monitor.values import (
    Attribution,
    Category,
    Flag,
    Incident,
    IncidentState,
    Observation,
    Proto,
    SegmentRole,
)

STAFF_LAPTOP = "10.20.0.15"
STAFF_MAC = "02:00:00:00:00:15"
GUEST_PHONE = "192.168.50.9"
TUESDAY_10AM = datetime(2026, 11, 24, 10, 0, tzinfo=UTC).timestamp()
TUESDAY_9PM = datetime(2026, 11, 24, 21, 0, tzinfo=UTC).timestamp()


@cache
def classifier_lists():
    return load_lists()


def utc_day(ts: float) -> date:
    return datetime.fromtimestamp(ts, UTC).date()


def build(items: list[EngineItem]) -> Engine:
    segments = Segments(
        [
            Segment(
                "staff", SegmentRole.STAFF, (ip_network("10.20.0.0/16"),), flags=frozenset(Category)
            )
        ]
    )
    weekdays = {day: [(time(8, 0), time(16, 30))] for day in range(5)}
    calendar = SchoolCalendar("Europe/London", weekdays)
    return Engine(
        site="st-marys",
        classifier=Classifier(classifier_lists()),
        policy=Policy(segments, calendar),
        sessionizer=Sessionizer(site="st-marys", day_of=utc_day),
        devices=DeviceDirectory(),
        sink=items.append,
        day_of=utc_day,
    )


def lookup(
    name: str, ts: float = TUESDAY_10AM, client: str = STAFF_LAPTOP, proto: Proto = Proto.DNS
) -> Observation:
    return Observation(ts, proto, name, client, STAFF_MAC, "10.20.0.1", 53)


def incidents(items: list[EngineItem]) -> list[Incident]:
    return [item for item in items if isinstance(item, Incident)]


def counters(items: list[EngineItem]) -> dict[str, int]:
    return {item.name: item.count for item in items if isinstance(item, CounterIncrement)}


def test_a_visit_to_facebook_in_school_hours_becomes_an_incident() -> None:
    items: list[EngineItem] = []
    engine = build(items)
    engine.feed(lookup("www.facebook.com"))
    engine.feed(lookup("www.facebook.com", TUESDAY_10AM + 30, proto=Proto.TLS))
    engine.close()
    found = incidents(items)
    assert {incident.platform for incident in found} == {"facebook"}
    final = found[-1]
    assert final.state is IncidentState.CLOSED
    assert final.device.ip == STAFF_LAPTOP
    assert final.device.segment == "staff"
    assert final.role is SegmentRole.STAFF
    assert final.hit_count == 2
    stored = [item for item in items if isinstance(item, StoredObservation)]
    assert [item.observation.name for item in stored] == ["www.facebook.com"] * 2


def test_a_page_embedding_a_facebook_widget_is_counted_but_never_an_incident() -> None:
    items: list[EngineItem] = []
    engine = build(items)
    for offset, name in enumerate(
        ["www.bbc.co.uk", "static.files.bbci.co.uk", "connect.facebook.net", "ichef.bbci.co.uk"]
    ):
        engine.feed(lookup(name, TUESDAY_10AM + offset))
    engine.close()
    assert incidents(items) == []
    embedded = [item for item in items if isinstance(item, EmbeddedCountRow)]
    assert [(row.platform, row.count, row.device_ip) for row in embedded] == [
        ("facebook", 1, STAFF_LAPTOP)
    ]
    assert counters(items)["observations.dns"] == 4


def test_a_match_after_school_is_only_an_anonymous_count() -> None:
    items: list[EngineItem] = []
    engine = build(items)
    engine.feed(lookup("www.instagram.com", TUESDAY_9PM))
    engine.close()
    assert incidents(items) == []
    assert not any(isinstance(item, StoredObservation) for item in items)
    assert counters(items)["matches.outside_school_time"] == 1


def test_a_match_on_an_unconfigured_network_is_counted_as_unsegmented() -> None:
    items: list[EngineItem] = []
    engine = build(items)
    engine.feed(lookup("www.tiktok.com", client=GUEST_PHONE))
    engine.close()
    assert incidents(items) == []
    assert counters(items)["matches.unsegmented"] == 1


def test_non_social_traffic_leaves_nothing_but_counters() -> None:
    items: list[EngineItem] = []
    engine = build(items)
    engine.feed(lookup("www.education.gov.uk"))
    engine.close()
    assert items == [CounterIncrement("st-marys", date(2026, 11, 24), "observations.dns", 1)]


def test_a_dhcp_host_name_names_the_device_in_later_incidents() -> None:
    items: list[EngineItem] = []
    engine = build(items)
    engine.feed(
        Observation(
            TUESDAY_10AM, Proto.DHCP, "room4-laptop", STAFF_LAPTOP, STAFF_MAC, "255.255.255.255", 67
        )
    )
    engine.feed(lookup("www.instagram.com", TUESDAY_10AM + 5))
    engine.close()
    assert DeviceSeen("st-marys", STAFF_MAC, STAFF_LAPTOP, "room4-laptop", TUESDAY_10AM) in items
    assert incidents(items)[-1].device.host_name == "room4-laptop"


def test_a_dns_answer_for_a_name_already_asked_adds_no_second_hit() -> None:
    items: list[EngineItem] = []
    engine = build(items)
    engine.feed(lookup("www.instagram.com"))
    answer = Observation(
        TUESDAY_10AM + 0.01,
        Proto.DNS,
        "www.instagram.com",
        STAFF_LAPTOP,
        None,
        "10.20.0.1",
        53,
        flags=frozenset({Flag.RESPONSE}),
        cnames=("z-p42-instagram.c10r.instagram.com",),
        addresses=("157.240.221.174",),
    )
    engine.feed(answer)
    engine.close()
    assert incidents(items)[-1].hit_count == 1


def test_a_connection_with_no_usable_name_is_attributed_by_the_address_it_resolved_to() -> None:
    items: list[EngineItem] = []
    engine = build(items)
    engine.feed(
        Observation(
            TUESDAY_10AM,
            Proto.DNS,
            "www.instagram.com",
            STAFF_LAPTOP,
            None,
            "10.20.0.1",
            53,
            flags=frozenset({Flag.RESPONSE}),
            addresses=("157.240.221.174",),
        )
    )
    ech = Observation(
        TUESDAY_10AM + 1,
        Proto.TLS,
        "cloudflare-ech.com",
        STAFF_LAPTOP,
        STAFF_MAC,
        "157.240.221.174",
        443,
        flags=frozenset({Flag.ECH}),
    )
    engine.feed(ech)
    engine.close()
    final = incidents(items)[-1]
    assert final.platform == "instagram"
    assert [evidence.via for evidence in final.evidence] == [Attribution.ADDRESS]


def test_tick_closes_idle_incidents_and_flushes_counters_on_the_capture_clock() -> None:
    items: list[EngineItem] = []
    engine = build(items)
    engine.feed(lookup("www.reddit.com"))
    engine.tick(TUESDAY_10AM + 1)
    engine.tick(TUESDAY_10AM + 3600)
    assert incidents(items)[-1].state is IncidentState.CLOSED
    assert counters(items)["observations.dns"] == 1
    assert engine.stats.incidents_opened == engine.stats.incidents_closed == 1


def test_visibility_gaps_are_counted_per_day_without_identities() -> None:
    items: list[EngineItem] = []
    engine = build(items)
    hidden = Observation(
        TUESDAY_10AM,
        Proto.TLS,
        "cloudflare-ech.com",
        STAFF_LAPTOP,
        STAFF_MAC,
        "1.1.1.1",
        443,
        flags=frozenset({Flag.ECH}),
    )
    resolver = Observation(
        TUESDAY_10AM,
        Proto.TLS,
        "dns.google",
        STAFF_LAPTOP,
        STAFF_MAC,
        "8.8.8.8",
        443,
        flags=frozenset({Flag.ENCRYPTED_DNS}),
    )
    engine.feed(hidden)
    engine.feed(resolver)
    engine.count(TUESDAY_10AM, "capture.frames", 10)
    engine.close()
    assert counters(items) == {
        "observations.tls": 2,
        "flags.ech": 1,
        "flags.encrypted-dns": 1,
        "capture.frames": 10,
    }


def stored(items: list[EngineItem]) -> list[StoredObservation]:
    return [item for item in items if isinstance(item, StoredObservation)]


def test_a_stored_observation_carries_its_incident_and_the_device_the_directory_resolved() -> None:
    items: list[EngineItem] = []
    engine = build(items)
    engine.feed(lookup("www.instagram.com"))
    without_mac = Observation(TUESDAY_10AM + 5, Proto.TLS, "www.instagram.com", STAFF_LAPTOP,
                              None, "157.240.221.174", 443)  # fmt: skip
    engine.feed(without_mac)
    engine.close()
    (key,) = {incident.key for incident in incidents(items)}
    assert [(item.incident_key, item.observation.client_mac) for item in stored(items)] == [
        (key, STAFF_MAC),
        (key, STAFF_MAC),
    ]


def test_an_erased_device_is_forgotten_and_nothing_from_before_its_erasure_comes_back() -> None:
    from monitor.devices import Erasure, identity_digest

    items: list[EngineItem] = []
    engine = build(items)
    engine.feed(lookup("www.instagram.com"))
    engine.feed(lookup("www.instagram.com", TUESDAY_10AM + 30))
    opened = len(items)
    erased_at = TUESDAY_10AM + 60
    erasure = Erasure(identity_digest(STAFF_MAC), erased_at, every_device=False)
    assert engine.forget([erasure]) == 1
    engine.feed(lookup("www.instagram.com", TUESDAY_10AM + 45))  # late, from before the erasure
    engine.tick(TUESDAY_10AM + 3600)
    assert incidents(items[opened:]) == []
    assert stored(items[opened:]) == []
    assert engine.stats.erased == 1
    engine.feed(lookup("www.instagram.com", erased_at + 1))
    assert engine.forget([erasure]) == 0  # handed over again (a restart): what came after stays
    engine.close()
    later = incidents(items[opened:])
    assert {incident.start for incident in later} == {erased_at + 1}
