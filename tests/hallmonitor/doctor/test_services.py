"""`hallmonitor doctor`'s checks of the database, the lists and the mail server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from alembic import command

from hallmonitor.doctor.services import check_database, check_lists, check_smtp
from monitor.store.db import alembic_config, head_revision, make_engine
from tests.hallmonitor.doctor.sensor import (
    settings,
)
from tests.monitor.reports.conftest import free_port

# --- database -------------------------------------------------------------------------------


def test_a_database_at_the_latest_migration_passes(engine_url: str) -> None:
    result = check_database(engine_url)
    assert result.ok, result.detail
    assert result.detail.endswith(f"reachable, schema at the latest revision {head_revision()}")


def test_an_empty_database_fails_with_db_upgrade(empty_url: str) -> None:
    engine = make_engine(empty_url)  # an SQLite file exists once it is opened
    engine.connect().close()
    engine.dispose()

    result = check_database(empty_url)
    assert not result.ok
    assert result.detail.endswith("has no schema (an empty database)")
    assert "hallmonitor db upgrade" in result.fix


def test_a_database_at_an_old_migration_fails_with_db_upgrade(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    config = alembic_config(url)
    engine = make_engine(url)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "561acb6a50cb")
    engine.dispose()

    result = check_database(url)

    assert not result.ok
    assert result.detail == (
        f"{url} is at schema revision 561acb6a50cb; this version needs {head_revision()}"
    )
    assert result.fix.startswith("run `hallmonitor db upgrade`")


def test_a_missing_sqlite_file_fails_without_being_created(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'none.db'}"
    result = check_database(url)
    assert not result.ok
    assert result.detail == f"{url} does not exist yet"
    assert not (tmp_path / "none.db").exists()


def test_an_unreachable_postgresql_server_fails_with_what_to_check() -> None:
    url = f"postgresql://hm:secret@127.0.0.1:{free_port()}/hallmonitor"

    result = check_database(url)

    assert not result.ok
    assert result.detail.startswith(f"{url.replace('secret', '***')} cannot be reached: ")
    assert "secret" not in result.detail
    assert result.fix.startswith("check database.url")


# --- lists ----------------------------------------------------------------------------------


def test_the_shipped_lists_pass_with_their_size(tmp_path: Path) -> None:
    result = check_lists(settings(tmp_path))
    assert result.ok
    assert result.detail.startswith("20 platforms, ")
    assert result.detail.endswith(" allowlist entries from 1 directory")


def test_a_broken_list_directory_fails_naming_the_file_and_line(tmp_path: Path) -> None:
    lists = tmp_path / "lists.d"
    lists.mkdir()
    (lists / "chatter.txt").write_text(
        "# platform: chatter\n# name: Chatter\n# category: social\nchatter..example primary\n"
    )

    result = check_lists(settings(tmp_path, lists={"directories": [str(lists)]}))

    assert not result.ok
    assert result.detail.startswith(f"{lists / 'chatter.txt'}:4: ")
    assert "hallmonitor lists check" in result.fix


def test_a_list_directory_that_does_not_exist_fails(tmp_path: Path) -> None:
    result = check_lists(settings(tmp_path, lists={"directories": [str(tmp_path / "nope")]}))
    assert not result.ok
    assert "is not a directory" in result.detail


# --- smtp -----------------------------------------------------------------------------------


class Accepting:
    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        return "250 OK"


def mail(port: int) -> dict[str, Any]:
    return {
        "enabled": True,
        "host": "127.0.0.1",
        "port": port,
        "security": "none",
        "reviewers": ["head@hill-school.example"],
        "timeout_s": 5,
    }


def test_smtp_is_skipped_when_mail_is_disabled(tmp_path: Path) -> None:
    result = check_smtp(settings(tmp_path))
    assert result.ok
    assert result.detail == "mail disabled (mail.enabled = false): nothing to check"


def test_a_reachable_smtp_server_passes(tmp_path: Path) -> None:
    controller = Controller(Accepting(), hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        result = check_smtp(settings(tmp_path, mail=mail(controller.port)))
    finally:
        controller.stop()
    assert result.ok, result.detail
    assert result.detail == f"127.0.0.1:{controller.port} accepted EHLO (unencrypted)"


def test_an_smtp_server_on_a_closed_port_fails_with_what_to_check(tmp_path: Path) -> None:
    port = free_port()
    result = check_smtp(settings(tmp_path, mail=mail(port)))
    assert not result.ok
    assert result.detail.startswith(f"127.0.0.1:{port}: ")
    assert "refused" in result.detail
    assert result.fix.startswith("check mail.host, mail.port and mail.security")
