"""The Debian package on a booted stock Debian 12, as a technician installs and runs it.

One gateway for the module, its steps in order (each test is one rule the gateway keeps):
the previous version's package is installed on a fresh system, upgraded to this version over
its database, then run under systemd (the all-in-one unit, then the two services), watched
while it captures traffic sent over a veth pair, reached through the nginx example over HTTPS,
and finally removed and purged.

The packages' dependencies are downloaded while the container shares the host's network
(``apt-get install --download-only``); everything else runs with the container in its own
network namespace, so its services (port 80, 443, 8080, capture on every interface) never
touch the host's. apt then installs from its cache, as it would from a mirror.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.system.container import (
    Container,
    Veth,
    booted,
    requirements,
    scratch_root,
    wait_until,
)
from tests.system.school import CONFIG, STAFF_DEVICE

REPOSITORY = Path(__file__).resolve().parents[2]
OLD_VERSION = "0.0.1"
"""The version the upgrade starts from: lower than any release."""
DATABASE = "/var/lib/hallmonitor/hallmonitor.db"
VENV_PYTHON = "/opt/hallmonitor/.venv/bin/python"
CAPTURE_CAPS = (1 << 12) | (1 << 13)
"""CAP_NET_ADMIN (12) and CAP_NET_RAW (13), as /proc/PID/status shows capability sets."""

pytestmark = [pytest.mark.slow, requirements(), pytest.mark.timeout(3600)]


PREBUILT = os.environ.get("HALLMONITOR_SYSTEM_TEST_DEBS", "")
"""A directory holding both packages already built (hallmonitor_<OLD_VERSION>_*.deb and this
version's), to iterate on these tests without building them again (about 9 minutes here)."""


def build(script: str, *arguments: str) -> Path:
    """Run one of the project's build scripts; its last line of output is what it made."""
    result = subprocess.run(
        [str(REPOSITORY / "scripts" / script), *arguments],
        capture_output=True,
        text=True,
        timeout=1500,
        check=False,
        cwd=REPOSITORY,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return Path(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def debs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The same wheel packaged twice: as the older ``OLD_VERSION`` and as this version."""
    if PREBUILT:
        found = sorted(Path(PREBUILT).glob("hallmonitor_*.deb"))
        old = next(deb for deb in found if deb.name.startswith(f"hallmonitor_{OLD_VERSION}_"))
        return old, next(deb for deb in found if deb != old)
    into = str(tmp_path_factory.mktemp("debs"))
    wheel = build("build-package", "--no-deb", "--outdir", into)
    old = build("build-deb", "--wheel", str(wheel), "--deb-version", OLD_VERSION, "--outdir", into)
    return old, build("build-deb", "--wheel", str(wheel), "--outdir", into)


@pytest.fixture(scope="module")
def gateway(
    tmp_path_factory: pytest.TempPathFactory, debs: tuple[Path, Path]
) -> Iterator[Container]:
    """A fresh Debian 12 with the packages' dependencies in apt's cache, booted with its own
    network (loopback only, until ``lan`` adds the capture interface)."""
    old, _ = debs
    with scratch_root(tmp_path_factory.mktemp("package")) as root:
        with booted(root, "host") as online:
            for deb in debs:
                online.copy_in(deb, f"/root/{deb.name}")
            online.sh(
                "apt-get update -q\n"
                f"apt-get install -y -q --download-only /root/{old.name} nginx-light",
                timeout=900,
                env={"DEBIAN_FRONTEND": "noninteractive"},
            )
        with booted(root, "private") as box:
            yield box


@pytest.fixture(scope="module")
def lan(gateway: Container) -> Iterator[Veth]:
    """The school LAN: a veth pair whose inside end is ``lan0``, the capture interface in
    ``CONFIG`` (requested before a capturing unit starts)."""
    veth = Veth(gateway, "lan0")
    yield veth
    veth.delete()


def apt(box: Container, *arguments: str) -> subprocess.CompletedProcess[str]:
    return box.run(
        "apt-get", "-y", "-q", *arguments, env={"DEBIAN_FRONTEND": "noninteractive"}, timeout=900
    )


def sql(box: Container, query: str) -> list[list[object]]:
    """Rows of ``query`` on the gateway's SQLite database (Debian's python3 and its sqlite3)."""
    script = (
        "import json, sqlite3, sys\n"
        f"db = sqlite3.connect('file:{DATABASE}?mode=ro', uri=True)\n"
        "print(json.dumps([list(r) for r in db.execute(sys.argv[1])]))\n"
    )
    rows: list[list[object]] = json.loads(box.run("python3", "-c", script, query).stdout)
    return rows


def main_pid(box: Container, unit: str) -> int:
    return int(box.run("systemctl", "show", "-P", "MainPID", unit).stdout)


def status_fields(box: Container, pid: int) -> dict[str, str]:
    text = box.run("cat", f"/proc/{pid}/status").stdout
    return {
        key: value.strip() for key, _, value in (line.partition(":") for line in text.splitlines())
    }


# --- install and upgrade ---------------------------------------------------------------------


def test_apt_installs_the_package_on_a_fresh_debian_12(
    gateway: Container, debs: tuple[Path, Path]
) -> None:
    old, _ = debs
    assert gateway.run("sh", "-c", "command -v python3 gcc", check=False).stdout == ""
    apt(gateway, "install", f"/root/{old.name}", "nginx-light")
    assert OLD_VERSION in gateway.run("dpkg-query", "-W", "-f=${Version}", "hallmonitor").stdout
    assert gateway.run("hallmonitor", "--version").returncode == 0
    assert gateway.run("id", "-u", "hallmonitor").stdout.strip().isdigit()
    gateway.path("/etc/hallmonitor/config.toml").write_text(CONFIG)
    gateway.run("hallmonitor", "config", "check")


def test_upgrading_the_package_migrates_the_database_and_keeps_its_records(
    gateway: Container, debs: tuple[Path, Path]
) -> None:
    _, new = debs
    # a record to keep (no user yet: the all-in-one unit's first start creates the first admin)
    gateway.run(
        "runuser", "-u", "hallmonitor", "--",
        "hallmonitor", "doctor", "--check", "database", "--by", "keeper",
    )  # fmt: skip
    head = sql(gateway, "SELECT version_num FROM alembic_version")
    gateway.run(
        "runuser", "-u", "hallmonitor", "--", VENV_PYTHON, "-c",
        "from alembic import command\n"
        "from monitor.store.db import alembic_config\n"
        f"command.downgrade(alembic_config('sqlite:///{DATABASE}'), '-1')\n",
    )  # fmt: skip
    assert sql(gateway, "SELECT version_num FROM alembic_version") != head
    apt(gateway, "install", f"/root/{new.name}")
    assert OLD_VERSION not in gateway.run("dpkg-query", "-W", "-f=${Version}", "hallmonitor").stdout
    assert sql(gateway, "SELECT version_num FROM alembic_version") == head
    assert sql(gateway, "SELECT kind FROM checks WHERE username = 'keeper'") == [["doctor"]]
    assert gateway.path("/etc/hallmonitor/config.toml").read_text() == CONFIG


# --- the all-in-one unit ---------------------------------------------------------------------


def test_the_all_in_one_unit_starts_and_answers(gateway: Container, lan: Veth) -> None:
    gateway.run("systemctl", "enable", "--now", "hallmonitor.service")
    wait_until(lambda: gateway.answers("http://127.0.0.1:8080/healthz"), "/healthz answered 200")
    assert gateway.is_active("hallmonitor.service") == "active"


def test_the_first_admins_password_stays_out_of_the_journal(gateway: Container) -> None:
    """Anyone who reads logs would read it there: it goes to a file only root and the
    service can read, removed when the admin chooses a password."""
    kept = gateway.path("/var/lib/hallmonitor/first-admin-password")
    assert kept.is_file()
    assert kept.stat().st_mode & 0o077 == 0
    password = kept.read_text().strip()
    assert password and password not in gateway.journal("hallmonitor.service")


def test_reload_reloads_the_lists_on_a_minimal_system(gateway: Container) -> None:
    reload = gateway.run("systemctl", "reload", "hallmonitor.service", check=False)
    assert reload.returncode == 0, gateway.journal("hallmonitor.service")[-2000:]
    wait_until(
        lambda: "reloaded lists and configuration" in gateway.journal("hallmonitor.service"),
        "the journal said the lists were reloaded",
    )


# --- the two services ------------------------------------------------------------------------


def test_the_two_services_replace_the_all_in_one_unit(gateway: Container) -> None:
    gateway.run("systemctl", "disable", "hallmonitor.service")
    gateway.run("systemctl", "enable", "--now", "hallmonitor-capture", "hallmonitor-web")
    wait_until(lambda: gateway.answers("http://127.0.0.1:8080/healthz"), "/healthz answered 200")
    assert gateway.is_active("hallmonitor.service") == "inactive"
    assert gateway.is_active("hallmonitor-capture.service") == "active"
    assert gateway.is_active("hallmonitor-web.service") == "active"


def test_capture_runs_as_hallmonitor_with_only_net_raw_and_net_admin(gateway: Container) -> None:
    status = status_fields(gateway, main_pid(gateway, "hallmonitor-capture.service"))
    uid = gateway.run("id", "-u", "hallmonitor").stdout.strip()
    assert status["Uid"].split() == [uid] * 4
    assert int(status["CapEff"], 16) == CAPTURE_CAPS
    assert int(status["CapBnd"], 16) == CAPTURE_CAPS
    assert int(status["NoNewPrivs"]) == 1
    web = status_fields(gateway, main_pid(gateway, "hallmonitor-web.service"))
    assert int(web["CapEff"], 16) == 0 and int(web["CapBnd"], 16) == 0


def test_the_units_sandbox_writes_only_the_data_directory(gateway: Container) -> None:
    pid = str(main_pid(gateway, "hallmonitor-capture.service"))
    uid, gid = (gateway.run("id", flag, "hallmonitor").stdout.strip() for flag in ("-u", "-g"))
    as_service = ("nsenter", "-t", pid, "-m", "-S", uid, "-G", gid)
    gateway.run(*as_service, "touch", "/var/lib/hallmonitor/sandbox-probe")
    gateway.run("rm", "/var/lib/hallmonitor/sandbox-probe")
    for outside in ("/etc/hallmonitor/probe", "/opt/hallmonitor/probe", "/usr/local/probe"):
        # as root, in the service's mount namespace: read-only whatever the permissions say
        refused = gateway.run("nsenter", "-t", pid, "-m", "touch", outside, check=False)
        assert refused.returncode != 0 and "Read-only file system" in refused.stderr, outside


def test_dns_traffic_for_a_platform_in_school_hours_records_an_incident(
    gateway: Container, lan: Veth
) -> None:
    from scapy.layers.dns import DNS, DNSQR
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether
    from scapy.sendrecv import sendp

    query = (
        Ether(src="02:00:00:00:20:50", dst="ff:ff:ff:ff:ff:ff")
        / IP(src=STAFF_DEVICE, dst="10.20.0.1")
        / UDP(sport=40053, dport=53)
        / DNS(rd=1, qd=DNSQR(qname="www.facebook.com"))
    )
    count = "SELECT count(*) FROM incidents WHERE platform = 'facebook' AND device_ip = ?"
    query_sql = count.replace("?", f"'{STAFF_DEVICE}'")

    def recorded() -> bool:
        sendp(query, iface=lan.host, verbose=False)
        return sql(gateway, query_sql) != [[0]]

    wait_until(recorded, "an incident for facebook from the staff device")
    assert sql(gateway, f"SELECT state FROM incidents WHERE device_ip = '{STAFF_DEVICE}'") == [
        ["open"]
    ]


def test_stopping_capture_closes_incidents_and_drains(gateway: Container) -> None:
    gateway.run("systemctl", "stop", "hallmonitor-capture")
    assert gateway.is_active("hallmonitor-capture.service") == "inactive"
    assert sql(gateway, "SELECT state FROM incidents WHERE state = 'open'") == []
    assert "stopped:" in gateway.journal("hallmonitor-capture.service")
    gateway.run("systemctl", "start", "hallmonitor-capture")


def test_the_weekly_timer_is_scheduled_within_the_hour(gateway: Container) -> None:
    gateway.run("systemctl", "enable", "--now", "hallmonitor-weekly.timer")
    listed = gateway.run("systemctl", "list-timers", "--all", "--no-pager").stdout
    assert "hallmonitor-weekly.timer" in listed, listed
    line = next(line for line in listed.splitlines() if "hallmonitor-weekly.timer" in line)
    assert not line.startswith("n/a"), line
    next_elapse = gateway.run(
        "systemctl", "show", "-P", "NextElapseUSecRealtime", "hallmonitor-weekly.timer"
    ).stdout.strip()
    assert next_elapse, listed
    now = int(gateway.run("date", "+%s").stdout)
    due = int(gateway.run("date", "-d", next_elapse, "+%s").stdout)
    # OnCalendar=hourly with RandomizedDelaySec=120: the next run is within the coming hour
    assert now - 1 <= due <= now + 3600 + 120 + 1, (next_elapse, listed)


def test_the_app_answers_through_the_nginx_example_over_https(
    gateway: Container, tmp_path: Path
) -> None:
    import trustme

    authority = trustme.CA()
    certificate = authority.issue_cert("hallmonitor.school.example", "127.0.0.1")
    certs = gateway.path("/etc/ssl/hallmonitor")
    certs.mkdir(parents=True, exist_ok=True)
    certificate.private_key_pem.write_to_path(str(certs / "privkey.pem"))
    with (certs / "fullchain.pem").open("wb") as chain:
        for blob in certificate.cert_chain_pems:
            chain.write(blob.bytes())
    authority.cert_pem.write_to_path(str(gateway.path("/root/ca.pem")))
    shipped = gateway.run("dpkg", "-L", "hallmonitor").stdout.splitlines()
    example = [path for path in shipped if path.endswith("/nginx/hallmonitor.conf")]
    assert example, "the package ships the nginx example"
    site = gateway.path("/etc/nginx/sites-available/hallmonitor")
    shutil.copyfile(gateway.path(example[0]), site)  # as the deploy guide says: as it is
    gateway.run("ln", "-sf", "../sites-available/hallmonitor", "/etc/nginx/sites-enabled/")
    gateway.run("nginx", "-t")
    gateway.run("systemctl", "reload-or-restart", "nginx")
    status, headers = gateway.fetch("https://127.0.0.1/healthz", "/root/ca.pem")
    assert status == 200
    assert headers["Strict-Transport-Security"] == "max-age=63072000"


# --- remove and purge ------------------------------------------------------------------------


def test_remove_keeps_the_data_and_configuration(gateway: Container) -> None:
    apt(gateway, "remove", "hallmonitor")
    assert gateway.path(DATABASE).is_file()
    assert gateway.path("/etc/hallmonitor/config.toml").read_text() == CONFIG
    assert not gateway.path("/opt/hallmonitor/.venv/bin/hallmonitor").exists()
    assert gateway.is_active("hallmonitor-capture.service") != "active"


def test_purge_removes_the_data_and_configuration(gateway: Container) -> None:
    apt(gateway, "purge", "hallmonitor")
    assert not gateway.path("/var/lib/hallmonitor").exists()
    assert not gateway.path("/etc/hallmonitor").exists()
