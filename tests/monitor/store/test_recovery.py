"""What a killed capture left open is read back as the engine's own snapshots, chains whole."""

from __future__ import annotations

from sqlalchemy import Engine

from monitor.store.recovery import left_open_incidents
from monitor.values import IncidentState
from tests.monitor.store.factories import SITE, T0, make_incident
from tests.monitor.store.test_items import apply, decide, incident_rows


def test_open_incidents_come_back_as_they_were_stored(engine: Engine) -> None:
    stored = make_incident(hit_count=4)
    apply(engine, [stored, make_incident("k2", hit_count=3, state=IncidentState.CLOSED)])
    assert left_open_incidents(engine, SITE) == [stored]
    assert left_open_incidents(engine, "another-school") == []


def test_a_decided_incident_and_its_continuation_come_back_as_one_activity(
    engine: Engine,
) -> None:
    apply(engine, [make_incident(hit_count=2)])
    decide(engine, "k1")
    whole = make_incident(hit_count=5)
    apply(engine, [whole])
    assert len(incident_rows(engine)) == 2
    (activity,) = left_open_incidents(engine, SITE)
    assert (activity.key, activity.hit_count, activity.start, activity.end) == (
        "k1", 5, T0, whole.end,
    )  # fmt: skip
    assert activity.evidence == whole.evidence
    assert activity.state is IncidentState.OPEN
    apply(engine, [make_incident(hit_count=5, state=IncidentState.CLOSED)])
    assert left_open_incidents(engine, SITE) == []
    assert [row.state for row in incident_rows(engine)] == ["closed", "closed"]
