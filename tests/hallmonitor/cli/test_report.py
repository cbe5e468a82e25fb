"""`hallmonitor report`: the weekly preview."""

from __future__ import annotations

from pathlib import Path

from tests.hallmonitor.cli.invoke import invoke, write_config


def test_report_weekly_preview_writes_both_versions(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    invoke(config, "db", "upgrade")
    status, _, err = invoke(
        config, "report", "weekly", "--week", "2026-W47", "--preview", "--out-dir", str(tmp_path)
    )
    assert status == 0, err
    assert (tmp_path / "weekly-2026-W47-reviewer.html").exists()
    assert (tmp_path / "weekly-2026-W47-governor.txt").exists()
