"""Hall Monitor ships whole: the sdist and the wheel (scripts/build-package) carry the lists,
migrations, templates and demo sample, so the wheel installed into a clean virtual environment,
with no source tree beside it, migrates a database, checks every platform list, records
incidents from its own sample and serves the review app. Built without a compiler the wheel
installs and runs the Python code; built with gcc it holds the compiled modules. The Debian
package (scripts/build-deb) holds a venv that works at /opt/hallmonitor/.venv, and the pins of
requirements.lock all install on the oldest Python Hall Monitor admits."""

from __future__ import annotations

import importlib.metadata
import io
import os
import re
import sqlite3
import subprocess
import tarfile
import tomllib
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from monitor.demo.settings import DEMO_SITE, DEMO_STAFF_NETWORKS
from monitor.lists.files import ALLOWLIST_FILE
from tests.packaging import Built, build_package
from tests.test_deploy import free_port, wait_for

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements.lock"
COMPILED = [
    "monitor/compiled/scanloop",
    "monitor/compiled/quic",
    "monitor/compiled/reassembly",
    "monitor/compiled/tls",
]
"""The Cython modules setup.py builds (beside their .pyx)."""
BUILD_TIMEOUT = 2400
"""Seconds for a test that may wait for the session's builds (generous: a loaded machine)."""

# --- the lock ---------------------------------------------------------------------------------


def pins() -> dict[str, str]:
    return dict(
        line.split("==", 1)
        for line in LOCK.read_text().splitlines()
        if line and not line.startswith("#")
    )


