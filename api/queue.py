"""The review queue's query: one pydantic model for the queue page's GET form and for
``/api/v1/incidents``.

``IncidentQuery`` names the filters and the order, their bounds and how they become the store's
``IncidentFilters``. The API takes it as its query parameters (``Annotated[IncidentQuery,
Query()]``: a bad value is a 422 naming it); the page validates the URL's values with it
(``from_params``) and explains a refused value in its own words (``page_message``), keeping
what was typed in the form.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import tzinfo
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from starlette.datastructures import QueryParams

from api.params import Day
from monitor.confidence import DEFAULT_LEVELS, LEVELS, Floor
from monitor.store.queries import IncidentFilters
from monitor.store.workflow import ReviewStatus

IncidentSort = Literal[
    "start", "-start", "platform", "-platform", "device", "-device",
    "confidence", "-confidence", "status", "-status",
]  # fmt: skip
"""Sort names; a leading ``-`` sorts descending (kept equal to ``SortKey`` by a test)."""
ConfidenceChoice = Literal["high", "medium", "low", "all"]
"""A confidence level, or ``all`` (every level, low ones too)."""
Name = Annotated[str, Field(max_length=50)]


class IncidentQuery(BaseModel):
    """The queue's filters and order; empty filters mean "any"."""

    model_config = ConfigDict(frozen=True)

    status: list[ReviewStatus] = Field(
        default=[], max_length=3, description="Review states to include."
    )
    platform: list[Name] = Field(
        default=[], description="Any of these (repeat the parameter for several)."
    )
    segment: list[Name] = Field(
        default=[], description="Any of these (repeat the parameter for several)."
    )
    role: list[Name] = Field(
        default=[], description="Any of these (repeat the parameter for several)."
    )
    device: str | None = Field(
        default=None,
        max_length=200,
        description="Part of the device's address, MAC, host or label.",
    )
    date_from: Day | None = Field(
        default=None,
        description="First local day included (the school's time zone), 2000 to 2099.",
    )
    date_to: Day | None = Field(default=None, description="Last local day included, 2000 to 2099.")
    site: str | None = Field(default=None, max_length=100, description="One school.")
    sort: IncidentSort = Field(default="-start", description="Sort key; `-` for descending.")
    confidence: list[ConfidenceChoice] = Field(
        default=[],
        max_length=4,
        description="Confidence levels to include; by default `high` and `medium` (low ones "
        "are counted in `low_hidden`); `all` for every level.",
    )

    @classmethod
    def from_params(cls, params: QueryParams) -> IncidentQuery:
        """The query of a page's URL: empty values are left out, text is stripped, unknown
        keys are ignored. ``pydantic.ValidationError`` for a refused value."""
        values: dict[str, Any] = {}
        for name, field in cls.model_fields.items():
            typed = [value.strip() for value in params.getlist(name) if value.strip()]
            if typed:
                is_list = getattr(field.annotation, "__origin__", None) is list
                values[name] = typed if is_list else typed[0]
        return cls.model_validate(values)

    def levels(self) -> tuple[str, ...]:
        """The confidence levels asked for: by default high and medium; ``all``: every one."""
        if not self.confidence:
            return tuple(DEFAULT_LEVELS)
        if "all" in self.confidence:
            return tuple(LEVELS)
        return tuple(dict.fromkeys(self.confidence))

    def filters(self, tz: tzinfo, floor: Floor) -> IncidentFilters:
        """The store's filters (``ValueError`` for a range that ends before it starts)."""
        return IncidentFilters(
            statuses=tuple(dict.fromkeys(status.value for status in self.status)),
            platforms=tuple(self.platform),
            segments=tuple(self.segment),
            roles=tuple(self.role),
            device=(self.device.strip() or None) if self.device else None,
            date_from=self.date_from,
            date_to=self.date_to,
            tz=tz,
            site=self.site,
            levels=self.levels(),
            floor=floor,
        )

    def audit_filters(self, filters: IncidentFilters) -> dict[str, object]:
        """The query as an API list read's audit row names it: the filters used (``filters``,
        made by ``filters()``), the sort and the levels asked; empty ones left out."""
        asked: dict[str, object] = {
            "statuses": list(filters.statuses), "platforms": list(filters.platforms),
            "segments": list(filters.segments), "roles": list(filters.roles),
            "device": filters.device, "site": self.site, "sort": self.sort,
            "confidence": list(self.confidence),
            "date_from": self.date_from.isoformat() if self.date_from else None,
            "date_to": self.date_to.isoformat() if self.date_to else None,
        }  # fmt: skip
        return {key: value for key, value in asked.items() if value}


FIELD_WORDS = {"date_from": "From date", "date_to": "To date", "status": "Status",
               "sort": "Sort order", "confidence": "Confidence"}  # fmt: skip
"""How the page's form names a field in a message."""


def page_message(errors: Sequence[Any]) -> str:
    """The refused values of the queue's form as sentences for the page: ``From date
    '10/03/2026': use the form YYYY-MM-DD.``, ``Unknown sort order 'colour'.``"""
    parts = []
    for error in errors:
        loc = [part for part in error.get("loc", ()) if isinstance(part, str)]
        name = loc[0] if loc else ""
        words = FIELD_WORDS.get(name, name)
        typed = error.get("input")
        kind = str(error.get("type", ""))
        if kind == "date_out_of_range":
            parts.append(f"{words} {error.get('msg')}.")
        elif name.startswith("date_"):
            parts.append(f"{words} {typed!r}: use the form YYYY-MM-DD.")
        elif kind in ("enum", "literal_error"):
            parts.append(f"Unknown {words.lower()} {typed!r}: {error.get('msg')}.")
        else:
            parts.append(f"{words or 'The request'}: {error.get('msg', 'not valid')}.")
    return " ".join(dict.fromkeys(parts))
