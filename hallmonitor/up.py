"""``hallmonitor up``: capture, the review app and its report scheduler in one process.

The all-in-one for a small school (and the README's first command, with ``--demo``). It
migrates the database itself (one process owns everything, so nobody has to run ``db
upgrade`` first), then starts the parts in order, each in its own thread: the capture daemon
(``CaptureDaemon``, which also runs the retention purge), then uvicorn serving
the review app built by ``api.app.create_app(settings)`` (whose lifespan runs the weekly report scheduler when mail is
enabled). Before anything, the lists must load (no platform list at all is an error). When
there is no user yet it creates ``admin`` with a one-time password, printed once under the
address on a terminal, or else (a service) written to a file only its owner reads
(``monitor.first_admin``); the review app then makes them choose their own. The main thread
owns the signals: SIGTERM and SIGINT stop, SIGHUP reloads the lists and configuration.

Stopping goes in the reverse order of the data: capture first (open incidents are closed and
the writer's queue drained), then the web server. A part that dies stops the others, and the
command exits non-zero with one line saying which part and why.
"""

from __future__ import annotations

import logging
import secrets
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType
from typing import Any, TextIO

import uvicorn
from prometheus_client import REGISTRY
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.app import create_app
from hallmonitor.serve import uvicorn_options
from monitor.config.rules import build_rules
from monitor.config.settings import Settings
from monitor.first_admin import (
    FIRST_ADMIN,
    file_notice,
    on_screen_notice,
    password_file,
    write_password_file,
)
from monitor.metrics import DaemonCollector, register_daemon_metrics
from monitor.runner import (
    CaptureDaemon,
    FrameSource,
    RunSummary,
    open_live_source,
)
from monitor.store.db import make_engine, upgrade_schema
from monitor.store.models import UserRecord
from monitor.store.users import create_user
from monitor.store.workflow import UserRole

logger = logging.getLogger(__name__)

WAIT_STEP_S = 0.2
"""How often the main thread looks at the parts while it waits."""
START_TIMEOUT_S = 60.0
"""How long a part may take to start before ``up`` gives up on it."""
JOIN_TIMEOUT_S = 60.0
"""How long stopping waits for each part (the writer drains within 30 s)."""


class PartFailed(Exception):
    """A part of ``up`` could not start or stopped by itself; the message is one line."""


def one_time_password() -> str:
    """A random password for the first administrator (16 URL-safe characters, 96 bits)."""
    return secrets.token_urlsafe(12)


def create_first_admin(url: str, password: str | None = None) -> str | None:
    """When the database has no user, create ``admin`` and return its password (shown once,
    then only its hash is kept); None when there are users already."""
    engine = make_engine(url)
    try:
        with Session(engine) as db:
            if db.scalar(select(func.count()).select_from(UserRecord)):
                return None
            password = password or one_time_password()
            create_user(
                db,
                FIRST_ADMIN,
                "Administrator",
                UserRole.ADMIN,
                password,
                must_change_password=True,
            )
            db.commit()
            return password
    finally:
        engine.dispose()


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: any free port); ``PartFailed`` if not."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as e:
        raise PartFailed(f"web: cannot listen on {host!r}: {e.strerror} (check web.host)") from e
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as e:
        sock.close()
        raise PartFailed(
            f"web: cannot listen on {host}:{port}: {e.strerror} (choose another web.port or --port)"
        ) from e
    return sock


def web_address(settings: Settings, sock: socket.socket) -> str:
    """The address to open: ``web.base_url`` if set, else the socket's own host and port."""
    web = settings.web
    if web.base_url:
        return web.public_url() + "/"
    port = sock.getsockname()[1]
    host = web.host
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1" if host != "::" else "::1"
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}{web.root_path}/"


