"""Bar charts drawn on the server as inline SVG, so the dashboard needs no JavaScript.

The Content-Security-Policy forbids ``style="..."`` attributes, also inside SVG: the drawing
uses presentation attributes (``x``, ``width``...) and classes styled in ``static/style.css``.
Every chart is hidden from screen readers (``aria-hidden``) because the page shows the same
figures as a table next to it (``BarChart.rows``): the table is the accessible version.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from markupsafe import Markup

WIDTH = 520
"""The drawing's coordinate width; the SVG scales to its container."""
BAR_HEIGHT = 24
BAR_GAP = 8
LABEL_WIDTH = 190
"""Room on the left for the bar labels."""
VALUE_WIDTH = 56
"""Room on the right for the values."""
LABEL_MAX_CHARS = 22


@dataclass(frozen=True, slots=True)
class Bar:
    """One bar: its label, value and geometry in the drawing's coordinates."""

    label: str
    value: int
    y: int
    width: float
    """0 for a zero value; at least 1 for any other, so a small count stays visible."""


@dataclass(frozen=True, slots=True)
class BarChart:
    """A horizontal bar chart and the table that says the same thing."""

    title: str
    """What the chart shows; the caption of its table too."""
    key_heading: str
    """The heading of the table's first column (``Platform``, ``Day``...)."""
    bars: tuple[Bar, ...]
    height: int
    empty_text: str = "No incidents in this period."
    """What the page says instead of an empty chart."""

    @property
    def rows(self) -> tuple[tuple[str, int], ...]:
        """(label, value) in the chart's order: the text alternative."""
        return tuple((bar.label, bar.value) for bar in self.bars)

    @property
    def empty(self) -> bool:
        """No bar, or every bar zero: the page says so instead of drawing nothing."""
        return not any(bar.value for bar in self.bars)

    def svg(self) -> Markup:
        """The chart as an inline ``<svg>`` element (escaped; no style attributes)."""
        parts = [
            Markup(
                '<svg class="chart" viewBox="0 0 {} {}" width="100%" '
                'aria-hidden="true" focusable="false" preserveAspectRatio="xMinYMin meet">'
            ).format(WIDTH, self.height)
        ]
        for bar in self.bars:
            middle = bar.y + BAR_HEIGHT / 2
            parts.append(
                Markup(
                    '<text class="chart__label" x="{}" y="{}" text-anchor="end" '
                    'dominant-baseline="middle">{}</text>'
                    '<rect class="chart__bar" x="{}" y="{}" width="{}" height="{}"></rect>'
                    '<text class="chart__value" x="{}" y="{}" dominant-baseline="middle">{}</text>'
                ).format(
                    LABEL_WIDTH - 8,
                    middle,
                    _shorten(bar.label),
                    LABEL_WIDTH,
                    bar.y,
                    f"{bar.width:.1f}",
                    BAR_HEIGHT,
                    f"{LABEL_WIDTH + bar.width + 6:.1f}",
                    middle,
                    bar.value,
                )
            )
        parts.append(Markup("</svg>"))
        return Markup("").join(parts)


def bar_chart(
    title: str,
    key_heading: str,
    values: Iterable[tuple[str, int]],
    *,
    empty_text: str = "No incidents in this period.",
) -> BarChart:
    """A chart of ``values`` (label, count) in the order given; the longest bar is the largest
    count. Negative counts are refused (``ValueError``)."""
    items = list(values)
    for label, value in items:
        if value < 0:
            raise ValueError(f"chart {title!r}: bar {label!r} has a negative value {value}")
    largest = max((value for _, value in items), default=0)
    room = WIDTH - LABEL_WIDTH - VALUE_WIDTH
    bars = tuple(
        Bar(
            label=label,
            value=value,
            y=BAR_GAP + n * (BAR_HEIGHT + BAR_GAP),
            width=0.0 if value == 0 else max(1.0, room * value / largest),
        )
        for n, (label, value) in enumerate(items)
    )
    height = BAR_GAP + len(bars) * (BAR_HEIGHT + BAR_GAP)
    return BarChart(title, key_heading, bars, height, empty_text)


def _shorten(label: str) -> str:
    if len(label) <= LABEL_MAX_CHARS:
        return label
    return label[: LABEL_MAX_CHARS - 1] + "…"
