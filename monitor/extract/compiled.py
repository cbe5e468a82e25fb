"""Choose between the Python readers and their compiled twins (setup.py builds the twins).

A twin keeps every rule of its Python module and is tested on the same tests; it only costs
less per packet. The extractor takes the twins when they were built, so a machine without a C
compiler runs the Python code, and a test can ask for either (``compiled=False`` or ``True``).
"""

from __future__ import annotations

import importlib
from types import ModuleType

from monitor.extract import quic, reassembly, tls


def quic_tracker(compiled: bool | None = None) -> quic.InitialTracker:
    """A new QUIC Initial tracker: compiled when built (``None``), compiled or ImportError
    (``True``), or the Python one (``False``)."""
    twin = _twin("monitor.extract._quic", compiled)
    if twin is None:
        return quic.QuicInitialTracker()
    tracker: quic.InitialTracker = twin.QuicInitialTracker()
    return tracker


def stream_reassembler(compiled: bool | None = None) -> reassembly.Reassembler:
    """A new TCP stream reassembler with the default bounds (``compiled`` as for
    ``quic_tracker``)."""
    twin = _twin("monitor.extract._reassembly", compiled)
    if twin is None:
        return reassembly.StreamReassembler()
    reassembler: reassembly.Reassembler = twin.StreamReassembler()
    return reassembler


def hello_readers(compiled: bool | None = None) -> tls.HelloReaders:
    """The ClientHello readers: ``monitor.extract.tls`` or its compiled twin (``compiled`` as
    for ``quic_tracker``)."""
    twin = _twin("monitor.extract._tls", compiled)
    readers: tls.HelloReaders = tls if twin is None else twin
    return readers


def _twin(name: str, compiled: bool | None) -> ModuleType | None:
    if compiled is False:
        return None
    try:
        return importlib.import_module(name)
    except ImportError:
        if compiled:
            raise ImportError(f"{name} was not built (see setup.py)") from None
        return None
