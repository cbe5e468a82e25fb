"""Site scoping narrows to one site or none; page windows are validated."""

from __future__ import annotations

import pytest
from sqlalchemy.dialects import sqlite

from monitor.store.models import IncidentRecord
from monitor.store.queries.scope import MAX_PER_PAGE, Window, site_condition


def test_site_condition_narrows_to_the_site_or_not_at_all() -> None:
    scoped = site_condition(IncidentRecord.site, "annex").compile(dialect=sqlite.dialect())
    assert str(scoped) == "incidents.site = ?"
    assert scoped.params == {"site_1": "annex"}
    assert str(site_condition(IncidentRecord.site, None).compile(dialect=sqlite.dialect())) == "1"


@pytest.mark.parametrize(
    ("page", "per_page", "total", "offset", "pages"),
    [(1, 50, 0, 0, 1), (1, 50, 50, 0, 1), (2, 50, 51, 50, 2), (3, 10, 100_000, 20, 10_000)],
)
def test_window_offset_and_pages(
    page: int, per_page: int, total: int, offset: int, pages: int
) -> None:
    window = Window(page, per_page)
    assert (window.offset, window.pages(total)) == (offset, pages)


@pytest.mark.parametrize(("page", "per_page"), [(0, 50), (-1, 50), (1, 0), (1, MAX_PER_PAGE + 1)])
def test_window_refuses_bad_pages(page: int, per_page: int) -> None:
    with pytest.raises(ValueError, match="page"):
        Window(page, per_page)
