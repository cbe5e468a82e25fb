"""The request values the app accepts: ids, page numbers, days and text (``api/params.py``)."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, TypeAdapter, ValidationError

from api.params import (
    EARLIEST_DAY,
    LATEST_DAY,
    MAX_ID,
    Day,
    Text,
    day_problem,
    printable,
    text_problem,
    validation_message,
)
from tests.api.conftest import AppFactory

TEXT = TypeAdapter(Text)
DAY = TypeAdapter(Day)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("", None),
        ("Room 4 laptop (Ms Khan)", None),
        ("\ufffd\u202e\t\r\n", None),
        ("a\x00b", "must not contain a NUL character (\\x00)"),
        ("\x00", "must not contain a NUL character (\\x00)"),
        ("a\udcffb", "must not contain a lone surrogate (an invalid \\ud800-\\udfff character)"),
        ("\ud800", "must not contain a lone surrogate (an invalid \\ud800-\\udfff character)"),
    ],
)
def test_text_refuses_nul_and_lone_surrogates_only(value: str, problem: str | None) -> None:
    assert text_problem(value) == problem
    if problem is None:
        assert TEXT.validate_python(value) == value
    else:
        with pytest.raises(ValidationError, match=problem.replace("\\", "\\\\").split(" (")[0]):
            TEXT.validate_python(value)


@given(st.text())
def test_text_accepts_exactly_what_postgresql_and_utf8_can_hold(value: str) -> None:
    fits = "\x00" not in value and not any(0xD800 <= ord(c) <= 0xDFFF for c in value)
    assert (text_problem(value) is None) == fits


def test_text_in_a_json_body_refuses_a_surrogate_escape() -> None:
    """FastAPI reads a body with ``json.loads``, which turns ``\\udcff`` into a lone surrogate."""

    class Body(BaseModel):
        label: Text | None

    with pytest.raises(ValidationError, match="lone surrogate"):
        Body.model_validate(json.loads(json.dumps({"label": "\udcff"})))
    assert Body.model_validate_json('{"label": null}').label is None


@pytest.mark.parametrize(
    "day", [EARLIEST_DAY, LATEST_DAY, date(2026, 11, 23)], ids=["first", "last", "term"]
)
def test_days_within_bounds_are_accepted(day: date) -> None:
    assert day_problem(day) is None
    assert DAY.validate_python(day.isoformat()) == day


@pytest.mark.parametrize(
    "day",
    [date.min, EARLIEST_DAY - timedelta(days=1), LATEST_DAY + timedelta(days=1), date.max],
    ids=["min", "day-before", "day-after", "max"],
)
def test_days_out_of_bounds_are_refused_naming_the_bounds(day: date) -> None:
    assert day_problem(day) == f"{day} is outside 2000-01-01 to 2099-12-31"
    with pytest.raises(ValidationError, match="is outside 2000-01-01 to 2099-12-31"):
        DAY.validate_python(day.isoformat())


def test_the_last_day_leaves_room_for_the_end_of_its_range() -> None:
    """A range ends at midnight after its last day, in a time zone up to 14 hours off."""
    assert LATEST_DAY + timedelta(days=2) < date.max
    assert EARLIEST_DAY - timedelta(days=2) > date.min


def test_the_largest_id_fits_a_64_bit_column() -> None:
    assert MAX_ID < 2**63 - 1


def test_printable_escapes_lone_surrogates_everywhere_in_an_error_list() -> None:
    errors = [{"loc": ("body", "\udcff"), "msg": "bad", "input": {"label": "a\udcffb"}, "n": 3}]
    shown = printable(errors)
    assert shown == [{"loc": ("body", "\\udcff"), "msg": "bad", "input": {"label": "a\\udcffb"}, "n": 3}]  # fmt: skip
    json.dumps(shown, ensure_ascii=False).encode("utf-8")


def test_validation_message_names_each_refused_value_once_without_echoing_it() -> None:
    errors = [
        {
            "loc": ("path", "incident_id"),
            "msg": "Input should be less than or equal to 9",
            "input": "99",
        },  # fmt: skip
        {"loc": ("query", "page"), "msg": "Input should be a valid integer", "input": "x\x00"},
        {"loc": ("query", "page"), "msg": "Input should be a valid integer", "input": "x\x00"},
        {"loc": ("body",), "msg": "Field required", "input": None},
    ]
    assert validation_message(errors) == (
        "Check what you entered. incident_id: Input should be less than or equal to 9; "
        "page: Input should be a valid integer; the request: Field required."
    )


def test_nul_in_any_url_value_is_refused_before_the_handler(app_client: AppFactory) -> None:
    harness = app_client()
    page = harness.client.get("/login?next=/a%00b")
    assert page.status_code == 400
    assert page.context["page"].message == (  # type: ignore[attr-defined]
        "Check what you entered. next: must not contain a NUL character (\\x00)."
    )
    api = harness.client.get("/api/v1/incidents?platform=a%00b")
    assert api.status_code == 422
    assert api.json()["detail"] == [
        {
            "type": "value_error",
            "loc": ["query", "platform"],
            "msg": "must not contain a NUL character (\\x00)",
            "input": "a\x00b",
        }
    ]
