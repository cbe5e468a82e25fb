"""deploy/ stays true: the units are hardened as the IT guide says and every command they run
exists, the install script installs (twice: the same) and uninstalls, the libraries work under
MemoryDenyWriteExecute, the nginx example serves the app over HTTPS with the headers the app
trusts, and the example configurations load."""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import socket
import sqlite3
import ssl
import stat
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from hallmonitor.cli.root import main
from monitor.config.loading import load_settings
from tests.packaging import Built

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
UNITS = sorted((DEPLOY / "systemd").glob("*.service"))
HALLMONITOR = "/opt/hallmonitor/.venv/bin/hallmonitor"
CONFIG = "/etc/hallmonitor/config.toml"
HERE_HALLMONITOR = str(Path(sys.executable).parent / "hallmonitor")
"""The command of the virtual environment running these tests."""
CAPTURING = ["hallmonitor-capture.service", "hallmonitor.service"]
NOT_CAPTURING = [
    "hallmonitor-web.service",
    "hallmonitor-migrate.service",
    "hallmonitor-weekly.service",
]
LONG_RUNNING = ["hallmonitor-capture.service", "hallmonitor-web.service", "hallmonitor.service"]


def directives(unit: Path) -> dict[str, list[str]]:
    """Every ``Key=value`` of a unit file, by key, in order (a key may repeat)."""
    found: dict[str, list[str]] = {}
    for line in unit.read_text().splitlines():
        if line.strip() and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def one(unit: str, key: str) -> str:
    values = directives(DEPLOY / "systemd" / unit).get(key, [])
    assert len(values) == 1, f"{unit}: {key}= {values}"
    return values[0]


def words(unit: str, key: str) -> set[str]:
    return set(one(unit, key).split())


# --- units ---------------------------------------------------------------------------------


def exec_start(unit: Path) -> list[str]:
    for line in unit.read_text().splitlines():
        if line.startswith("ExecStart="):
            return shlex.split(line.removeprefix("ExecStart="))
    raise AssertionError(f"{unit.name} has no ExecStart")


def subcommand(command: list[str]) -> list[str]:
    """The command's words after the global options, without the flags of the command itself."""
    words, rest = [], iter(command[1:])
    for word in rest:
        if word in ("--config", "--log-level"):
            next(rest)
        elif not word.startswith("--"):
            words.append(word)
    return words


@pytest.mark.parametrize("unit", UNITS, ids=lambda unit: unit.name)
def test_every_unit_runs_an_existing_hallmonitor_command(unit: Path) -> None:
    command = exec_start(unit)
    assert command[0] == HALLMONITOR
    assert command[command.index("--config") + 1] == CONFIG
    result = CliRunner().invoke(main, [*subcommand(command), "--help"])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    ("unit", "command"),
    [
        ("hallmonitor-migrate.service", ["db", "upgrade"]),
        ("hallmonitor-capture.service", ["capture"]),
        ("hallmonitor-web.service", ["serve"]),
        ("hallmonitor.service", ["up"]),
        ("hallmonitor-weekly.service", ["report", "weekly"]),
    ],
)
def test_each_unit_runs_its_command(unit: str, command: list[str]) -> None:
    assert subcommand(exec_start(DEPLOY / "systemd" / unit)) == command


@pytest.mark.parametrize("unit", CAPTURING)
def test_capturing_units_get_only_net_raw_and_net_admin(unit: str) -> None:
    assert words(unit, "AmbientCapabilities") == {"CAP_NET_RAW", "CAP_NET_ADMIN"}
    assert words(unit, "CapabilityBoundingSet") == {"CAP_NET_RAW", "CAP_NET_ADMIN"}


@pytest.mark.parametrize("unit", NOT_CAPTURING)
def test_other_units_get_no_capability(unit: str) -> None:
    assert one(unit, "CapabilityBoundingSet") == ""
    assert directives(DEPLOY / "systemd" / unit).get("AmbientCapabilities", [""]) == [""]


@pytest.mark.parametrize("unit", [unit.name for unit in UNITS])
def test_every_service_runs_hardened_as_the_hallmonitor_user(unit: str) -> None:
    assert one(unit, "User") == "hallmonitor"
    assert one(unit, "Group") == "hallmonitor"
    assert one(unit, "EnvironmentFile") == "-/etc/hallmonitor/env"
    for key in (
        "NoNewPrivileges",
        "ProtectHome",
        "PrivateTmp",
        "PrivateDevices",
        "ProtectKernelTunables",
        "ProtectKernelModules",
        "ProtectKernelLogs",
        "ProtectControlGroups",
        "LockPersonality",
        "MemoryDenyWriteExecute",
        "RestrictSUIDSGID",
    ):
        assert one(unit, key) == "yes", key
    assert one(unit, "ProtectSystem") == "strict"
    assert one(unit, "ReadWritePaths") == "/var/lib/hallmonitor"
    filters = directives(DEPLOY / "systemd" / unit)["SystemCallFilter"]
    assert filters[0] == "@system-service"
    assert words(unit, "RestrictAddressFamilies") >= {"AF_UNIX", "AF_INET", "AF_INET6"}


def test_only_capturing_units_may_open_packet_and_netlink_sockets() -> None:
    for unit in CAPTURING:
        assert words(unit, "RestrictAddressFamilies") == {
            "AF_PACKET",
            "AF_NETLINK",
            "AF_UNIX",
            "AF_INET",
            "AF_INET6",
        }
    for unit in NOT_CAPTURING:
        assert words(unit, "RestrictAddressFamilies") == {"AF_UNIX", "AF_INET", "AF_INET6"}


