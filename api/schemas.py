"""The JSON API's request and response bodies: what ``/api/v1`` accepts and answers.

Pydantic sits here at the trust boundary only: the handlers query ``monitor.store.queries``
(frozen dataclasses) and hand the result to ``Model.model_validate`` (``from_attributes``), so
a response holds exactly the fields declared here and nothing the query happened to carry.
The governor models (``Governor*``) have no field for a device, address, host name or label:
a governor's response cannot include one by construction (a test walks them to prove it).
"""

from __future__ import annotations

from dataclasses import fields
from datetime import date, datetime
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from api.params import Text
from api.queue import IncidentSort
from monitor.confidence import Level
from monitor.store.queries.incidents import IncidentSummary
from monitor.store.workflow import Outcome, ReviewStatus

ReviewTarget = Literal["in_review", "closed"]
"""The statuses a review change may move to (kept equal to the targets of
``monitor.store.workflow.TRANSITIONS`` by a test)."""


class ApiModel(BaseModel):
    """A response body built from a query's dataclass."""

    model_config = ConfigDict(from_attributes=True, frozen=True)


class ErrorOut(BaseModel):
    """Every error under ``/api/`` except validation (422): one sentence saying what is wrong."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"detail": "No incident 42."}]})

    detail: str = Field(description="What went wrong and, where possible, what to do.")


# --- incidents -------------------------------------------------------------------------------


class ExplanationOut(BaseModel):
    """Why the incident has its confidence level, in plain English (``monitor.confidence``)."""

    model_config = ConfigDict(frozen=True)

    level: Level
    reasons: list[str] = Field(description="What raised or lowered the confidence.")
    seen: str = Field(description="What was seen, when, from which device.")
    limits: str = Field(description="What the evidence does not show.")
    below_floor: bool = Field(
        description="Under the configured floor: out of the default queue and the weekly email."
    )


class IncidentOut(ApiModel):
    """One incident as the review queue lists it."""

    model_config = ConfigDict(
        from_attributes=True,
        frozen=True,
        json_schema_extra={
            "examples": [
                {
                    "id": 42, "site": "main", "platform": "tiktok", "category": "social",
                    "device_ip": "10.20.0.15", "device_mac": "aa:bb:cc:00:00:01",
                    "device_host_name": "LAPTOP-7", "device_label": "Room 4 laptop",
                    "device_segment": "staff-wifi", "role": "staff",
                    "start_at": "2026-11-23T10:02:00Z", "end_at": "2026-11-23T10:19:00Z",
                    "active_minutes": 14.5, "confidence": 0.92, "hit_count": 37,
                    "state": "closed", "status": "new", "outcome": None,
                    "connections": 12, "lookups": 3, "attribution": "name", "level": "high",
                }
            ]
        },
    )  # fmt: skip

    id: int
    site: str = Field(description="The school (one of a trust's sites).")
    platform: str = Field(description="The platform visited, e.g. `tiktok`.")
    category: str
    device_ip: str
    device_mac: str | None
    device_host_name: str | None
    device_label: str | None = Field(description="The label frozen into the incident.")
    device_segment: str | None = Field(description="The configured segment, if any.")
    role: str | None = Field(description="The segment's role: `staff`, `pupil`, `guest`...")
    start_at: datetime
    end_at: datetime
    active_minutes: float
    confidence: float = Field(description="How sure the engine is, 0 to 1.")
    hit_count: int
    state: str = Field(description="`open` while hits continue, else `closed` (engine view).")
    status: ReviewStatus = Field(description="The review state.")
    outcome: Outcome | None = Field(description="The reviewer's conclusion once closed.")
    connections: int = Field(description="Distinct connections to the platform's own servers.")
    lookups: int = Field(description="Distinct DNS lookups of the platform's own names.")
    attribution: str = Field(description="How it was tied: `name`, `cname` or `address`.")
    level: Level | None = Field(
        default=None, description="The confidence level: `high`, `medium` or `low`."
    )
    explanation: ExplanationOut | None = None

    @model_validator(mode="before")
    @classmethod
    def _explain(cls, data: Any, info: ValidationInfo) -> Any:
        """With the floor and time zone in the validation context, add the explanation."""
        context = info.context or {}
        if isinstance(data, IncidentSummary) and "floor" in context:
            explanation = data.explain(context["floor"], context["tz"])
            values = {field.name: getattr(data, field.name) for field in fields(data)}
            return values | {"level": explanation.level.value, "explanation": explanation.as_dict()}
        return data


class IncidentListOut(ApiModel):
    """One page of the review queue."""

    items: list[IncidentOut]
    total: int = Field(description="Incidents matching the filters, on every page.")
    page: int = Field(examples=[1])
    per_page: int = Field(examples=[50])
    pages: int = Field(description="Pages in all (at least 1).")
    sort: IncidentSort
    low_hidden: int = Field(
        description="Low-confidence incidents that match the other filters but not `confidence`."
    )


class TimelineEntryOut(ApiModel):
    """One piece of evidence."""

    at: datetime
    proto: str = Field(examples=["tls"])
    name: str = Field(examples=["www.tiktok.com"])
    via: str = Field(examples=["sni"])
    server_ip: str | None = None
    server_port: int | None = None
    flags: list[str] = Field(default_factory=list)


class ReviewEntryOut(ApiModel):
    """One change of review state."""

    at: datetime
    username: str
    from_status: ReviewStatus
    to_status: ReviewStatus
    outcome: Outcome | None
    note: str
    second_reviewer: str | None


class IncidentDetailOut(ApiModel):
    """An incident with its evidence, review history and the device's earlier incidents."""

    incident: IncidentOut
    key: str
    created_at: datetime
    updated_at: datetime
    device_label: str | None = Field(description="The device's label now.")
    timeline: list[TimelineEntryOut] = Field(description="Evidence, oldest first (capped).")
    observation_count: int = Field(description="Stored observations (the timeline may show fewer).")
    history: list[ReviewEntryOut] = Field(description="Review changes, oldest first.")
    earlier: list[IncidentOut] = Field(description="The device's earlier incidents, newest first.")
    policy_point: str = Field(description="The sentence of the school's policy it relates to.")
    continues: IncidentOut | None = Field(
        default=None,
        description="The decided incident whose activity this one continues: an incident in "
        "review or closed no longer grows, and later activity becomes a new incident.",
    )
    continued_by: list[IncidentOut] = Field(
        default=[], description="The incident that holds this one's later activity, if any."
    )


