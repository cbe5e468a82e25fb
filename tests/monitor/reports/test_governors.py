"""The governors' termly report from a real database: content, privacy, print."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from playwright.sync_api import Browser
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from monitor.reports.governors import build_governors_report, run_report_governors
from tests.monitor.reports.conftest import (
    device_identifiers,
    free_port,
    make_settings,
    take_screenshot,
)

TERM = (date(2026, 9, 3), date(2026, 12, 18))
NOW = datetime(2026, 12, 18, 16, tzinfo=UTC)


def write_report(engine_url: str, tmp_path: Path) -> tuple[str, Path]:
    out = tmp_path / "reports" / "governors-autumn-2026.html"
    settings = make_settings(engine_url, tmp_path, free_port())
    line = run_report_governors(settings, start=TERM[0], end=TERM[1], out=out, now=NOW)
    return line, out


def test_run_report_governors_writes_the_page(
    school: Engine, engine_url: str, tmp_path: Path
) -> None:
    line, out = write_report(engine_url, tmp_path)
    assert line == (
        f"wrote the governors' report for 2026-09-03 to 2026-12-18 to {out}: "
        "7 incidents, 3 checks, 1 list change"
    )
    html = out.read_text(encoding="utf-8")
    assert "Hill School: filtering and monitoring report for governors" in html
    assert "Art department uses it for the exhibition" in html
    assert "Connections that hid the site&#39;s name" in html
    assert "Incidents per week." in html  # a term; a year goes by month
    assert '<th scope="row">Week of 16 November</th>' in html


def test_run_report_governors_holds_no_device_identifier(
    school: Engine, engine_url: str, tmp_path: Path
) -> None:
    _, out = write_report(engine_url, tmp_path)
    html = out.read_text(encoding="utf-8")
    identifiers = device_identifiers(school)
    assert len(identifiers) >= 10
    assert sorted(i for i in identifiers if i in html) == []


def test_build_governors_report_refuses_a_period_backwards(
    school: Engine, engine_url: str, tmp_path: Path
) -> None:
    settings = make_settings(engine_url, tmp_path, free_port())
    with Session(school) as db, pytest.raises(ValueError, match="ends .* before it starts"):
        build_governors_report(db, settings, date(2026, 12, 1), date(2026, 11, 1), now=NOW)


@pytest.mark.browser
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_governors_report_renders_and_prints_in_chromium(
    school: Engine,
    engine_url: str,
    tmp_path: Path,
    chromium: Browser,
) -> None:
    _, out = write_report(engine_url, tmp_path)
    png = take_screenshot(chromium, out, "governors-report.png", 900)
    assert png.stat().st_size > 20_000
    page = chromium.new_page()
    page.goto(out.as_uri())
    page.emulate_media(media="print")
    # Printed, the page loses its grey background.
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(255, 255, 255)"
    pdf = page.pdf(format="A4", print_background=True)
    page.close()
    assert pdf.startswith(b"%PDF-")
    (png.parent / "governors-report.pdf").write_bytes(pdf)
