"""Review-app page benchmark: the queue, an incident and the API list over HTTP at 100k incidents.

Why: issue 4's acceptance asks for the queue page, the incident page and the API list at
p95 <= 100 ms with 100k generated incidents on SQLite. ``bench_queries`` times the query layer
alone; this one goes through the real app (``create_app(settings)`` in a ``TestClient``): the
session cookie or bearer token check, the query, the audit row of an incident view, the
Jinja2 template or the JSON encoding. Comparing the two tells a slow page from a slow query.

Run (from the repository root)::

    .venv/bin/python -m tests.bench.bench_pages [--incidents 100000] [--repeats 50]
        [--keep PATH]

It builds a migrated SQLite file with ``bench_queries.populate`` (two sites, 2,000 devices),
adds a reviewer limited to the site ``school`` (``--site ''`` for every site; cheap argon2 profile; the password hash is not
what is measured), signs in through the login form, issues an API token for the same user,
then times each request ``--repeats`` times after one warm-up. It prints p50, p95 and max in
ms beside the 100 ms target. Figures depend on the machine (CPU, disk, load): they are
indications, and the exit status is never about time (1 only on a failed request).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from argon2 import PasswordHasher
from bs4 import BeautifulSoup
from fastapi.testclient import TestClient
from sqlalchemy import func, select, true
from sqlalchemy.orm import Session

from api.app import create_app
from api.pages.incidents import PER_PAGE as QUEUE_PER_PAGE
from monitor.config.settings import Settings
from monitor.store.api_tokens import create_api_token
from monitor.store.db import make_engine
from monitor.store.models import IncidentRecord
from monitor.store.users import create_user
from monitor.store.workflow import UserRole
from tests.bench.bench_queries import populate

TARGET_MS = 100.0
PASSWORD = "correct horse battery staple"
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
PER_PAGE = 50
"""The API page size asked for (the queue page has its own)."""

Request = Callable[[int], object]


def add_reviewer(url: str, site: str | None) -> tuple[str, str]:
    """A reviewer limited to ``site`` (None: every site) and an API token: (username, token)."""
    engine = make_engine(url)
    with Session(engine) as db:
        username = f"bench-{random.randrange(1 << 30):x}"
        user = create_user(
            db, username, "Bench Reviewer", UserRole.REVIEWER, PASSWORD,
            site=site, hasher=FAST_HASHER,
        )  # fmt: skip
        token = create_api_token(db, user.id, "bench")
        db.commit()
    engine.dispose()
    return username, token


def sign_in(client: TestClient, username: str) -> None:
    """Sign in through the real login form (CSRF token from the page, session cookie set)."""
    page = client.get("/login")
    field = BeautifulSoup(page.text, "html.parser").find("input", attrs={"name": "csrf_token"})
    token = field.get("value") if field is not None else None
    if not isinstance(token, str):
        raise SystemExit("login page without a csrf_token field")
    response = client.post(
        "/login",
        data={"username": username, "password": PASSWORD, "csrf_token": token, "next": "/"},
        follow_redirects=False,
    )
    if response.status_code != 303:
        raise SystemExit(f"sign-in failed: {response.status_code} {response.text[:200]}")


def timed(repeats: int, action: Request) -> list[float]:
    """Milliseconds of each of ``repeats`` calls (after one warm-up call)."""
    action(-1)
    times = []
    for n in range(repeats):
        started = time.perf_counter()
        action(n)
        times.append((time.perf_counter() - started) * 1000)
    return times


def row(name: str, times: list[float]) -> str:
    """One line of the table: p50, p95, max against the target."""
    p50 = statistics.median(times)
    p95 = statistics.quantiles(times, n=20)[-1] if len(times) >= 2 else times[0]
    verdict = "ok" if p95 <= TARGET_MS else "OVER"
    return (
        f"{name:<40} {p50:8.1f} {p95:8.1f} {max(times):8.1f} {TARGET_MS:8.0f}  {verdict}"
        f"  (n={len(times)})"
    )


def getter(client: TestClient, path: str, headers: dict[str, str] | None = None) -> Request:
    """A request that fails loudly on anything but 200 (a fast error page is no result)."""

    def get(_: int) -> object:
        response = client.get(path, headers=headers)
        if response.status_code != 200:
            raise SystemExit(f"GET {path}: {response.status_code} {response.text[:200]}")
        return response

    return get


def cases(
    client: TestClient, token: str, ids: list[int], last_page: int, last_api_page: int
) -> list[tuple[str, Request]]:
    """The requests timed, by name."""
    rng = random.Random(11)
    bearer = {"Authorization": f"Bearer {token}"}
    filtered = "status=new&platform=instagram&platform=tiktok&date_from=2025-11-01&date_to=2025-11-30"  # fmt: skip
    api_filtered = f"{filtered}&per_page={PER_PAGE}"

    def incident_page(_: int) -> object:
        return getter(client, f"/incidents/{rng.choice(ids)}")(0)

    def api_incident(_: int) -> object:
        return getter(client, f"/api/v1/incidents/{rng.choice(ids)}", bearer)(0)

    return [
        ("page: queue, first page", getter(client, "/incidents")),
        ("page: queue, filtered", getter(client, f"/incidents?{filtered}")),
        (f"page: queue, deep page ({last_page})", getter(client, f"/incidents?page={last_page}")),
        ("page: queue, sort by device", getter(client, "/incidents?sort=device")),
        ("page: queue, sort by platform", getter(client, "/incidents?sort=platform")),
        ("page: queue, device search 'room 1'", getter(client, "/incidents?device=room+1")),
        ("page: queue, device search by IP", getter(client, "/incidents?device=10.3.17.4")),
        ("page: incident (random)", incident_page),
        ("page: dashboard", getter(client, "/dashboard")),
        ("api: list, first page", getter(client, f"/api/v1/incidents?per_page={PER_PAGE}", bearer)),
        ("api: list, filtered", getter(client, f"/api/v1/incidents?{api_filtered}", bearer)),
        (
            f"api: list, deep page ({last_api_page})",
            getter(client, f"/api/v1/incidents?per_page={PER_PAGE}&page={last_api_page}", bearer),
        ),
        (
            "api: list, sort by device",
            getter(client, f"/api/v1/incidents?per_page={PER_PAGE}&sort=device", bearer),
        ),
        (
            "api: list, device search 'room 1'",
            getter(client, f"/api/v1/incidents?per_page={PER_PAGE}&device=room+1", bearer),
        ),
        ("api: incident (random)", api_incident),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--incidents", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--keep", type=Path, help="reuse (or create) this SQLite file")
    parser.add_argument("--only", help="time only the cases whose name contains this text")
    parser.add_argument(
        "--site", default="school", help="the reviewer's site limit ('' for every site)"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        path = args.keep or Path(tmp) / "bench.sqlite3"
        if not path.exists():
            started = time.perf_counter()
            populate(path, args.incidents)
            print(f"inserted {args.incidents} incidents in {time.perf_counter() - started:.1f} s")  # noqa: T201
        url = f"sqlite:///{path}"
        username, token = add_reviewer(url, args.site or None)
        settings = Settings.model_validate({"database": {"url": url}})
        app = create_app(settings, password_hasher=FAST_HASHER)
        with TestClient(app) as client:
            sign_in(client, username)
            with Session(app.state.engine) as db:
                site = IncidentRecord.site == args.site if args.site else true()
                ids = list(db.scalars(select(IncidentRecord.id).where(site)))
                total = db.scalar(select(func.count()).select_from(IncidentRecord).where(site))
            last_page = max(1, -(-(total or 0) // QUEUE_PER_PAGE))
            last_api_page = max(1, -(-(total or 0) // PER_PAGE))
            print(  # noqa: T201
                f"{args.incidents} incidents, SQLite, TestClient in-process, "
                f"reviewer of {args.site or 'every site'}, "
                f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}"
            )
            print(  # noqa: T201
                "Figures depend on this machine (CPU, disk cache, load); indications only."
            )
            print(f"{'case':<40} {'p50':>8} {'p95':>8} {'max':>8} {'target':>8}  (ms)")  # noqa: T201
            for name, action in cases(client, token, ids, last_page, last_api_page):
                if args.only and args.only not in name:
                    continue
                print(row(name, timed(args.repeats, action)), flush=True)  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
