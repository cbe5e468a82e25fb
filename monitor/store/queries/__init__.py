"""Read (and review) functions for the web app, the JSON API and the reports.

Pages, API handlers and reports never see ORM rows: every function here takes a sync
``Session`` (``db``) and returns frozen dataclasses. Functions that change rows (reviews,
labels, merges, erasure) work in the caller's transaction and return what changed; the caller
commits and writes the audit event. Site scoping: ``site_scope`` is the one site a user is
limited to (None: every site); a row outside it is reported missing (``LookupError``).

Modules: ``incidents`` (the queue), ``incident_page`` (one incident), ``reviews`` (workflow), ``devices``,
``exports`` (CSV, subject access, erasure), ``stats`` (dashboard, reviewer summary),
``governors`` (aggregates only), ``weeks`` (school weeks and days), ``identity`` (which rows
are one device), ``scope`` (site scope, page windows), ``sessions`` (the review app's browser
sessions), ``health`` (what ``/healthz`` and ``/metrics`` count), ``list_changes`` (the lists
page's record). The review app (``api``) reaches the tables only through these modules and
``monitor.store``'s other functions (an import-linter contract forbids ``monitor.store.models``).
"""

from __future__ import annotations

from monitor.store.queries.devices import (
    DeviceDetail,
    DevicePage,
    DeviceSummary,
    LabelResult,
    MergeResult,
    get_device,
    label_device,
    list_devices,
    merge_devices,
)
from monitor.store.queries.exports import (
    DeviceExport,
    ErasureResult,
    erase_device,
    export_device_records,
    incidents_csv,
)
from monitor.store.queries.governors import GovernorSummary, governor_summary
from monitor.store.queries.incident_page import IncidentDetail, get_incident
from monitor.store.queries.incidents import (
    IncidentFilters,
    IncidentPage,
    IncidentSummary,
    incident_sites,
    list_incidents,
)
from monitor.store.queries.reviews import ReviewingUser, review_incident
from monitor.store.queries.stats import (
    CaptureHealth,
    IncidentStats,
    capture_health,
    incident_stats,
    sites_with_observations,
    top_devices,
)
from monitor.store.queries.weeks import previous_week, school_week

__all__ = [
    "ReviewingUser",
    "CaptureHealth",
    "DeviceDetail",
    "DeviceExport",
    "DevicePage",
    "DeviceSummary",
    "ErasureResult",
    "GovernorSummary",
    "IncidentDetail",
    "IncidentFilters",
    "IncidentPage",
    "IncidentStats",
    "IncidentSummary",
    "LabelResult",
    "MergeResult",
    "capture_health",
    "erase_device",
    "export_device_records",
    "get_device",
    "get_incident",
    "governor_summary",
    "incident_sites",
    "incident_stats",
    "incidents_csv",
    "label_device",
    "list_devices",
    "list_incidents",
    "merge_devices",
    "previous_week",
    "review_incident",
    "school_week",
    "sites_with_observations",
    "top_devices",
]
