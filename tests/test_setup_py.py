"""setup.py: the compiled modules are optional, so a machine without a C compiler installs.

scripts/setup installs editable (``pip install -e .``), which copies each built module into the
source tree: it must succeed where the compiler is missing (a stock Debian 12) and leave the
Python twins to run. The compiler is taken away with ``CC`` naming a file that is not there.
(The wheel's build without a compiler is tests/test_packaging.py's.)
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TREE = (
    "pyproject.toml",
    "setup.py",
    "README.md",
    "hallmonitor",
    "monitor",
    "api",
    "blocklists",
    "migrations",
)
IGNORED = shutil.ignore_patterns("*.so", "*.c", "__pycache__", "*.egg-info", "build")


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_an_editable_install_without_a_c_compiler_runs_the_python_twins(tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.mkdir()
    for name in TREE:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=IGNORED)
        else:
            shutil.copy2(ROOT / name, source / name)
    subprocess.run(["/usr/bin/python3", "-m", "venv", str(tmp_path / "venv")], check=True)
    python = str(tmp_path / "venv" / "bin" / "python")
    environment = {**os.environ, "CC": str(tmp_path / "no-compiler" / "gcc")}
    result = subprocess.run(
        [
            python,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--disable-pip-version-check",
            "-e",
            str(source),
        ],
        capture_output=True,
        text=True,
        env=environment,
        cwd=tmp_path,
        timeout=540,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    found = subprocess.run(
        [
            python,
            "-c",
            "import importlib.util as u; print(u.find_spec('monitor.compiled.scanloop'))",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=True,
    )
    assert found.stdout.strip() == "None"
