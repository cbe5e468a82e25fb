"""What a reader may see, and which slice of it: site scoping and page windows.

A trust's schools share one database, and a reviewer may be limited to one school (the user's
``site``). Every query that returns incidents or devices narrows by :func:`site_condition`, so
a row of another site is simply not there: reading it by id raises ``LookupError``, exactly as
for a row that does not exist.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, or_, true
from sqlalchemy.orm import InstrumentedAttribute

MAX_PER_PAGE = 500
"""The largest page a caller may ask for."""


def site_condition(
    column: InstrumentedAttribute[str] | InstrumentedAttribute[str | None], site_scope: str | None
) -> ColumnElement[bool]:
    """``column = site_scope``, or no restriction when ``site_scope`` is None (every site)."""
    if site_scope is None:
        return true()
    return column == site_scope


def contains_text(columns: Sequence[Any], text: str, dialect: str) -> ColumnElement[bool]:
    """Any of ``columns`` contains ``text``, ignoring case; ``%`` and ``_`` are literal.

    SQLite's ``LIKE`` already ignores ASCII case (``ILIKE`` would lower every row twice);
    PostgreSQL needs ``ILIKE``.
    """
    pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    if dialect == "sqlite":
        return or_(*(column.like(pattern, escape="\\") for column in columns))
    return or_(*(column.ilike(pattern, escape="\\") for column in columns))


@dataclass(frozen=True, slots=True)
class Window:
    """One page of a listing: 1-based ``page`` of ``per_page`` rows."""

    page: int
    per_page: int

    def __post_init__(self) -> None:
        if self.page < 1:
            raise ValueError(f"page {self.page}: pages are numbered from 1")
        if not 1 <= self.per_page <= MAX_PER_PAGE:
            raise ValueError(f"per_page {self.per_page}: allowed 1 to {MAX_PER_PAGE}")

    @property
    def offset(self) -> int:
        """Rows before this page."""
        return (self.page - 1) * self.per_page

    def pages(self, total: int) -> int:
        """How many pages ``total`` rows fill (at least 1, so an empty list has one page)."""
        return max(1, -(-total // self.per_page))
