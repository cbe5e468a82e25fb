"""The README's two commands, where a newcomer runs them: a freshly booted stock Debian 12.

The root has no compiler and, until the scripts install it, no Python; Debian's python3 is
3.11.2. The committed tree (``git archive HEAD``, as a clone gives it) is copied to
/usr/local/src/hallmonitor. The container shares the host's network (apt and pip reach the
registries), so the app listens on a port free on the host.
"""

from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.system.container import Container, archive_head, booted, requirements, scratch_root

REPOSITORY = Path(__file__).resolve().parents[2]
SOURCE = "/usr/local/src/hallmonitor"
INSTALL_S = 1500.0
"""Generous: apt and pip download everything on a fresh system; never a measured speed."""
SUBSET = (
    "tests/test_layout.py",
    "tests/monitor/test_hostnames.py",
    "tests/monitor/config/test_loading.py",
    "tests/monitor/extract/test_compiled.py",
)
"""A few fast test files, one of which checks the compiled twins were built."""

pytestmark = [pytest.mark.slow, requirements()]


@pytest.fixture(scope="module")
def stock_debian(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Container]:
    """A fresh Debian 12 booted with the host's network, the committed tree copied in."""
    with scratch_root(tmp_path_factory.mktemp("readme")) as root, booted(root, "host") as box:
        archive_head(REPOSITORY, box.path(SOURCE))
        yield box


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def healthz(port: int) -> int | None:
    """The app's /healthz status, or None while nothing answers."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as answer:
            status: int = answer.status
            return status
    except urllib.error.HTTPError as e:
        e.close()
        return e.code
    except OSError:
        return None


@pytest.mark.timeout(INSTALL_S + 300)
def test_scripts_run_installs_and_serves_on_a_stock_debian_12(
    stock_debian: Container, tmp_path: Path
) -> None:
    box = stock_debian
    assert box.run("sh", "-c", "command -v python3 gcc cc", check=False).stdout == ""
    port = free_port()
    log = tmp_path / "run.log"
    run = box.popen(
        "bash",
        "-c",
        f"cd {SOURCE} && echo $$ >/run/readme-run.pid && exec scripts/run --port {port}",
        log=log,
    )
    try:
        deadline = time.monotonic() + INSTALL_S
        while healthz(port) != 200:
            assert run.poll() is None, log.read_text(errors="replace")[-6000:]
            assert time.monotonic() < deadline, log.read_text(errors="replace")[-6000:]
            time.sleep(2)
    finally:
        box.run("bash", "-c", "kill -TERM $(cat /run/readme-run.pid)", check=False)
        status = run.wait(timeout=120)
    output = log.read_text(errors="replace")
    assert status == 0, output[-6000:]
    assert "password:" in output
    assert (
        box.run(
            f"{SOURCE}/.venv/bin/python", "-c", "import platform; print(platform.python_version())"
        ).stdout.strip()
        == "3.11.2"
    )


@pytest.mark.timeout(INSTALL_S + 600)
def test_the_test_commands_install_builds_the_compiled_twins_and_tests_pass(
    stock_debian: Container,
) -> None:
    box = stock_debian
    box.sh(f"cd {SOURCE} && scripts/install-system-packages && scripts/setup", timeout=INSTALL_S)
    result = box.sh(
        f"cd {SOURCE} && .venv/bin/python -m pytest -q -p no:cacheprovider {' '.join(SUBSET)}",
        env={"CI": "true"},
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert " passed" in result.stdout and "skipped" not in result.stdout, result.stdout[-3000:]
