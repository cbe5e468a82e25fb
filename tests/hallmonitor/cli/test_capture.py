"""`hallmonitor capture` as a command: what stops it before capturing is one line naming the fix
(the daemon itself: tests/monitor/test_runner.py)."""

from __future__ import annotations

from pathlib import Path

from tests.hallmonitor.cli.invoke import invoke


def test_capture_on_a_database_without_schema_names_the_fix(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        f'[database]\ndata_dir = "{tmp_path / "data"}"\n'
        '[capture]\ninterfaces = ["hm-no-such0"]\nmetrics_listen = ""\n'
    )
    status, _, err = invoke(config, "capture")
    assert status == 1
    assert "hallmonitor db upgrade" in err and "Traceback" not in err
