"""`hallmonitor doctor`: each check passes on a sound sensor and fails, with its fix, on a broken one.

Real parts throughout: veth pairs into network namespaces with traffic sent from inside,
capabilities dropped with setpriv, SQLite files and the PostgreSQL test server at and below
the latest migration, a closed port, the shipped lists and a broken list directory, aiosmtpd.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from alembic import command
from sqlalchemy import select
from sqlalchemy.orm import Session

from hallmonitor.doctor import (
    CAPABILITY_FIX,
    InterfaceState,
    Traffic,
    build_date,
    check_capabilities,
    check_database,
    check_drops,
    check_interfaces,
    check_lists,
    check_smtp,
    check_time,
    clock_synchronised,
    effective_capabilities,
    judge_capabilities,
    judge_drops,
    judge_interface,
    judge_sync,
    judge_time,
    run_doctor,
    school_today,
)
from monitor.config.settings import Settings
from monitor.policy import SchoolCalendar
from monitor.sources.live import DEFAULT_BPF
from monitor.store.db import alembic_config, head_revision, make_engine
from monitor.store.models import CheckRecord, DailyCounterRecord
from monitor.store.queries.health import CaptureDay
from tests.monitor.reports.conftest import free_port
from tests.monitor.sources.netns import VethNamespace, namespace_command, veth_namespace

EXAMPLE_QUERY = "1234 0100 0001 0000 0000 0000 076578616d706c65 036f7267 00 0001 0001"
"""A DNS query for example.org (header, name, type A, class IN)."""


def settings(tmp_path: Path, **groups: Any) -> Settings:
    values: dict[str, Any] = {
        "site": {"name": "Hill School"},
        "database": {"data_dir": str(tmp_path / "data")},
    }
    values.update(groups)
    return Settings.model_validate(values)


def stored_checks(url: str) -> list[CheckRecord]:
    engine = make_engine(url)
    try:
        with Session(engine) as db:
            return list(db.scalars(select(CheckRecord).order_by(CheckRecord.id)))
    finally:
        engine.dispose()


@contextmanager
def sending(pair: VethNamespace, port: int) -> Iterator[None]:
    """Inside the namespace, send a small UDP datagram to the host end every 20 ms; returns once
    the first has been sent."""
    code = (
        "import socket, sys, time\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        f"query = bytes.fromhex({EXAMPLE_QUERY!r})\n"
        "while True:\n"
        f"    s.sendto(query, ({pair.host_ip!r}, {port}))\n"
        "    print('sent', flush=True)\n"
        "    time.sleep(0.02)\n"
    )
    process = subprocess.Popen(
        namespace_command(pair.ns_name, code), stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == "sent\n"
        yield
    finally:
        process.kill()
        process.wait()
        if process.stdout is not None:
            process.stdout.close()


def quiet(pair: VethNamespace) -> None:
    """Stop the namespace's IPv6 router solicitations and MLD reports reaching the host end."""
    subprocess.run(
        ["ip", "netns", "exec", pair.ns_name, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"],
        check=True,
    )


# --- capabilities ---------------------------------------------------------------------------


def test_capabilities_are_read_from_the_capeff_line() -> None:
    status = "Name:\tpython\nCapInh:\t0000000000000000\nCapEff:\t0000000000003000\n"
    assert effective_capabilities(status) == (1 << 12) | (1 << 13)


def test_capabilities_pass_with_net_raw_and_net_admin() -> None:
    result = judge_capabilities((1 << 12) | (1 << 13))
    assert result.ok
    assert result.detail == "CAP_NET_RAW and CAP_NET_ADMIN effective"


def test_capabilities_fail_naming_the_missing_one_and_how_to_grant_it() -> None:
    result = judge_capabilities(1 << 13)
    assert not result.ok
    assert result.detail == "CAP_NET_ADMIN not effective: live capture will be refused"
    assert result.fix == CAPABILITY_FIX
    assert "AmbientCapabilities=CAP_NET_RAW CAP_NET_ADMIN" in result.fix
    assert "setcap cap_net_raw,cap_net_admin+eip" in result.fix


def test_capabilities_pass_as_root() -> None:
    assert os.geteuid() == 0, "these tests run as root"
    assert check_capabilities().ok


def without_capture_capabilities(
    tmp_path: Path, *args: str, environ: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``hallmonitor ARGS`` as root, but with CAP_NET_RAW and CAP_NET_ADMIN dropped."""
    setpriv = shutil.which("setpriv")
    assert setpriv is not None, "setpriv (util-linux) is needed"
    hallmonitor = str(Path(sys.executable).with_name("hallmonitor"))
    environment = {k: v for k, v in os.environ.items() if not k.startswith("HALLMONITOR_")}
    environment["HALLMONITOR_DATABASE__DATA_DIR"] = str(tmp_path / "data")
    environment.update(environ or {})
    return subprocess.run(
        [setpriv, "--inh-caps=-all", "--bounding-set=-net_raw,-net_admin", hallmonitor, *args],
        capture_output=True,
        text=True,
        env=environment,
        check=False,
        timeout=60,
    )


@pytest.mark.slow  # a subprocess: the CLI's imports take seconds on a loaded machine
def test_doctor_without_the_capabilities_fails_and_says_what_to_grant(tmp_path: Path) -> None:
    result = without_capture_capabilities(
        tmp_path, "doctor", "--check", "capabilities", "--by", "it-tech"
    )

    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == (
        "FAIL capabilities CAP_NET_RAW and CAP_NET_ADMIN not effective: live capture will be "
        "refused"
    )
    assert lines[1].strip() == f"fix: {CAPABILITY_FIX}"
    assert lines[2] == "1 of 1 checks failed"
    assert lines[3].startswith("not recorded: the database sqlite:///")


# --- interfaces -----------------------------------------------------------------------------


def test_an_interface_that_is_missing_fails_with_how_to_name_the_right_one() -> None:
    result = check_interfaces(["hm-no-such0"], 0.2, bpf=DEFAULT_BPF)
    assert not result.ok
    assert result.detail == "hm-no-such0 does not exist"
    assert "capture.interfaces" in result.fix
    assert "ip -br link" in result.fix


def test_no_interface_at_all_fails() -> None:
    result = check_interfaces([], 0.2, bpf=DEFAULT_BPF)
    assert not result.ok
    assert "no interface to capture on" in result.detail


@pytest.mark.live_capture
def test_an_interface_carrying_dns_passes() -> None:
    with veth_namespace() as pair, sending(pair, 53):
        result = check_interfaces([pair.host_iface], 30, bpf=DEFAULT_BPF)
    assert result.ok, result.detail
    assert result.detail.startswith(f"{pair.host_iface} up, ")
    assert re.fullmatch(r"[\d,]+ DNS/TLS/QUIC packets? seen", result.detail.split(" up, ")[1])


@pytest.mark.live_capture
def test_a_silent_interface_fails() -> None:
    with veth_namespace() as pair:
        quiet(pair)
        result = check_interfaces([pair.host_iface], 0.5, bpf=DEFAULT_BPF)
    assert not result.ok
    assert result.detail == f"{pair.host_iface} is silent: no frames in 0.5 s"
    assert "mirror port" in result.fix


@pytest.mark.live_capture
def test_an_interface_with_traffic_but_no_lookups_fails_as_the_wrong_place() -> None:
    with veth_namespace() as pair, sending(pair, 9999):
        result = check_interfaces([pair.host_iface], 1.0, bpf=DEFAULT_BPF)
    assert not result.ok
    assert result.detail.startswith(f"{pair.host_iface} received ")
    assert re.search(r" frames? in 1 s but no DNS, TLS or QUIC from clients$", result.detail)
    assert "LAN side of NAT" in result.fix


@pytest.mark.live_capture
def test_an_interface_that_is_down_fails_with_how_to_bring_it_up() -> None:
    with veth_namespace() as pair:
        subprocess.run(["ip", "link", "set", pair.host_iface, "down"], check=True)
        result = check_interfaces([pair.host_iface], 0.2, bpf=DEFAULT_BPF)
    assert not result.ok
    assert result.detail == f"{pair.host_iface} is down"
    assert result.fix.startswith(f"bring it up (ip link set {pair.host_iface} up)")


@pytest.mark.live_capture
@pytest.mark.slow  # a subprocess, and a one-second watch
def test_without_capture_capabilities_the_kernel_counter_still_shows_traffic(
    tmp_path: Path,
) -> None:
    with veth_namespace() as pair, sending(pair, 53):
        result = without_capture_capabilities(
            tmp_path,
            "doctor",
            "--check",
            "interfaces",
            "--watch",
            "1",
            environ={"HALLMONITOR_CAPTURE__INTERFACES": pair.host_iface},
        )

    assert result.returncode == 0, result.stdout + result.stderr
    first = result.stdout.splitlines()[0]
    assert first.startswith(f"OK   interfaces   {pair.host_iface} up, ")
    assert re.search(
        r"frames? received \(kernel counter; not captured: this process may not", first
    )


def test_without_capture_the_kernel_counter_decides() -> None:
    state = InterfaceState("eth1", exists=True, operstate="up", rx_packets=10)
    counted = Traffic(captured=None, received=42, capture_error="not permitted")
    silent = Traffic(captured=None, received=0, capture_error="not permitted")
    assert judge_interface(state, counted, 5) is None
    assert judge_interface(state, silent, 5) == ("silent", "eth1 received no frames in 5 s")


# --- database -------------------------------------------------------------------------------


def test_a_database_at_the_latest_migration_passes(engine_url: str) -> None:
    result = check_database(engine_url)
    assert result.ok, result.detail
    assert result.detail.endswith(f"reachable, schema at the latest revision {head_revision()}")


def test_an_empty_database_fails_with_db_upgrade(empty_url: str) -> None:
    engine = make_engine(empty_url)  # an SQLite file exists once it is opened
    engine.connect().close()
    engine.dispose()

    result = check_database(empty_url)
    assert not result.ok
    assert result.detail.endswith("has no schema (an empty database)")
    assert "hallmonitor db upgrade" in result.fix


def test_a_database_at_an_old_migration_fails_with_db_upgrade(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    config = alembic_config(url)
    engine = make_engine(url)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "561acb6a50cb")
    engine.dispose()

    result = check_database(url)

    assert not result.ok
    assert result.detail == (
        f"{url} is at schema revision 561acb6a50cb; this version needs {head_revision()}"
    )
    assert result.fix.startswith("run `hallmonitor db upgrade`")


def test_a_missing_sqlite_file_fails_without_being_created(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'none.db'}"
    result = check_database(url)
    assert not result.ok
    assert result.detail == f"{url} does not exist yet"
    assert not (tmp_path / "none.db").exists()


def test_an_unreachable_postgresql_server_fails_with_what_to_check() -> None:
    url = f"postgresql://hm:secret@127.0.0.1:{free_port()}/hallmonitor"

    result = check_database(url)

    assert not result.ok
    assert result.detail.startswith(f"{url.replace('secret', '***')} cannot be reached: ")
    assert "secret" not in result.detail
    assert result.fix.startswith("check database.url")


# --- lists ----------------------------------------------------------------------------------


def test_the_shipped_lists_pass_with_their_size(tmp_path: Path) -> None:
    result = check_lists(settings(tmp_path))
    assert result.ok
    assert result.detail.startswith("20 platforms, ")
    assert result.detail.endswith(" allowlist entries from 1 directory")


def test_a_broken_list_directory_fails_naming_the_file_and_line(tmp_path: Path) -> None:
    lists = tmp_path / "lists.d"
    lists.mkdir()
    (lists / "chatter.txt").write_text(
        "# platform: chatter\n# name: Chatter\n# category: social\nchatter..example primary\n"
    )

    result = check_lists(settings(tmp_path, lists={"directories": [str(lists)]}))

    assert not result.ok
    assert result.detail.startswith(f"{lists / 'chatter.txt'}:4: ")
    assert "hallmonitor lists check" in result.fix


def test_a_list_directory_that_does_not_exist_fails(tmp_path: Path) -> None:
    result = check_lists(settings(tmp_path, lists={"directories": [str(tmp_path / "nope")]}))
    assert not result.ok
    assert "is not a directory" in result.detail


# --- smtp -----------------------------------------------------------------------------------


class Accepting:
    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        return "250 OK"


def mail(port: int) -> dict[str, Any]:
    return {
        "enabled": True,
        "host": "127.0.0.1",
        "port": port,
        "security": "none",
        "reviewers": ["head@hill-school.example"],
        "timeout_s": 5,
    }


def test_smtp_is_skipped_when_mail_is_disabled(tmp_path: Path) -> None:
    result = check_smtp(settings(tmp_path))
    assert result.ok
    assert result.detail == "mail disabled (mail.enabled = false): nothing to check"


def test_a_reachable_smtp_server_passes(tmp_path: Path) -> None:
    controller = Controller(Accepting(), hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        result = check_smtp(settings(tmp_path, mail=mail(controller.port)))
    finally:
        controller.stop()
    assert result.ok, result.detail
    assert result.detail == f"127.0.0.1:{controller.port} accepted EHLO (unencrypted)"


def test_an_smtp_server_on_a_closed_port_fails_with_what_to_check(tmp_path: Path) -> None:
    port = free_port()
    result = check_smtp(settings(tmp_path, mail=mail(port)))
    assert not result.ok
    assert result.detail.startswith(f"127.0.0.1:{port}: ")
    assert "refused" in result.detail
    assert result.fix.startswith("check mail.host, mail.port and mail.security")


# --- time -----------------------------------------------------------------------------------

WEDNESDAY = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
BUILT = datetime(2026, 11, 24, tzinfo=UTC)


def test_a_synchronised_clock_in_a_known_zone_passes() -> None:
    assert judge_time("Europe/London", WEDNESDAY, True, BUILT) == ([], "")


def test_unknown_synchronisation_still_passes() -> None:
    assert judge_time("Europe/London", WEDNESDAY, None, BUILT) == ([], "")


def test_an_unknown_time_zone_fails() -> None:
    problems, fix = judge_time("Europe/Atlantis", WEDNESDAY, True, BUILT)
    assert problems == ["'Europe/Atlantis' is not a known time zone"]
    assert fix.startswith("set calendar.timezone to an IANA name")


def test_an_unsynchronised_clock_fails_with_how_to_enable_ntp() -> None:
    problems, fix = judge_time("Europe/London", WEDNESDAY, False, BUILT)
    assert problems == ["the system clock is not synchronised (NTP)"]
    assert "timedatectl set-ntp true" in fix


def test_a_clock_before_this_version_was_made_fails() -> None:
    problems, _ = judge_time("Europe/London", datetime(2020, 1, 1, tzinfo=UTC), True, BUILT)
    assert problems == [
        "the clock says 2020-01-01 00:00 UTC, before this version was made (2026-11-24)"
    ]


def test_a_clock_decades_ahead_fails() -> None:
    problems, _ = judge_time("Europe/London", datetime(2070, 1, 1, tzinfo=UTC), True, BUILT)
    assert problems == ["the clock says 2070-01-01, over ten years after this version was made"]


def test_kernel_sync_state_follows_sta_unsync_and_the_error_bound() -> None:
    assert judge_sync(0x0001, 200_000)
    assert not judge_sync(0x0040, 200_000)
    assert not judge_sync(0x0001, 16_000_000)


def test_the_real_clock_probe_answers_yes_no_or_unknown() -> None:
    assert clock_synchronised() in (True, False, None)


def test_the_build_date_is_the_newest_migrations_date() -> None:
    assert datetime(2026, 11, 24, 4, 0, tzinfo=UTC) <= build_date() <= datetime.now(UTC)


def test_the_time_check_passes_and_says_what_today_is(tmp_path: Path) -> None:
    result = check_time(settings(tmp_path), now=WEDNESDAY, synchronised=lambda: True, built=BUILT)
    assert result.ok
    assert result.detail == (
        "10:00 GMT in Europe/London, clock synchronised; "
        "today (Wednesday 2 December 2026) is a school day, 08:00-16:30"
    )


def test_the_time_check_fails_on_an_unsynchronised_clock_and_still_says_what_today_is(
    tmp_path: Path,
) -> None:
    result = check_time(settings(tmp_path), now=WEDNESDAY, synchronised=lambda: False, built=BUILT)
    assert not result.ok
    assert result.detail == (
        "the system clock is not synchronised (NTP); 10:00 GMT in Europe/London; "
        "today (Wednesday 2 December 2026) is a school day, 08:00-16:30"
    )


CALENDAR = SchoolCalendar(
    "Europe/London",
    {0: [(time(8, 0), time(12, 15)), (time(13, 0), time.max)], 2: [(time(8, 0), time(16, 30))]},
    terms=[(date(2026, 9, 3), date(2026, 12, 18))],
    closures={date(2026, 12, 9)},
)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (
            datetime(2026, 11, 30, 9, tzinfo=UTC),
            "today (Monday 30 November 2026) is a school day, 08:00-12:15, 13:00-24:00",
        ),
        (
            datetime(2026, 12, 5, 9, tzinfo=UTC),
            "today (Saturday 5 December 2026) is not a school day: no hours on Saturdays",
        ),
        (
            datetime(2026, 12, 9, 9, tzinfo=UTC),
            "today (Wednesday 9 December 2026) is not a school day: INSET day",
        ),
        (
            datetime(2026, 12, 23, 9, tzinfo=UTC),
            "today (Wednesday 23 December 2026) is not a school day: outside the terms",
        ),
    ],
)
def test_school_today_says_whether_and_why(now: datetime, expected: str) -> None:
    assert school_today(CALENDAR, now, {date(2026, 12, 9): "INSET day"}) == expected


# --- the whole run --------------------------------------------------------------------------


def test_a_passing_run_exits_0_and_is_recorded(tmp_path: Path, engine_url: str) -> None:
    sound = settings(tmp_path, database={"url": engine_url, "data_dir": str(tmp_path / "d")})

    status, lines = run_doctor(sound, only=("database", "lists", "smtp"), by="it-tech")

    assert status == 0, lines
    assert [line[:4] for line in lines[:3]] == ["OK  ", "OK  ", "OK  "]
    assert lines[3] == "all 3 checks passed"
    assert lines[4].startswith("recorded as a doctor check by it-tech in ")
    [row] = stored_checks(engine_url)
    assert (row.kind, row.ok, row.username, row.site) == ("doctor", True, "it-tech", "Hill School")
    assert row.detail == "passed: database, lists, smtp"


def test_a_failing_run_exits_1_and_records_what_failed(tmp_path: Path, engine_url: str) -> None:
    broken = settings(
        tmp_path,
        database={"url": engine_url, "data_dir": str(tmp_path / "d")},
        lists={"directories": [str(tmp_path / "nope")]},
    )

    status, lines = run_doctor(broken, only=("database", "lists"), by="it-tech")

    assert status == 1
    assert lines[0].startswith("OK   database ")
    assert lines[1].startswith("FAIL lists ")
    assert lines[2].strip().startswith("fix: ")
    assert lines[3] == "1 of 2 checks failed"
    [row] = stored_checks(engine_url)
    assert not row.ok
    assert row.detail.startswith(f"lists FAILED: {tmp_path / 'nope'}: is not a directory")
    assert row.detail.endswith("; passed: database")


def test_a_run_whose_database_check_fails_is_not_recorded(tmp_path: Path) -> None:
    status, lines = run_doctor(settings(tmp_path), only=("database",))
    assert status == 1
    assert lines[-1] == "not recorded: the database check failed"


def test_an_unknown_check_name_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no check named 'disk'; the checks are capabilities"):
        run_doctor(settings(tmp_path), only=("disk",))


# --- the running daemon's kernel drops --------------------------------------------------------

DROPS_DAY = date(2026, 3, 10)


def test_a_day_without_kernel_drops_passes() -> None:
    result = judge_drops("st-marys", DROPS_DAY, CaptureDay(frames=120_000, kernel_drops=0))
    assert result.ok
    assert result.detail == "120,000 frames read by the capture on 2026-03-10, no kernel drops"


def test_kernel_drops_fail_with_their_share_and_the_fix() -> None:
    result = judge_drops("st-marys", DROPS_DAY, CaptureDay(frames=900, kernel_drops=100))
    assert not result.ok
    assert result.detail.endswith("100 packets dropped by the kernel (10.0%)")
    assert result.fix is not None and "capture.workers" in result.fix


def test_no_capture_figures_is_said_not_failed() -> None:
    result = judge_drops("st-marys", DROPS_DAY, None)
    assert result.ok
    assert "no capture figures for 'st-marys' on 2026-03-10" in result.detail


def test_the_drops_check_reads_what_the_daemon_counted_in_the_database(engine_url: str) -> None:
    engine = make_engine(engine_url)
    try:
        with Session(engine) as db, db.begin():
            for name, count in (("capture.frames", 5000), ("capture.kernel_drops", 7)):
                db.add(DailyCounterRecord(site="st-marys", day=DROPS_DAY, name=name, count=count))
    finally:
        engine.dispose()
    result = check_drops(engine_url, "st-marys", DROPS_DAY)
    assert not result.ok
    assert result.detail.endswith("7 packets dropped by the kernel (0.1%)")
    assert check_drops(engine_url, "hill", DROPS_DAY).ok


def test_the_drops_check_creates_no_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'none.sqlite3'}"
    assert not check_drops(url, "st-marys", DROPS_DAY).ok
    assert not (tmp_path / "none.sqlite3").exists()
