"""Building Hall Monitor's release files for the tests (``scripts/build-package``); the
session's build is the fixture ``built`` (tests/conftest.py)."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Built:
    """What ``scripts/build-package --no-deb`` made: the sdist and the wheel built from it."""

    sdist: Path
    wheel: Path
    log: str
    """Everything the build printed (a module it could not compile is named there)."""


def build_package(outdir: Path, **environment: str) -> Built:
    """Run ``scripts/build-package --no-deb`` into ``outdir`` (extra environment variables
    given as keywords, e.g. ``CC``)."""
    result = subprocess.run(
        [str(ROOT / "scripts" / "build-package"), "--no-deb", "--outdir", str(outdir)],
        capture_output=True,
        text=True,
        env={**os.environ, **environment},
        check=False,
        timeout=1500,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    sdist, wheel = result.stdout.splitlines()[-2:]
    return Built(Path(sdist), Path(wheel), result.stdout + result.stderr)
