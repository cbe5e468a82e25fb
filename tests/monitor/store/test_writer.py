"""The writer batches, spools when the queue is full or the database is away, and loses nothing.

The database outages are real: PostgreSQL is reached through a small TCP proxy in this file,
which refuses connections and cuts the open ones while "down".
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from monitor.records import CounterIncrement, StoredObservation
from monitor.store.db import make_engine
from monitor.store.items import WriterItem, apply_records, encode_item
from monitor.store.models import DailyCounterRecord, IncidentRecord, ObservationRecord
from monitor.store.spool import Spool, SpoolRecord
from monitor.store.writer import Writer, WriterStats
from monitor.values import IncidentState
from tests.monitor.store.factories import SITE, T0, make_incident, make_observation, utc

DAY = date(2026, 3, 10)
DEADLINE_S = 60.0


class TcpProxy:
    """Forwards 127.0.0.1:<port> to a server; ``pause()`` makes the server unreachable."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()

    def resume(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.settimeout(0.05)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def pause(self) -> None:
        """Refuse new connections and cut the open ones."""
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            with contextlib.suppress(OSError):  # already cut by the other side
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while self._listener is listener:
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            upstream = socket.create_connection(self.target)
            with self._lock:
                self._sockets |= {client, upstream}
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):  # pause() cut the connection
            while data := source.recv(65536):
                sink.sendall(data)
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def spool_dir(tmp_path: Path) -> Path:
    return tmp_path / "spool"


@pytest.fixture
def make_writer(spool_dir: Path) -> Iterator[Callable[..., Writer]]:
    writers: list[Writer] = []

    def build(url: str, **options: float) -> Writer:
        settings: dict[str, float] = {
            "flush_interval_s": 0.05,
            "retry_initial_s": 0.1,
            "retry_max_s": 0.5,
        }
        settings.update(options)
        writer = Writer(lambda: make_engine(url), spool_dir=spool_dir, **settings)  # type: ignore[arg-type]
        writers.append(writer)
        return writer

    yield build
    for writer in writers:
        writer.stop(timeout=5)


@pytest.fixture
def proxied_url(engine_url: str) -> Iterator[tuple[str, TcpProxy]]:
    """The PostgreSQL test database behind a proxy the test can pause."""
    url = make_url(engine_url)
    proxy = TcpProxy((url.host or "127.0.0.1", url.port or 5432))
    proxy.resume()
    yield url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False), proxy
    proxy.pause()


def wait_for(condition: Callable[[], bool], what: str, timeout: float = DEADLINE_S) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


def incident_life(key: str, start: float, hits: int) -> list[WriterItem]:
    """What the engine submits for one incident: per hit an observation, a counter, a snapshot."""
    items: list[WriterItem] = []
    for hit in range(1, hits + 1):
        items.append(make_observation(start + 30 * (hit - 1), incident_key=key))
        items.append(CounterIncrement(SITE, DAY, "observations.tls", 1))
        items.append(make_incident(key, hit_count=hit, start=start))
    items.append(make_incident(key, hit_count=hits, start=start, state=IncidentState.CLOSED))
    return items


def interleaved(lives: list[list[WriterItem]]) -> list[WriterItem]:
    """The items of several incidents in the order a capture would produce them."""
    out: list[WriterItem] = []
    for step in range(max(len(life) for life in lives)):
        out.extend(life[step] for life in lives if step < len(life))
    return out


def assert_stored_once(engine: Engine, lives: dict[str, int], observations: int) -> None:
    """Each incident once, closed with all its hits; every observation and count exactly once."""
    with Session(engine) as db:
        rows = db.execute(
            select(IncidentRecord.key, IncidentRecord.hit_count, IncidentRecord.state)
        ).all()
        assert sorted(tuple(row) for row in rows) == sorted(
            (k, n, "closed") for k, n in lives.items()
        )
        assert db.scalar(select(func.count()).select_from(ObservationRecord)) == observations
        assert db.scalar(select(DailyCounterRecord.count)) == observations


def observation_times_in_id_order(engine: Engine) -> list[float]:
    with Session(engine) as db:
        return [
            ts.timestamp()
            for ts in db.scalars(select(ObservationRecord.ts).order_by(ObservationRecord.id))
        ]


def assert_nothing_lost(stats: WriterStats, spool_dir: Path) -> None:
    assert (stats.queued, stats.dropped, stats.rejected, stats.spool_bytes) == (0, 0, 0, 0)
    assert list(spool_dir.glob("segment-*.jsonl")) == []


