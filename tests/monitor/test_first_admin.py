"""The first administrator's one-time password: printed only on a terminal; under a service
(standard output not a terminal, as under systemd) it is in a file only its owner reads, the
log says only where, and the file goes when ``admin`` chooses a password of their own.

Run for real: ``up`` with the review app on a loopback port and an SQLite file, the command in
a subprocess whose standard output is a pipe, the password changed through the app's own form.
"""

from __future__ import annotations

import io
import logging
import os
import stat
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx2 as httpx
import pytest
from click.testing import CliRunner
from sqlalchemy.orm import Session

from hallmonitor.cli.root import main
from hallmonitor.up import PartFailed
from monitor.first_admin import (
    FIRST_ADMIN,
    PASSWORD_FILE,
    forget_password_file,
    password_file,
    write_password_file,
)
from monitor.store.db import make_engine
from monitor.store.passwords import LoginPolicy, verify_login
from tests.hallmonitor.test_up import make_up, settings_for, start
from tests.test_readme_first_command import sign_in_and_choose_a_password


def signs_in(url: str, password: str) -> bool:
    engine = make_engine(url)
    try:
        with Session(engine) as db:
            return verify_login(db, FIRST_ADMIN, password, datetime.now(UTC), LoginPolicy()).ok
    finally:
        engine.dispose()


def owner_only(path: Path) -> bool:
    return stat.S_IMODE(path.stat().st_mode) == 0o600


def test_not_on_a_terminal_up_writes_the_password_to_a_file_until_admin_changes_it(
    tmp_path: Path,
) -> None:
    settings = settings_for(tmp_path)
    out = io.StringIO()  # not a terminal, as systemd's journal is not
    up, _ = make_up(settings, out)
    thread, errors = start(up)
    path = tmp_path / "data" / PASSWORD_FILE
    try:
        while not up.listening.wait(0.1):
            assert thread.is_alive(), (errors, out.getvalue())
        assert owner_only(path)
        password = path.read_text().strip()
        printed = out.getvalue()
        assert password not in printed and "password: " not in printed
        assert f"`sudo cat {path}`" in printed
        assert up.address is not None
        with httpx.Client(base_url=up.address.rstrip("/"), follow_redirects=False) as client:
            sign_in_and_choose_a_password(client, password)
        assert not path.exists()
    finally:
        up.stop()
        thread.join(60)
    assert errors == []


