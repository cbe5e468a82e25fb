"""What the app accepts from a request, in one place: ids, page numbers, days and text.

Pages and the JSON API share these rules, so a value one refuses the other refuses too, with
a 4xx that names the value (422 JSON under ``/api/``, a 400 page elsewhere), never a 500:

- an id is 1 to ``MAX_ID``: ids are 64-bit integers in the database, and a larger number
  overflows the driver (SQLite) or the server's ``bigint`` (PostgreSQL);
- a page number is 1 to ``MAX_PAGE`` (offsets stay in range);
- a day is ``EARLIEST_DAY`` to ``LATEST_DAY``: far enough from ``date.max`` that the end of a
  range (midnight after its last day) and the time zone's offset can still be computed;
- text never holds a NUL character (PostgreSQL refuses it in a text value) or a lone surrogate
  (a JSON ``\\ud800`` escape makes one; it cannot be written as UTF-8).

``reject_bad_url``, an app-wide dependency, applies the text rule to every path and query value
of every route; ``Text`` applies it to a field of a form or a JSON body.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Annotated, Any

from fastapi import Path, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import AfterValidator
from pydantic_core import PydanticCustomError

MAX_ID = 2**62
"""The largest id a path may name (ids are 64-bit; the margin keeps arithmetic safe)."""
MAX_PAGE = 100_000
"""The deepest page a listing serves (keeps offsets in range)."""
EARLIEST_DAY = date(2000, 1, 1)
LATEST_DAY = date(2099, 12, 31)
"""Dates and times outside these bounds are refused: nothing is recorded there."""

IncidentId = Annotated[int, Path(ge=1, le=MAX_ID, description="The incident's id.")]
DeviceId = Annotated[int, Path(ge=1, le=MAX_ID, description="The device's id.")]
TokenId = Annotated[int, Path(ge=1, le=MAX_ID, description="The API token's id.")]
Page = Annotated[int, Query(ge=1, le=MAX_PAGE, description="Page number, from 1.")]


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be accepted as text, or None when it can."""
    if "\x00" in value:
        return "must not contain a NUL character (\\x00)"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "must not contain a lone surrogate (an invalid \\ud800-\\udfff character)"
    return None


def day_problem(day: date) -> str | None:
    """Why ``day`` is out of bounds, or None when it is within them."""
    if EARLIEST_DAY <= day <= LATEST_DAY:
        return None
    return f"{day} is outside {EARLIEST_DAY} to {LATEST_DAY}"


def _text(value: str) -> str:
    problem = text_problem(value)
    if problem is not None:
        raise PydanticCustomError("text", problem)
    return value


def _day(value: date) -> date:
    problem = day_problem(value)
    if problem is not None:
        raise PydanticCustomError("date_out_of_range", problem)
    return value


Text = Annotated[str, AfterValidator(_text)]
"""A string field of a form or JSON body: no NUL, no lone surrogate (else 422/400)."""
Day = Annotated[date, AfterValidator(_day)]
"""A date parameter within ``EARLIEST_DAY``..``LATEST_DAY`` (else 422/400)."""


def invalid(location: str, name: str, message: str, value: object) -> RequestValidationError:
    """A 422 answer for one query or path value, shaped like FastAPI's own."""
    return RequestValidationError(
        [{"type": "value_error", "loc": (location, name), "msg": message, "input": value}]
    )


async def reject_bad_url(request: Request) -> None:
    """App-wide dependency: every path and query value must be acceptable text (before any
    handler or database sees it)."""
    values = [("path", name, str(value)) for name, value in request.path_params.items()]
    values += [("query", name, value) for name, value in request.query_params.multi_items()]
    for location, name, value in values:
        problem = text_problem(value)
        if problem is not None:
            raise invalid(location, name, problem, value)


def printable(value: Any) -> Any:
    """``value`` (an error list) with lone surrogates written as ``\\udcff``, so that it can
    be sent as UTF-8 JSON."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, dict):
        return {printable(key): printable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(printable(item) for item in value)
    return value


def validation_message(errors: Sequence[Any]) -> str:
    """The refused values of a request as one sentence for a page: ``"incident_id: Input
    should be less than or equal to ...; page: ..."``. Never echoes what was sent."""
    parts = []
    for error in errors:
        names = [str(part) for part in error.get("loc", ())[1:] if isinstance(part, str)]
        parts.append(f"{'.'.join(names) or 'the request'}: {error.get('msg', 'not valid')}")
    return "Check what you entered. " + "; ".join(dict.fromkeys(parts)) + "."


def sentence(message: str) -> str:
    """A message of the store (``"no incident 42"``) as a sentence to show (``"No incident
    42."``)."""
    text = message[:1].upper() + message[1:]
    return text if text.endswith(".") else text + "."