@dataclass
class _Part:
    """One thread of ``up`` and how it ended."""

    name: str
    thread: threading.Thread | None = None
    error: BaseException | None = None
    result: Any = None
    done: threading.Event = field(default_factory=threading.Event)

    def start(self, target: Callable[[], Any]) -> None:
        def run() -> None:
            try:
                self.result = target()
            except BaseException as e:  # SystemExit from uvicorn too: the main thread reports it
                self.error = e
            finally:
                self.done.set()

        self.thread = threading.Thread(target=run, name=self.name, daemon=True)
        self.thread.start()

    def join(self, timeout: float) -> None:
        if self.thread is not None:
            self.thread.join(timeout)


class Up:
    """The parts of ``hallmonitor up`` and the order they start and stop in."""

    def __init__(
        self,
        settings: Settings,
        *,
        out: TextIO,
        open_source: Callable[[Settings], FrameSource] = open_live_source,
        clock: Callable[[], float] = time.time,
        reload_settings: Callable[[], Settings] | None = None,
        app_factory: Callable[[Settings], Any] = create_app,
        password_on_screen: bool | None = None,
    ) -> None:
        """``app_factory`` builds the review app from the settings (``create_app``; tests give
        another). ``password_on_screen``: print the first administrator's one-time password (True),
        or write it to its file (False); None: print it only when ``out`` is a terminal."""
        self.settings = settings
        self.out = out
        self.password_on_screen = out.isatty() if password_on_screen is None else password_on_screen
        self.stop_event = threading.Event()
        self.daemon = CaptureDaemon(
            settings, reload_settings=reload_settings, open_source=open_source, clock=clock
        )
        self.app_factory = app_factory
        self.server: uvicorn.Server | None = None
        self.collector: DaemonCollector | None = None
        self.notice: str | None = None
        """What to say about the first administrator just created, until it has been said."""
        self.address: str | None = None
        self.listening = threading.Event()
        """Set once the web app answers (``address`` is then known)."""
        self.capture = _Part("capture")
        self.web = _Part("web")
        self.stopped_parts: list[str] = []
        """The parts in the order they were stopped (for tests of the order)."""

    def stop(self) -> None:
        """Ask ``run`` to stop everything (SIGTERM and SIGINT do this)."""
        self.stop_event.set()

    def run(self) -> RunSummary | None:
        """Start every part, wait for a stop or a failure, stop in order.

        Returns the capture daemon's summary; ``PartFailed`` (or the part's own error, such as
        ``CaptureSetupError``) when a part could not start or died.
        """
        with self._signals():
            return self._run()

    def _run(self) -> RunSummary | None:
        settings = self.settings
        build_rules(settings)  # the lists and the policy load (BlocklistError, ConfigError)
        url = settings.database.url.get_secret_value()
        self._say(upgrade_schema(url))
        sock = bind(settings.web.host, settings.web.port)
        # Before capture starts: SQLite has one writer, and this one must not wait for it.
        try:
            password = create_first_admin(url)
            if password is not None:
                self.notice = self._hand_over(password)
        except BaseException:
            sock.close()
            raise
        try:
            failure = self._start(sock) or self._wait()
        finally:
            summary = self._stop()
            sock.close()
            if self.notice is not None:  # a part failed to start: the account exists anyway
                self._say(self.notice)
        if failure is None and self.capture.error is not None:  # failed while stopping
            failure = _capture_failure(self.capture.error)
        if failure is not None:
            raise failure
        return summary

    def _start(self, sock: socket.socket) -> BaseException | None:
        """Capture, then the web app; the first failure, or None."""
        self.collector = register_daemon_metrics(self.daemon)
        self.capture.start(self.daemon.run)
        if not self._wait_for(lambda: self.daemon.started.is_set(), self.capture):
            return self._not_started("capture")
        # A factory: the app is built in the web thread, so a failure there is the web part's.
        config = uvicorn.Config(self._app, factory=True, **uvicorn_options(self.settings))
        self.server = server = uvicorn.Server(config)
        self.web.start(lambda: server.run(sockets=[sock]))
        if not self._wait_for(lambda: server.started, self.web):
            return self._not_started("web")
        self.address = web_address(self.settings, sock)
        self._say(f"Hall Monitor is up: {self.address}  (Ctrl-C or SIGTERM stops it)")
        if self.notice is not None:
            self._say(self.notice)
            self.notice = None
        self.listening.set()
        return None

    def _hand_over(self, password: str) -> str:
        """The notice to print: the password itself on a terminal, else where its file is."""
        if self.password_on_screen:
            return on_screen_notice(password)
        path = password_file(self.settings.database.data_dir)
        try:
            write_password_file(path, password)
        except OSError as e:  # never the journal instead: the account needs a new password
            raise PartFailed(
                f"created the user {FIRST_ADMIN!r} but cannot write its one-time password to "
                f"{path}: {e.strerror or e}; give it one with `hallmonitor users passwd "
                f"{FIRST_ADMIN}`"
            ) from e
        return file_notice(path)

    def _not_started(self, part: str) -> BaseException | None:
        """Why ``part`` is not running: it failed, timed out, or a stop came (None)."""
        failure = self._failure()
        if failure is not None or self.stop_event.is_set():
            return failure
        return PartFailed(f"{part}: did not start within {START_TIMEOUT_S:.0f} s")

    def _app(self) -> Any:
        return self.app_factory(self.settings)

    def _wait_for(self, ready: Callable[[], bool], part: _Part) -> bool:
        """Wait until ``ready``; False if the part ended, a stop came or time ran out."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while not ready():
            if part.done.is_set() or self.stop_event.is_set() or time.monotonic() > deadline:
                return ready()
            part.done.wait(WAIT_STEP_S)
        return True

    def _wait(self) -> BaseException | None:
        """Until a stop is asked for (None) or a part ends by itself (why)."""
        while not self.stop_event.wait(WAIT_STEP_S):
            if self.capture.done.is_set() or self.web.done.is_set():
                return self._failure()
        return None

    def _stop(self) -> RunSummary | None:
        """Capture first (incidents closed, writer drained), then the web server."""
        self.daemon.stop()
        self.capture.join(JOIN_TIMEOUT_S)
        self.stopped_parts.append("capture")
        if self.server is not None:
            self.server.should_exit = True
            self.web.join(JOIN_TIMEOUT_S)
            self.stopped_parts.append("web")
        if self.collector is not None:
            REGISTRY.unregister(self.collector)
            self.collector = None
        summary: RunSummary | None = self.capture.result
        if summary is not None:
            self._say(f"stopped: {summary.describe()}")
        return summary

    def _failure(self) -> BaseException | None:
        """Why a part ended before it was asked to stop (None if none has)."""
        capture, web = self.capture, self.web
        if capture.error is not None:
            return _capture_failure(capture.error)
        if capture.done.is_set():
            return PartFailed("capture: stopped by itself")
        if web.error is not None and not isinstance(web.error, SystemExit):
            return PartFailed(f"web: stopped: {_one_line(web.error)}")
        if web.done.is_set():
            return PartFailed("web: the review app stopped (see the log above)")
        return None

    def _say(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()

    @contextmanager
    def _signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def stop(signum: int, _frame: FrameType | None) -> None:
            logger.info("received %s: stopping", signal.Signals(signum).name)
            self.stop_event.set()

        def reload(_signum: int, _frame: FrameType | None) -> None:
            self.daemon.reload()

        previous = {
            signum: signal.signal(signum, handler)
            for signum, handler in (
                (signal.SIGTERM, stop),
                (signal.SIGINT, stop),
                (signal.SIGHUP, reload),
            )
        }
        try:
            yield
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)


def _capture_failure(error: BaseException) -> BaseException:
    """The capture daemon's own errors the CLI knows how to print; the others as one line."""
    from monitor.errors import BlocklistError, ConfigError, SchemaNotCurrent
    from monitor.sources.live import CaptureSetupError

    if isinstance(error, CaptureSetupError | BlocklistError | ConfigError | SchemaNotCurrent):
        return error
    return PartFailed(f"capture: {_one_line(error)}")


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