def oldest_admitted_python() -> Version:
    """The oldest Python release that pyproject.toml's requires-python admits."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    admitted = SpecifierSet(project["requires-python"])
    releases = (Version(f"3.{minor}.{micro}") for minor in range(40) for micro in range(40))
    return min(release for release in releases if release in admitted)


def test_every_pin_admits_the_oldest_python_hall_monitor_admits() -> None:
    """Read from the installed distributions (scripts/setup installs exactly the pins)."""
    oldest = oldest_admitted_python()
    refused = {}
    for name, version in pins().items():
        distribution = importlib.metadata.distribution(name)
        assert distribution.version == version, f"{name}: run scripts/setup"
        requires = distribution.metadata["Requires-Python"]
        if requires and oldest not in SpecifierSet(requires):
            refused[f"{name}=={version}"] = requires
    assert refused == {}, f"pins that cannot install on Python {oldest}"


def test_the_build_front_end_is_pinned() -> None:
    assert "build" in pins()


# --- the sdist and the wheel ------------------------------------------------------------------


def shipped_platform_lists() -> list[str]:
    return sorted(p.name for p in (ROOT / "blocklists").glob("*.txt") if p.name != ALLOWLIST_FILE)


@pytest.mark.slow
@pytest.mark.timeout(BUILD_TIMEOUT)
@pytest.mark.parametrize(
    "pattern",
    [r"\.pyx$", r"/monitor/compiled/reassembly\.pxd$", r"/requirements\.lock$", r"/setup\.py$"],
)
def test_the_sdist_carries_what_the_wheel_is_built_from(built: Built, pattern: str) -> None:
    with tarfile.open(built.sdist) as sdist:
        names = sdist.getnames()
    assert [name for name in names if re.search(pattern, name)], pattern


def wheel_names(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


@pytest.mark.slow
@pytest.mark.timeout(BUILD_TIMEOUT)
@pytest.mark.parametrize(
    "expected",
    [
        *(f"blocklists/{name}" for name in shipped_platform_lists()),
        f"blocklists/{ALLOWLIST_FILE}",
        "monitor/store/migrations/env.py",
        "monitor/store/migrations/script.py.mako",
        "api/templates/base.html",
        "api/static/style.css",
        "monitor/reports/templates/weekly.html",
        "monitor/demo/sample.pcap",
    ],
)
def test_the_wheel_carries_lists_migrations_templates_and_the_demo_sample(
    built: Built, expected: str
) -> None:
    assert expected in wheel_names(built.wheel)


@pytest.mark.slow
@pytest.mark.timeout(BUILD_TIMEOUT)
def test_the_wheel_carries_the_command_and_names_it_the_console_script(built: Built) -> None:
    names = wheel_names(built.wheel)
    assert {"hallmonitor/__main__.py", "hallmonitor/cli/root.py", "hallmonitor/up.py"} <= names
    with zipfile.ZipFile(built.wheel) as archive:
        [entry_points] = [name for name in names if name.endswith(".dist-info/entry_points.txt")]
        scripts = archive.read(entry_points).decode()
    assert "hallmonitor = hallmonitor.cli.root:main" in scripts


@pytest.mark.slow
@pytest.mark.timeout(BUILD_TIMEOUT)
def test_the_wheel_carries_every_migration(built: Built) -> None:
    names = wheel_names(built.wheel)
    for version in (ROOT / "migrations" / "versions").glob("*.py"):
        assert f"monitor/store/migrations/versions/{version.name}" in names


@pytest.mark.slow
@pytest.mark.timeout(BUILD_TIMEOUT)
def test_the_wheel_built_with_gcc_holds_the_four_compiled_modules(built: Built) -> None:
    names = wheel_names(built.wheel)
    for module in COMPILED:
        assert [name for name in names if re.fullmatch(rf"{module}\.cpython-\d+-.*\.so", name)], (
            module
        )
    assert not [name for name in names if name.endswith((".c", ".pyx"))]


# --- the wheel, installed with no source tree beside it ---------------------------------------


@dataclass(frozen=True)
class Venv:
    path: Path
    scratch: Path
    """An empty directory to run commands in (nothing of the source tree is importable)."""

    def hallmonitor(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.run(str(self.path / "bin" / "hallmonitor"), *args)

    def run(self, *command: str) -> subprocess.CompletedProcess[str]:
        environment = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("HALLMONITOR_", "PYTHON", "VIRTUAL_ENV"))
        }
        return subprocess.run(
            command,
            capture_output=True,
            text=True,
            cwd=self.scratch,
            env=environment,
            check=False,
            timeout=300,
        )

    def package_file(self, relative: str) -> Path:
        """A file of the installed package (``monitor/demo/sample.pcap``)."""
        result = self.run(
            str(self.path / "bin" / "python"), "-c", "import monitor; print(monitor.__file__)"
        )
        assert result.returncode == 0, result.stderr
        return Path(result.stdout.strip()).parents[1] / relative


def install_wheel(wheel: Path, where: Path) -> Venv:
    """The wheel in a new venv of Debian's Python, pinned, as deploy/install makes it."""
    venv = where / "venv"
    result = subprocess.run(
        [str(ROOT / "deploy" / "make-venv"), str(venv), str(wheel), str(LOCK)],
        capture_output=True,
        text=True,
        cwd=where,
        check=False,
        timeout=1200,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    scratch = where / "elsewhere"
    scratch.mkdir()
    return Venv(venv, scratch)


@pytest.fixture(scope="module")
def installed(built: Built, tmp_path_factory: pytest.TempPathFactory) -> Venv:
    return install_wheel(built.wheel, tmp_path_factory.mktemp("wheel"))


def demo_config(directory: Path) -> Path:
    """The demo's school (its staff segment holds the sample's laptops), on a fresh SQLite file."""
    config = directory / "config.toml"
    networks = ", ".join(f'"{network}"' for network in DEMO_STAFF_NETWORKS)
    config.write_text(
        f'[site]\nname = "{DEMO_SITE}"\n\n'
        f'[[segments]]\nname = "staff"\ncidrs = [{networks}]\nrole = "staff"\n\n'
        '[calendar]\ntimezone = "Europe/London"\n\n'
        f'[database]\ndata_dir = "{directory / "data"}"\n\n'
        f'[web]\nhost = "127.0.0.1"\nport = {free_port()}\n'
    )
    return config


@pytest.mark.slow
@pytest.mark.timeout(BUILD_TIMEOUT)
def test_the_installed_command_runs_the_installed_code(installed: Venv) -> None:
    sample = installed.package_file("monitor/demo/sample.pcap")
    assert sample.is_relative_to(installed.path), sample
    assert sample.is_file()


@pytest.mark.slow
@pytest.mark.timeout(BUILD_TIMEOUT)
def test_the_installed_wheel_migrates_a_fresh_database(installed: Venv, tmp_path: Path) -> None:
    config = demo_config(tmp_path)
    result = installed.hallmonitor("--config", str(config), "db", "upgrade")
    assert result.returncode == 0, result.stderr
    with sqlite3.connect(tmp_path / "data" / "hallmonitor.db") as database:
        (revision,) = database.execute("SELECT version_num FROM alembic_version").fetchone()
    latest = max((ROOT / "migrations" / "versions").glob("2*.py")).name  # named by date
    assert re.search(rf"-{revision}_", latest), (revision, latest)


@pytest.mark.slow
@pytest.mark.timeout(BUILD_TIMEOUT)
def test_the_installed_wheel_checks_every_platform_list(installed: Venv, tmp_path: Path) -> None:
    result = installed.hallmonitor("--config", str(demo_config(tmp_path)), "lists", "check")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{len(shipped_platform_lists())} platform lists, ")
    assert result.stdout.rstrip().endswith("no problems")


@pytest.mark.slow
@pytest.mark.timeout(BUILD_TIMEOUT)
def test_the_installed_wheel_records_incidents_from_its_demo_sample(
    installed: Venv, tmp_path: Path
) -> None:
    config = demo_config(tmp_path)
    assert installed.hallmonitor("--config", str(config), "db", "upgrade").returncode == 0
    sample = installed.package_file("monitor/demo/sample.pcap")
    result = installed.hallmonitor("--config", str(config), "scan", "--record", str(sample))
    assert result.returncode == 0, result.stderr
    with sqlite3.connect(tmp_path / "data" / "hallmonitor.db") as database:
        (incidents,) = database.execute("SELECT count(*) FROM incidents").fetchone()
    assert incidents > 0
    assert f"{incidents} incidents" in result.stderr


@pytest.mark.slow
@pytest.mark.timeout(BUILD_TIMEOUT)
def test_the_installed_wheel_serves_the_review_app(installed: Venv, tmp_path: Path) -> None:
    config = demo_config(tmp_path)
    assert installed.hallmonitor("--config", str(config), "db", "upgrade").returncode == 0
    port = int(re.search(r"port = (\d+)", config.read_text())[1])  # type: ignore[index]
    environment = {k: v for k, v in os.environ.items() if not k.startswith("HALLMONITOR_")}
    process = subprocess.Popen(
        [str(installed.path / "bin" / "hallmonitor"), "--config", str(config), "serve"],
        cwd=installed.scratch,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(port, process)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=30) as response:
            assert response.status == 200
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=30) as response:
            assert b"password" in response.read().lower()  # a page from the shipped templates
    finally:
        process.terminate()
        process.communicate(timeout=60)


