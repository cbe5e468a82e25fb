"""Governors' figures: right counts, and private by type: no field can hold an identity."""

from __future__ import annotations

import dataclasses
import types
import typing
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor.store.models import DeviceRecord, IncidentRecord
from monitor.store.queries import governors
from monitor.store.queries.governors import (
    CheckRuns,
    GovernorSummary,
    OutcomeCount,
    PlatformCount,
    RoleCount,
    governor_summary,
)
from monitor.store.queries.weeks import school_week
from tests.monitor.store.queries.factories import (
    LONDON,
    OTHER_SITE,
    PUPIL_TABLET,
    ROUTED_PC,
    SITE,
    add_check,
    add_device,
    add_incident,
    add_list_change,
)

IDENTITY_WORDS = {"ip", "mac", "host", "hostname", "label", "username", "user", "device", "address", "addresses", "email", "name", "key", "evidence"}  # fmt: skip
"""Words a field name must not contain (split on ``_``): each could carry who or which device.
``list_name`` is the one allowed compound (a platform list's name)."""
ALLOWED_FIELDS = {"list_name"}
SCALARS = (str, int, float, bool, date, datetime, type(None))


def walk(cls: type, path: str, seen: set[type]) -> list[tuple[str, object]]:
    """Every (dotted field path, field type) reachable from a dataclass type."""
    if cls in seen:
        return []
    seen.add(cls)
    found: list[tuple[str, object]] = []
    for field in dataclasses.fields(cls):
        kind = typing.get_type_hints(cls)[field.name]
        found.append((f"{path}.{field.name}", kind))
        for inner in leaf_types(kind):
            if dataclasses.is_dataclass(inner):
                found += walk(inner, f"{path}.{field.name}", seen)
    return found


def leaf_types(kind: object) -> list[type]:
    origin = typing.get_origin(kind)
    if origin is None:
        return [kind] if isinstance(kind, type) else []
    return [
        leaf for arg in typing.get_args(kind) if arg is not Ellipsis for leaf in leaf_types(arg)
    ]


def test_governor_types_have_no_field_that_can_hold_an_identity() -> None:
    fields = walk(GovernorSummary, "GovernorSummary", set())
    assert len(fields) > 20  # the walk reached the nested types
    for path, kind in fields:
        name = path.rsplit(".", 1)[1]
        assert name in ALLOWED_FIELDS or not IDENTITY_WORDS & set(name.split("_")), path
        # only scalars, tuples and dataclasses of this module: no dict or Any to smuggle a row in
        origin = typing.get_origin(kind)
        assert origin in (None, tuple, typing.Union, types.UnionType), (path, kind)
        for leaf in leaf_types(kind):
            assert leaf in SCALARS or (dataclasses.is_dataclass(leaf) and leaf.__module__ == governors.__name__), (path, leaf)  # fmt: skip


def test_governor_types_are_frozen() -> None:
    for _, kind in walk(GovernorSummary, "GovernorSummary", set()):
        for leaf in leaf_types(kind):
            if dataclasses.is_dataclass(leaf):
                assert leaf.__dataclass_params__.frozen, leaf  # type: ignore[attr-defined]


WEEK = school_week("2026-W27", LONDON)
MONDAY = datetime(2026, 6, 29, 9, 0, tzinfo=UTC)


