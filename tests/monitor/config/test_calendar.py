"""The [calendar] group: wrong values name the key, the value and what is allowed."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.monitor.config.conftest import problems_of


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            "[calendar]\ntimezone = 'Europe/Londn'",
            "calendar.timezone: 'Europe/Londn' is not a known time zone; use an IANA name such "
            "as Europe/London",
        ),
        (
            "[[calendar.terms]]\nstart = 2026-12-18\nend = 2026-09-03",
            "calendar.terms[0]: ends 2026-09-03 before it starts 2026-12-18",
        ),
        (
            "[[calendar.terms]]\nstart = 2026-09-03",
            "calendar.terms[0].end: missing; this key is required",
        ),
        (
            "[[calendar.terms]]\nstart = '3 Sept'\nend = 2026-12-18",
            "calendar.terms[0].start: '3 Sept' is not a date; use YYYY-MM-DD",
        ),
        (
            "[calendar]\nclosures = [2026-11-02, 'Monday']",
            "calendar.closures[1].start: 'Monday' is not a date; use YYYY-MM-DD",
        ),
        (
            "[calendar]\nclosures = [{start = 2026-10-30, end = 2026-10-26}]",
            "calendar.closures[0]: ends 2026-10-26 before it starts 2026-10-30",
        ),
        (
            "[calendar]\nbank_holidays_division = 'wales'",
            "calendar.bank_holidays_division: 'wales' is not allowed; use one of "
            "england-and-wales, scotland, northern-ireland",
        ),
    ],
)
def test_wrong_calendar_value_names_key_value_and_what_is_allowed(
    tmp_path: Path, text: str, problem: str
) -> None:
    assert problems_of(tmp_path, text) == [problem]
