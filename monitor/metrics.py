"""Prometheus metrics of the capture daemon, and the small HTTP server that exposes them.

``DaemonCollector`` reads ``CaptureDaemon.status()`` at each scrape, so the daemon keeps no
metric objects of its own and nothing is counted twice. Every sample carries a ``site`` label
(a trust's sensors share one Prometheus) and nothing else: no address, MAC, name or platform.
Before capture has started only ``hallmonitor_capture_up 0`` is exposed.

``register_daemon_metrics`` puts the collector in prometheus_client's default ``REGISTRY``,
so in ``hallmonitor up`` the web app's ``/metrics`` shows the daemon too. ``hallmonitor
capture`` (a process without the web app) runs inside ``daemon_metrics``, which also serves
the registry on ``capture.metrics_listen``. A port that cannot be opened is logged as one
error line and capture goes on without it: losing the metrics must not lose the school's
records, and Prometheus shows the missing target anyway. Metric names and meanings:
``api/README.md`` ("Health and metrics").
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from wsgiref.simple_server import WSGIServer

from prometheus_client import REGISTRY, CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from monitor.runner import CaptureDaemon, DaemonStatus

logger = logging.getLogger(__name__)

SITE = ["site"]

COUNTERS: tuple[tuple[str, str], ...] = (
    ("hallmonitor_capture_packets", "Packets the kernel passed through the capture filter."),
    ("hallmonitor_capture_kernel_drops", "Packets the kernel dropped (capture buffer full)."),
    ("hallmonitor_capture_frames", "Frames the pipeline read."),
    ("hallmonitor_capture_malformed", "Frames that could not be decoded (counted, skipped)."),
    ("hallmonitor_observations", "Names seen (DNS, TLS, QUIC, DHCP)."),
    ("hallmonitor_matches", "Observations that matched a platform list."),
    ("hallmonitor_incidents_opened", "Incidents opened by this daemon."),
    ("hallmonitor_incidents_closed", "Incidents closed by this daemon."),
    ("hallmonitor_writer_written", "Records committed to the database from the queue."),
    ("hallmonitor_writer_spooled", "Records put in the disk spool (database away or slow)."),
    ("hallmonitor_writer_replayed", "Spooled records committed later."),
    (
        "hallmonitor_writer_recovered",
        "Spooled records found already committed (the acknowledgement was lost).",
    ),
    ("hallmonitor_writer_dropped", "Records lost: the spool was unwritable or unreadable."),
    ("hallmonitor_writer_rejected", "Records the database refused (kept in rejected.jsonl)."),
)
"""Counter families (exposed with ``_total``) and their help, in ``_counter_values`` order."""

GAUGES: tuple[tuple[str, str], ...] = (
    ("hallmonitor_writer_queue_depth", "Records waiting in the writer's queue now."),
    ("hallmonitor_writer_spool_bytes", "Bytes waiting in the disk spool now."),
)

UP = ("hallmonitor_capture_up", "1 while the daemon captures, else 0.")
START_TIME = (
    "hallmonitor_capture_start_time_seconds",
    "When capture started, in seconds since the epoch.",
)


def _counter_values(status: DaemonStatus) -> tuple[int, ...]:
    writer = status.writer
    return (
        status.packets,
        status.kernel_drops,
        status.frames,
        status.malformed,
        status.observations,
        status.matches,
        status.incidents_opened,
        status.incidents_closed,
        writer.written,
        writer.spooled,
        writer.replayed,
        writer.recovered,
        writer.dropped,
        writer.rejected,
    )


class DaemonCollector(Collector):
    """The daemon's totals at scrape time, labelled with the sensor's site."""

    def __init__(self, daemon: CaptureDaemon) -> None:
        self.daemon = daemon

    def describe(self) -> Iterator[Metric]:
        """Every family this collector can expose (checked for clashes at registration)."""
        yield GaugeMetricFamily(*UP, labels=SITE)
        yield GaugeMetricFamily(*START_TIME, labels=SITE)
        for name, documentation in COUNTERS:
            yield CounterMetricFamily(name, documentation, labels=SITE)
        for name, documentation in GAUGES:
            yield GaugeMetricFamily(name, documentation, labels=SITE)

    def collect(self) -> Iterator[Metric]:
        daemon = self.daemon
        site = [daemon.settings.site.name]
        status = daemon.status()
        running = status is not None and not daemon.stop_event.is_set()
        up = GaugeMetricFamily(*UP, labels=SITE)
        up.add_metric(site, 1.0 if running else 0.0)
        yield up
        if status is None:
            return
        if daemon.started_at is not None:
            start = GaugeMetricFamily(*START_TIME, labels=SITE)
            start.add_metric(site, daemon.started_at)
            yield start
        for (name, documentation), value in zip(COUNTERS, _counter_values(status), strict=True):
            counter = CounterMetricFamily(name, documentation, labels=SITE)
            counter.add_metric(site, value)
            yield counter
        for (name, documentation), value in zip(
            GAUGES, (status.writer.queued, status.writer.spool_bytes), strict=True
        ):
            gauge = GaugeMetricFamily(name, documentation, labels=SITE)
            gauge.add_metric(site, value)
            yield gauge


def register_daemon_metrics(
    daemon: CaptureDaemon, registry: CollectorRegistry = REGISTRY
) -> DaemonCollector:
    """Expose ``daemon`` in ``registry`` (unregister the result when the daemon is done)."""
    collector = DaemonCollector(daemon)
    registry.register(collector)
    return collector


@dataclass
class MetricsServer:
    """The exporter's HTTP server, running in a daemon thread."""

    server: WSGIServer
    thread: threading.Thread

    @property
    def port(self) -> int:
        """The port it listens on (useful when asked for port 0)."""
        return int(self.server.server_port)

    def close(self) -> None:
        """Stop serving and release the port."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def serve_metrics(
    host: str, port: int, registry: CollectorRegistry = REGISTRY
) -> MetricsServer | None:
    """Serve ``registry`` over HTTP on ``host:port``; None (and one error line) when the
    address cannot be opened, e.g. a port in use."""
    try:
        server, thread = start_http_server(port, addr=host, registry=registry)
    except OSError as e:
        logger.error(
            "metrics: cannot listen on %s (%s); capture goes on without the metrics: free the "
            "port or change capture.metrics_listen",
            _address(host, port),
            e.strerror or e,
        )
        return None
    metrics = MetricsServer(server, thread)
    logger.info("metrics on http://%s/metrics", _address(host, metrics.port))
    return metrics


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@contextmanager
def daemon_metrics(
    daemon: CaptureDaemon,
    address: tuple[str, int] | None,
    registry: CollectorRegistry = REGISTRY,
) -> Iterator[MetricsServer | None]:
    """``hallmonitor capture``'s metrics for the life of the block: the collector in
    ``registry`` and, unless ``address`` is None, the HTTP server on it."""
    collector = register_daemon_metrics(daemon, registry)
    server = serve_metrics(*address, registry=registry) if address is not None else None
    try:
        yield server
    finally:
        if server is not None:
            server.close()
        registry.unregister(collector)