@pytest.fixture
def term(db: Session) -> None:
    add_device(db, label="Ms Smith's laptop")
    add_device(db, device=PUPIL_TABLET, host_name="TAB-7", label="Year 9 trolley")
    add_incident(db, start=MONDAY, label="Ms Smith's laptop", status="closed", outcome="informal_conversation")  # fmt: skip
    add_incident(db, start=MONDAY + timedelta(hours=1), platform="tiktok", status="closed", outcome="false_positive")  # fmt: skip
    add_incident(db, start=MONDAY + timedelta(days=1), device=PUPIL_TABLET, host_name="TAB-7", segment="pupil-wifi", role="pupil", label="Year 9 trolley")  # fmt: skip
    add_incident(db, start=MONDAY + timedelta(days=2), device=ROUTED_PC, role=None, segment=None)
    add_incident(db, start=MONDAY, site=OTHER_SITE)
    for weeks_ago in (1, 1, 3, 9):
        add_incident(db, start=MONDAY - timedelta(weeks=weeks_ago))
    add_check(db, MONDAY, "selftest", True)
    add_check(db, MONDAY + timedelta(days=1), "selftest", False)
    add_check(db, MONDAY + timedelta(days=2), "doctor", True, site=None)
    add_check(db, MONDAY, "doctor", False, site=OTHER_SITE)
    add_check(db, MONDAY - timedelta(days=7), "selftest", True)
    add_list_change(db, MONDAY + timedelta(hours=3), "tiktokv.com", "the app moved to a new domain")
    add_list_change(db, MONDAY - timedelta(days=7), "old.example", "last week")


def test_governor_summary_of_a_week(db: Session, term: None) -> None:
    summary = governor_summary(db, *WEEK, LONDON, SITE)
    assert (summary.site, summary.total, summary.previous_total) == (SITE, 4, 2)
    assert summary.by_platform == (PlatformCount("instagram", 3), PlatformCount("tiktok", 1))
    assert summary.by_role == (RoleCount("staff", 2), RoleCount("pupil", 1), RoleCount("unsegmented", 1))  # fmt: skip
    assert summary.by_outcome == (
        OutcomeCount("awaiting_review", 2), OutcomeCount("false_positive", 1),
        OutcomeCount("informal_conversation", 1),
    )  # fmt: skip
    assert [(w.week, w.count) for w in summary.weekly_trend] == [
        ("2026-W20", 0), ("2026-W21", 0), ("2026-W22", 0), ("2026-W23", 0),
        ("2026-W24", 1), ("2026-W25", 0), ("2026-W26", 2), ("2026-W27", 4),
    ]  # fmt: skip
    # Each week also carries its local Monday: what a person reads ("Week of 29 June").
    assert [w.start for w in summary.weekly_trend] == [
        date.fromisocalendar(2026, n, 1) for n in range(20, 28)
    ]
    assert summary.checks == (
        CheckRuns("doctor", 1, 0, MONDAY + timedelta(days=2), True),
        CheckRuns("selftest", 2, 1, MONDAY + timedelta(days=1), False),
    )
    assert [(c.suffix, c.reason, c.changed_by, c.approved_by) for c in summary.list_changes] == [
        ("tiktokv.com", "the app moved to a new domain", "it", "head")
    ]


def test_governor_summary_of_the_trust(db: Session, term: None) -> None:
    summary = governor_summary(db, *WEEK, LONDON, None)
    assert summary.total == 5
    assert [c.kind for c in summary.checks] == ["doctor", "selftest"]
    assert summary.checks[0].runs == 2


def test_a_long_period_trends_over_all_its_weeks(db: Session, term: None) -> None:
    start, _ = school_week("2026-W10", LONDON)
    summary = governor_summary(db, start, WEEK[1], LONDON, SITE)
    assert [w.week for w in summary.weekly_trend][0] == "2026-W10"
    assert len(summary.weekly_trend) == 18
    assert sum(w.count for w in summary.weekly_trend) == summary.total == 8


def test_no_identity_held_in_the_database_reaches_the_summary(db: Session, term: None) -> None:
    shown = repr(governor_summary(db, *WEEK, LONDON, None))
    held: set[str] = set()
    for row in db.execute(select(IncidentRecord.device_ip, IncidentRecord.device_mac, IncidentRecord.device_host_name, IncidentRecord.device_label)):  # fmt: skip
        held |= {value for value in row if value}
    for row in db.execute(select(DeviceRecord.ip, DeviceRecord.mac, DeviceRecord.host_name, DeviceRecord.label)):  # fmt: skip
        held |= {value for value in row if value}
    assert len(held) >= 8
    assert [value for value in held if value in shown] == []
