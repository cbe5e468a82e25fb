"""``hallmonitor serve`` builds the review app from its settings and runs it under uvicorn, after
checking the schema."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from hallmonitor.serve import run_server, uvicorn_options
from monitor.config.settings import Settings
from monitor.errors import SchemaNotCurrent

ROOT = Path(__file__).resolve().parents[2]


def test_uvicorn_options_follow_the_web_settings() -> None:
    settings = Settings.model_validate({"web": {"host": "::1", "port": 8443}})
    options = uvicorn_options(settings)
    assert (options["host"], options["port"]) == ("::1", 8443)
    assert options["proxy_headers"] is False  # the app applies the trusted proxies itself
    assert options["log_config"] is None


def test_run_server_refuses_an_old_schema_before_starting(tmp_path: Path) -> None:
    settings = Settings.model_validate(
        {"database": {"url": f"sqlite:///{tmp_path / 'empty.sqlite3'}"}}
    )
    with pytest.raises(SchemaNotCurrent, match="hallmonitor db upgrade"):
        run_server(settings)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_run_server_serves_the_login_page_and_stops_on_sigterm(
    sqlite_template: Path, tmp_path: Path
) -> None:
    database = tmp_path / "hallmonitor.sqlite3"
    shutil.copyfile(sqlite_template, database)
    port = free_port()
    config = tmp_path / "config.toml"
    config.write_text(
        f'[database]\nurl = "sqlite:///{database}"\n'
        f'[web]\nhost = "127.0.0.1"\nport = {port}\nroot_path = "/monitor"\n'
    )
    script = (
        "from pathlib import Path; from monitor.config.loading import load_settings; "
        "from hallmonitor.serve import run_server; "
        f"run_server(load_settings(Path({str(config)!r})))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("HALLMONITOR_")}
    process = subprocess.Popen(
        [sys.executable, "-c", script], cwd=ROOT, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        page = None
        deadline = time.monotonic() + 20
        while page is None and time.monotonic() < deadline and process.poll() is None:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/monitor/login", timeout=1
                ) as r:
                    page = (r.status, r.read().decode())
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.05)  # not listening yet: poll again until the deadline
        assert page is not None, process.communicate(timeout=5)[0].decode()
        assert page[0] == 200
        assert 'action="/monitor/login"' in page[1]
        process.send_signal(signal.SIGTERM)
        # uvicorn shuts down gracefully, then re-raises the signal it caught.
        assert process.wait(timeout=15) == -signal.SIGTERM
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=15)
