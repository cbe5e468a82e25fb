"""The review queue's one query model: the page's URL and the API's parameters become the same
store filters; refused values are explained in the page's words."""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError
from starlette.datastructures import QueryParams

from api.queue import IncidentQuery, page_message
from monitor.confidence import DEFAULT_FLOOR, DEFAULT_LEVELS, LEVELS

LONDON = ZoneInfo("Europe/London")


def test_a_page_url_becomes_the_stores_filters() -> None:
    params = QueryParams(
        "status=new&status=in_review&platform=+instagram+&segment=&date_from=2026-03-02&device=laptop&site=annex"
    )
    filters = IncidentQuery.from_params(params).filters(LONDON, DEFAULT_FLOOR)
    assert (filters.statuses, filters.platforms, filters.segments) == (
        ("new", "in_review"), ("instagram",), (),
    )  # fmt: skip
    assert (filters.date_from, filters.device, filters.site) == (
        date(2026, 3, 2),
        "laptop",
        "annex",
    )


@pytest.mark.parametrize(
    ("confidence", "levels"),
    [([], tuple(DEFAULT_LEVELS)), (["all"], tuple(LEVELS)), (["low", "low"], ("low",))],
)
def test_confidence_defaults_to_high_and_medium_and_all_means_every_level(
    confidence: list[str], levels: tuple[str, ...]
) -> None:
    assert IncidentQuery.model_validate({"confidence": confidence}).levels() == levels


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("date_from=10/03/2026", "From date '10/03/2026': use the form YYYY-MM-DD."),
        ("date_to=2150-01-01", "To date 2150-01-01 is outside 2000-01-01 to 2099-12-31."),
        ("status=archived", "Unknown status 'archived'"),
        ("sort=colour", "Unknown sort order 'colour'"),
        ("confidence=sure", "Unknown confidence 'sure'"),
    ],
)
def test_a_refused_value_is_explained_in_the_pages_words(query: str, message: str) -> None:
    with pytest.raises(ValidationError) as refused:
        IncidentQuery.from_params(QueryParams(query))
    assert message in page_message(refused.value.errors())


def test_the_api_audit_names_only_the_filters_given() -> None:
    query = IncidentQuery.model_validate({"platform": ["instagram"], "status": ["new"]})
    assert query.audit_filters(query.filters(LONDON, DEFAULT_FLOOR)) == {
        "platforms": ["instagram"], "statuses": ["new"], "sort": "-start",
    }  # fmt: skip