@pytest.mark.parametrize("unit", LONG_RUNNING)
def test_long_running_services_migrate_first_restart_on_failure_and_stop_with_sigterm(
    unit: str,
) -> None:
    assert one(unit, "Requires") == "hallmonitor-migrate.service"
    assert "hallmonitor-migrate.service" in words(unit, "After")
    assert one(unit, "Restart") == "on-failure"
    assert one(unit, "KillSignal") == "SIGTERM"
    assert int(one(unit, "TimeoutStopSec")) >= 30
    assert one(unit, "WantedBy") == "multi-user.target"


GUIDE = "/usr/share/doc/hallmonitor/README.md"
"""Where deploy/install and the Debian package both put the deploy guide."""


@pytest.mark.parametrize("unit", sorted((DEPLOY / "systemd").glob("*.*")), ids=lambda u: u.name)
def test_every_unit_points_to_the_installed_deploy_guide(unit: Path) -> None:
    assert directives(unit).get("Documentation") == [f"file://{GUIDE}"]


def test_migration_is_a_oneshot() -> None:
    assert one("hallmonitor-migrate.service", "Type") == "oneshot"


EXEC_KEYS = (
    "ExecCondition",
    "ExecStartPre",
    "ExecStart",
    "ExecStartPost",
    "ExecReload",
    "ExecStop",
    "ExecStopPost",
)
MINIMAL_DEBIAN_COMMANDS = ("/bin/sh",)
"""The commands a unit may run besides Hall Monitor's own: each comes with an Essential
package of Debian 12, so every Debian system has it (procps's /bin/kill is not one: a minimal
system has no /bin/kill, and ``systemctl reload`` failed there)."""


def exec_commands(unit: Path) -> list[tuple[str, list[str]]]:
    """Every Exec*= command of a unit (key, words), without the prefixes ``-@:+!``."""
    return [
        (key, shlex.split(value.lstrip("-@:+!")))
        for key, values in directives(unit).items()
        if key in EXEC_KEYS
        for value in values
    ]


@pytest.mark.parametrize("unit", UNITS, ids=lambda unit: unit.name)
def test_every_command_a_unit_runs_is_on_a_minimal_debian_12_or_hall_monitors_own(
    unit: Path,
) -> None:
    for key, command in exec_commands(unit):
        assert command[0] in (HALLMONITOR, *MINIMAL_DEBIAN_COMMANDS), (
            f"{unit.name}: {key}={shlex.join(command)}: {command[0]} is not on a minimal Debian 12"
        )


