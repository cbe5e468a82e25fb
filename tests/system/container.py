"""A booted stock Debian 12 for the system tests: build (cached), boot, run, copy in, stop.

The tests try Hall Monitor where users stand: on a fresh Debian 12 booted by its own systemd.
``debootstrap`` builds a minimal root (``minbase`` with systemd, as Debian installs it; no
compiler, Debian's Python is not even there yet) once per recipe into ``CACHE``, outside the
repository; each test boots a *copy* of it with ``systemd-nspawn`` (no machined needed), so
every module starts from a pristine system and the cache is never changed. Commands run inside
through ``nsenter`` on the container's PID 1, with a clean environment.

Networking: a container either shares the host's network (``network="host"``: apt and pip
reach the registries) or has its own namespace with loopback only (``network="private"``:
nothing it listens on can collide with the host's ports, and capture sees only the veth pairs
the test adds). A root can be booted with one, powered off, and booted again with the other.

Needs root, ``debootstrap``, ``systemd-nspawn`` (systemd-container) and ``nsenter``; the
project's ``scripts/install-system-packages`` installs them.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

import pytest

CACHE = Path(os.environ.get("HALLMONITOR_TEST_ROOT_CACHE", "/var/cache/hallmonitor-tests"))
"""Where the pristine root is kept between runs (override for a machine without /var/cache)."""
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
RECIPE = ("--variant=minbase", "--include=systemd,systemd-sysv,dbus", SUITE, MIRROR)
"""debootstrap's arguments before the target; a change rebuilds the cached root."""
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")
"""The host's trust store, given to the root: TLS to the package registries may need an
authority the host trusts (a proxy's), and apt's ca-certificates rebuilds the bundle from
/usr/local/share/ca-certificates."""
SAFE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
BOOT_S = 120.0
"""Generous: ``systemctl is-system-running`` answers ``running`` within seconds here."""
TOOLS = ("debootstrap", "systemd-nspawn", "nsenter", "ip")

Network = Literal["host", "private"]


def requirements() -> pytest.MarkDecorator:
    """Skip where a booted container cannot be made (not root, tools missing), but under
    CI=true run and fail: CI must run these tests."""
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if os.geteuid() != 0:
        missing.append("root")
    return pytest.mark.skipif(
        bool(missing) and os.environ.get("CI") != "true",
        reason=f"a booted Debian container needs {', '.join(missing)} "
        "(run as root after scripts/install-system-packages); under CI=true these tests fail",
    )


def _recipe_id() -> str:
    digest = hashlib.sha256(" ".join(RECIPE).encode())
    digest.update(HOST_CA.read_bytes() if HOST_CA.exists() else b"")
    return digest.hexdigest()


