"""`hallmonitor selftest`: a real lookup across a captured veth, seen and classified, or the
step that failed; every run recorded where the governors' report finds it.

The resolver is the namespace end of a veth pair, so the query leaves through the host end,
where the self-test captures. Nothing answers in the namespace: the lookup times out, and the
query alone must be enough.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from sqlalchemy import select
from sqlalchemy.orm import Session

from hallmonitor.cli.root import main
from hallmonitor.selftest import Lookup, is_test_query, judge, look_up, run_selftest
from monitor.classify import Classifier
from monitor.config.loading import load_settings
from monitor.config.settings import Settings
from monitor.errors import ConfigError
from monitor.lists.directories import load_lists
from monitor.store.db import make_engine
from monitor.store.models import CheckRecord
from monitor.store.queries.governors import CheckRuns, governor_summary
from monitor.values import Flag, Observation, Proto
from tests.monitor.sources.netns import VethNamespace, veth_namespace

pytestmark = pytest.mark.live_capture


def settings(tmp_path: Path, url: str, interface: str, resolver: str, **selftest: Any) -> Settings:
    return Settings.model_validate(
        {
            "site": {"name": "Hill School"},
            "capture": {"interfaces": [interface]},
            "database": {"url": url, "data_dir": str(tmp_path / "data")},
            "selftest": {"resolver": resolver, "timeout_s": 0.5, **selftest},
        }
    )


def stored_checks(url: str) -> list[CheckRecord]:
    engine = make_engine(url)
    try:
        with Session(engine) as db:
            return list(db.scalars(select(CheckRecord).order_by(CheckRecord.id)))
    finally:
        engine.dispose()


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    """A database at the schema head (the PostgreSQL server is exercised by two tests only)."""
    path = tmp_path / "hallmonitor.sqlite3"
    shutil.copyfile(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def pair() -> Any:
    with veth_namespace() as created:
        yield created


def test_a_lookup_across_the_captured_interface_is_seen_and_classified(
    tmp_path: Path, engine_url: str, pair: VethNamespace
) -> None:
    status, lines = run_selftest(
        settings(tmp_path, engine_url, pair.host_iface, pair.ns_ip), by="it-tech"
    )

    assert status == 0, lines
    assert lines[0] == (
        f"OK   selftest     query seen on {pair.host_iface} from {pair.host_ip} to {pair.ns_ip}, "
        "classified as facebook (social, by facebook.com); no answer within 0.5 s"
    )
    assert lines[1].startswith("recorded as a selftest check by it-tech in ")
    [row] = stored_checks(engine_url)
    assert (row.kind, row.ok, row.username, row.site) == (
        "selftest",
        True,
        "it-tech",
        "Hill School",
    )
    assert row.detail == lines[0].split("selftest     ", 1)[1]


def test_a_name_in_no_list_is_seen_but_not_classified(
    tmp_path: Path, sqlite_url: str, pair: VethNamespace
) -> None:
    unlisted = settings(
        tmp_path, sqlite_url, pair.host_iface, pair.ns_ip, name="www.example.org", platform=""
    )

    status, lines = run_selftest(unlisted, by="it-tech")

    assert status == 1
    assert lines[0] == (
        f"FAIL selftest     seen but not classified: query seen on {pair.host_iface} from "
        f"{pair.host_ip} to {pair.ns_ip}, but www.example.org is in no platform list (or is "
        "allowlisted)"
    )
    assert "hallmonitor lists check" in lines[1]
    [row] = stored_checks(sqlite_url)
    assert not row.ok
    assert row.detail.startswith("seen but not classified: ")


def test_a_name_of_another_platform_fails_naming_both(
    tmp_path: Path, sqlite_url: str, pair: VethNamespace
) -> None:
    other = settings(tmp_path, sqlite_url, pair.host_iface, pair.ns_ip, name="www.instagram.com")

    status, lines = run_selftest(other)

    assert status == 1
    assert lines[0].startswith("FAIL selftest     seen but classified as instagram, not facebook")
    assert "set selftest.platform to 'instagram'" in lines[1]


def test_a_lookup_that_does_not_cross_the_captured_interface_is_not_seen(
    tmp_path: Path, sqlite_url: str, pair: VethNamespace
) -> None:
    with veth_namespace() as elsewhere:
        status, lines = run_selftest(
            settings(tmp_path, sqlite_url, elsewhere.host_iface, pair.ns_ip), by="it-tech"
        )

    assert status == 1
    assert lines[0] == (
        f"FAIL selftest     not seen: the lookup of www.facebook.com at {pair.ns_ip} (no "
        f"answer within 0.5 s) did not cross {elsewhere.host_iface}"
    )
    assert lines[1].strip().startswith("fix: the sensor is not on the query's path")
    [row] = stored_checks(sqlite_url)
    assert not row.ok
    assert row.detail.startswith("not seen: ")


def test_a_resolver_on_this_host_is_never_seen_and_the_fix_says_why(
    tmp_path: Path, pair: VethNamespace
) -> None:
    url = f"sqlite:///{tmp_path / 'none.db'}"

    status, lines = run_selftest(settings(tmp_path, url, pair.host_iface, "127.0.0.1"))

    assert status == 1
    assert lines[0].startswith("FAIL selftest     not seen: the lookup of www.facebook.com at ")
    assert lines[1].strip() == (
        "fix: 127.0.0.1 is a resolver on this host, so the query never crosses an interface: "
        "set selftest.resolver to the school's DNS server"
    )
    assert lines[2] == f"not recorded: the database {url} does not exist yet"


def test_a_selftest_run_shows_in_the_governors_report(
    tmp_path: Path, engine_url: str, pair: VethNamespace
) -> None:
    before = datetime.now(UTC) - timedelta(minutes=1)
    run_selftest(settings(tmp_path, engine_url, pair.host_iface, pair.ns_ip), by="it-tech")
    unlisted = {"name": "www.example.org", "platform": ""}
    run_selftest(settings(tmp_path, engine_url, pair.host_iface, pair.ns_ip, **unlisted))

    engine = make_engine(engine_url)
    try:
        with Session(engine) as db:
            report = governor_summary(
                db, before, datetime.now(UTC) + timedelta(minutes=1), ZoneInfo("Europe/London"),
                "Hill School",
            )  # fmt: skip
    finally:
        engine.dispose()

    [runs] = report.checks
    assert isinstance(runs, CheckRuns)
    assert (runs.kind, runs.runs, runs.failures, runs.last_ok) == ("selftest", 2, 1, False)


def test_the_cli_runs_the_selftest_from_the_configuration(
    tmp_path: Path, sqlite_url: str, pair: VethNamespace
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        f'[capture]\ninterfaces = ["{pair.host_iface}"]\n'
        f'[database]\nurl = "{sqlite_url}"\ndata_dir = "{tmp_path / "d"}"\n'
        f'[selftest]\nresolver = "{pair.ns_ip}"\ntimeout_s = 0.5\n'
    )

    result = CliRunner().invoke(main, ["--config", str(config), "selftest", "--by", "it-tech"])

    assert result.exit_code == 0, result.output
    assert result.output.startswith("OK   selftest     query seen on ")
    assert [row.username for row in stored_checks(sqlite_url)] == ["it-tech"]


# --- the parts, without capture --------------------------------------------------------------


def query(name: str, *flags: Flag) -> Observation:
    return Observation(
        ts=0.0,
        proto=Proto.DNS,
        name=name,
        client_ip="10.20.4.23",
        client_mac=None,
        server_ip="10.20.0.1",
        server_port=53,
        flags=frozenset(flags),
    )


@pytest.mark.parametrize(
    ("observation", "expected"),
    [
        (query("www.facebook.com"), True),
        (query("www.facebook.com", Flag.RESPONSE), False),
        (query("facebook.com"), False),
    ],
)
def test_only_a_query_for_the_test_name_counts(observation: Observation, expected: bool) -> None:
    assert is_test_query(observation, "www.facebook.com") is expected


def test_any_platform_will_do_when_none_is_expected() -> None:
    classifier = Classifier(load_lists())
    lookup = Lookup("10.20.0.1", "answered 157.240.1.35")

    result = judge(
        "www.instagram.com", "", ["eth1"], lookup, query("www.instagram.com"), classifier
    )

    assert result.ok
    assert result.detail == (
        "query seen on eth1 from 10.20.4.23 to 10.20.0.1, classified as instagram (social, by "
        "instagram.com); answered 157.240.1.35"
    )


def test_a_lookup_to_a_closed_port_on_this_host_is_a_failure_not_an_error() -> None:
    lookup = look_up("www.facebook.com", "127.0.0.1", 0.3)
    assert lookup.server == "127.0.0.1"
    assert lookup.outcome.startswith(("no answer within 0.3 s", "failed: "))


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            '[selftest]\nresolver = "dns.school"',
            "selftest.resolver: 'dns.school' is not an IP address; name the DNS server by "
            'address, e.g. 10.20.0.1, or "" for the system resolver',
        ),
        (
            '[selftest]\nname = "www facebook com"',
            "selftest.name: 'www facebook com' is not a host name; write e.g. www.facebook.com",
        ),
        (
            "[selftest]\ntimeout_s = 0",
            "selftest.timeout_s: 0 is too small; use more than 0",
        ),
    ],
)
def test_wrong_selftest_settings_name_the_key_and_what_is_allowed(
    tmp_path: Path, text: str, problem: str
) -> None:
    path = tmp_path / "config.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={})
    assert list(caught.value.problems) == [problem]