@pytest.mark.skipif(shutil.which("dpkg-query") is None, reason="not a Debian system")
@pytest.mark.parametrize("path", MINIMAL_DEBIAN_COMMANDS)
def test_the_commands_allowed_in_units_come_with_essential_debian_packages(path: str) -> None:
    owners = subprocess.run(
        ["dpkg-query", "--search", path], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    packages = [
        line.partition(": ")[0]
        for line in owners.splitlines()
        if not line.startswith("diversion ") and line.endswith(f": {path}")
    ]
    assert len(packages) == 1, owners
    essential = subprocess.run(
        ["dpkg-query", "--show", "--showformat=${Essential}", packages[0]],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert essential == "yes", f"{path} comes with {packages[0]}, which is not Essential"


RELOADING = ["hallmonitor-capture.service", "hallmonitor.service"]


@pytest.mark.parametrize("unit", RELOADING)
def test_reload_runs_the_shell_s_own_kill(unit: str) -> None:
    assert shlex.split(one(unit, "ExecReload")) == ["/bin/sh", "-c", 'kill -HUP "$MAINPID"']


def test_the_web_app_has_no_reload_since_sighup_would_stop_it() -> None:
    assert "ExecReload" not in directives(DEPLOY / "systemd" / "hallmonitor-web.service")


def test_all_in_one_unit_conflicts_with_the_split_units() -> None:
    assert words("hallmonitor.service", "Conflicts") == {
        "hallmonitor-capture.service",
        "hallmonitor-web.service",
    }
    assert one("hallmonitor-capture.service", "Conflicts") == "hallmonitor.service"
    assert one("hallmonitor-web.service", "Conflicts") == "hallmonitor.service"


@pytest.mark.parametrize("unit", sorted((DEPLOY / "systemd").glob("*.*")), ids=lambda u: u.name)
def test_units_pass_systemd_analyze_where_it_is_available(unit: Path, tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed here")
    for other in (DEPLOY / "systemd").iterdir():
        text = other.read_text().replace(HALLMONITOR, sys.executable)
        (tmp_path / other.name).write_text(text)
    result = subprocess.run(
        [analyze, "verify", "--man=no", str(tmp_path / unit.name)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    problems = [line for line in result.stderr.splitlines() if "hallmonitor" in line.lower()]
    assert problems == [], result.stderr


# --- the units' seccomp filter ----------------------------------------------------------------
# systemd is not PID 1 where the tests run, so the units cannot be started. Their two seccomp
# settings are rebuilt here instead and the real programs run under them: the system-call filter
# (SystemCallFilter=@system-service ~@privileged @resources, SystemCallErrorNumber=EPERM) from
# the groups systemd-analyze prints, and MemoryDenyWriteExecute=yes as systemd 252 (Debian 12)
# builds it on x86-64 (src/shared/seccomp-util.c): mmap with PROT_WRITE|PROT_EXEC, mprotect and
# pkey_mprotect adding PROT_EXEC, and shmat with SHM_EXEC fail with EPERM.

AUDIT_ARCH_X86_64 = 0xC000003E
MMAP, MPROTECT, SHMAT, PKEY_MPROTECT = 9, 10, 30, 329
PROT_WRITE, PROT_EXEC, SHM_EXEC = 0x2, 0x4, 0o100000
SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO, EPERM = 0x7FFF0000, 0x00050000, 1
LD_ABS, JA, JEQ, AND, RET = 0x20, 0x05, 0x15, 0x54, 0x06
ARCH, NR, ARG2 = 4, 0, 16 + 2 * 8  # offsets in struct seccomp_data (the low word, little-endian)
PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 38, 22, 2
UNISTD = Path("/usr/include/x86_64-linux-gnu/asm/unistd_64.h")


def syscall_groups() -> dict[str, list[str]]:
    """systemd's system-call groups (``@name``) and their members, as systemd-analyze lists."""
    listing = subprocess.run(
        ["systemd-analyze", "syscall-filter", "--no-pager"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    groups: dict[str, list[str]] = {}
    members: list[str] | None = None
    for line in listing.splitlines():
        if line.startswith("@"):
            members = groups.setdefault(line.strip(), [])
        elif line.startswith("#") or not line.strip():
            members = None if line.startswith("#") else members
        elif members is not None and not line.strip().startswith("#"):
            members.append(line.strip())
    return groups


def allowed_syscalls() -> set[int]:
    """The numbers SystemCallFilter=@system-service ~@privileged @resources lets through."""
    groups = syscall_groups()

    def expand(name: str) -> set[str]:
        if not name.startswith("@"):
            return {name}
        return set().union(*(expand(member) for member in groups[name]))

    numbers = {
        found[1]: int(found[2])
        for found in re.finditer(r"#define __NR_(\w+) (\d+)", UNISTD.read_text())
    }
    names = expand("@system-service") - expand("@privileged") - expand("@resources")
    return {numbers[name] for name in names if name in numbers}


def unit_seccomp_program(allowed: set[int]) -> bytes:
    """One BPF program: MemoryDenyWriteExecute's checks, then the allow-list, else EPERM."""
    program: list[Instruction | str] = [
        (LD_ABS, ARCH, 0, 0),
        (JEQ, AUDIT_ARCH_X86_64, 1, 0),
        (RET, SECCOMP_RET_ERRNO | EPERM, 0, 0),  # SystemCallArchitectures=native
        (LD_ABS, NR, 0, 0),
        (JEQ, MMAP, "mmap", 0),
        (JEQ, MPROTECT, "exec", 0),
        (JEQ, PKEY_MPROTECT, "exec", 0),
        (JEQ, SHMAT, "shmat", 0),
        (JA, 0, "list", 0),
    ]
    for label, flags in (
        ("mmap", PROT_WRITE | PROT_EXEC),
        ("exec", PROT_EXEC),
        ("shmat", SHM_EXEC),
    ):
        program += [
            label,
            (LD_ABS, ARG2, 0, 0),
            (AND, flags, 0, 0),
            (JEQ, flags, 0, 1),
            (RET, SECCOMP_RET_ERRNO | EPERM, 0, 0),
            (LD_ABS, NR, 0, 0),
            (JA, 0, "list", 0),
        ]
    program.append("list")
    for number in sorted(allowed):
        program += [(JEQ, number, 0, 1), (RET, SECCOMP_RET_ALLOW, 0, 0)]
    program.append((RET, SECCOMP_RET_ERRNO | EPERM, 0, 0))

    return assemble(program)


Instruction = tuple[int, int, int | str, int | str]
"""(code, k, jt, jf); a jump target is a number of instructions or a label. BPF_JA jumps to jt."""


def assemble(program: list[Instruction | str]) -> bytes:
    """Classic BPF from instructions and labels (strings), jumps resolved to offsets."""
    labels, position = {}, 0
    for item in program:
        if isinstance(item, str):
            labels[item] = position
        else:
            position += 1
    code = b""
    instructions = [item for item in program if not isinstance(item, str)]
    for position, (op, k, jt, jf) in enumerate(instructions):
        true, false = (
            target if isinstance(target, int) else labels[target] - position - 1
            for target in (jt, jf)
        )
        if op == JA:
            code += struct.pack("HBBI", op, 0, 0, true)
        else:
            code += struct.pack("HBBI", op, true, false, k)
    return code


def confine() -> None:
    """Install the units' seccomp filter in this process and every process it starts."""
    program = unit_seccomp_program(allowed_syscalls())

    class SockFprog(ctypes.Structure):
        _fields_ = (("len", ctypes.c_ushort), ("filter", ctypes.c_char_p))

    libc = ctypes.CDLL(None, use_errno=True)
    fprog = SockFprog(len(program) // 8, program)
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_SECCOMP)")


def confined(*command: str) -> list[str]:
    """``command`` started under the filter (a seccomp filter survives exec)."""
    launcher = (
        "import os, sys; from tests.test_deploy import confine; "
        "confine(); os.execvp(sys.argv[1], sys.argv[1:])"
    )
    return [sys.executable, "-c", launcher, *command]


def run_confined(*command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        confined(*command),
        capture_output=True,
        text=True,
        cwd=cwd,
        env=environment,
        check=False,
        timeout=120,
    )


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (setpriv, install)")
needs_seccomp_tools = pytest.mark.skipif(
    os.uname().machine != "x86_64"
    or shutil.which("systemd-analyze") is None
    or not UNISTD.exists(),
    reason="the filter is built for x86-64 from systemd-analyze and the kernel headers",
)


@needs_seccomp_tools
def test_the_filter_refuses_writable_executable_memory(tmp_path: Path) -> None:
    probe = (
        "import mmap; mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)"
    )
    result = run_confined(sys.executable, "-c", probe, cwd=tmp_path)
    assert result.returncode == 1
    assert "PermissionError" in result.stderr


@needs_root
@needs_seccomp_tools
def test_the_filter_refuses_privileged_system_calls(tmp_path: Path) -> None:
    result = run_confined(sys.executable, "-c", "import os; os.chroot('/')", cwd=tmp_path)
    assert result.returncode == 1
    assert "PermissionError" in result.stderr


@needs_seccomp_tools
@pytest.mark.parametrize("unit", RELOADING)
def test_reload_sends_sighup_to_the_main_process_in_the_units_sandbox_without_procps(
    unit: str, tmp_path: Path
) -> None:
    """As systemd runs ExecReload=: $MAINPID in the environment, the units' seccomp filter, and
    a PATH with no kill on it (only what the sandbox's launcher needs)."""
    waiter = (
        "import signal\n"
        "signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP})\n"
        "print('waiting', flush=True)\n"
        "print(signal.Signals(signal.sigwait({signal.SIGHUP})).name, flush=True)\n"
    )
    path = tmp_path / "bin"
    path.mkdir()
    analyze = shutil.which("systemd-analyze")
    assert analyze is not None
    (path / "systemd-analyze").symlink_to(analyze)
    with subprocess.Popen(
        [sys.executable, "-c", waiter], stdout=subprocess.PIPE, text=True
    ) as daemon:
        assert daemon.stdout is not None
        try:
            assert daemon.stdout.readline() == "waiting\n"
            reload = subprocess.run(
                confined(*shlex.split(one(unit, "ExecReload"))),
                capture_output=True,
                text=True,
                cwd=tmp_path,
                env={"PATH": str(path), "PYTHONPATH": str(ROOT), "MAINPID": str(daemon.pid)},
                check=False,
                timeout=120,
            )
            assert reload.returncode == 0, reload.stderr
            assert daemon.stdout.readline() == "SIGHUP\n"
            assert daemon.wait(timeout=60) == 0
        finally:
            if daemon.poll() is None:
                daemon.kill()


@needs_seccomp_tools
def test_live_capture_setup_works_in_the_units_sandbox(tmp_path: Path) -> None:
    """scapy compiles the BPF filter through libpcap (ctypes); the packet ring is mmapped."""
    probe = (
        "from monitor.sources.live import LiveSource\n"
        "source = LiveSource(['lo'])\n"
        "source.close()\n"
        "print('opened')\n"
    )
    result = run_confined(sys.executable, "-c", probe, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "opened" in result.stdout


@needs_seccomp_tools
def test_quic_and_tls_decoding_work_in_the_units_sandbox(tmp_path: Path) -> None:
    """QUIC Initial packets are decrypted with cryptography (AES-GCM, header protection)."""
    pcaps = ROOT / "tests" / "data" / "pcaps"
    result = run_confined(
        HERE_HALLMONITOR,
        "scan",
        "--format",
        "jsonl",
        str(pcaps / "ndpi-quic-draft29.pcap"),
        str(pcaps / "ndpi-instagram.pcap"),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    protocols = {json.loads(line)["proto"] for line in result.stdout.splitlines()}
    assert protocols >= {"quic", "tls"}


@pytest.mark.slow
@needs_seccomp_tools
def test_review_app_works_in_the_units_sandbox(tmp_path: Path) -> None:
    """Migrations, argon2 (a password), pydantic, uvicorn and jinja2, as the units run them."""
    config = app_config(tmp_path)
    for command in (
        ["db", "upgrade"],
        ["users", "add", "head", "--role", "admin", "--password", "a long enough password"],
    ):
        result = run_confined(HERE_HALLMONITOR, "--config", str(config), *command, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
    with serving(confined(HERE_HALLMONITOR), config) as url:
        with urllib.request.urlopen(url + "healthz", timeout=30) as response:
            assert response.status == 200
        with urllib.request.urlopen(url + "login", timeout=30) as response:
            assert b"password" in response.read().lower()


ONLY_CAPTURE_CAPABILITIES = [
    "setpriv",
    "--bounding-set=-all,+net_raw,+net_admin",
    "--inh-caps=-all",
    "--no-new-privs",
]
"""As the capture unit runs (CapabilityBoundingSet=, NoNewPrivileges=), keeping the user."""
NO_CAPABILITIES = ["setpriv", "--bounding-set=-all", "--inh-caps=-all", "--no-new-privs"]


def capture_config(tmp_path: Path) -> Path:
    config = app_config(tmp_path)
    config.write_text(
        config.read_text() + '\n[capture]\ninterfaces = ["lo"]\nmetrics_listen = ""\n'
    )
    result = run_script(HERE_HALLMONITOR, "--config", str(config), "db", "upgrade")
    assert result.returncode == 0, result.stderr
    return config


@pytest.mark.slow
@needs_root
@needs_seccomp_tools
def test_capture_needs_only_net_raw_and_net_admin_in_the_units_sandbox(tmp_path: Path) -> None:
    config = capture_config(tmp_path)
    log = tmp_path / "capture.log"
    command = confined(HERE_HALLMONITOR, "--log-level", "info", "--config", str(config), "capture")
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [*ONLY_CAPTURE_CAPABILITIES, *command],
            stderr=stderr,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        try:
            deadline = time.monotonic() + 60
            while "capturing on lo" not in log.read_text() and process.poll() is None:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
        finally:
            process.send_signal(signal.SIGTERM)
            status = process.wait(timeout=60)
    assert status == 0, log.read_text()
    assert "capturing on lo" in log.read_text()


@pytest.mark.slow
@needs_root
def test_capture_without_the_capabilities_says_what_to_grant(tmp_path: Path) -> None:
    config = capture_config(tmp_path)
    result = run_script(*NO_CAPABILITIES, HERE_HALLMONITOR, "--config", str(config), "capture")
    assert result.returncode == 1
    assert "CAP_NET_RAW and CAP_NET_ADMIN" in result.stderr


def app_config(tmp_path: Path, *, web: str = "") -> Path:
    """A configuration for the review app on a free port, its SQLite database in tmp_path
    (``web``: more lines of ``[web]``)."""
    config = tmp_path / "config.toml"
    config.write_text(
        f'[database]\ndata_dir = "{tmp_path / "data"}"\n\n'
        f'[web]\nhost = "127.0.0.1"\nport = {free_port()}\n{web}'
    )
    return config


@contextmanager
def serving(command: list[str], config: Path) -> Iterator[str]:
    """``hallmonitor serve`` while the block runs (its address); it must then stop cleanly on
    SIGTERM."""
    settings = load_settings(config, environ={})
    url = f"http://127.0.0.1:{settings.web.port}/"
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith("HALLMONITOR_")},
        "PYTHONPATH": str(ROOT),
    }
    process = subprocess.Popen(
        [*command, "--config", str(config), "serve"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
    )
    try:
        wait_for(settings.web.port, process)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            _, errors = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            raise
    # uvicorn re-raises SIGTERM once it has shut down; systemd counts that as a clean stop.
    assert process.returncode in (0, -signal.SIGTERM), errors


def wait_for(port: int, process: subprocess.Popen[str]) -> None:
    """Until something listens on ``port`` (a bound, not a timing assertion), or the process
    has ended."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"it stopped: {process.communicate()[1]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
            return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"nothing listens on port {port} after a minute")


# --- the install script ----------------------------------------------------------------------


def snapshot(root: Path) -> dict[str, tuple[int, int, int, str]]:
    """Every installed file and directory: mode, owner, group and content hash (links: their
    target). Generated files (the venv, bytecode, egg-info) and the database are left out."""
    found = {}
    for path in sorted(root.rglob("*")):
        relative = str(path.relative_to(root))
        if re.search(r"(^|/)(\.venv|__pycache__|[^/]*\.egg-info)(/|$)", relative):
            continue
        if relative.startswith("var/lib/hallmonitor/hallmonitor.db"):
            continue
        info = path.lstat()
        if path.is_symlink():
            content = os.readlink(path)
        elif path.is_file():
            content = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            content = ""
        found[relative] = (stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid, content)
    return found


def run_script(*arguments: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("HALLMONITOR_")}
    return subprocess.run(
        [str(arguments[0]), *arguments[1:]],
        capture_output=True,
        text=True,
        env=environment,
        check=False,
        timeout=600,
    )


def host_state() -> dict[str, object]:
    """What an install under --root must not change on the machine itself."""
    return {
        "passwd": Path("/etc/passwd").read_text(),
        "group": Path("/etc/group").read_text(),
        "opt": Path("/opt/hallmonitor").exists(),
        "units": sorted(Path("/etc/systemd/system").glob("hallmonitor*")),
        "config": Path("/etc/hallmonitor").exists(),
        "data": Path("/var/lib/hallmonitor").exists(),
    }


def service_ids(root: Path) -> tuple[int, int]:
    for line in (root / "etc" / "passwd").read_text().splitlines():
        name, _, uid, gid, *_ = line.split(":")
        if name == "hallmonitor":
            return int(uid), int(gid)
    raise AssertionError("no hallmonitor user in the root's /etc/passwd")


@dataclass(frozen=True)
class Installation:
    source: Path
    """A frozen copy of the source tree, installed from."""
    wheel: Path
    """The session's wheel (scripts/build-package), installed."""
    root: Path
    """Where it was installed (deploy/install --root)."""
    host_before: dict[str, object]
    """The machine's own state before (host_state)."""


@pytest.fixture(scope="module")
def installed(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Installation]:
    """One installation into a scratch root, of the session's wheel (building it takes
    minutes), shared by the tests below (building the virtual environment takes most of a
    minute); the uninstall test at the end of this file removes it."""
    if os.geteuid() != 0:
        pytest.skip("the install script runs as root")
    built: Built = request.getfixturevalue("built")  # only once it is sure to be used
    source = tmp_path_factory.mktemp("source") / "hallmonitor"
    shutil.copytree(ROOT, source, ignore=UNSHIPPED, symlinks=True)
    root = tmp_path_factory.mktemp("root")
    before = host_state()
    result = install(source, root, built.wheel)
    assert result.returncode == 0, result.stdout + result.stderr
    yield Installation(source, built.wheel, root, before)


UNSHIPPED = shutil.ignore_patterns(
    ".git",
    ".venv*",
    "var",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    ".*_cache",
    "artifacts",
    ".hypothesis",
)
"""Not copied into the frozen source (the working tree may change while the tests run)."""


def install(source: Path, root: Path, wheel: Path) -> subprocess.CompletedProcess[str]:
    return run_script(
        str(source / "deploy" / "install"), "--root", str(root), "--wheel", str(wheel)
    )


def site_packages(root: Path) -> Path:
    (found,) = (root / "opt/hallmonitor/.venv/lib").glob("python3.*/site-packages")
    return found


@pytest.mark.slow
@pytest.mark.timeout(900)
@needs_root
def test_install_creates_user_directories_config_units_venv_and_database(
    installed: Installation,
) -> None:
    root = installed.root
    uid, gid = service_ids(root)
    assert uid != 0 and gid != 0

    def owned(path: str, mode: int, owner: tuple[int, int]) -> None:
        info = (root / path).stat()
        assert (stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid) == (mode, *owner), path

    owned("var/lib/hallmonitor", 0o750, (uid, gid))
    owned("var/lib/hallmonitor/spool", 0o750, (uid, gid))
    owned("var/lib/hallmonitor/hallmonitor.db", 0o640, (uid, gid))
    owned("etc/hallmonitor", 0o750, (0, gid))
    owned("etc/hallmonitor/config.toml", 0o640, (0, gid))
    owned("etc/hallmonitor/env", 0o640, (0, gid))
    assert (root / "etc/hallmonitor/config.toml").read_text() == (
        DEPLOY / "config.example.toml"
    ).read_text()
    for unit in (DEPLOY / "systemd").iterdir():
        assert (root / "etc/systemd/system" / unit.name).read_text() == unit.read_text()
    owned("usr/local/bin/hallmonitor", 0o755, (0, 0))
    command = (root / "usr/local/bin/hallmonitor").read_text()
    assert command == (DEPLOY / "bin" / "hallmonitor").read_text()
    for guide, source in [
        ("README.md", "README.md"),
        ("config.example.toml", "config.example.toml"),
        ("env.example", "env.example"),
        ("nginx/hallmonitor.conf", "nginx/hallmonitor.conf"),
    ]:
        owned(f"{Path(GUIDE).parent.relative_to('/')}/{guide}", 0o644, (0, 0))
        assert (root / "usr/share/doc/hallmonitor" / guide).read_text() == (
            DEPLOY / source
        ).read_text()
    # The wheel, not a copy of the source tree: only the venv is in /opt/hallmonitor.
    assert [path.name for path in (root / "opt/hallmonitor").iterdir()] == [".venv"]
    package = site_packages(root)
    assert (package / "monitor/store/migrations/versions").is_dir()
    assert (package / "blocklists/tiktok.txt").is_file()
    assert not list(package.glob("__editable__*")), "installed editable"
    # The session's wheel was built with gcc: its compiled modules are installed.
    for compiled in ("compiled/scanloop", "compiled/quic", "compiled/reassembly", "compiled/tls"):
        assert list((package / "monitor").glob(f"{compiled}.*.so")), compiled


@pytest.mark.slow
@pytest.mark.timeout(900)
@needs_root
def test_install_under_root_leaves_the_machine_alone(
    installed: Installation,
) -> None:
    assert host_state() == installed.host_before


@pytest.mark.slow
@pytest.mark.timeout(900)
@needs_root
def test_installed_command_loads_the_installed_configuration(
    installed: Installation,
) -> None:
    root = installed.root
    hallmonitor = root / HALLMONITOR.lstrip("/")
    config = root / CONFIG.lstrip("/")
    result = run_script(str(hallmonitor), "--config", str(config), "config", "check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith(f"ok: {config}")


@pytest.mark.slow
@pytest.mark.timeout(900)
@needs_root
def test_installing_again_changes_nothing_and_keeps_the_schools_config(
    installed: Installation,
) -> None:
    root = installed.root
    config = root / "etc/hallmonitor/config.toml"
    school = config.read_text().replace('#name = "school"', 'name = "st-marys"', 1)
    assert school != config.read_text()
    config.write_text(school)
    (root / "opt/hallmonitor/stale.py").write_text("# from an older version\n")
    first = snapshot(root)
    result = install(installed.source, root, installed.wheel)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "kept /etc/hallmonitor/config.toml" in result.stdout
    assert config.read_text() == school
    del first["opt/hallmonitor/stale.py"]
    assert snapshot(root) == first
    assert "up to date (the same wheel, pins and Python)" in result.stdout


@pytest.mark.slow
@pytest.mark.timeout(900)
@needs_root
def test_installing_over_an_older_install_replaces_its_source_tree_and_venv(
    installed: Installation,
) -> None:
    """Earlier versions of deploy/install copied the source tree to /opt/hallmonitor and
    installed it editable into .venv beside it."""
    root = installed.root
    prefix = root / "opt/hallmonitor"
    for old in ("pyproject.toml", "monitor/cli.py", "migrations/env.py", "deploy/install"):
        (prefix / old).parent.mkdir(parents=True, exist_ok=True)
        (prefix / old).write_text("# the older install's copy\n")
    (prefix / ".venv/.installed").write_text("an older install's stamp\n")
    result = install(installed.source, root, installed.wheel)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "removed what an older install left in /opt/hallmonitor" in result.stdout
    assert [path.name for path in prefix.iterdir()] == [".venv"]
    assert (prefix / ".venv/.installed").read_text() != "an older install's stamp\n"
    config = root / CONFIG.lstrip("/")
    checked = run_script(
        str(prefix / ".venv/bin/hallmonitor"), "--config", str(config), "config", "check"
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


@needs_root
def test_install_refuses_a_directory_that_is_not_the_source(tmp_path: Path) -> None:
    result = run_script(str(DEPLOY / "install"), "--root", str(tmp_path), "--source", "/")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "install: / is not a Hall Monitor source tree (no pyproject.toml, monitor/ or "
        "deploy/systemd/); use --source DIR"
    ]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("script", ["install", "uninstall"])
def test_scripts_name_an_unknown_argument(script: str) -> None:
    result = run_script(str(DEPLOY / script), "--frobnicate")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == f"{script}: unknown argument: --frobnicate"


@pytest.mark.slow
@pytest.mark.timeout(900)
@needs_root
def test_uninstall_keeps_config_and_data_and_purge_deletes_them(
    installed: Installation,
) -> None:
    root = installed.root
    for _ in range(2):  # the second run finds nothing to do
        result = run_script(str(DEPLOY / "uninstall"), "--root", str(root))
        assert result.returncode == 0, result.stdout + result.stderr
        assert not (root / "opt/hallmonitor").exists()
        assert not (root / "usr/local/bin/hallmonitor").exists()
        assert not (root / "usr/share/doc/hallmonitor").exists()
        assert list((root / "etc/systemd/system").iterdir()) == []
        assert (root / "etc/hallmonitor/config.toml").is_file()
        assert (root / "var/lib/hallmonitor/hallmonitor.db").is_file()
    result = run_script(str(DEPLOY / "uninstall"), "--root", str(root), "--purge")
    assert result.returncode == 0, result.stdout + result.stderr
    assert not (root / "etc/hallmonitor").exists()
    assert not (root / "var/lib/hallmonitor").exists()
    assert "hallmonitor:" in (root / "etc/passwd").read_text()


def test_the_command_reads_the_services_environment_as_systemd_does(tmp_path: Path) -> None:
    env = tmp_path / "env"
    env.write_text(
        "# the database\n"
        "HALLMONITOR_DATABASE__URL=postgresql://hm:pa$$word@db/hm\n"
        '  HALLMONITOR_MAIL__PASSWORD="quoted secret"\n'
        "#HALLMONITOR_SITE__NAME=commented-out\n"
        "\n"
        "HALLMONITOR_LOGGING__LEVEL=DEBUG\n"
        "not a setting\n"
    )
    venv_command = tmp_path / "venv-hallmonitor"
    venv_command.write_text('#!/bin/sh\nenv | grep ^HALLMONITOR_ | sort\necho "args: $*"\n')
    venv_command.chmod(0o755)
    command = tmp_path / "hallmonitor"
    text = (DEPLOY / "bin" / "hallmonitor").read_text()
    text = text.replace("/etc/hallmonitor/env", str(env)).replace(HALLMONITOR, str(venv_command))
    command.write_text(text)
    command.chmod(0o755)
    environment = {k: v for k, v in os.environ.items() if not k.startswith("HALLMONITOR_")}
    result = subprocess.run(
        [str(command), "doctor", "--check", "database"],
        capture_output=True,
        text=True,
        env={**environment, "HALLMONITOR_LOGGING__LEVEL": "ERROR"},
        check=True,
        timeout=60,
    )
    assert result.stdout.splitlines() == [
        "HALLMONITOR_DATABASE__URL=postgresql://hm:pa$$word@db/hm",
        "HALLMONITOR_LOGGING__LEVEL=ERROR",
        "HALLMONITOR_MAIL__PASSWORD=quoted secret",
        "args: doctor --check database",
    ]


# --- the reverse proxy -----------------------------------------------------------------------

needs_nginx = pytest.mark.skipif(
    shutil.which("nginx") is None and os.environ.get("CI") != "true",
    reason="nginx is not installed (scripts/install-system-packages installs nginx-light); "
    "under CI=true these tests run and fail instead",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def nginx_setup(tmp_path: Path, app_port: int) -> tuple[Path, int, int, Path]:
    """The example, with a self-signed certificate and free ports, in a scratch prefix."""
    import trustme

    authority = trustme.CA()
    certificate = authority.issue_cert("hallmonitor.school.example", "127.0.0.1")
    certificate.cert_chain_pems[0].write_to_path(str(tmp_path / "fullchain.pem"))
    for blob in certificate.cert_chain_pems[1:]:
        blob.write_to_path(str(tmp_path / "fullchain.pem"), append=True)
    certificate.private_key_pem.write_to_path(str(tmp_path / "privkey.pem"))
    authority.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    http, https = free_port(), free_port()
    site = (DEPLOY / "nginx" / "hallmonitor.conf").read_text()
    for old, new in [
        ("/etc/ssl/hallmonitor/", f"{tmp_path}/"),
        ("127.0.0.1:8080", f"127.0.0.1:{app_port}"),
        ("listen 80;", f"listen 127.0.0.1:{http};"),
        ("listen 443 ssl", f"listen 127.0.0.1:{https} ssl"),
    ]:
        assert old in site, old
        site = site.replace(old, new)
    site = "\n".join(line for line in site.splitlines() if "listen [::]" not in line)
    (tmp_path / "site.conf").write_text(site)
    main = tmp_path / "nginx.conf"
    main.write_text(
        f"user root;\npid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\n"
        f"events {{}}\nhttp {{\n    access_log off;\n    include {tmp_path}/site.conf;\n}}\n"
    )
    return main, http, https, tmp_path / "ca.pem"


@dataclass(frozen=True)
class NginxFront:
    """The nginx example running in front of the app: its ports and its CA's certificate."""

    http: int
    https: int
    ca: Path

    def opener(self, *handlers: urllib.request.BaseHandler) -> urllib.request.OpenerDirector:
        """A URL opener that trusts the test certificate."""
        context = ssl.create_default_context(cafile=str(self.ca))
        return urllib.request.build_opener(urllib.request.HTTPSHandler(context=context), *handlers)


@contextmanager
def nginx_in_front(tmp_path: Path, app_port: int) -> Iterator[NginxFront]:
    """The nginx example (``nginx_setup``) serving the app on ``app_port`` until the block ends."""
    main, http, https, ca = nginx_setup(tmp_path, app_port)
    nginx = subprocess.Popen(
        ["nginx", "-p", str(tmp_path), "-c", str(main), "-g", "daemon off;"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(https, nginx)
        yield NginxFront(http, https, ca)
    finally:
        nginx.send_signal(signal.SIGQUIT)
        nginx.wait(timeout=30)
        assert nginx.stderr is not None
        nginx.stderr.close()


@needs_nginx
def test_nginx_example_passes_nginx_t(tmp_path: Path) -> None:
    main, *_ = nginx_setup(tmp_path, 8080)
    result = subprocess.run(
        ["nginx", "-t", "-p", str(tmp_path), "-c", str(main)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def failed_login_address(
    opener: urllib.request.OpenerDirector, base: str, tmp_path: Path, *, forged: str
) -> str:
    """Fail a login through ``base`` with a forged X-Forwarded-For; the address audited."""
    with opener.open(base + "/login", timeout=30) as response:
        cookies = response.headers.get_all("Set-Cookie") or []
        token = re.search(r'name="csrf_token" value="([^"]+)"', response.read().decode())
    assert token is not None
    request = urllib.request.Request(
        base + "/login",
        data=urllib.parse.urlencode(
            {"username": "nobody", "password": "wrong", "csrf_token": token.group(1)}
        ).encode(),
        headers={
            "Cookie": "; ".join(cookie.split(";", 1)[0] for cookie in cookies),
            "X-Forwarded-For": forged,
        },
    )
    with pytest.raises(urllib.error.HTTPError) as redirect:  # 303 to the form again
        opener.open(request, timeout=30)
    redirect.value.close()
    assert redirect.value.code == 303, redirect.value.read()
    with sqlite3.connect(tmp_path / "data" / "hallmonitor.db") as db:
        (address,) = db.execute(
            "SELECT address FROM audit_events WHERE action = 'login_failed'"
        ).fetchone()
    assert isinstance(address, str)
    return address


@pytest.mark.slow
@needs_nginx
def test_nginx_serves_the_app_over_https_with_hsts_and_secure_cookies(tmp_path: Path) -> None:
    # The trust the example's first comment asks for: the app believes no proxy by default.
    example = (DEPLOY / "nginx" / "hallmonitor.conf").read_text()
    trust = re.search(r"^#\s+(forwarded_allow_ips = \[.*?\])", example, re.MULTILINE)
    assert trust is not None, "the nginx example names no web.forwarded_allow_ips"
    config = app_config(tmp_path, web=trust.group(1) + "\n")
    result = run_script(HERE_HALLMONITOR, "--config", str(config), "db", "upgrade")
    assert result.returncode == 0, result.stderr
    with serving([HERE_HALLMONITOR], config) as url:
        app_port = int(url.rstrip("/").rsplit(":", 1)[1])
        with nginx_in_front(tmp_path, app_port) as front:
            base = f"https://127.0.0.1:{front.https}"
            opener = front.opener(NoRedirect())
            with opener.open(url + "login", timeout=30) as response:
                direct = response.headers.get_all("Set-Cookie") or []
                assert direct and not any("secure" in c.lower() for c in direct), direct
            with opener.open(base + "/healthz", timeout=30) as response:
                assert response.status == 200
                assert response.headers["Strict-Transport-Security"] == "max-age=63072000"
            with opener.open(base + "/login", timeout=30) as response:
                proxied = response.headers.get_all("Set-Cookie") or []
                assert proxied and all("secure" in c.lower() for c in proxied), proxied
            with pytest.raises(urllib.error.HTTPError) as redirect:
                opener.open(f"http://127.0.0.1:{front.http}/queue", timeout=30)
            redirect.value.close()
            assert redirect.value.code == 301
            assert redirect.value.headers["Location"] == "https://127.0.0.1/queue"
            # nginx sets X-Forwarded-For to the client's own address: although the app
            # believes nginx, a forged header never reaches the audit log.
            assert failed_login_address(opener, base, tmp_path, forged="10.66.6.6") == "127.0.0.1"


# --- example configurations ------------------------------------------------------------------


def test_the_example_configuration_loads() -> None:
    load_settings(DEPLOY / "config.example.toml", environ={})


def test_every_example_secret_is_a_setting_that_loads() -> None:
    lines = [
        line.removeprefix("#")
        for line in (DEPLOY / "env.example").read_text().splitlines()
        if line.startswith("#HALLMONITOR_")
    ]
    assert lines
    for line in lines:
        key, _, value = line.partition("=")
        load_settings(None, environ={key: value or "x"})
