"""From settings to the engine's rules: segments, the school calendar (reading the closure
files named in the settings) and the policy; lists and classifier with them in ``build_rules``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path

from monitor.calendars import parse_govuk_bank_holidays, parse_ical_closures
from monitor.classify import Classifier
from monitor.config.settings import Settings
from monitor.errors import ConfigError
from monitor.lists.directories import list_directories, load_lists
from monitor.policy import Policy, SchoolCalendar, Segment, Segments


def load_closures(
    ical_files: Sequence[Path],
    bank_holidays_file: Path | None,
    division: str,
    tz: str | None = None,
) -> dict[date, str]:
    """Closed days from the iCalendar files and the gov.uk bank holidays file, with reasons.
    Raises ``ConfigError`` naming the key and the file."""
    days: dict[date, str] = {}
    for index, path in enumerate(ical_files):
        text = _read_text(f"calendar.ical_files[{index}]", path)
        try:
            closures = parse_ical_closures(text, tz)
        except ValueError as e:
            raise ConfigError(f"calendar.ical_files[{index}]", f"{path}: {e}") from None
        for first, last, reason in closures:
            day = first
            while day <= last:
                days.setdefault(day, reason)
                day += timedelta(days=1)
    if bank_holidays_file is not None:
        text = _read_text("calendar.bank_holidays_file", bank_holidays_file)
        try:
            holidays = parse_govuk_bank_holidays(text, division)
        except ValueError as e:
            raise ConfigError("calendar.bank_holidays_file", f"{bank_holidays_file}: {e}") from None
        for day, title in holidays:
            days.setdefault(day, title)
    return days


def _read_text(key: str, path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(key, f"{path}: cannot read: {e.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(key, f"{path}: not UTF-8 text") from None


def build_segments(settings: Settings) -> Segments:
    """The configured segments, ready for lookups."""
    return Segments(
        [
            Segment(
                name=segment.name,
                role=segment.role,
                networks=tuple(segment.cidrs),
                vlans=frozenset(segment.vlans),
                flags=segment.flags(),
            )
            for segment in settings.segments
        ]
    )


def build_calendar(settings: Settings) -> SchoolCalendar:
    """The school calendar, closures from the file and the imported calendars (reads files)."""
    calendar = settings.calendar
    imported = load_closures(
        calendar.ical_files,
        calendar.bank_holidays_file,
        calendar.bank_holidays_division,
        calendar.timezone,
    )
    return SchoolCalendar(
        calendar.timezone,
        calendar.hours.by_weekday(),
        [(term.start, term.end) for term in calendar.terms],
        {**imported, **calendar.closure_days()},
    )


def build_policy(settings: Settings) -> Policy:
    """Segments and calendar from settings (reads the closure files named in them)."""
    return Policy(build_segments(settings), build_calendar(settings))


def build_rules(settings: Settings) -> tuple[Classifier, Policy]:
    """Lists, classifier and policy from the configuration (re-run on SIGHUP)."""
    lists = load_lists(list_directories(settings), extra_allow=settings.lists.allow)
    classifier = Classifier(lists, address_ttl_s=settings.lists.address_ttl_minutes * 60)
    return classifier, build_policy(settings)
