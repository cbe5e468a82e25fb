"""Hostile clients against a real review app: login floods, lockout races, huge bodies.

Every flood is bounded (a fixed number of requests from a fixed number of threads) and stays on
loopback. The server is ``hallmonitor serve`` in its own process, on SQLite unless said
otherwise, with the production argon2 profile. The figures each test measured (requests, 429s,
500s, how long the capture writer waited, the server's memory growth) are printed; run with
``-s`` to see them. No time is asserted.
"""

from __future__ import annotations

import os
import re
import select
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Literal

import httpx2 as httpx
import pytest
from argon2 import PasswordHasher
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from api.limits import DEFAULT_BODY_LIMIT
from monitor.records import CounterIncrement
from monitor.store.api_tokens import create_api_token
from monitor.store.db import make_engine, upgrade_schema
from monitor.store.passwords import LoginOutcome, LoginPolicy, set_password, verify_login
from monitor.store.users import create_user
from monitor.store.workflow import UserRole
from monitor.store.writer import Writer
from tests.monitor.conftest import (  # noqa: F401 (fixtures)
    backend,
    engine,
    engine_url,
    postgres_server,
    postgres_test_url,
    sqlite_template,
)
from tests.test_deploy import (
    app_config,
    needs_nginx,
    nginx_in_front,
    run_script,
    serving,
    wait_for,
)

HALLMONITOR = str(Path(sys.executable).parent / "hallmonitor")
ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery staple"
CHEAP = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


