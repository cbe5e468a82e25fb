"""The ``[calendar]`` group: school hours per weekday, terms and closures."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, time, timedelta
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from pydantic import BeforeValidator, Field, field_validator, model_validator

from monitor.config.fields import EnvList, Group, TimeRange, problem

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
DEFAULT_DAY = ((time(8, 0), time(16, 30)),)
"""Monday to Friday by default: 08:00-16:30."""


class HoursSettings(Group):
    """School hours per weekday; a day left out keeps its default, ``[]`` means no school."""

    monday: EnvList[TimeRange] = Field(
        default_factory=lambda: list(DEFAULT_DAY), description="Monday's hours."
    )
    tuesday: EnvList[TimeRange] = Field(
        default_factory=lambda: list(DEFAULT_DAY), description="Tuesday's hours."
    )
    wednesday: EnvList[TimeRange] = Field(
        default_factory=lambda: list(DEFAULT_DAY), description="Wednesday's hours."
    )
    thursday: EnvList[TimeRange] = Field(
        default_factory=lambda: list(DEFAULT_DAY), description="Thursday's hours."
    )
    friday: EnvList[TimeRange] = Field(
        default_factory=lambda: list(DEFAULT_DAY), description="Friday's hours."
    )
    saturday: EnvList[TimeRange] = Field(
        default_factory=list, description="Saturday's hours (none by default)."
    )
    sunday: EnvList[TimeRange] = Field(
        default_factory=list, description="Sunday's hours (none by default)."
    )

    def by_weekday(self) -> dict[int, list[tuple[time, time]]]:
        """Weekday number (0 = Monday) to its ranges."""
        return {number: getattr(self, day) for number, day in enumerate(WEEKDAYS)}


class TermSettings(Group):
    start: date = Field(description="First day of term (YYYY-MM-DD).")
    end: date = Field(description="Last day of term, included (YYYY-MM-DD).")
    name: str = Field(default="", description="Optional name, e.g. autumn 2026.")

    @model_validator(mode="after")
    def _in_order(self) -> TermSettings:
        if self.end < self.start:
            raise problem(f"ends {self.end} before it starts {self.start}")
        return self


def _closure_table(value: object) -> object:
    """A bare date is a one-day closure."""
    if isinstance(value, date | str):
        return {"start": value}
    return value


class ClosureSettings(Group):
    start: date = Field(description="First day closed (YYYY-MM-DD).")
    end: date | None = Field(default=None, description="Last day closed, included; default: start.")
    reason: str = Field(default="", description="Why, e.g. INSET day.")

    @model_validator(mode="after")
    def _in_order(self) -> ClosureSettings:
        if self.end is not None and self.end < self.start:
            raise problem(f"ends {self.end} before it starts {self.start}")
        return self

    def days(self) -> Iterator[date]:
        """Every closed day."""
        day, last = self.start, self.end or self.start
        while day <= last:
            yield day
            day += timedelta(days=1)


class CalendarSettings(Group):
    timezone: str = Field(
        default="Europe/London",
        description="IANA time zone of the school's clocks, e.g. Europe/London; hours are local "
        "wall-clock time, daylight saving included.",
    )
    hours: HoursSettings = Field(
        default_factory=lambda: HoursSettings(),
        description='School hours per weekday, several ranges a day: monday = ["08:00-12:15", '
        '"13:00-16:00"]. Default Monday to Friday 08:00-16:30, no weekends.',
    )
    terms: list[TermSettings] = Field(
        default_factory=list,
        description="Term dates, {start, end} both included; empty: every week counts.",
    )
    closures: list[Annotated[ClosureSettings, BeforeValidator(_closure_table)]] = Field(
        default_factory=list,
        description="Days without school inside terms: dates, or {start, end, reason} tables.",
    )
    ical_files: EnvList[Path] = Field(
        default_factory=list,
        description="iCalendar (.ics) files whose events are closures (INSET days); every event "
        "closes the days it covers.",
    )
    bank_holidays_file: Path | None = Field(
        default=None,
        description="A file in the gov.uk bank holidays JSON format; its holidays are closures.",
    )
    bank_holidays_division: Literal["england-and-wales", "scotland", "northern-ireland"] = Field(
        default="england-and-wales", description="Which division of the bank holidays file applies."
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ValueError, KeyError):
            raise problem(
                f"{value!r} is not a known time zone; use an IANA name such as Europe/London"
            ) from None
        return value

    def closure_days(self) -> dict[date, str]:
        """Every day closed by the ``closures`` key, with its reason."""
        return {day: closure.reason for closure in self.closures for day in closure.days()}
