"""Specification of monitor.store.queries.incident_page: one incident's page."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.orm import Session

from monitor.store.queries.incident_page import (
    EARLIER_INCIDENTS_LIMIT,
    GENERAL_POLICY_POINT,
    POLICY_POINTS,
    get_incident,
)
from tests.monitor.store.queries.factories import (
    OTHER_SITE,
    PUPIL_TABLET,
    ROUTED_PC,
    STAFF_LAPTOP,
    T0,
    add_device,
    add_incident,
    add_observation,
    add_review,
)


class TestIncidentPage:
    def test_timeline_from_stored_observations(self, db: Session) -> None:
        incident = add_incident(db)
        for n in (2, 0, 1):
            add_observation(
                db, incident, ts=T0 + timedelta(seconds=10 * n), flags="ech" if n == 1 else ""
            )
        add_observation(db, None, ts=T0)  # not this incident's
        detail = get_incident(db, incident.id, None)
        assert detail.observation_count == 3
        assert [entry.at for entry in detail.timeline] == [
            T0 + timedelta(seconds=10 * n) for n in range(3)
        ]
        assert [entry.flags for entry in detail.timeline] == [(), ("ech",), ()]
        assert detail.timeline[0].server_ip == "157.240.1.174"

    def test_a_continuation_and_the_decided_incident_each_show_their_own_span(self, db: Session) -> None:  # fmt: skip
        decided = add_incident(db, minutes=5, status="closed", outcome="no_action")
        later = add_incident(db, start=T0 + timedelta(minutes=8), minutes=5)
        later.source_key, later.continues_id, later.key = (
            decided.key,
            decided.id,
            decided.key + ".1",
        )
        db.flush()
        for minute in (1, 4, 9, 12):  # the engine stored them all under the activity's key
            add_observation(db, decided, ts=T0 + timedelta(minutes=minute))
        assert [e.at.minute for e in get_incident(db, decided.id, None).timeline] == [1, 4]
        assert [e.at.minute for e in get_incident(db, later.id, None).timeline] == [9, 12]

    def test_timeline_falls_back_to_the_evidence_list(self, db: Session) -> None:
        incident = add_incident(db, platform="tiktok")
        detail = get_incident(db, incident.id, None)
        assert detail.observation_count == 0
        assert [(e.at, e.proto, e.name, e.via) for e in detail.timeline] == [
            (T0 + timedelta(seconds=30 * n), "tls", "www.tiktok.com", "name") for n in range(3)
        ]

    def test_history_oldest_first(self, db: Session) -> None:
        incident = add_incident(db, status="closed", outcome="no_action")
        add_review(db, incident, at=T0 + timedelta(hours=2), from_status="in_review", to_status="closed", outcome="no_action", note="spoke to them")  # fmt: skip
        add_review(db, incident, at=T0 + timedelta(hours=1))
        history = get_incident(db, incident.id, None).history
        assert [(h.to_status, h.outcome, h.note) for h in history] == [
            ("in_review", None, ""), ("closed", "no_action", "spoke to them"),
        ]  # fmt: skip

    def test_earlier_incidents_of_the_same_mac(self, db: Session) -> None:
        older = add_incident(db, start=T0 - timedelta(days=3))
        moved = add_incident(db, start=T0 - timedelta(days=2), device=("10.1.9.9", STAFF_LAPTOP[1]))
        add_incident(db, start=T0 - timedelta(days=1), site=OTHER_SITE)  # same MAC, other school
        add_incident(db, start=T0 - timedelta(days=1), device=PUPIL_TABLET)
        add_incident(db, start=T0 + timedelta(days=1))  # later: not "earlier"
        current = add_incident(db)
        earlier = get_incident(db, current.id, None).earlier
        assert [item.id for item in earlier] == [moved.id, older.id]

    def test_earlier_incidents_of_the_same_address_without_mac(self, db: Session) -> None:
        older = add_incident(db, start=T0 - timedelta(days=3), device=ROUTED_PC)
        add_incident(db, start=T0 - timedelta(days=2), device=(ROUTED_PC[0], "aa:bb:cc:00:00:09"))
        current = add_incident(db, device=ROUTED_PC)
        assert [item.id for item in get_incident(db, current.id, None).earlier] == [older.id]

    def test_earlier_incidents_are_capped_newest_first(self, db: Session) -> None:
        olds = [add_incident(db, start=T0 - timedelta(hours=n + 1)) for n in range(EARLIER_INCIDENTS_LIMIT + 3)]  # fmt: skip
        current = add_incident(db)
        earlier = get_incident(db, current.id, None).earlier
        assert [item.id for item in earlier] == [old.id for old in olds[:EARLIER_INCIDENTS_LIMIT]]

    def test_device_label_comes_from_the_device(self, db: Session) -> None:
        incident = add_incident(db, label="old label")
        assert get_incident(db, incident.id, None).device_label == "old label"
        add_device(db, device=("10.1.9.9", STAFF_LAPTOP[1]), label="Ms Smith's laptop")
        assert get_incident(db, incident.id, None).device_label == "Ms Smith's laptop"

    @pytest.mark.parametrize(
        ("role", "point"),
        [
            ("staff", POLICY_POINTS["staff"]),
            ("pupil", POLICY_POINTS["pupil"]),
            (None, GENERAL_POLICY_POINT),
        ],
    )
    def test_policy_point_follows_the_role(self, db: Session, role: str | None, point: str) -> None:
        incident = add_incident(db, role=role)
        assert get_incident(db, incident.id, None).policy_point == point

    def test_staff_policy_point_names_the_school_day(self) -> None:
        assert POLICY_POINTS["staff"].startswith(
            "Staff must not access social networking sites during the school day"
        )
