"""The README's first command, performed: ``scripts/run`` installs (nothing left to do here),
starts ``hallmonitor up --demo``, prints the address and the one-time password; a newcomer
signs in, chooses a password, finds incidents; SIGTERM ends it with status 0 and nothing lost.

``--port 0`` and ``--data-dir`` (passed through to ``up``) keep it off the real port and out of
the checkout's ``var/``.
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import httpx2 as httpx
import pytest
from bs4 import BeautifulSoup

ROOT = Path(__file__).resolve().parents[1]
NEW_PASSWORD = "a passphrase of my own"
WAIT_S = 180.0
"""Generous: the first run of the day may install; never a measured speed."""


class Run:
    """``scripts/run`` in a subprocess; its stdout and stderr collected line by line."""

    def __init__(self, *args: str) -> None:
        environment = {k: v for k, v in os.environ.items() if not k.startswith("HALLMONITOR_")}
        self.process = subprocess.Popen(
            [str(ROOT / "scripts" / "run"), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=environment,
        )
        self.out: list[str] = []
        self.err: list[str] = []
        self.readers = [
            threading.Thread(target=self._read, args=(self.process.stdout, self.out), daemon=True),
            threading.Thread(target=self._read, args=(self.process.stderr, self.err), daemon=True),
        ]
        for reader in self.readers:
            reader.start()

    @staticmethod
    def _read(stream: object, lines: list[str]) -> None:
        for line in stream:  # type: ignore[attr-defined]
            lines.append(line.rstrip("\n"))

    def wait_for(self, pattern: str) -> re.Match[str]:
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            for line in list(self.out):
                found = re.search(pattern, line)
                if found:
                    return found
            assert self.process.poll() is None, "\n".join(self.out + self.err)
            time.sleep(0.2)
        raise AssertionError(f"never printed {pattern!r}:\n" + "\n".join(self.out + self.err))

    def terminate(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        try:
            status = self.process.wait(timeout=WAIT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise
        for reader in self.readers:
            reader.join(10)
        for stream in (self.process.stdout, self.process.stderr):
            assert stream is not None
            stream.close()
        return status


def csrf_token(html: str) -> str:
    field = BeautifulSoup(html, "html.parser").find("input", attrs={"name": "csrf_token"})
    assert field is not None
    value = field.get("value")
    assert isinstance(value, str)
    return value


def sign_in_and_choose_a_password(client: httpx.Client, password: str) -> None:
    login = client.post(
        "/login",
        data={
            "username": "admin",
            "password": password,
            "next": "/",
            "csrf_token": csrf_token(client.get("/login").text),
        },
    )
    assert login.status_code == 303 and login.headers["location"] == "/"
    home = client.get("/")
    assert home.status_code == 303 and home.headers["location"].startswith("/password")
    form = client.get(home.headers["location"])
    changed = client.post(
        "/password",
        data={
            "current": password,
            "new": NEW_PASSWORD,
            "confirm": NEW_PASSWORD,
            "next": "/incidents",
            "csrf_token": csrf_token(form.text),
        },
    )
    assert changed.status_code == 303, changed.text
    assert client.get("/incidents").status_code == 200


def incidents_listed(client: httpx.Client) -> int:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        response = client.get("/api/v1/incidents")
        assert response.status_code == 200, response.text
        total: int = response.json()["total"]
        if total:
            return total
        time.sleep(1)
    raise AssertionError("no incident appeared")


@pytest.mark.slow
@pytest.mark.timeout(int(4 * WAIT_S))
def test_the_readme_first_command_shows_incidents_and_stops_cleanly(tmp_path: Path) -> None:
    data = tmp_path / "var"
    run = Run("--port", "0", "--data-dir", str(data))
    try:
        address = run.wait_for(r"Hall Monitor is up: (http://\S+/)")[1]
        password = run.wait_for(r"^    password: (\S+)$")[1]
        with httpx.Client(base_url=address.rstrip("/"), follow_redirects=False) as client:
            sign_in_and_choose_a_password(client, password)
            assert incidents_listed(client) >= 1
    finally:
        status = run.terminate()
    assert status == 0, "\n".join(run.out + run.err)
    last = run.out[-1]
    assert last.startswith("stopped: "), "\n".join(run.out + run.err)
    summary_incidents = int(re.search(r"([\d,]+) incidents;", last)[1].replace(",", ""))  # type: ignore[index]
    assert "DROPPED" not in last and "spool" not in last
    with sqlite3.connect(data / "hallmonitor.db") as db:
        [(stored,)] = db.execute("select count(*) from incidents").fetchall()
        [(open_left,)] = db.execute("select count(*) from incidents where state = 'open'")
    assert stored == summary_incidents
    assert open_left == 0
