"""deploy/install, the install for other distributions, on a freshly booted stock Debian 12.

The committed tree is copied to /usr/local/src/hallmonitor and installed as the deploy guide
says, with the host's network (apt and pip); then the gateway boots again with its own network
and a veth pair as its LAN, and the all-in-one unit starts and answers.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.system.container import (
    Container,
    Veth,
    archive_head,
    booted,
    requirements,
    scratch_root,
    wait_until,
)
from tests.system.school import CONFIG

REPOSITORY = Path(__file__).resolve().parents[2]
SOURCE = "/usr/local/src/hallmonitor"

pytestmark = [pytest.mark.slow, requirements(), pytest.mark.timeout(2400)]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Container]:
    """A fresh Debian 12 after ``deploy/install``, booted again with its own network and
    ``lan0``; the school's configuration in place."""
    with scratch_root(tmp_path_factory.mktemp("deploy-install")) as root:
        with booted(root, "host") as online:
            archive_head(REPOSITORY, online.path(SOURCE))
            online.sh(f"cd {SOURCE} && deploy/install", timeout=1800)
        (root / "etc/hallmonitor/config.toml").write_text(CONFIG)
        with booted(root, "private") as box:
            veth = Veth(box, "lan0")
            try:
                yield box
            finally:
                veth.delete()


def test_deploy_install_gives_a_unit_that_starts_and_answers(installed: Container) -> None:
    installed.run("systemctl", "enable", "--now", "hallmonitor.service")
    wait_until(lambda: installed.answers("http://127.0.0.1:8080/healthz"), "/healthz answered 200")
    assert installed.is_active("hallmonitor.service") == "active"
    assert installed.is_active("hallmonitor-migrate.service") in ("active", "inactive")
    assert "capturing on lan0" in installed.journal("hallmonitor.service")