def test_a_second_start_writes_no_file_and_says_nothing_of_a_password(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    out = io.StringIO()
    for _ in range(2):
        up, _ = make_up(settings, out)
        threading.Thread(target=lambda up=up: up.listening.wait(60) and up.stop()).start()
        up.run()
        password_file(settings.database.data_dir).unlink(missing_ok=True)
    assert out.getvalue().count("First start") == 1
    assert not password_file(settings.database.data_dir).exists()


def test_the_command_in_a_pipe_neither_prints_nor_logs_the_password(tmp_path: Path) -> None:
    """``hallmonitor up`` as a service runs it: standard output not a terminal, every log line
    (DEBUG) collected. Capture cannot start (no such interface): the account exists anyway."""
    data = tmp_path / "data"
    config = tmp_path / "config.toml"
    config.write_text(f'[capture]\ninterfaces = ["hm-absent0"]\n[database]\ndata_dir = "{data}"\n')
    environment = {k: v for k, v in os.environ.items() if not k.startswith("HALLMONITOR_")}
    command = [sys.executable, "-m", "hallmonitor", "--log-level", "DEBUG", "--config", str(config)]
    result = subprocess.run(
        [*command, "up", "--port", "0"],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    assert "no network interface 'hm-absent0'" in result.stderr
    path = data / PASSWORD_FILE
    assert owner_only(path)
    password = path.read_text().strip()
    assert len(password) >= 16
    assert password not in result.stdout + result.stderr
    assert f"its one-time password is in {path}".lower() in result.stdout.lower()
    assert signs_in(f"sqlite:///{data / 'hallmonitor.db'}", password)


@pytest.mark.slow
def test_demo_prints_the_password_in_a_pipe_too(tmp_path: Path) -> None:
    """``up --demo`` is the README's first command: a throwaway database under --data-dir, and
    the password on the screen, wherever its standard output goes."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("HALLMONITOR_")}
    command = [sys.executable, "-m", "hallmonitor", "up", "--demo", "--port", "0"]
    with subprocess.Popen(
        [*command, "--data-dir", str(tmp_path / "var")],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=environment,
    ) as process:
        assert process.stdout is not None
        try:
            deadline = time.monotonic() + 120
            printed = ""
            while "    password: " not in printed and time.monotonic() < deadline:
                line = process.stdout.readline()
                assert line, f"up --demo ended: {printed}"
                printed += line
        finally:
            process.terminate()
            process.wait(timeout=120)
    assert "    password: " in printed
    assert not password_file(tmp_path / "var").exists()


def test_users_passwd_admin_removes_the_file(tmp_path: Path) -> None:
    data = tmp_path / "data"
    config = tmp_path / "config.toml"
    config.write_text(f'[database]\ndata_dir = "{data}"\n')
    runner = CliRunner()
    assert runner.invoke(main, ["--config", str(config), "db", "upgrade"]).exit_code == 0
    added = runner.invoke(
        main,
        ["--config", str(config), "users", "add", "Admin", "--role", "admin"],
        input="a first long password\na first long password\n",
    )
    assert added.exit_code == 0, added.output
    write_password_file(password_file(data), "a first long password")
    changed = runner.invoke(
        main,
        ["--config", str(config), "users", "passwd", "ADMIN", "--password", "my own password!"],
    )
    assert changed.exit_code == 0, changed.output
    assert f"removed {password_file(data)}" in changed.output
    assert not password_file(data).exists()


def test_only_admin_s_password_change_removes_the_file(tmp_path: Path) -> None:
    write_password_file(password_file(tmp_path), "one-time")
    assert forget_password_file(tmp_path, "head") is False
    assert password_file(tmp_path).exists()
    assert forget_password_file(tmp_path, FIRST_ADMIN) is True
    assert forget_password_file(tmp_path, FIRST_ADMIN) is False


def test_the_file_is_owner_only_whatever_the_umask_and_replaces_a_link(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text("not to be touched\n")
    path = password_file(tmp_path / "data")
    path.parent.mkdir()
    path.symlink_to(elsewhere)
    previous = os.umask(0)
    try:
        write_password_file(path, "one-time")
    finally:
        os.umask(previous)
    assert not path.is_symlink() and owner_only(path)
    assert path.read_text() == "one-time\n"
    assert elsewhere.read_text() == "not to be touched\n"


@pytest.mark.parametrize("readme", ["README.md", "deploy/README.md"])
def test_the_guides_say_where_the_password_is_under_a_service(readme: str) -> None:
    root = Path(__file__).resolve().parents[2]
    text = " ".join((root / readme).read_text().split())
    assert PASSWORD_FILE in text


def test_a_password_file_that_cannot_be_written_stops_up_with_what_to_do(tmp_path: Path) -> None:
    """Never the journal instead: the account exists, and the technician is told how to give
    it a password."""
    settings = settings_for(tmp_path)
    password_file(settings.database.data_dir).mkdir(parents=True)  # in the file's way
    up, sources = make_up(settings, io.StringIO())
    with pytest.raises(PartFailed, match=r"created the user 'admin' but cannot write its one-"):
        up.run()
    assert sources == []


def test_a_file_that_cannot_be_removed_is_named_in_the_log(tmp_path: Path) -> None:
    said: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: said.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger("monitor.first_admin")
    logger.addHandler(handler)
    password_file(tmp_path).mkdir()  # a directory: unlink fails
    try:
        assert forget_password_file(tmp_path, FIRST_ADMIN) is False
    finally:
        logger.removeHandler(handler)
    [line] = said
    assert line.startswith(f"cannot remove {password_file(tmp_path)} (")