class ReviewIn(BaseModel):
    """A review change: ``new`` -> ``in_review`` -> ``closed`` (with an outcome and a note);
    ``closed`` -> ``in_review`` reopens."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "to_status": "closed",
                    "outcome": "informal_conversation",
                    "note": "Spoke to the member of staff; agreed it will not happen again.",
                }
            ]
        },
    )

    to_status: ReviewTarget = Field(description="The state to move to.")
    outcome: Outcome | None = Field(
        default=None, validate_default=True, description="Required when closing; else omitted."
    )
    note: Text = Field(
        default="",
        max_length=4000,
        validate_default=True,
        description="What was decided and why; required when closing.",
    )
    second_reviewer: Text | None = Field(
        default=None, max_length=150, description="Another person who reviewed it (username)."
    )
    confirm_growing: bool = Field(
        default=False,
        description="Close an incident that is still growing (its activity has not ended): it "
        "stays as it is, and later activity becomes a new incident linked to it.",
    )

    @field_validator("outcome")
    @classmethod
    def _outcome_only_when_closing(
        cls, value: Outcome | None, info: ValidationInfo
    ) -> Outcome | None:
        to_status = info.data.get("to_status")
        if to_status == ReviewStatus.CLOSED and value is None:
            raise ValueError("closing needs an outcome")
        if to_status is not None and to_status != ReviewStatus.CLOSED and value is not None:
            raise ValueError(f"an outcome is recorded only when closing, not when moving to {to_status}")  # fmt: skip
        return value

    @field_validator("note")
    @classmethod
    def _note_when_closing(cls, value: str, info: ValidationInfo) -> str:
        if info.data.get("to_status") == ReviewStatus.CLOSED and not value.strip():
            raise ValueError("closing needs a note saying what was decided and why")
        return value


# --- devices ---------------------------------------------------------------------------------


class DeviceOut(ApiModel):
    """One binding of a MAC address (None when unknown) to an IP address."""

    id: int
    site: str
    mac: str | None = Field(examples=["aa:bb:cc:00:00:01"])
    ip: str = Field(examples=["10.20.0.15"])
    host_name: str | None = Field(examples=["LAPTOP-7"])
    label: str | None = Field(examples=["Room 4 laptop"])
    first_seen: datetime
    last_seen: datetime


class DeviceListOut(ApiModel):
    """One page of devices, seen most recently first."""

    items: list[DeviceOut]
    total: int
    page: int
    per_page: int
    pages: int
    search: str | None


class DeviceDetailOut(ApiModel):
    """A device: its binding, other addresses, incidents and last activity."""

    device: DeviceOut
    addresses: list[DeviceOut] = Field(description="The same MAC's other bindings.")
    incidents_count: int
    open_incidents: int = Field(description="Incidents waiting for a decision.")
    last_activity: datetime
    segment: str | None = Field(description="The segment of its latest incident.")
    recent: list[IncidentOut] = Field(description="Its latest incidents, newest first.")


class LabelIn(BaseModel):
    """A device's new label (owner or role, location); empty or null clears it."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"label": "Room 4 laptop (Ms Khan)"}]}
    )

    label: Text | None = Field(max_length=200, description="The label; empty clears it.")


