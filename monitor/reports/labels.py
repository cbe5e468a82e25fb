"""Words a person reads for the monitor's internal names: periods, weeks, outcomes, segments
and anonymous counters.

One place for each rule, shared by the weekly emails, the governors' report and the review
app's pages:

- A period is held as the local days ``[start, end)`` (``end`` excluded) everywhere in the
  code; a person reads the days it includes: ``16–22 November 2026`` (``period_label``).
- A week is named by its first day, ``Week of 7 December``: never by its ISO code
  (``2026-W50``), which stays on the command line and in stored keys (``sent_reports.period``).
- A review outcome is read in words (``monitor.store.workflow.label_of``), incidents on no
  configured segment as ``No segment`` (``segment_label``, ``role_label``).
- An anonymous daily counter is shown only with a plain-English label. A counter without one
  (a name added to the engine but not here) is left out of what a person reads and logged as a
  warning naming it, so a developer adds its label: a raw name such as ``capture.frames``, or a
  vague "other events" line, would be a figure nobody can act on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import date, timedelta
from typing import TypeVar

from monitor.store.queries.stats import UNSEGMENTED

log = logging.getLogger(__name__)

NO_SEGMENT = "No segment"
"""Incidents from an address in no configured segment (``stats.UNSEGMENTED``)."""

COUNTER_LABELS = {
    "matches.outside_school_time": "Platform use outside school hours (counted, never flagged)",
    "matches.not_flagged_for_segment": "Platform use on networks that do not flag it, such as "
    "guest Wi-Fi (counted, never flagged)",
    "matches.unsegmented": "Platform use from addresses in no configured network (not flagged: "
    "a coverage gap to fix in the settings)",
    "flags.ech": "Connections that hid the site's name (Encrypted Client Hello)",
    "flags.encrypted-dns": "Encrypted DNS use (that device's later lookups are hidden)",
    "capture.frames": "Network packets the sensor read",
    "capture.malformed": "Network packets the sensor could not read (damaged or unusual)",
    "capture.kernel_drops": "Network packets lost because the sensor could not keep up",
}
"""Anonymous daily counters in plain English; a counter not named here is never shown."""

GAP_COUNTERS = frozenset(
    {"matches.unsegmented", "flags.ech", "flags.encrypted-dns", "capture.kernel_drops"}
)
"""Counters that measure what the sensor could not see or could not attribute."""

T = TypeVar("T")


def period_label(start: date, end: date) -> str:
    """The local days ``[start, end)`` as a person reads them: ``16–22 November 2026``,
    ``30 November – 6 December 2026``, ``16 November 2026`` for one day."""
    if end <= start:
        raise ValueError(f"period {start} to {end}: the end is not after the start")
    last = end - timedelta(days=1)
    if start == last:
        return f"{start.day} {start:%B %Y}"
    if (start.year, start.month) == (last.year, last.month):
        return f"{start.day}–{last.day} {last:%B %Y}"
    if start.year == last.year:
        return f"{start.day} {start:%B} – {last.day} {last:%B %Y}"
    return f"{start.day} {start:%B %Y} – {last.day} {last:%B %Y}"


def segment_label(segment: str) -> str:
    """A segment's name as configured (``staff-wifi``), or ``No segment``."""
    return NO_SEGMENT if segment == UNSEGMENTED else segment


def role_label(role: str) -> str:
    """``Staff network``, ``Pupil network``..., or ``No segment``."""
    return NO_SEGMENT if role == UNSEGMENTED else f"{role.capitalize()} network"


def week_label(first_day: date) -> str:
    """``Week of 7 December``: a week (or the part of one a period covers) by its first day."""
    return f"Week of {first_day.day} {first_day:%B}"


def counter_label(name: str) -> str | None:
    """The plain-English label of a counter; None for a counter that has none."""
    return COUNTER_LABELS.get(name)


def readable_counters(items: Iterable[T], name: Callable[[T], str]) -> list[T]:
    """The ``items`` whose counter (``name(item)``) has a label, in order; the others are left
    out and logged as a warning naming them (see the module docstring)."""
    kept: list[T] = []
    unknown: list[T] = []
    for item in items:
        (kept if name(item) in COUNTER_LABELS else unknown).append(item)
    if unknown:
        log.warning(
            "counters without a plain-English label left out of a report: %s "
            "(add them to monitor/reports/labels.py COUNTER_LABELS)",
            ", ".join(sorted({name(item) for item in unknown})),
        )
    return kept
