"""`hallmonitor users`: add, list and refuse what would not work, in one line."""

from __future__ import annotations

from pathlib import Path

from tests.hallmonitor.cli.invoke import invoke, write_config


def test_db_upgrade_then_users_add_and_list(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    status, out, _ = invoke(config, "db", "upgrade")
    assert status == 0 and "schema upgraded" in out
    status, out, err = invoke(
        config,
        "users",
        "add",
        "head",
        "--role",
        "reviewer",
        "--name",
        "Ms Head",
        stdin="a long passphrase\na long passphrase\n",
    )
    assert status == 0, err
    status, out, _ = invoke(config, "users", "list")
    assert status == 0 and "head" in out and "reviewer" in out


def test_users_add_refuses_a_short_password_with_one_line(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    invoke(config, "db", "upgrade")
    status, _, err = invoke(
        config, "users", "add", "head", "--role", "reviewer", stdin="short\nshort\n"
    )
    assert status == 1
    assert "12 characters" in err and "Traceback" not in err
