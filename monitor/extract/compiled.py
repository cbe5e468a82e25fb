"""Choose between the Python code and its compiled twins (``monitor.compiled``, setup.py).

A twin keeps every rule of its Python original and is tested against it; it only costs less
per packet. ``ORIGINALS`` names the original of every public function and class of the
compiled modules (tests/monitor/compiled/ check it both ways, and that each pair agrees on the
golden captures). The extractor takes the twins when they were built, and ``hallmonitor
scan`` the compiled record loop, so a machine without a C compiler runs the Python code; a
test can ask for either (``compiled=False`` or ``True``).

Which code runs is never a secret: ``log_twins`` says it at the start of ``capture``, ``up``
and ``scan`` (INFO for a twin that was not built here; WARNING, with the import error, for one
that is there but cannot be loaded, or was built before its source changed), and
``hallmonitor doctor`` lists them (check ``compiled``).
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from monitor.extract import quic, reassembly, tls

logger = logging.getLogger(__name__)

COMPILED_MODULES = {
    "monitor.compiled.scanloop": "monitor.scan",
    "monitor.compiled.quic": "monitor.extract.quic",
    "monitor.compiled.reassembly": "monitor.extract.reassembly",
    "monitor.compiled.tls": "monitor.extract.tls",
}
"""Every compiled module (built from the ``.pyx`` of the same name), and the Python module whose
code runs in its place when it cannot be loaded (for the record loop: the general path of
``hallmonitor scan``)."""

ORIGINALS = {
    "monitor.compiled.scanloop.walk_records": "monitor.scan.write_observations",
    "monitor.compiled.scanloop.walk_frames": "monitor.scan.write_observations",
    "monitor.compiled.scanloop.observe_frames": "monitor.fastscan.general_observations",
    "monitor.compiled.scanloop.common_dns_entry": "monitor.fastscan.dns_entry",
    "monitor.compiled.scanloop.ipv6_text": "monitor.decode.addresses.render_ipv6",
    "monitor.compiled.scanloop.merge_lines": "heapq.merge",
    "monitor.compiled.quic.QuicInitialTracker": "monitor.extract.quic.QuicInitialTracker",
    "monitor.compiled.reassembly.StreamReassembler": (
        "monitor.extract.reassembly.StreamReassembler"
    ),
    "monitor.compiled.reassembly.Reassembler": "monitor.extract.reassembly.Reassembler",
    "monitor.compiled.reassembly.piece_start": "monitor.extract.reassembly.piece_start",
    "monitor.compiled.tls.find_client_hello_record": "monitor.extract.tls.find_client_hello_record",
    "monitor.compiled.tls.parse_client_hello_message": (
        "monitor.extract.tls.parse_client_hello_message"
    ),
    "monitor.compiled.tls.parse_client_hello_records": (
        "monitor.extract.tls.parse_client_hello_records"
    ),
}
"""Every public function and class of the compiled modules, and its Python original: the code
that gives the same results (and runs when the compiled module is not loaded)."""
PURE_PYTHON = {"monitor.compiled.reassembly": "monitor.extract.reassembly"}
"""Compiled modules built from their Python original's own source (Cython's pure-Python mode,
typed by the ``.pxd`` of the same name in ``monitor/compiled/``): one source, nothing to keep
in step. The others are hand-written ``.pyx`` twins, kept where they pay (see each one)."""
NOT_BUILT = "not compiled here"
REBUILD = "reinstall Hall Monitor (scripts/setup in a source tree) to rebuild it"


@dataclass(frozen=True, slots=True)
class Twin:
    """A compiled module, loaded or not, and why not."""

    name: str
    module: ModuleType | None
    problem: str | None = None
    """``NOT_BUILT``, or the import error's text when the module is there but cannot be
    loaded; None when it loaded."""
    stale: bool = False
    """It loaded, but its ``.pyx`` source beside it is newer: built before the source changed."""

    @property
    def python(self) -> str:
        """The Python module that runs instead when this one is not loaded."""
        return COMPILED_MODULES[self.name]


@functools.cache
def load_twin(name: str) -> Twin:
    """The compiled module ``name``, imported once per process (a failure too)."""
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as e:
        if e.name == name:  # the module itself is absent, not something it imports
            return Twin(name, None, NOT_BUILT)
        return Twin(name, None, f"{type(e).__name__}: {e}")
    except ImportError as e:
        return Twin(name, None, f"{type(e).__name__}: {e}")
    return Twin(name, module, stale=_older_than_source(module))


def sources(name: str, built: Path) -> list[Path]:
    """The files the compiled module ``name`` (built at ``built``) is made from, in a source
    tree: the ``.pyx`` beside it, or the ``.pxd`` beside it and its Python original."""
    stem = name.rpartition(".")[2]
    if name not in PURE_PYTHON:
        return [built.with_name(stem + ".pyx")]
    spec = importlib.util.find_spec(PURE_PYTHON[name])
    python = [Path(spec.origin)] if spec is not None and spec.origin else []
    return [built.with_name(stem + ".pxd"), *python]


def _older_than_source(module: ModuleType) -> bool:
    """Whether a source of the built module (in a source tree) changed after it."""
    built = Path(getattr(module, "__file__", None) or "")
    if built.suffix != ".so":
        return False
    try:
        made = built.stat().st_mtime
        return any(source.stat().st_mtime > made for source in sources(module.__name__, built))
    except OSError:  # an installed package ships no source
        return False


def twins() -> list[Twin]:
    """Every compiled module, in ``COMPILED_MODULES`` order."""
    return [load_twin(name) for name in COMPILED_MODULES]


def twin_report(found: list[Twin]) -> list[tuple[int, str]]:
    """The log lines (level, text) saying which code runs: nothing when every twin loaded."""
    lines: list[tuple[int, str]] = []
    absent = [twin.python for twin in found if twin.problem == NOT_BUILT]
    if absent:
        lines.append(
            (
                logging.INFO,
                f"running the Python code of {', '.join(absent)} ({NOT_BUILT}: there was no C "
                "compiler when Hall Monitor was installed)",
            )
        )
    for twin in found:
        if twin.problem not in (None, NOT_BUILT):
            lines.append(
                (
                    logging.WARNING,
                    f"{twin.name} is there but cannot be loaded, so the Python code of "
                    f"{twin.python} runs instead: {twin.problem}; {REBUILD}",
                )
            )
        elif twin.stale:
            lines.append(
                (
                    logging.WARNING,
                    f"{twin.name} was built before its source changed and may not follow it; "
                    f"{REBUILD}",
                )
            )
    return lines


def log_twins() -> None:
    """Say which code runs (at the start of ``capture``, ``up`` and ``scan``)."""
    for level, text in twin_report(twins()):
        logger.log(level, "%s", text)


def quic_tracker(compiled: bool | None = None) -> quic.InitialTracker:
    """A new QUIC Initial tracker: compiled when built (``None``), compiled or ImportError
    (``True``), or the Python one (``False``)."""
    twin = compiled_module("monitor.compiled.quic", compiled)
    if twin is None:
        return quic.QuicInitialTracker()
    tracker: quic.InitialTracker = twin.QuicInitialTracker()
    return tracker


def stream_reassembler(compiled: bool | None = None) -> reassembly.Reassembler:
    """A new TCP stream reassembler with the default bounds (``compiled`` as for
    ``quic_tracker``)."""
    twin = compiled_module("monitor.compiled.reassembly", compiled)
    if twin is None:
        return reassembly.StreamReassembler()
    reassembler: reassembly.Reassembler = twin.StreamReassembler()
    return reassembler


def hello_readers(compiled: bool | None = None) -> tls.HelloReaders:
    """The ClientHello readers: ``monitor.extract.tls`` or its compiled twin (``compiled`` as
    for ``quic_tracker``)."""
    twin = compiled_module("monitor.compiled.tls", compiled)
    readers: tls.HelloReaders = tls if twin is None else twin
    return readers


def compiled_module(name: str, compiled: bool | None = None) -> ModuleType | None:
    """The compiled module ``name`` when it loaded (``compiled`` None), always (True: an
    ImportError saying why it is not there), or never (False)."""
    if compiled is False:
        return None
    twin = load_twin(name)
    if twin.module is None and compiled:
        if twin.problem == NOT_BUILT:
            raise ImportError(f"{name} was not built (see setup.py)")
        raise ImportError(f"{name} cannot be loaded: {twin.problem}")
    return twin.module
