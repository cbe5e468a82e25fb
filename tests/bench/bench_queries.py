"""Review-app query benchmark: the queue, an incident's page, CSV and stats over 100k incidents.

Why: issue 4 asks for the queue page, the incident page and the API list at p95 <= 100 ms with
100k incidents on SQLite. The pages add templates and HTTP on top; this measures the query
layer they share (``monitor.store.queries``), so a slow page can be told from a slow query.

Run (from the repository root)::

    .venv/bin/python -m tests.bench.bench_queries [--incidents 100000] [--repeats 50]
        [--keep PATH]

It migrates a fresh SQLite file (``alembic upgrade head``), inserts ``--incidents`` generated
incidents over one school year at two sites (2,000 devices, six platforms, mixed review
states; 40 observations and a short review history on the incidents it opens), then times,
``--repeats`` times each, on one site's reviewer scope: the first page of the queue; a filtered
page (status new, two platforms, a month); a deep page (the last of the unfiltered queue); a
device search; other sorts; an incident's page (random incidents); the week's and the term's
stats; and once per three repeats the whole queue as CSV. It prints p50 and p95 in ms, and
marks the queue and incident figures against the 100 ms target. Exit status 1 only on a
crash, never because of a time.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from monitor.store.db import make_engine, upgrade_schema
from monitor.store.models import IncidentRecord, IncidentReviewRecord, ObservationRecord
from monitor.store.queries import (
    IncidentFilters,
    get_incident,
    incident_stats,
    incidents_csv,
    list_incidents,
)
from monitor.store.queries.weeks import school_week

LONDON = ZoneInfo("Europe/London")
YEAR_START = datetime(2025, 9, 1, 7, 0, tzinfo=UTC)
PLATFORMS = ("instagram", "tiktok", "snapchat", "facebook", "x", "youtube")
SITES = ("school", "annex")
TARGET_MS = 100.0


def populate(path: Path, incidents: int, seed: int = 7) -> None:
    """A migrated SQLite file holding ``incidents`` generated incidents."""
    url = f"sqlite:///{path}"
    upgrade_schema(url)
    engine = make_engine(url)
    rng = random.Random(seed)
    rows = []
    for n in range(incidents):
        device = rng.randrange(2000)
        start = YEAR_START + timedelta(minutes=rng.randrange(300 * 24 * 60))
        status = rng.choices(("new", "in_review", "closed"), (3, 1, 6))[0]
        rows.append({
            "key": f"k{n}", "site": SITES[device % 2], "platform": rng.choice(PLATFORMS),
            "category": "social", "device_ip": f"10.{device // 250}.{device % 250}.{device % 7 + 1}",
            "device_mac": None if device % 10 == 0 else f"aa:bb:cc:00:{device // 256:02x}:{device % 256:02x}",
            "device_host_name": f"DEVICE-{device}", "device_segment": ("staff-wifi", "pupil-wifi")[device % 3 == 0],
            "device_label": f"Room {device % 40}" if device % 5 == 0 else None,
            "role": ("staff", "pupil")[device % 3 == 0], "start_at": start,
            "end_at": start + timedelta(minutes=20), "active_minutes": 20.0,
            "confidence": rng.random(), "hit_count": rng.randrange(1, 200), "state": "closed",
            "evidence": [{"ts": start.timestamp(), "proto": "tls", "name": "www.instagram.com", "via": "name"}] * 5,
            "status": status, "outcome": "no_action" if status == "closed" else None,
            "created_at": start, "updated_at": start,
        })  # fmt: skip
    with engine.begin() as connection:
        for first in range(0, len(rows), 5000):
            connection.execute(insert(IncidentRecord), rows[first : first + 5000])
        ids = list(connection.scalars(select(IncidentRecord.id)))
        sample = rng.sample(ids, min(200, len(ids)))
        keys = dict(connection.execute(select(IncidentRecord.id, IncidentRecord.key).where(IncidentRecord.id.in_(sample))).all())  # fmt: skip
        connection.execute(insert(ObservationRecord), [
            {"site": "school", "ts": YEAR_START + timedelta(seconds=n), "proto": "tls",
             "name": "www.instagram.com", "client_ip": "10.0.0.1", "client_mac": None,
             "server_ip": "157.240.1.174", "server_port": 443, "flags": "", "platform": "instagram",
             "presence": "primary", "via": "name", "incident_key": keys[incident_id]}
            for incident_id in sample for n in range(40)
        ])  # fmt: skip
        connection.execute(insert(IncidentReviewRecord), [
            {"incident_id": incident_id, "at": YEAR_START, "username": "head", "from_status": "new",
             "to_status": "in_review", "note": "looking"}
            for incident_id in sample
        ])  # fmt: skip
    engine.dispose()


def timed(repeats: int, action: Callable[[int], object]) -> list[float]:
    """Milliseconds of each of ``repeats`` calls (after one warm-up call)."""
    action(-1)
    times = []
    for n in range(repeats):
        started = time.perf_counter()
        action(n)
        times.append((time.perf_counter() - started) * 1000)
    return times


def report(name: str, times: list[float], target: bool) -> None:
    p50 = statistics.median(times)
    p95 = statistics.quantiles(times, n=20)[-1] if len(times) >= 2 else times[0]
    verdict = ("  ok" if p95 <= TARGET_MS else "  OVER TARGET") if target else ""
    print(f"{name:<34} p50 {p50:8.1f} ms   p95 {p95:8.1f} ms   n={len(times)}{verdict}")  # noqa: T201


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--incidents", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--keep", type=Path, help="reuse (or create) this SQLite file")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        path = args.keep or Path(tmp) / "bench.sqlite3"
        if not path.exists():
            started = time.perf_counter()
            populate(path, args.incidents)
            print(f"inserted {args.incidents} incidents in {time.perf_counter() - started:.1f} s")  # noqa: T201
        engine = make_engine(f"sqlite:///{path}")
        rng = random.Random(11)
        with Session(engine) as db:
            ids = list(db.scalars(select(IncidentRecord.id).where(IncidentRecord.site == "school")))
            everything = IncidentFilters()
            last_page = list_incidents(
                db, everything, page=1, per_page=50, site_scope="school"
            ).pages
            filtered = IncidentFilters(
                statuses=("new",), platforms=("instagram", "tiktok"),
                date_from=date(2025, 11, 1), date_to=date(2025, 11, 30), tz=LONDON,
            )  # fmt: skip
            week = school_week("2026-W10", LONDON)
            term = (datetime(2026, 1, 5, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC))
            cases: list[tuple[str, bool, int, Callable[[int], object]]] = [
                (
                    "queue: first page",
                    True,
                    args.repeats,
                    lambda _: list_incidents(
                        db, everything, page=1, per_page=50, site_scope="school"
                    ),
                ),  # fmt: skip
                (
                    "queue: filtered page",
                    True,
                    args.repeats,
                    lambda _: list_incidents(
                        db, filtered, page=1, per_page=50, site_scope="school"
                    ),
                ),  # fmt: skip
                (
                    "queue: new only, page 1",
                    True,
                    args.repeats,
                    lambda _: list_incidents(
                        db,
                        IncidentFilters(statuses=("new",)),
                        page=1,
                        per_page=50,
                        site_scope="school",
                    ),
                ),  # fmt: skip
                (
                    f"queue: deep page ({last_page})",
                    True,
                    args.repeats,
                    lambda _: list_incidents(
                        db, everything, page=last_page, per_page=50, site_scope="school"
                    ),
                ),  # fmt: skip
                (
                    "queue: device search",
                    True,
                    args.repeats,
                    lambda _: list_incidents(
                        db,
                        IncidentFilters(device="room 1"),
                        page=1,
                        per_page=50,
                        site_scope="school",
                    ),
                ),  # fmt: skip
                (
                    "queue: sort by platform",
                    True,
                    args.repeats,
                    lambda _: list_incidents(
                        db, everything, sort="platform", page=1, per_page=50, site_scope="school"
                    ),
                ),  # fmt: skip
                (
                    "queue: sort by device",
                    True,
                    args.repeats,
                    lambda _: list_incidents(
                        db, everything, sort="device", page=1, per_page=50, site_scope="school"
                    ),
                ),  # fmt: skip
                (
                    "queue: all sites, first page",
                    True,
                    args.repeats,
                    lambda _: list_incidents(db, everything, page=1, per_page=50, site_scope=None),
                ),  # fmt: skip
                (
                    "incident page",
                    True,
                    args.repeats,
                    lambda _: get_incident(db, rng.choice(ids), "school"),
                ),  # fmt: skip
                (
                    "stats: one week",
                    False,
                    args.repeats,
                    lambda _: incident_stats(db, *week, LONDON, "school"),
                ),  # fmt: skip
                (
                    "stats: one term",
                    False,
                    args.repeats,
                    lambda _: incident_stats(db, *term, LONDON, "school"),
                ),  # fmt: skip
                (
                    "CSV: whole queue of one site",
                    False,
                    max(3, args.repeats // 10),
                    lambda _: sum(1 for _ in incidents_csv(db, everything, "school")),
                ),  # fmt: skip
            ]
            print(f"{args.incidents} incidents, SQLite, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")  # noqa: T201  # fmt: skip
            for name, target, repeats, action in cases:
                report(name, timed(repeats, action), target)
        engine.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
