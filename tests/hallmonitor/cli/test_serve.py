"""`hallmonitor serve` as a command: an old schema stops it with one line naming the fix (the
server itself: tests/hallmonitor/test_serve.py)."""

from __future__ import annotations

from pathlib import Path

from tests.hallmonitor.cli.invoke import invoke, write_config


def test_serve_on_a_database_without_schema_names_the_fix(tmp_path: Path) -> None:
    status, _, err = invoke(write_config(tmp_path), "serve")
    assert status == 1
    assert "hallmonitor db upgrade" in err and "Traceback" not in err