def report(title: str, **figures: object) -> None:
    """Print what a hostile test measured (``pytest -s`` shows it)."""
    print(f"\n[{title}] " + ", ".join(f"{k}={v}" for k, v in figures.items()))  # noqa: T201


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True, slots=True)
class Served:
    """``hallmonitor serve`` running on loopback, its database and an admin's API token."""

    port: int
    pid: int
    db_url: str
    token: str

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    """The review app in its own process on a migrated SQLite file, with the user ``head``
    (password ``PASSWORD``) and an admin API token; stopped with SIGTERM afterwards."""
    data = tmp_path / "data"
    db_url = f"sqlite:///{data / 'hallmonitor.db'}"
    upgrade_schema(db_url)
    store = make_engine(db_url)
    with Session(store) as db:
        create_user(db, "head", "Mrs Head", UserRole.REVIEWER, PASSWORD, hasher=CHEAP)
        admin = create_user(db, "tech", "IT", UserRole.ADMIN, PASSWORD, hasher=CHEAP)
        token = create_api_token(db, admin.id, "hostile tests")
        db.commit()
    store.dispose()
    port = free_port()
    config = tmp_path / "config.toml"
    config.write_text(
        f'[database]\ndata_dir = "{data}"\n\n[web]\nhost = "127.0.0.1"\nport = {port}\n'
    )
    environment = {k: v for k, v in os.environ.items() if not k.startswith("HALLMONITOR_")}
    environment["PYTHONPATH"] = str(ROOT)
    process = subprocess.Popen(
        [HALLMONITOR, "--config", str(config), "serve"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
    )
    try:
        wait_for(port, process)
        yield Served(port, process.pid, db_url, token)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            _, errors = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            _, errors = process.communicate()
    assert "Traceback" not in errors, errors


def rss_kib(pid: int) -> int:
    """The resident memory of a process (``VmRSS``), in KiB."""
    status = Path(f"/proc/{pid}/status").read_text()
    found = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    assert found is not None
    return int(found.group(1))


# --- 14.2: a login flood on SQLite ----------------------------------------------------------

FLOOD_THREADS = 30
FLOOD_REQUESTS_PER_THREAD = 10
WRITER_ITEMS = 400


def flood_logins(base: str, thread: int, statuses: Counter[int], lock: threading.Lock) -> None:
    """One flooding client: the login form once, then a fixed number of sign-ins (made-up
    names, and the real account with a wrong password)."""
    with httpx.Client(base_url=base, timeout=120, follow_redirects=False) as client:
        form = client.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert token is not None
        for n in range(FLOOD_REQUESTS_PER_THREAD):
            name = "head" if n % 3 == 0 else f"nobody-{thread}-{n}"
            answer = client.post(
                "/login",
                data={"username": name, "password": "a wrong guess", "csrf_token": token[1]},
            )
            if answer.status_code == 429:
                assert int(answer.headers["Retry-After"]) >= 1
                assert "Wait" in answer.text and "try again" in answer.text
            with lock:
                statuses[answer.status_code] += 1


def probe_write_lock(url: str, stop: threading.Event, waits: list[float]) -> None:
    """What the capture writer would wait for: take SQLite's write lock (``BEGIN IMMEDIATE``,
    as every transaction does) every 20 ms, and note how long each took."""
    probe = make_engine(url)
    try:
        while not stop.is_set():
            started = time.monotonic()
            with probe.begin():
                waits.append(time.monotonic() - started)
            stop.wait(0.02)
    finally:
        probe.dispose()


def test_a_login_flood_on_sqlite_gets_429s_never_500s_and_capture_never_spools(
    served: Served, tmp_path: Path
) -> None:
    writer = Writer(lambda: make_engine(served.db_url), spool_dir=tmp_path / "spool")
    writer.start()
    stop = threading.Event()
    waits: list[float] = []
    probe = threading.Thread(target=probe_write_lock, args=(served.db_url, stop, waits))
    probe.start()
    statuses: Counter[int] = Counter()
    lock = threading.Lock()
    flooders = [
        threading.Thread(target=flood_logins, args=(served.base, n, statuses, lock))
        for n in range(FLOOD_THREADS)
    ]
    health: list[float] = []
    try:
        for flooder in flooders:
            flooder.start()
        day = date(2026, 11, 24)
        for n in range(WRITER_ITEMS):  # capture goes on during the flood
            writer.submit(CounterIncrement("demo-school", day, "observations.dns", 1))
            if n % 100 == 0:
                started = time.monotonic()
                assert httpx.get(served.base + "/healthz", timeout=120).status_code < 500
                health.append(time.monotonic() - started)
            time.sleep(0.01)
        for flooder in flooders:
            flooder.join()
    finally:
        stats = writer.stop(timeout=60)
        stop.set()
        probe.join()
    tried = FLOOD_THREADS * FLOOD_REQUESTS_PER_THREAD
    report(
        "login flood (SQLite)",
        requests=tried,
        statuses=dict(sorted(statuses.items())),
        http_500=statuses[500],
        writer_spooled=stats.spooled,
        writer_written=stats.written,
        longest_wait_for_write_lock_s=round(max(waits), 3),
        write_lock_probes=len(waits),
        slowest_healthz_s=round(max(health), 3),
    )
    assert sum(statuses.values()) == tried
    assert set(statuses) <= {303, 429}, statuses
    assert statuses[429] > 0, "the flood was not throttled"
    assert (stats.spooled, stats.dropped, stats.written) == (0, 0, WRITER_ITEMS)


class LockProbingHasher(PasswordHasher):
    """Verifies as usual, and notes each time whether another connection could have taken
    SQLite's write lock at that moment (without waiting)."""

    def __init__(self, path: Path) -> None:
        super().__init__(time_cost=1, memory_cost=8, parallelism=1)
        self.path = path
        self.lock_was_free: list[bool] = []

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        self.probe()
        return super().verify(hash, password)

    def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
        self.probe()
        return super().hash(password, salt=salt)

    def probe(self) -> None:
        other = sqlite3.connect(self.path, timeout=0, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
            self.lock_was_free.append(True)
        except sqlite3.OperationalError:
            self.lock_was_free.append(False)
        finally:
            other.close()


def test_password_hashes_run_while_sqlites_write_lock_is_free(tmp_path: Path) -> None:
    path = tmp_path / "hallmonitor.db"
    upgrade_schema(f"sqlite:///{path}")
    store = make_engine(f"sqlite:///{path}")
    hasher = LockProbingHasher(path)
    policy = LoginPolicy(hasher=hasher)
    with Session(store) as db:
        create_user(db, "head", "Mrs Head", UserRole.REVIEWER, PASSWORD, hasher=hasher)
        db.commit()
        for name, password in [("nobody", PASSWORD), ("head", "wrong!"), ("head", PASSWORD)]:
            verify_login(db, name, password, datetime.now(UTC), policy)
            db.commit()
        set_password(db, "head", "a brand new passphrase", hasher=hasher)
        db.commit()
    store.dispose()
    assert hasher.lock_was_free and all(hasher.lock_was_free), hasher.lock_was_free


# --- 14.4: the lockout race -----------------------------------------------------------------

PARALLEL_GUESSES = 40
MAX_FAILURES = 5
SLOWISH = PasswordHasher(time_cost=2, memory_cost=4096, parallelism=1)
"""Slow enough (a few milliseconds) for 40 guesses to be checked at the same time."""


def test_40_parallel_guesses_check_at_most_the_allowed_number(
    engine: Engine,  # noqa: F811 (the fixture)
) -> None:
    with Session(engine) as db:
        create_user(db, "head", "Mrs Head", UserRole.REVIEWER, PASSWORD, hasher=SLOWISH)
        db.commit()
    policy = LoginPolicy(max_failures=MAX_FAILURES, lockout=timedelta(minutes=15), hasher=SLOWISH)
    now = datetime.now(UTC)
    start = threading.Barrier(PARALLEL_GUESSES)
    outcomes: list[LoginOutcome] = []
    lock = threading.Lock()

    def guess(n: int) -> None:
        start.wait()
        with Session(engine) as db:
            result = verify_login(db, "head", f"guess number {n}", now, policy)
            db.commit()
        with lock:
            outcomes.append(result.outcome)

    guessers = [threading.Thread(target=guess, args=(n,)) for n in range(PARALLEL_GUESSES)]
    for guesser in guessers:
        guesser.start()
    for guesser in guessers:
        guesser.join()
    counted = Counter(outcomes)
    report(f"lockout race ({engine.dialect.name})", guesses=len(outcomes), outcomes=dict(counted))
    assert len(outcomes) == PARALLEL_GUESSES
    assert counted[LoginOutcome.WRONG_PASSWORD] <= MAX_FAILURES
    assert counted[LoginOutcome.WRONG_PASSWORD] + counted[LoginOutcome.LOCKED] == PARALLEL_GUESSES


# --- 14.3: huge bodies ----------------------------------------------------------------------

HUGE = 200 * 1024 * 1024


def request_head(method: str, path: str, headers: dict[str, str]) -> bytes:
    lines = [
        f"{method} {path} HTTP/1.1",
        "Host: 127.0.0.1",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def read_status(sock: socket.socket) -> tuple[int, bytes]:
    """The status and what came of the answer (up to the end of its head, or the close)."""
    sock.settimeout(60)
    answer = b""
    while b"\r\n\r\n" not in answer:
        try:
            part = sock.recv(65536)
        except ConnectionResetError:
            break
        if not part:
            break
        answer += part
    status = re.match(rb"HTTP/1\.1 (\d{3}) ", answer)
    assert status is not None, answer[:200]
    try:
        sock.settimeout(2)
        answer += sock.recv(65536)
    except (TimeoutError, ConnectionResetError):
        pass
    return int(status[1]), answer


def send_announced(port: int, method: str, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
    """Send only a request's head (its body announced, none of it sent) and read the answer:
    an answer proves the server decided without reading the body."""
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(request_head(method, path, headers))
        return read_status(sock)


def send_chunked(
    port: int, path: str, headers: dict[str, str], chunk: bytes, chunks: int
) -> tuple[int, int]:
    """Send an unterminated chunked body until the server answers; the status, and how many
    bytes of body went out."""
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(request_head("PUT", path, {**headers, "Transfer-Encoding": "chunked"}))
        sent = 0
        for _ in range(chunks):
            if select.select([sock], [], [], 0.01)[0]:
                break
            try:
                sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(chunk)
        status, _ = read_status(sock)
        return status, sent


JSON = {"Content-Type": "application/json"}


def test_an_oversized_content_length_gets_413_before_the_body_is_sent(served: Served) -> None:
    headers = {**JSON, "Authorization": f"Bearer {served.token}", "Content-Length": str(HUGE)}
    status, answer = send_announced(served.port, "PUT", "/api/v1/devices/1/label", headers)
    assert status == 413
    assert b"at most 64 KiB" in answer


def test_an_oversized_chunked_body_gets_413_and_is_not_read_further(served: Served) -> None:
    headers = {**JSON, "Authorization": f"Bearer {served.token}"}
    chunk = b'{"label": "' + b"x" * 16 * 1024
    status, sent = send_chunked(served.port, "/api/v1/devices/1/label", headers, chunk, 12_800)
    report("oversized chunked body", limit=DEFAULT_BODY_LIMIT, bytes_sent_before_413=sent)
    assert status == 413
    assert sent < 200 * len(chunk)  # far from the 200 MiB offered


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PUT", "/api/v1/devices/1/label"),
        ("POST", "/api/v1/incidents/1/review"),
        ("POST", "/admin/users"),
        ("POST", "/devices/1/erase"),
    ],
)
def test_an_anonymous_big_body_is_refused_unread(served: Served, method: str, path: str) -> None:
    headers = {**JSON, "Content-Length": str(HUGE)}
    status, answer = send_announced(served.port, method, path, headers)
    expected = 401 if path.startswith("/api/") else 303
    assert status == expected, answer[:300]


def test_an_anonymous_chunked_body_is_refused_unread(served: Served) -> None:
    status, sent = send_chunked(served.port, "/api/v1/devices/1/label", JSON, b"x" * 1024, 1)
    assert (status, sent) in ((401, 0), (401, 1024))


def test_the_login_form_accepts_a_normal_body_and_refuses_a_huge_one(served: Served) -> None:
    with httpx.Client(base_url=served.base, timeout=60, follow_redirects=False) as client:
        form = client.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert token is not None
        fields = {"username": "head", "password": PASSWORD, "csrf_token": token[1]}
        assert client.post("/login", data=fields).status_code == 303
        huge = {**fields, "next": "/" + "x" * DEFAULT_BODY_LIMIT}
        assert client.post("/login", data=huge).status_code == 413


def test_huge_bodies_do_not_grow_the_servers_memory(served: Served) -> None:
    before = rss_kib(served.pid)
    bearer = {**JSON, "Authorization": f"Bearer {served.token}"}
    tried = 0
    for _ in range(5):
        for headers in (
            {**JSON, "Content-Length": str(HUGE)},
            {**bearer, "Content-Length": str(HUGE)},
        ):
            status, _ = send_announced(served.port, "PUT", "/api/v1/devices/1/label", headers)
            assert status in (401, 413)
            tried += 1
        status, _ = send_chunked(
            served.port, "/api/v1/devices/1/label", bearer, b"[" * 64 * 1024, 3200
        )
        assert status == 413
        tried += 1
    after = rss_kib(served.pid)
    report("huge bodies", requests=tried, rss_before_kib=before, rss_after_kib=after,
           growth_kib=after - before)  # fmt: skip
    assert after - before < 64 * 1024  # the issue saw 400 MB per request


def test_a_flood_of_made_up_names_keeps_the_throttles_memory_bounded() -> None:
    from api.throttle import TokenBuckets

    buckets = TokenBuckets(2, 60.0, max_keys=100)
    for n in range(10_000):
        buckets.take(f"nobody-{uuid.uuid4().hex}-{n}")
    assert len(buckets) == 100


# --- the reverse proxy example --------------------------------------------------------------


@pytest.mark.slow
@needs_nginx
def test_the_nginx_example_throttles_sign_ins_per_address(tmp_path: Path) -> None:
    """A real nginx with ``deploy/nginx/hallmonitor.conf`` in front of the app: a burst of
    sign-ins from one address ends in 429 from nginx; the login page itself is not limited."""
    config = app_config(tmp_path)
    assert run_script(HALLMONITOR, "--config", str(config), "db", "upgrade").returncode == 0
    statuses: Counter[int] = Counter()
    pages: Counter[int] = Counter()
    with serving([HALLMONITOR], config) as url:
        app_port = int(url.rstrip("/").rsplit(":", 1)[1])
        with nginx_in_front(tmp_path, app_port) as front:
            opener = front.opener()
            base = f"https://127.0.0.1:{front.https}"
            for _ in range(15):
                statuses[open_status(opener, base + "/login", b"username=x&password=y")] += 1
            for _ in range(3):
                pages[open_status(opener, base + "/login", None)] += 1
    report("nginx limit_req", sign_ins=dict(statuses), login_pages=dict(pages))
    assert statuses[429] >= 3
    assert set(statuses) <= {403, 429}  # 403: the app's CSRF check, which these do not pass
    assert pages == Counter({200: 3})


def open_status(opener: urllib.request.OpenerDirector, url: str, data: bytes | None) -> int:
    try:
        with opener.open(url, data=data, timeout=60) as response:
            status: int = response.status
            return status
    except urllib.error.HTTPError as e:
        e.close()
        return e.code
