"""``hallmonitor up``: one process, capture then web app, the first admin, stopping in order.

The parts run for real: the capture daemon on a replayed sample, uvicorn serving the review
app on a free loopback port, an SQLite file.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hallmonitor.up import (
    PartFailed,
    Up,
    bind,
    create_first_admin,
    web_address,
)
from monitor.config.settings import Settings
from monitor.demo.source import DemoSource, read_sample
from monitor.first_admin import FIRST_ADMIN, on_screen_notice
from monitor.policy import SchoolCalendar
from monitor.sources.live import CaptureSetupError
from monitor.store.db import make_engine
from monitor.store.models import IncidentRecord, UserRecord
from monitor.values import Frame
from tests.monitor.demo.test_source import ALWAYS


def settings_for(tmp_path: Path, *, port: int = 0, **web: Any) -> Settings:
    """Every hour a school hour; port 0 (any free port) is what ``up --port 0`` sets."""
    settings = Settings.model_validate(
        {
            "segments": [{"name": "staff", "cidrs": ["10.20.0.0/16"], "role": "staff"}],
            "calendar": {"timezone": "UTC", "hours": {d: ["00:00-24:00"] for d in DAYS}},
            "database": {"data_dir": str(tmp_path / "data"), "flush_interval_s": 0.2},
            "web": {"host": "127.0.0.1", **web},
        }
    )
    settings.web.port = port
    return settings


DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


class Sample(DemoSource):
    """The demo sample, fast, noting what the web server was doing when capture closed."""

    def __init__(self, up: list[Up], calendar: SchoolCalendar = ALWAYS) -> None:
        super().__init__(read_sample()[:300], calendar, loop_s=0.5)
        self.up = up
        self.web_serving_at_close: bool | None = None

    def close(self) -> None:
        up = self.up[0]
        self.web_serving_at_close = up.server is not None and not up.server.should_exit


def start(up: Up) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            up.run()
        except BaseException as e:
            errors.append(e)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, errors


def stored(url: str, table: type[Any]) -> int:
    engine = make_engine(url)
    try:
        with Session(engine) as db:
            return db.scalar(select(func.count()).select_from(table)) or 0
    finally:
        engine.dispose()


@pytest.fixture
def out() -> io.StringIO:
    return io.StringIO()


@pytest.fixture
def migrated(tmp_path: Path, sqlite_template: Path) -> Path:
    """``tmp_path`` with a database already at the schema head under its data directory (so
    ``up``'s own migration has nothing to do)."""
    (tmp_path / "data").mkdir()
    shutil.copyfile(sqlite_template, tmp_path / "data" / "hallmonitor.db")
    return tmp_path


def make_up(settings: Settings, out: io.StringIO, **kwargs: Any) -> tuple[Up, list[Sample]]:
    holder: list[Up] = []
    sources: list[Sample] = []

    def open_source(_settings: Settings) -> Sample:
        sources.append(Sample(holder))
        return sources[-1]

    up = Up(settings, out=out, **{"open_source": open_source, **kwargs})
    holder.append(up)
    return up, sources


def test_up_serves_the_app_records_incidents_and_stops_capture_before_the_web(
    tmp_path: Path, out: io.StringIO
) -> None:
    settings = settings_for(tmp_path)
    up, sources = make_up(settings, out)
    thread, errors = start(up)
    while not up.listening.wait(0.1):
        assert thread.is_alive(), (errors, out.getvalue())
    assert up.address is not None and up.address.startswith("http://127.0.0.1:")
    assert httpx.get(up.address + "healthz").status_code == 200
    while sources[0].loops < 2 and not errors:
        thread.join(0.1)
    up.stop()
    thread.join(60)
    assert errors == []
    assert up.stopped_parts == ["capture", "web"]
    assert sources[0].web_serving_at_close is True
    printed = out.getvalue()
    assert f"Hall Monitor is up: {up.address}" in printed
    url = settings.database.url.get_secret_value()
    incidents = stored(url, IncidentRecord)
    assert incidents > 0
    assert f"{incidents} incidents;" in printed.splitlines()[-1]
    assert "DROPPED" not in printed and "spool" not in printed.splitlines()[-1]


def test_sigterm_to_the_main_thread_stops_everything_and_exits_cleanly(
    migrated: Path, out: io.StringIO
) -> None:
    settings = settings_for(migrated)
    up, _ = make_up(settings, out)
    before = signal.getsignal(signal.SIGTERM)

    def terminate() -> None:
        if up.listening.wait(60):
            os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=terminate).start()
    summary = up.run()
    assert summary is not None and summary.writer.dropped == 0
    assert up.stopped_parts == ["capture", "web"]
    assert signal.getsignal(signal.SIGTERM) is before


def test_sighup_asks_the_daemon_to_reload(migrated: Path, out: io.StringIO) -> None:
    settings = settings_for(migrated)
    reloaded = threading.Event()

    def reload() -> Settings:
        reloaded.set()
        return settings

    up, _ = make_up(settings, out, reload_settings=reload)

    def hang_up_then_stop() -> None:
        if up.listening.wait(60):
            os.kill(os.getpid(), signal.SIGHUP)
            reloaded.wait(30)
        up.stop()

    threading.Thread(target=hang_up_then_stop).start()
    up.run()
    assert reloaded.is_set()