def pristine_root() -> Path:
    """The cached stock root, built when missing or when its recipe changed (about 35 s).

    A lock makes concurrent test sessions wait for one build; the root is built beside the
    cache and renamed into place, so a failed build never leaves a half root behind.
    """
    CACHE.mkdir(parents=True, exist_ok=True)
    root, stamp = CACHE / SUITE, CACHE / f"{SUITE}.recipe"
    with (CACHE / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if root.is_dir() and stamp.exists() and stamp.read_text() == _recipe_id():
            return root
        building = CACHE / f"{SUITE}.building"
        shutil.rmtree(building, ignore_errors=True)
        subprocess.run(
            ["debootstrap", *RECIPE[:-2], RECIPE[-2], str(building), RECIPE[-1]],
            check=True,
            capture_output=True,
            timeout=1200,
        )
        if HOST_CA.exists():
            for place in (
                "etc/ssl/certs/ca-certificates.crt",
                "usr/local/share/ca-certificates/host.crt",
            ):
                (building / place).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(HOST_CA, building / place)
        shutil.rmtree(root, ignore_errors=True)
        building.rename(root)
        stamp.write_text(_recipe_id())
        return root


def fresh_copy(into: Path) -> Path:
    """A copy of the pristine root at ``into`` (a directory that must not exist yet), taken
    under a shared lock: another session may not rebuild the root while it is copied."""
    pristine = pristine_root()
    with (CACHE / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_SH)
        subprocess.run(["cp", "-a", "--reflink=auto", str(pristine), str(into)], check=True)
    return into


class Container:
    """One boot of a root directory: ``run`` commands in it, ``stop`` powers it off."""

    def __init__(self, root: Path, network: Network) -> None:
        self.root = root
        self.network = network
        command = ["systemd-nspawn", "--register=no", "--keep-unit", "--console=passive"]
        if network == "private":
            command.append("--private-network")
        self.log = (root.parent / f"{root.name}.boot.log").open("ab")
        self.nspawn = subprocess.Popen(
            [*command, "-b", "-D", str(root)],
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.pid = self._leader()
        self.state = self._wait_until_running()

    def _leader(self) -> int:
        """The container's PID 1, as the host sees it: the nspawn process's child."""
        deadline = time.monotonic() + BOOT_S
        children = Path(f"/proc/{self.nspawn.pid}/task/{self.nspawn.pid}/children")
        while time.monotonic() < deadline:
            if self.nspawn.poll() is not None:
                raise RuntimeError(f"systemd-nspawn exited: {self.boot_log()}")
            text = children.read_text().split() if children.exists() else []
            if text:
                return int(text[0])
            time.sleep(0.1)
        raise RuntimeError(f"no container process after {BOOT_S} s: {self.boot_log()}")

    def _wait_until_running(self) -> str:
        deadline = time.monotonic() + BOOT_S
        state = ""
        while time.monotonic() < deadline:
            state = self.run("systemctl", "is-system-running", check=False).stdout.strip()
            if state in ("running", "degraded"):
                return state
            time.sleep(0.3)
        raise RuntimeError(f"the container never finished booting ({state!r}): {self.boot_log()}")

    def boot_log(self) -> str:
        """What the container printed on its console."""
        return (self.root.parent / f"{self.root.name}.boot.log").read_text(errors="replace")[-4000:]

    def run(
        self,
        *command: str,
        check: bool = True,
        timeout: float = 600,
        input: str | None = None,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``command`` in every namespace of the container, with a clean environment.

        ``check`` raises with the command's output, so a failing step says why.
        """
        variables = [f"{key}={value}" for key, value in {"PATH": SAFE_PATH, **(env or {})}.items()]
        result = subprocess.run(
            ["nsenter", "-t", str(self.pid), "-a", "env", "-i", *variables, *command],
            capture_output=True,
            text=True,
            timeout=timeout,
            input=input,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"{' '.join(command)} exited {result.returncode}\n"
                f"--- stdout\n{result.stdout[-6000:]}\n--- stderr\n{result.stderr[-6000:]}"
            )
        return result

    def sh(self, script: str, **options: object) -> subprocess.CompletedProcess[str]:
        """Run a bash script inside (``set -euo pipefail``)."""
        return self.run("bash", "-c", "set -euo pipefail\n" + script, **options)  # type: ignore[arg-type]

    def popen(self, *command: str, log: Path) -> subprocess.Popen[bytes]:
        """Start ``command`` inside in the background, its output going to ``log``."""
        with log.open("ab") as out:
            return subprocess.Popen(
                ["nsenter", "-t", str(self.pid), "-a", "env", "-i", f"PATH={SAFE_PATH}", *command],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def path(self, inside: str) -> Path:
        """The host's path of a path inside the container (the root is a plain directory)."""
        return self.root / inside.lstrip("/")

    def copy_in(self, source: Path, inside: str) -> None:
        """Copy a host file or directory to ``inside`` (parents created)."""
        target = self.path(inside)
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, symlinks=True)
        else:
            shutil.copy2(source, target)

    def is_active(self, unit: str) -> str:
        """``systemctl is-active``'s answer: active, inactive, failed, ..."""
        return self.run("systemctl", "is-active", unit, check=False).stdout.strip()

    def fetch(self, url: str, cafile: str = "") -> tuple[int, dict[str, str]]:
        """Status and headers of ``url`` fetched inside (with the system's python3; a private
        network's ports are reachable only from inside). ``cafile`` is trusted for HTTPS."""
        script = (
            "import json, ssl, sys, urllib.error, urllib.request\n"
            "context = ssl.create_default_context(cafile=sys.argv[2]) if sys.argv[2] else None\n"
            "try:\n"
            "    answer = urllib.request.urlopen(sys.argv[1], timeout=10, context=context)\n"
            "except urllib.error.HTTPError as e:\n"
            "    answer = e\n"
            "print(json.dumps([answer.status, dict(answer.headers)]))\n"
        )
        status, headers = json.loads(self.run("python3", "-c", script, url, cafile).stdout)
        return int(status), headers

    def answers(self, url: str) -> bool:
        """Whether ``url`` answers 200 now (False while nothing listens)."""
        try:
            return self.fetch(url)[0] == 200
        except AssertionError:
            return False

    def journal(self, unit: str) -> str:
        """The unit's journal since boot."""
        return self.run("journalctl", "-b", "-u", unit, "--no-pager", "-o", "cat").stdout

    def stop(self) -> int | None:
        """Power off cleanly (SIGTERM to nspawn); SIGKILL after a minute. The exit status."""
        if self.nspawn.poll() is None:
            self.nspawn.send_signal(signal.SIGTERM)
            try:
                self.nspawn.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.nspawn.kill()
                self.nspawn.wait(timeout=30)
        self.log.close()
        return self.nspawn.returncode


def wait_until(check: Callable[[], bool], what: str, timeout: float = 120.0) -> None:
    """Poll ``check()`` until it is true; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.5)


@contextmanager
def booted(root: Path, network: Network) -> Iterator[Container]:
    """``root`` booted for the duration of the block, powered off after it whatever happens."""
    container = Container(root, network)
    try:
        yield container
    finally:
        container.stop()


@contextmanager
def scratch_root(parent: Path) -> Iterator[Path]:
    """A fresh copy of the pristine root under ``parent``, deleted afterwards."""
    root = fresh_copy(parent / "root")
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def archive_head(repository: Path, into: Path) -> None:
    """The repository's committed tree (``git archive HEAD``) unpacked at ``into``: what a
    user gets from a clone, without the developer's untracked files or build products."""
    into.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(
        ["git", "-C", str(repository), "archive", "--format=tar", "HEAD"],
        check=True,
        capture_output=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)


class Veth:
    """A veth pair: the host's end here, the other end moved into the container as ``inside``.

    Frames sent on the host's end arrive only on the container's end: the test's traffic
    reaches nobody else.
    """

    def __init__(self, container: Container, inside: str) -> None:
        tag = f"{os.getpid() % 100000}{container.pid % 100}"
        self.host, peer = f"hmh{tag}", f"hmc{tag}"
        subprocess.run(
            ["ip", "link", "add", self.host, "type", "veth", "peer", "name", peer], check=True
        )
        subprocess.run(["ip", "link", "set", peer, "netns", str(container.pid)], check=True)
        enter = ["nsenter", "-t", str(container.pid), "-n"]
        subprocess.run([*enter, "ip", "link", "set", peer, "name", inside], check=True)
        subprocess.run([*enter, "ip", "link", "set", inside, "up"], check=True)
        subprocess.run(["ip", "link", "set", self.host, "up"], check=True)
        self.inside = inside

    def delete(self) -> None:
        """Remove the pair (gone anyway when the container's namespace goes)."""
        subprocess.run(["ip", "link", "del", self.host], check=False, capture_output=True)