# --- without a compiler -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def built_without_compiler(tmp_path_factory: pytest.TempPathFactory) -> Built:
    return build_package(
        tmp_path_factory.mktemp("dist-no-cc"),
        CC="/nonexistent/gcc",
        LDSHARED="/nonexistent/gcc -shared",
    )


@pytest.mark.slow
@pytest.mark.timeout(BUILD_TIMEOUT)
def test_without_a_compiler_the_wheel_builds_and_names_each_module_it_left_out(
    built_without_compiler: Built,
) -> None:
    names = wheel_names(built_without_compiler.wheel)
    assert not [name for name in names if name.endswith(".so")]
    for module in COMPILED:
        name = module.replace("/", ".")
        assert f"the compiled module {name} was not built" in built_without_compiler.log, name


@pytest.mark.slow
@pytest.mark.timeout(BUILD_TIMEOUT)
def test_without_a_compiler_the_wheel_installs_and_runs_the_python_code(
    built_without_compiler: Built, tmp_path: Path
) -> None:
    venv = install_wheel(built_without_compiler.wheel, tmp_path)
    python = str(venv.path / "bin" / "python")
    probe = "import importlib.util as u; print(u.find_spec('monitor.compiled.scanloop'))"
    assert venv.run(python, "-c", probe).stdout.strip() == "None"
    sample = venv.package_file("monitor/demo/sample.pcap")
    result = venv.hallmonitor("scan", "--format", "jsonl", str(sample))
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) > 0


