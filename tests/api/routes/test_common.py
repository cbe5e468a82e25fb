"""``api/routes/__init__.py``: the period and range checks every route shares."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from fastapi.exceptions import RequestValidationError

from api.routes import check_instant, local_period

LONDON = ZoneInfo("Europe/London")
NOW = datetime(2026, 3, 29, 23, 30, tzinfo=UTC)
"""00:30 on Monday 30 March in London (summer time)."""


@pytest.mark.parametrize(
    ("date_from", "date_to", "expected"),
    [
        (None, None, (date(2026, 3, 24), date(2026, 3, 30))),
        (date(2026, 3, 1), None, (date(2026, 3, 1), date(2026, 3, 7))),
        (None, date(2026, 3, 10), (date(2026, 3, 4), date(2026, 3, 10))),
        (date(2099, 12, 30), None, (date(2099, 12, 30), date(2099, 12, 31))),
        (None, date(2000, 1, 2), (date(2000, 1, 1), date(2000, 1, 2))),
        (date(2026, 1, 1), date(2026, 1, 1), (date(2026, 1, 1), date(2026, 1, 1))),
    ],
)
def test_local_period_defaults_to_seven_local_days(
    date_from: date | None, date_to: date | None, expected: tuple[date, date]
) -> None:
    assert local_period(date_from, date_to, LONDON, NOW) == expected


@pytest.mark.parametrize(
    ("date_from", "date_to", "field", "message"),
    [
        (date(2026, 3, 2), date(2026, 3, 1), "date_to", "before date_from"),
        (date(1999, 12, 31), None, "date_from", "outside 2000-01-01 to 2099-12-31"),
        (None, date(2100, 1, 1), "date_to", "outside"),
        (date(2025, 1, 1), date(2026, 3, 1), "date_to", "longer than 400 days"),
    ],
)
def test_local_period_refuses_with_the_field_and_why(
    date_from: date | None, date_to: date | None, field: str, message: str
) -> None:
    with pytest.raises(RequestValidationError) as caught:
        local_period(date_from, date_to, LONDON, NOW)
    (error,) = caught.value.errors()
    assert error["loc"] == ("query", field)
    assert message in error["msg"]


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        (None, None),
        (datetime(2026, 3, 10, 10, 0), datetime(2026, 3, 10, 10, 0, tzinfo=UTC)),  # noqa: DTZ001 - naive is taken as UTC
        (
            datetime(2026, 3, 10, 11, 0, tzinfo=timezone(timedelta(hours=1))),
            datetime(2026, 3, 10, 10, 0, tzinfo=UTC),
        ),
    ],
)
def test_check_instant_gives_utc(when: datetime | None, expected: datetime | None) -> None:
    assert check_instant("since", when) == expected


def test_check_instant_refuses_far_dates() -> None:
    with pytest.raises(RequestValidationError):
        check_instant("since", datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5))))