def test_the_first_start_creates_admin_and_prints_the_password_once(
    tmp_path: Path, out: io.StringIO
) -> None:
    settings = settings_for(tmp_path)
    for _ in range(2):
        up, _ = make_up(settings, out, password_on_screen=True)
        threading.Thread(target=lambda up=up: up.listening.wait(60) and up.stop()).start()
        up.run()
    printed = out.getvalue()
    assert printed.count("First start: created the administrator account.") == 1
    assert printed.count("    username: admin") == 1
    assert printed.index("Hall Monitor is up") < printed.index("First start")


def test_a_capture_that_dies_stops_the_web_and_says_why(migrated: Path, out: io.StringIO) -> None:
    holder: list[Up] = []

    class Broken(Sample):
        def frames(self, stop: threading.Event) -> Iterator[Frame]:
            holder[0].listening.wait(60)
            raise OSError("the network card went away")

    up = Up(settings_for(migrated), out=out, open_source=lambda s: Broken(holder))
    holder.append(up)
    with pytest.raises(PartFailed, match=r"^capture: .*the network card went away$"):
        up.run()
    assert up.stopped_parts == ["capture", "web"]
    assert up.web.thread is not None and not up.web.thread.is_alive()


def test_a_capture_that_cannot_start_never_starts_the_web(migrated: Path, out: io.StringIO) -> None:
    def no_rights(_settings: Settings) -> Sample:
        raise CaptureSetupError("grant CAP_NET_RAW and CAP_NET_ADMIN")

    up = Up(settings_for(migrated), out=out, open_source=no_rights, password_on_screen=True)
    with pytest.raises(CaptureSetupError, match="grant CAP_NET_RAW"):
        up.run()
    assert up.server is None
    assert "password: " in out.getvalue()  # the account exists now: its password is not lost


def test_a_busy_port_fails_before_capture_starts(migrated: Path, out: io.StringIO) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        up, sources = make_up(settings_for(migrated, port=port), out)
        with pytest.raises(PartFailed, match=rf"^web: cannot listen on 127.0.0.1:{port}: "):
            up.run()
    assert sources == []


def test_create_first_admin_only_when_there_is_no_user(engine_url: str) -> None:
    password = create_first_admin(engine_url, "a one-time password")
    assert password == "a one-time password"
    assert create_first_admin(engine_url) is None
    engine = make_engine(engine_url)
    try:
        with Session(engine) as db:
            [admin] = db.scalars(select(UserRecord)).all()
    finally:
        engine.dispose()
    assert (admin.username, admin.role, admin.must_change_password) == (FIRST_ADMIN, "admin", True)
    assert "one-time password" not in admin.password_hash


def test_the_notice_shows_the_name_and_password_and_what_to_do() -> None:
    notice = on_screen_notice("s3cret-s3cret")
    assert "username: admin" in notice and "password: s3cret-s3cret" in notice
    assert "shown only now" in notice


@pytest.mark.parametrize(
    ("web", "expected"),
    [
        ({}, "http://127.0.0.1:{port}/"),
        ({"root_path": "/monitor"}, "http://127.0.0.1:{port}/monitor/"),
        ({"base_url": "https://hm.school.example/"}, "https://hm.school.example/"),
    ],
)
def test_the_printed_address_is_where_the_app_listens_or_base_url(
    tmp_path: Path, web: dict[str, Any], expected: str
) -> None:
    with bind("127.0.0.1", 0) as sock:
        port = sock.getsockname()[1]
        assert web_address(settings_for(tmp_path, **web), sock) == expected.format(port=port)


def test_an_unknown_host_is_named() -> None:
    with pytest.raises(PartFailed, match=r"web: cannot listen on 'no-such-host.invalid'"):
        bind("no-such-host.invalid", 0)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("setpriv") is None or os.geteuid() != 0, reason="needs root")
def test_live_capture_without_capture_rights_fails_with_one_line_naming_them(
    tmp_path: Path,
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[capture]\ninterfaces = ["lo"]\n[database]\ndata_dir = "{tmp_path}"\n')
    environment = {k: v for k, v in os.environ.items() if not k.startswith("HALLMONITOR_")}
    result = subprocess.run(
        [
            "setpriv",
            "--inh-caps=-all",
            "--bounding-set=-net_raw,-net_admin",
            sys.executable,
            "-m",
            "hallmonitor",
            "--config",
            str(config),
            "up",
            "--port",
            "0",
        ],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
    )
    assert result.returncode == 1
    # The log lines before it (INFO, the configured level) are not errors: one error line.
    [line] = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert "CAP_NET_RAW and CAP_NET_ADMIN" in line


def broken_factory(settings: Settings) -> Any:
    raise RuntimeError("the templates are missing")


def test_a_web_app_that_cannot_load_stops_capture_and_says_so(
    migrated: Path, out: io.StringIO
) -> None:
    up, sources = make_up(settings_for(migrated), out, app_factory=broken_factory)
    with pytest.raises(PartFailed, match=r"^web: stopped: the templates are missing$"):
        up.run()
    assert up.stopped_parts == ["capture", "web"]
    assert sources[0].loops >= 1 and up.capture.done.is_set()
    assert not up.listening.is_set() and "Hall Monitor is up" not in out.getvalue()


def test_a_web_server_that_exits_by_itself_stops_capture_and_fails(
    migrated: Path, out: io.StringIO
) -> None:
    up, _ = make_up(settings_for(migrated), out)

    def exit_web() -> None:
        if up.listening.wait(60) and up.server is not None:
            up.server.should_exit = True

    threading.Thread(target=exit_web).start()
    with pytest.raises(PartFailed, match="^web: the review app stopped"):
        up.run()
    assert up.stopped_parts == ["capture", "web"]
    assert up.capture.done.is_set()
