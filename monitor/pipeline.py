"""Frames in, observations out: the decode and extract stages behind a per-frame guard.

``Pipeline`` is only this first part of what DESIGN.md calls the pipeline (capture, decode,
extract, classify, policy, sessions, engine, store): ``hallmonitor scan`` runs it alone, and
``monitor.runner`` hands what it returns to the rest (classification onwards).

The guard is the fix for a dissector that silently turns errors into "nothing here": a
``ValueError`` (malformed input) is counted per stage; any other exception is a bug, counted
and logged at most once a minute per stage, and capture goes on. Tests build the pipeline with
``strict=True`` so that bugs fail them instead.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator

from monitor.decode.decoder import Decoder
from monitor.decode.fastpath import SKIPPED
from monitor.errors import UnsupportedLinkType
from monitor.extract import dns
from monitor.extract.extractor import Extractor
from monitor.values import Frame, Observation, Packet, StageCounters

logger = logging.getLogger(__name__)

ERROR_LOG_INTERVAL_S = 60.0
"""At most one traceback per stage in this many seconds, so a bug cannot flood the journal."""


class Pipeline:
    """One capture's decode and extract stages, their state and the counters the summary
    reports (not the stages after extraction: see the module docstring).

    ``compiled`` chooses the extractor's readers, as for ``Extractor``."""

    def __init__(
        self,
        *,
        strict: bool = False,
        dns_ports: Iterable[int] = dns.DNS_PORTS,
        decoder: Decoder | None = None,
        compiled: bool | None = None,
    ) -> None:
        self.strict = strict
        self.counters = StageCounters()
        self.decoder = decoder or Decoder()
        self.extractor = Extractor(self.counters, dns_ports=dns_ports, compiled=compiled)
        self._last_error_log: dict[str, float] = {}

    def process(self, frame: Frame) -> list[Observation]:
        """The observations one frame completes; never raises unless ``strict``."""
        counters = self.counters
        counters.frames += 1
        try:
            packet = self.decoder.decode(frame)
        except UnsupportedLinkType as e:
            linktypes = counters.unsupported_linktypes
            linktypes[e.linktype] = linktypes.get(e.linktype, 0) + 1
            return []
        except ValueError:
            self._count(counters.malformed, "decode")
            return []
        except Exception as e:
            self._bug("decode", e)
            return []
        if packet is None:
            return []
        return self.process_packet(packet)

    def process_shared(
        self, frame: Frame, owns: Callable[[Packet], bool], counted: bool
    ) -> list[Observation]:
        """``process`` in one of several processes that share a capture by flow
        (``monitor.scanshare``, through the compiled loop). Every process decodes the frame, so that the decoder's state
        (fragments being reassembled) is the same in all; the one where ``counted`` counts
        what decoding found; only the process that ``owns`` the packet extracts from it, and
        the others account for its time (``Extractor.advance``), as one process would."""
        counters = self.counters
        if counted:
            counters.frames += 1
        try:
            packet = self.decoder.decode(frame)
        except UnsupportedLinkType as e:
            if counted:
                linktypes = counters.unsupported_linktypes
                linktypes[e.linktype] = linktypes.get(e.linktype, 0) + 1
            return []
        except ValueError:
            if counted:
                self._count(counters.malformed, "decode")
            return []
        except Exception as e:
            if counted:
                self._bug("decode", e)
            return []
        if packet is None:
            return []
        if owns(packet):
            return self.process_packet(packet)
        self.extractor.advance(packet.ts)
        return []

    def process_packet(self, packet: Packet) -> list[Observation]:
        """The extract half of ``process``, also for a frame its caller decoded and counted
        itself: counts the packet and its observations, never raises
        unless ``strict``."""
        counters = self.counters
        counters.packets += 1
        try:
            observations = self.extractor.feed(packet)
        except ValueError:
            self._count(counters.malformed, "extract")
            return []
        except Exception as e:
            self._bug("extract", e)
            return []
        counters.observations += len(observations)
        return observations

    def count_bug(self, stage: str, error: Exception) -> None:
        """Count (and log, rate-limited) an unexpected error in ``stage``; raise if ``strict``."""
        self._bug(stage, error)

    def run(self, frames: Iterable[Frame]) -> Iterator[Observation]:
        """Process a whole source, yielding observations as they complete."""
        process = self.process
        for frame in frames:
            observations = process(frame)
            if observations:
                yield from observations

    def batches(self, frames: Iterable[Frame]) -> Iterator[list[Observation]]:
        """``process`` over a whole source: each frame's observations, when it has any.

        The same guard as ``process``, in one loop with its lookups hoisted (the scan's hot
        path). ``counters.frames``, ``packets`` and ``observations`` are added once, when the
        iteration ends (or is closed); the other counters move as they happen.
        """
        counters = self.counters
        malformed = counters.malformed
        decoder = self.decoder
        decode = decoder.decode
        decode_skipping = decoder.decode_skipping
        extractor = self.extractor
        feed = extractor.feed
        advance = extractor.advance
        # Segments of TCP flows the extractor ignores are dropped by the decoder, uncopied;
        # not by a decoder subclass that replaces ``decode`` (tests use such decoders).
        skip_tcp = extractor.streams.is_ignored if type(decoder).decode is Decoder.decode else None
        seen = packets = observed = 0
        try:
            for frame in frames:
                seen += 1
                try:
                    packet = decode(frame) if skip_tcp is None else decode_skipping(frame, skip_tcp)
                except UnsupportedLinkType as e:
                    linktypes = counters.unsupported_linktypes
                    linktypes[e.linktype] = linktypes.get(e.linktype, 0) + 1
                    continue
                except ValueError:
                    malformed["decode"] = malformed.get("decode", 0) + 1
                    continue
                except Exception as e:
                    self._bug("decode", e)
                    continue
                if packet is None:
                    continue
                packets += 1
                try:
                    if packet is SKIPPED:
                        advance(frame.ts)
                        continue
                    observations = feed(packet)
                except ValueError:
                    malformed["extract"] = malformed.get("extract", 0) + 1
                    continue
                except Exception as e:
                    self._bug("extract", e)
                    continue
                if observations:
                    observed += len(observations)
                    yield observations
        finally:
            counters.frames += seen
            counters.packets += packets
            counters.observations += observed

    @staticmethod
    def _count(table: dict[str, int], stage: str) -> None:
        table[stage] = table.get(stage, 0) + 1

    def _bug(self, stage: str, error: Exception) -> None:
        if self.strict:
            raise error
        self._count(self.counters.errors, stage)
        now = time.monotonic()
        if now - self._last_error_log.get(stage, -ERROR_LOG_INTERVAL_S) >= ERROR_LOG_INTERVAL_S:
            self._last_error_log[stage] = now
            logger.error(
                "unexpected error in the %s stage; the frame was skipped", stage, exc_info=error
            )
