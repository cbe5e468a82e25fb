"""Server-drawn bar charts: geometry, escaping, no inline styles, and the table alternative."""

from __future__ import annotations

import pytest
from bs4 import BeautifulSoup

from api.pages.charts import (
    BAR_GAP,
    BAR_HEIGHT,
    LABEL_MAX_CHARS,
    LABEL_WIDTH,
    VALUE_WIDTH,
    WIDTH,
    bar_chart,
)

ROOM = WIDTH - LABEL_WIDTH - VALUE_WIDTH


def test_bar_chart_scales_the_largest_value_to_the_full_width() -> None:
    chart = bar_chart("Incidents by platform", "Platform", [("instagram", 10), ("tiktok", 5)])
    assert [bar.width for bar in chart.bars] == [ROOM, ROOM / 2]
    assert [bar.y for bar in chart.bars] == [BAR_GAP, BAR_GAP + BAR_HEIGHT + BAR_GAP]
    assert chart.height == BAR_GAP + 2 * (BAR_HEIGHT + BAR_GAP)


@pytest.mark.parametrize(
    ("values", "widths"),
    [
        ([("a", 0), ("b", 0)], [0.0, 0.0]),  # nothing to scale against
        ([("a", 1), ("b", 100_000)], [1.0, ROOM]),  # a tiny count stays visible
        ([], []),
    ],
)
def test_bar_chart_edge_cases(values: list[tuple[str, int]], widths: list[float]) -> None:
    assert [bar.width for bar in bar_chart("t", "k", values).bars] == widths


def test_bar_chart_is_empty_when_every_value_is_zero() -> None:
    assert bar_chart("t", "k", [("a", 0)]).empty
    assert bar_chart("t", "k", []).empty
    assert not bar_chart("t", "k", [("a", 0), ("b", 1)]).empty


def test_bar_chart_refuses_negative_values() -> None:
    with pytest.raises(ValueError, match="bar 'a' has a negative value -1"):
        bar_chart("t", "k", [("a", -1)])


def test_rows_are_the_text_alternative_in_chart_order() -> None:
    chart = bar_chart("t", "Day", [("Mon", 3), ("Tue", 0)])
    assert chart.rows == (("Mon", 3), ("Tue", 0))


def test_svg_has_no_style_attributes_and_is_hidden_from_screen_readers() -> None:
    svg = bar_chart("t", "k", [("instagram", 4), ("snapchat", 2)]).svg()
    soup = BeautifulSoup(str(svg), "html.parser")
    assert soup.find(style=True) is None and soup.find("style") is None
    root = soup.find("svg")
    assert root is not None and root["aria-hidden"] == "true"
    assert [r["class"] for r in soup.find_all("rect")] == [["chart__bar"], ["chart__bar"]]
    labels = [t.get_text() for t in soup.find_all("text", class_="chart__label")]
    values = [t.get_text() for t in soup.find_all("text", class_="chart__value")]
    assert (labels, values) == (["instagram", "snapchat"], ["4", "2"])


def test_svg_escapes_labels_and_shortens_long_ones() -> None:
    svg = str(bar_chart("t", "k", [("<script>x</script>", 1), ("a" * 40, 2)]).svg())
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    soup = BeautifulSoup(svg, "html.parser")
    long_label = soup.find_all("text", class_="chart__label")[1].get_text()
    assert long_label == "a" * (LABEL_MAX_CHARS - 1) + "…"
