"""`hallmonitor db upgrade` and `purge`."""

from __future__ import annotations

from pathlib import Path

from tests.hallmonitor.cli.invoke import invoke, write_config


def test_purge_covers_this_school_unless_asked_for_every_site(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    invoke(config, "db", "upgrade")
    status, out, _ = invoke(config, "purge")
    assert status == 0
    assert "(site " in out and "purged 0 observations" in out
    status, out, _ = invoke(config, "purge", "--all-sites")
    assert status == 0
    assert "(every site)" in out


def test_db_upgrade_creates_the_schema_and_is_safe_to_run_again(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    first = invoke(config, "db", "upgrade")
    again = invoke(config, "db", "upgrade")
    assert first[0] == 0 and "schema upgraded" in first[1]
    assert again[0] == 0, again[2]