class TestBatching:
    def test_writer_writes_every_item_once_and_stop_drains(
        self, engine_url: str, engine: Engine, make_writer: Callable[..., Writer], spool_dir: Path
    ) -> None:
        lives = {f"k{n}": 5 + n for n in range(10)}
        items = interleaved(
            [incident_life(k, T0 + 7 * n, hits) for n, (k, hits) in enumerate(lives.items())]
        )
        writer = make_writer(engine_url, batch_size=25, flush_interval_s=5.0)
        writer.start()
        for item in items:
            writer.submit(item)
        stats = writer.stop(timeout=30)
        assert stats.written == len(items)
        assert_nothing_lost(stats, spool_dir)
        assert_stored_once(engine, lives, observations=sum(lives.values()))

    def test_writer_keeps_the_submission_order(
        self, engine_url: str, engine: Engine, make_writer: Callable[..., Writer]
    ) -> None:
        writer = make_writer(engine_url, batch_size=7)
        writer.start()
        for n in range(50):
            writer.submit(make_observation(T0 + n))
        writer.stop(timeout=30)
        assert observation_times_in_id_order(engine) == [T0 + n for n in range(50)]

    def test_a_replay_writer_waits_for_room_and_keeps_the_order(
        self, engine_url: str, engine: Engine, make_writer: Callable[..., Writer]
    ) -> None:
        writer = make_writer(engine_url, queue_size=2, batch_size=3, wait_when_full=True)
        writer.start()
        for n in range(40):
            writer.submit(make_observation(T0 + n))
        stats = writer.stop(timeout=30)
        assert (stats.written, stats.spooled) == (40, 0)
        assert observation_times_in_id_order(engine) == [T0 + n for n in range(40)]


