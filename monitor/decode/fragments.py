"""IP fragment reassembly: a table of datagrams waiting for their fragments, bounded.

Bounded in buffers, bytes and time, time being the frames' own timestamps: this module never
reads the clock. The bounds are checked by ``monitor.decode.decoder.Decoder``, which owns the table.
"""

from __future__ import annotations

from operator import itemgetter

__all__ = ["MAX_DATAGRAM_BYTES", "FragmentTable"]

MAX_DATAGRAM_BYTES = 65535
"""The most bytes a reassembled IP datagram may hold."""


class _FragmentBuffer:
    """The pieces of one IP datagram so far: sorted, non-overlapping (start, end, bytes)."""

    __slots__ = ("first_ts", "pieces", "received", "total", "protocol")

    def __init__(self, first_ts: float) -> None:
        self.first_ts = first_ts
        self.pieces: list[tuple[int, int, bytes]] = []
        self.received = 0
        self.total = -1
        """The datagram's length, known once the last fragment (more-fragments clear) arrived."""
        self.protocol = -1
        """The transport protocol, known once the first fragment (offset 0) arrived."""

    def add(self, start: int, chunk: bytes, more: bool) -> None:
        """Add one fragment; bytes already held win over new ones (first arrival wins)."""
        end = start + len(chunk)
        if end > MAX_DATAGRAM_BYTES:
            raise ValueError(f"fragment: ends at byte {end} > {MAX_DATAGRAM_BYTES}")
        if more:
            if len(chunk) % 8:
                raise ValueError(
                    f"fragment: {len(chunk)} bytes, not a multiple of 8, before the last"
                )
            if 0 <= self.total < end:
                raise ValueError(f"fragment: ends at byte {end} after the last one ({self.total})")
        else:
            if self.total >= 0 and self.total != end:
                raise ValueError(f"fragment: second last fragment ends at {end}, not {self.total}")
            if self.pieces and self.pieces[-1][1] > end:
                raise ValueError(f"fragment: last one ends at {end} before held bytes do")
            self.total = end
        new: list[tuple[int, int, bytes]] = []
        position = start
        for piece_start, piece_end, _ in self.pieces:
            if piece_end <= position:
                continue
            if piece_start >= end:
                break
            if piece_start > position:
                new.append((position, piece_start, chunk[position - start : piece_start - start]))
            position = piece_end
            if position >= end:
                break
        if position < end:
            new.append((position, end, chunk[position - start :]))
        if new:
            self.pieces += new
            self.pieces.sort(key=_piece_start)
            self.received += sum(piece_end - piece_start for piece_start, piece_end, _ in new)

    def is_complete(self) -> bool:
        return self.received == self.total and self.protocol >= 0


_piece_start = itemgetter(0)


class FragmentTable:
    """Datagrams waiting for more fragments, oldest first, at most ``max_buffers`` of them."""

    __slots__ = ("_buffers", "_max_buffers", "_timeout_s")

    def __init__(self, max_buffers: int, timeout_s: float) -> None:
        self._buffers: dict[tuple[object, ...], _FragmentBuffer] = {}
        self._max_buffers = max_buffers
        self._timeout_s = timeout_s

    def __len__(self) -> int:
        return len(self._buffers)

    def reassemble(
        self,
        ts: float,
        key: tuple[object, ...],
        start: int,
        chunk: bytes,
        more: bool,
        protocol: int,
    ) -> tuple[int, bytes] | None:
        """Add a fragment; the (protocol, payload) of the datagram once it is complete."""
        buffers = self._buffers
        horizon = ts - self._timeout_s
        while buffers:  # time out the oldest buffers (insertion order ~ capture order)
            oldest = next(iter(buffers))
            if buffers[oldest].first_ts >= horizon:
                break
            del buffers[oldest]
        buffer = buffers.get(key)
        if buffer is not None and buffer.first_ts < horizon:  # old, behind a newer one
            del buffers[key]
            buffer = None
        if buffer is None:
            if len(buffers) >= self._max_buffers:
                del buffers[next(iter(buffers))]
            buffer = buffers[key] = _FragmentBuffer(ts)
        try:
            buffer.add(start, chunk, more)
        except ValueError:
            del buffers[key]
            raise
        if start == 0 and buffer.protocol < 0:
            buffer.protocol = protocol
        if not buffer.is_complete():
            return None
        del buffers[key]
        return buffer.protocol, b"".join([piece for _, _, piece in buffer.pieces])