class LabelOut(ApiModel):
    """What labelling changed."""

    mac: str | None
    ip: str | None
    label: str | None
    devices: int = Field(description="Device rows labelled.")
    incidents: int = Field(description="Incidents whose frozen label changed.")


# --- stats -----------------------------------------------------------------------------------


class CountOut(ApiModel):
    """How many of one kind."""

    key: str = Field(examples=["tiktok"])
    count: int = Field(examples=[12])


class DayCountOut(ApiModel):
    """How many on one of the school's local days."""

    day: date
    count: int


class IncidentStatsOut(ApiModel):
    """Incidents that started in ``[start, end)`` and the period of the same length before."""

    start: datetime
    end: datetime
    total: int
    by_platform: list[CountOut]
    by_segment: list[CountOut]
    by_role: list[CountOut]
    by_day: list[DayCountOut] = Field(description="Every local day of the period.")
    by_site: list[CountOut] = Field(
        description="Per school of a trust (only the user's own school when limited to one)."
    )
    open_items: int = Field(description="Incidents of any date waiting for a decision.")
    previous_total: int
    previous_by_platform: list[CountOut]
    change: int = Field(description="`total` minus `previous_total`.")
    low_confidence: int = Field(
        description="Incidents of the period below the confidence floor: left out of every "
        "other figure, as on the dashboard."
    )


class CaptureHealthOut(ApiModel):
    """What the sensors counted on the local days ``[start, end)``."""

    start: date
    end: date = Field(description="The day after the last day counted.")
    observations_total: int
    observations_by_proto: list[CountOut]
    by_day: list[DayCountOut] = Field(description="Observations per day; a zero: sensor down?")
    days_with_data: int
    matches_outside_school_time: int
    matches_unsegmented: int
    matches_not_flagged: int
    flags: list[CountOut]
    other: list[CountOut]
    encrypted_dns: int | None = Field(description="Observations showing encrypted DNS.")
    ech: int | None = Field(description="TLS handshakes with Encrypted Client Hello.")


class GovernorPlatformCount(ApiModel):
    """Incidents for one platform (a count, no identities)."""

    platform: str
    count: int


class GovernorRoleCount(ApiModel):
    """Incidents for one segment role (a count, no identities)."""

    role: str = Field(description="A segment role or `unsegmented`.")
    count: int


class GovernorOutcomeCount(ApiModel):
    """Closed incidents with one review outcome (a count, no identities)."""

    outcome: str = Field(description="A review outcome or `awaiting_review`.")
    count: int


class GovernorWeekCount(ApiModel):
    """Incidents in one ISO week (a count, no identities)."""

    week: str = Field(examples=["2026-W47"])
    count: int


class GovernorCheckRuns(ApiModel):
    """The runs of one kind of check or self-test."""

    kind: str
    runs: int
    failures: int
    last_at: datetime
    last_ok: bool


class GovernorListChange(ApiModel):
    """An entry added to or removed from a platform list or the allowlist."""

    at: datetime
    action: str = Field(examples=["add"])
    list_name: str
    suffix: str = Field(description="The domain suffix of the list rule.")
    presence: str | None
    reason: str
    changed_by: str = Field(description="The member of staff who made the change.")
    approved_by: str | None


class GovernorSummaryOut(ApiModel):
    """The governors' figures: aggregates only, no device, address, host name or label."""

    site: str | None = Field(description="The school; null: every school of the trust.")
    start: datetime
    end: datetime
    total: int
    previous_total: int
    by_platform: list[GovernorPlatformCount]
    by_role: list[GovernorRoleCount]
    by_outcome: list[GovernorOutcomeCount]
    weekly_trend: list[GovernorWeekCount]
    checks: list[GovernorCheckRuns]
    list_changes: list[GovernorListChange]


# --- audit -----------------------------------------------------------------------------------


class AuditEventOut(ApiModel):
    """One audit row."""

    model_config = ConfigDict(
        from_attributes=True,
        frozen=True,
        json_schema_extra={
            "examples": [
                {
                    "id": 7, "at": "2026-11-23T10:30:00Z", "user_id": 3, "username": "head",
                    "action": "view_incident", "target_type": "incident", "target_id": "42",
                    "detail": {}, "address": "10.0.0.9", "site": "hill-school",
                }
            ]
        },
    )  # fmt: skip

    id: int
    at: datetime
    user_id: int | None
    username: str | None
    action: str
    target_type: str | None
    target_id: str | None
    detail: dict[str, object]
    address: str | None = Field(description="The client address the request came from.")
    site: str | None = Field(
        default=None,
        description="The school the event concerns; null for the trust's own events "
        "(shown to admins without a site only).",
    )


class AuditListOut(ApiModel):
    """One page of the audit log, newest first."""

    items: list[AuditEventOut]
    total: int
    page: int
    per_page: int
    pages: int