class TestSpool:
    def test_a_full_queue_spills_to_the_spool_and_is_replayed(
        self, engine_url: str, engine: Engine, make_writer: Callable[..., Writer], spool_dir: Path
    ) -> None:
        writer = make_writer(engine_url, queue_size=3)
        items = incident_life("k1", T0, 4)
        for item in items:
            writer.submit(item)  # not started: the queue fills at once
        assert (writer.stats().queued, writer.stats().spooled) == (3, len(items) - 3)
        writer.start()
        wait_for(
            lambda: writer.stats().spool_bytes == 0 and writer.stats().queued == 0,
            "the spool to drain",
        )
        stats = writer.stop(timeout=30)
        assert (stats.written, stats.replayed) == (3, len(items) - 3)
        assert_nothing_lost(stats, spool_dir)
        assert_stored_once(engine, {"k1": 4}, observations=4)

    def test_a_full_queue_and_an_unwritable_spool_drop_and_log(
        self,
        engine_url: str,
        make_writer: Callable[..., Writer],
        spool_dir: Path,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        writer = make_writer(engine_url, queue_size=1)
        shutil.rmtree(spool_dir)
        spool_dir.write_text("a file where the spool directory was")
        with caplog.at_level(logging.ERROR, logger="monitor.store.writer"):
            for n in range(3):
                writer.submit(make_observation(T0 + n))
        assert (writer.stats().queued, writer.stats().dropped) == (1, 2)
        assert "items dropped" in caplog.text and "could not be written" in caplog.text

    def test_spool_left_by_a_previous_run_is_replayed_at_start(
        self, engine_url: str, engine: Engine, make_writer: Callable[..., Writer], spool_dir: Path
    ) -> None:
        spool = Spool(spool_dir)
        spool.append("previous-run", [encode_item(i) for i in incident_life("k1", T0, 3)])
        spool.close()
        writer = make_writer(engine_url)
        writer.start()
        writer.submit(make_observation(T0 + 3600, incident_key=None))
        stats = writer.stop(timeout=30)
        assert (stats.replayed, stats.written) == (10, 1)
        assert_nothing_lost(stats, spool_dir)
        assert observation_times_in_id_order(engine) == [T0, T0 + 30, T0 + 60, T0 + 3600]

    def test_a_spooled_batch_already_committed_is_not_applied_again(
        self, engine_url: str, engine: Engine, make_writer: Callable[..., Writer], spool_dir: Path
    ) -> None:
        """The commit went through but its acknowledgement was lost: the batch was spooled too."""
        record = SpoolRecord("lost-ack", [encode_item(i) for i in incident_life("k1", T0, 3)])
        with engine.begin() as connection:
            apply_records(connection, [record], now=utc(T0), skip_applied=False)
        spool = Spool(spool_dir)
        spool.append(record.id, record.items)
        spool.close()
        writer = make_writer(engine_url)
        writer.start()
        stats = writer.stop(timeout=30)
        assert (stats.replayed, stats.recovered) == (0, len(record.items))
        assert_nothing_lost(stats, spool_dir)
        assert_stored_once(engine, {"k1": 3}, observations=3)

    def test_items_the_database_refuses_are_kept_aside_and_the_rest_written(
        self, engine_url: str, engine: Engine, make_writer: Callable[..., Writer], spool_dir: Path
    ) -> None:
        good = [encode_item(i) for i in incident_life("k1", T0, 2)]
        bogus = {
            **encode_item(make_incident("k2")),
            "state": "bogus",
        }  # violates a CHECK constraint
        spool = Spool(spool_dir)
        spool.append("mixed", [*good[:3], bogus, *good[3:]])
        spool.close()
        writer = make_writer(engine_url)
        writer.start()
        stats = writer.stop(timeout=30)
        assert (stats.replayed, stats.rejected) == (len(good), 1)
        assert '"state":"bogus"' in (spool_dir / "rejected.jsonl").read_text()
        assert_stored_once(engine, {"k1": 2}, observations=2)


@pytest.mark.parametrize("backend", [pytest.param("postgresql", marks=pytest.mark.postgres)])
class TestDatabaseOutage:
    def run_outage(
        self,
        proxied: tuple[str, TcpProxy],
        engine: Engine,
        make_writer: Callable[..., Writer],
        spool_dir: Path,
        *,
        outage_s: float,
        feed_period_s: float,
    ) -> None:
        url, proxy = proxied
        lives = {f"k{n}": 6 for n in range(8)}
        items = interleaved(
            [incident_life(k, T0 + n, hits) for n, (k, hits) in enumerate(lives.items())]
        )
        writer = make_writer(url, batch_size=20)
        writer.start()

        def feed() -> None:  # a capture replay: a steady stream of items
            for item in items:
                writer.submit(item)
                time.sleep(feed_period_s)

        feeder = threading.Thread(target=feed)
        feeder.start()
        wait_for(lambda: writer.stats().written > 0, "the first batch")
        proxy.pause()
        down_at = time.monotonic()
        wait_for(lambda: writer.stats().spooled > 0, "the first spooled batch")
        time.sleep(max(0.0, outage_s - (time.monotonic() - down_at)))  # the database stays away
        proxy.resume()
        wait_for(lambda: writer.stats().replayed > 0, "the spool replay to start")
        proxy.pause()  # and away again, briefly, while the spool replays
        time.sleep(0.5)
        proxy.resume()
        feeder.join()
        stats = writer.stop(timeout=30)
        assert stats.spooled > 0
        # A commit whose acknowledgement the outage cut off is found committed on replay.
        assert stats.written + stats.replayed + stats.recovered == len(items)
        assert stats.last_error is not None
        assert_nothing_lost(stats, spool_dir)
        assert_stored_once(engine, lives, observations=sum(lives.values()))
        submitted = [i.observation.ts for i in items if isinstance(i, StoredObservation)]
        assert observation_times_in_id_order(engine) == submitted

    def test_stop_while_the_database_is_away_spools_everything_for_the_next_start(
        self,
        proxied_url: tuple[str, TcpProxy],
        engine: Engine,
        make_writer: Callable[..., Writer],
        spool_dir: Path,
    ) -> None:
        url, proxy = proxied_url
        proxy.pause()
        items = incident_life("k1", T0, 5)
        writer = make_writer(url, retry_initial_s=10.0)
        writer.start()
        for item in items:
            writer.submit(item)
        stats = writer.stop(timeout=5)
        assert (stats.written, stats.spooled, stats.dropped, stats.queued) == (0, len(items), 0, 0)
        assert stats.last_error is not None and "OperationalError" in stats.last_error
        proxy.resume()
        writer = make_writer(url)
        writer.start()
        stats = writer.stop(timeout=30)
        assert stats.replayed == len(items)
        assert_nothing_lost(stats, spool_dir)
        assert_stored_once(engine, {"k1": 5}, observations=5)

    def test_stop_during_a_retry_delay_tries_the_database_once_more(
        self,
        proxied_url: tuple[str, TcpProxy],
        engine: Engine,
        make_writer: Callable[..., Writer],
        spool_dir: Path,
    ) -> None:
        """The database came back during the backoff: shutdown writes the spool, not later."""
        url, proxy = proxied_url
        proxy.pause()
        items = incident_life("k1", T0, 5)
        writer = make_writer(url, retry_initial_s=60.0)
        writer.start()
        for item in items:
            writer.submit(item)
        wait_for(lambda: writer.stats().spooled == len(items), "everything spooled")
        proxy.resume()
        stats = writer.stop(timeout=10)
        assert (stats.spooled, stats.replayed) == (len(items), len(items))
        assert_nothing_lost(stats, spool_dir)
        assert_stored_once(engine, {"k1": 5}, observations=5)

    def test_database_away_for_a_few_seconds_loses_nothing(
        self,
        proxied_url: tuple[str, TcpProxy],
        engine: Engine,
        make_writer: Callable[..., Writer],
        spool_dir: Path,
    ) -> None:
        self.run_outage(proxied_url, engine, make_writer, spool_dir, outage_s=3, feed_period_s=0.02)

    @pytest.mark.slow
    def test_database_away_for_30_seconds_during_a_replay_loses_nothing(
        self,
        proxied_url: tuple[str, TcpProxy],
        engine: Engine,
        make_writer: Callable[..., Writer],
        spool_dir: Path,
    ) -> None:
        self.run_outage(
            proxied_url, engine, make_writer, spool_dir, outage_s=31, feed_period_s=0.25
        )