# --- the Debian package -----------------------------------------------------------------------


@dataclass(frozen=True)
class Deb:
    path: Path
    tree: Path
    """Its files, unpacked (dpkg-deb -x)."""
    control: str
    build_log: str


@pytest.fixture(scope="module")
def deb(built: Built, tmp_path_factory: pytest.TempPathFactory) -> Deb:
    outdir = tmp_path_factory.mktemp("deb")
    result = subprocess.run(
        [
            str(ROOT / "scripts" / "build-deb"),
            "--wheel",
            str(built.wheel),
            "--deb-version",
            "0.0.1~test",
            "--outdir",
            str(outdir),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=1500,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    path = Path(result.stdout.splitlines()[-1])
    tree = outdir / "tree"
    subprocess.run(["dpkg-deb", "-x", str(path), str(tree)], check=True, timeout=300)
    control = subprocess.run(
        ["dpkg-deb", "--field", str(path)], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    return Deb(path, tree, control, result.stdout + result.stderr)


def field(deb: Deb, name: str) -> str:
    found = re.search(rf"^{name}: (.*)$", deb.control, re.MULTILINE)
    assert found, name
    return found[1]


@pytest.mark.slow
@pytest.mark.timeout(BUILD_TIMEOUT)
def test_the_deb_is_named_for_its_version_and_architecture(deb: Deb) -> None:
    architecture = subprocess.run(
        ["dpkg", "--print-architecture"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert deb.path.name == f"hallmonitor_0.0.1~test_{architecture}.deb"
    assert field(deb, "Package") == "hallmonitor"
    assert field(deb, "Version") == "0.0.1~test"


@pytest.mark.slow
@pytest.mark.timeout(BUILD_TIMEOUT)
def test_the_deb_depends_on_the_python_its_venv_was_made_with(deb: Deb) -> None:
    depends = [word.strip() for word in field(deb, "Depends").split(",")]
    assert {"python3 (>= 3.11)", "python3 (<< 3.12)", "libpcap0.8", "iproute2", "systemd"} <= set(
        depends
    )
    assert "libssl3" in depends  # the compiled QUIC module links libcrypto


@pytest.mark.slow
@pytest.mark.timeout(BUILD_TIMEOUT)
@pytest.mark.parametrize(
    ("installed_path", "source"),
    [
        ("usr/bin/hallmonitor", "deploy/bin/hallmonitor"),
        ("usr/lib/sysusers.d/hallmonitor.conf", "deploy/sysusers.d/hallmonitor.conf"),
        ("usr/lib/tmpfiles.d/hallmonitor.conf", "deploy/tmpfiles.d/hallmonitor.conf"),
        ("usr/share/doc/hallmonitor/README.md", "deploy/README.md"),
        ("usr/share/doc/hallmonitor/config.example.toml", "deploy/config.example.toml"),
        ("usr/share/doc/hallmonitor/env.example", "deploy/env.example"),
        ("usr/share/doc/hallmonitor/nginx/hallmonitor.conf", "deploy/nginx/hallmonitor.conf"),
        *(
            (f"lib/systemd/system/{unit.name}", f"deploy/systemd/{unit.name}")
            for unit in sorted((ROOT / "deploy" / "systemd").iterdir())
        ),
    ],
)
def test_the_deb_installs_the_deploy_files(deb: Deb, installed_path: str, source: str) -> None:
    assert (deb.tree / installed_path).read_text() == (ROOT / source).read_text()


@pytest.mark.slow
@pytest.mark.timeout(BUILD_TIMEOUT)
def test_every_units_documentation_is_in_the_deb(deb: Deb) -> None:
    for unit in (ROOT / "deploy" / "systemd").iterdir():
        for line in unit.read_text().splitlines():
            if line.startswith("Documentation=file://"):
                assert (deb.tree / line.removeprefix("Documentation=file:///")).is_file(), unit


@pytest.mark.slow
@pytest.mark.timeout(BUILD_TIMEOUT)
def test_the_debs_venv_names_no_path_of_the_machine_it_was_built_on(deb: Deb) -> None:
    venv = deb.tree / "opt/hallmonitor/.venv"
    shebang = (venv / "bin" / "hallmonitor").read_text().splitlines()[0]
    assert shebang == "#!/opt/hallmonitor/.venv/bin/python"
    assert os.readlink(venv / "bin" / "python3") == "/usr/bin/python3"
    staged = "/root/opt/hallmonitor/.venv"  # scripts/build-deb's staging directory ends so
    found = subprocess.run(
        ["grep", "-rlF", "-e", staged, str(venv)],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert found.stdout == ""
    assert not list(venv.rglob("__pycache__"))  # postinst compiles, where the code runs


@pytest.mark.slow
@pytest.mark.timeout(BUILD_TIMEOUT)
def test_the_debs_venv_holds_the_wheel_with_its_compiled_modules(deb: Deb) -> None:
    """Unpacked elsewhere, its Python (a link to /usr/bin/python3) still finds its packages."""
    python = deb.tree / "opt/hallmonitor/.venv/bin/python"
    probe = (
        "import monitor.compiled.quic, monitor.compiled.scanloop, api.app, sqlalchemy, scapy; "
        "import importlib.metadata as m; print(m.version('hallmonitor'))"
    )
    result = subprocess.run(
        [str(python), "-c", probe],
        capture_output=True,
        text=True,
        cwd=deb.tree,
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("PYTHON")},
            "PYTHONDONTWRITEBYTECODE": "1",  # the unpacked tree stays as packed
        },
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert (
        result.stdout.strip()
        == tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    )


@pytest.mark.slow
@pytest.mark.timeout(BUILD_TIMEOUT)
def test_the_deb_lists_the_checksum_of_every_file(deb: Deb) -> None:
    """dpkg --verify (and debsums) compare the installed files with DEBIAN/md5sums."""
    control = subprocess.run(
        ["dpkg-deb", "--ctrl-tarfile", str(deb.path)], capture_output=True, check=True, timeout=60
    )
    with tarfile.open(fileobj=io.BytesIO(control.stdout)) as archive:
        extracted = archive.extractfile("./md5sums")
        assert extracted is not None
        listed = {line.split(maxsplit=1)[1] for line in extracted.read().decode().splitlines()}
    files = {
        str(path.relative_to(deb.tree))
        for path in deb.tree.rglob("*")
        if path.is_file() and not path.is_symlink()
    }
    assert listed == files


@pytest.mark.slow
@pytest.mark.timeout(BUILD_TIMEOUT)
@pytest.mark.parametrize("script", ["postinst", "prerm", "postrm"])
def test_the_debs_maintainer_scripts_are_posix_shell(deb: Deb, script: str) -> None:
    result = subprocess.run(
        ["dpkg-deb", "--ctrl-tarfile", str(deb.path)], capture_output=True, check=True, timeout=60
    )
    target = deb.tree.parent / f"control-{script}"
    with tarfile.open(fileobj=io.BytesIO(result.stdout)) as control:
        member = control.getmember(f"./{script}")
        assert member.mode & 0o111
        extracted = control.extractfile(member)
        assert extracted is not None
        target.write_bytes(extracted.read())
    assert target.read_text() == (ROOT / "deploy" / "debian" / script).read_text()
    assert subprocess.run(["sh", "-n", str(target)], check=False, timeout=60).returncode == 0


# --- the scripts' arguments -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (
            ["scripts/build-deb", "--deb-version", "v1"],
            "build-deb: --deb-version v1 is not a Debian version",
        ),
        (["scripts/build-deb", "--frobnicate"], "build-deb: unknown argument: --frobnicate"),
        (
            ["scripts/build-package", "--frobnicate"],
            "build-package: unknown argument: --frobnicate",
        ),
        (
            ["deploy/make-venv", "/opt/x/.venv", "missing.whl", "requirements.lock"],
            "make-venv: no wheel at missing.whl",
        ),
        (
            ["deploy/make-venv", "relative/.venv", "missing.whl", "requirements.lock"],
            "make-venv: VENV must be an absolute path: relative/.venv",
        ),
    ],
)
def test_the_build_scripts_name_a_bad_argument(command: list[str], message: str) -> None:
    result = subprocess.run(
        [str(ROOT / command[0]), *command[1:]],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == message
