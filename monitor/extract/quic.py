"""QUIC Initial packets -> the client's TLS ClientHello, for its server name.

QUIC encrypts even its first packets, but with keys anyone can derive: the client's Initial
packets are protected with keys computed from a version-specific public salt and the
Destination Connection ID the client chose (RFC 9001 section 5.2, RFC 9369 section 3.3). So a
passive monitor can remove header protection, decrypt the payload and read the CRYPTO frames,
which carry the TLS ClientHello with its SNI. The ClientHello may span several CRYPTO frames
and several Initial packets, in any order, so the tracker keeps a small per-connection state:

* the connection is keyed by its UDP 5-tuple (direction normalised); the client is the side
  whose Initial first decrypted with client keys;
* Initial keys stay derived from the client's first DCID for the whole connection, even once
  the client switches to the server-chosen DCID (the Zeek "decrypt-fail" trace);
* after a server Retry, the keys derive from the Retry's Source CID, which the client then uses
  as its DCID; a missed Retry is covered by trying the packet's own DCID when the kept keys fail.

Version numbers and salts follow RFC 9000/9001/9369 and, for drafts, mvfst and Google's T05x,
the tables in Wireshark's packet-quic.c and nDPI's quic.c. Google QUIC with its own crypto
(Q046 and older, Q050) carries no TLS ClientHello and is not handled here.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from hashlib import sha256
from typing import TYPE_CHECKING, NamedTuple, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, CipherContext, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from monitor.values import FlowKey

if TYPE_CHECKING:
    from hashlib import _Hash

__all__ = ["InitialTracker", "QuicClientHello", "QuicInitialTracker", "looks_like_quic_long_header"]


# The errors this module raises, as templates (``str.format``): the compiled twin
# (``monitor.compiled.quic``) raises the same ones from here, so they are written once.
RETRY_WITHOUT_SCID = "Retry: empty Source Connection ID"
ACK_RANGES_TOO_MANY = "ACK range count {count} > {left} bytes left"
CRYPTO_NOT_CLIENT_HELLO = "CRYPTO data starts with handshake type {handshake_type}"
CRYPTO_TOO_LONG = "CRYPTO length {length} > {left} bytes left"
DCID_TOO_LONG = "DCID length {dcid_len} > 20"
DCID_PAST_DATAGRAM = "DCID runs past the datagram ({left} bytes)"
LENGTH_TOO_SHORT = "Length {length} < 20 (packet number and sample)"
LENGTH_TOO_LONG = "Length {length} > {left} bytes left"
SCID_TOO_LONG = "SCID length {scid_len} > 20"
SCID_PAST_DATAGRAM = "SCID runs past the datagram ({left} bytes)"
LONG_HEADER_SHORT = "long header needs 7 bytes, {left} left"
PACKET_ERROR = "packet #{number}: {e}"
VARINT_MISSING = "{what}: missing at offset {pos}"
VARINT_PAST_END = "{what}: {size}-byte varint at offset {pos} runs past {end}"


@dataclass(frozen=True, slots=True)
class QuicClientHello:
    """The client's complete ClientHello, taken from its Initial packets' CRYPTO frames."""

    version: int
    """The QUIC version of the Initial packets (``0x00000001`` for v1)."""
    original_dcid: bytes
    """The DCID the Initial keys derive from: the client's first DCID, or a Retry's SCID."""
    client_hello: bytes
    """The TLS handshake message: type 1, 3-byte length, body."""


class InitialTracker(Protocol):
    """What the extractor needs of a tracker: ``QuicInitialTracker`` below, or its compiled
    twin (``monitor/compiled/quic.pyx``)."""

    decrypt_failures: int
    retries: int
    crypto_overflows: int
    evictions: int

    def __len__(self) -> int: ...
    def feed(self, flow: FlowKey, ts: float, datagram: bytes) -> QuicClientHello | None: ...
    def expire(self, now: float) -> int: ...


class _Version(NamedTuple):
    """What differs between QUIC versions for reading a client's Initial packets."""

    salt: bytes
    labels: tuple[bytes, bytes, bytes]
    """The HKDF-Expand-Label ``info`` bytes for the key, IV and header-protection key."""
    initial_type: int
    """The long-header packet type bits (``(first byte >> 4) & 3``) of an Initial packet."""
    retry_type: int
    crypto_frame: int
    """The frame type of CRYPTO frames (0x06; Google's T05x uses 0x08)."""


def _info(label: bytes, length: int) -> bytes:
    # HkdfLabel (RFC 8446 section 7.1): uint16 length, opaque label<7..255>, opaque context<0..255>.
    full = b"tls13 " + label
    return length.to_bytes(2, "big") + bytes([len(full)]) + full + b"\x00"


_V1_LABELS = (_info(b"quic key", 16), _info(b"quic iv", 12), _info(b"quic hp", 16))
_V2_LABELS = (_info(b"quicv2 key", 16), _info(b"quicv2 iv", 12), _info(b"quicv2 hp", 16))
CLIENT_IN = _info(b"client in", 32)

_SALT_DRAFT22 = bytes.fromhex("7fbcdb0e7c66bbe9193a96cd21519ebd7a02644a")
_SALT_DRAFT23 = bytes.fromhex("c3eef712c72ebb5a11a7d2432bb46365bef9f502")
_SALT_DRAFT29 = bytes.fromhex("afbfec289993d24c9e9786f19c6111e04390a899")
_SALT_V1 = bytes.fromhex("38762cf7f55934b34d179ae6a4c80cadccbb7f0a")
_SALT_V2 = bytes.fromhex("0dede3def700a6db819381be6e269dcbf9bd2ed9")
_SALT_T050 = bytes.fromhex("7ff579e5acd072915580304c43a2367c60488310")
_SALT_T051 = bytes.fromhex("7a4edef4e7ccee5fa4506c19124fc8ccda6e033d")

QUIC_V1 = 0x00000001
QUIC_V2 = 0x6B3343CF


def _v1_like(salt: bytes, crypto_frame: int = 0x06) -> _Version:
    return _Version(salt, _V1_LABELS, initial_type=0, retry_type=3, crypto_frame=crypto_frame)


VERSIONS: dict[int, _Version] = {
    QUIC_V1: _v1_like(_SALT_V1),
    # RFC 9369 section 3.2: v2 renumbers the long-header types (Initial 0b01, Retry 0b00).
    QUIC_V2: _Version(_SALT_V2, _V2_LABELS, initial_type=1, retry_type=0, crypto_frame=0x06),
    # Facebook mvfst: 0xfaceb001 is draft-22; 0xfaceb002 and 0xfaceb00e are draft-27, which
    # uses the draft-23 salt (Wireshark's quic_draft_version(), nDPI's get_u8_quic_ver()).
    0xFACEB001: _v1_like(_SALT_DRAFT22),
    0xFACEB002: _v1_like(_SALT_DRAFT23),
    0xFACEB00E: _v1_like(_SALT_DRAFT23),
    # Google QUIC with TLS 1.3: IETF long header and packet protection, own salts, and the
    # CRYPTO frame is frame type 0x08 (nDPI's get_crypto_data()).
    0x54303530: _v1_like(_SALT_T050, crypto_frame=0x08),
    0x54303531: _v1_like(_SALT_T051, crypto_frame=0x08),
}


def _draft_salt(draft: int) -> bytes:
    if draft <= 22:
        return _SALT_DRAFT22
    if draft <= 28:
        return _SALT_DRAFT23
    return _SALT_DRAFT29 if draft <= 32 else _SALT_V1


# IETF drafts 21-34 (0xff0000NN): drafts 33 and 34 already use the v1 salt.
VERSIONS.update({0xFF000000 | draft: _v1_like(_draft_salt(draft)) for draft in range(21, 35)})

# Versions 0x?a?a?a?a are reserved to make servers answer with Version Negotiation (RFC 9000
# section 15), so their Initial keys are the client's choice. The QUIC interop runner's clients
# (the ndpi-quic-interop-v trace) use the draft-29 salt, which tshark 4.0 also tries.
GREASE = _v1_like(_SALT_DRAFT29)


GREASE_MASK, GREASE_PATTERN = 0x0F0F0F0F, 0x0A0A0A0A
"""A version whose every byte ends in 0xA is reserved to force version negotiation (RFC 9000
15): read as ``GREASE``."""


def _version_params(version: int) -> _Version | None:
    params = VERSIONS.get(version)
    if params is None and version & GREASE_MASK == GREASE_PATTERN:
        return GREASE
    return params


LONG_HEADER_BITS = 0xC0
"""The header form and fixed bits of a first byte, both set in a long header (RFC 9000 17.2)."""


def looks_like_quic_long_header(datagram: bytes) -> bool:
    """Cheap test: long header with the fixed bit, and a known or plausible QUIC version."""
    if len(datagram) < 7 or datagram[0] & LONG_HEADER_BITS != LONG_HEADER_BITS:
        return False
    version = int.from_bytes(datagram[1:5], "big")
    return (
        version in VERSIONS
        or version == 0
        or version & GREASE_MASK == GREASE_PATTERN
        or version >> 8 in (0xFF0000, 0xFACEB0)  # IETF drafts, Facebook mvfst
        or version >> 16 in (0x5130, 0x5430)  # Google "Q0xx" and "T0xx"
    )


class _Keys:
    """Client Initial keys for one DCID: the AEAD, its IV as an integer, the HP cipher."""

    __slots__ = ("aead", "hp", "iv")

    def __init__(self, version: _Version, dcid: bytes) -> None:
        salt_inner, salt_outer = _salt_pads(version.salt)
        inner = salt_inner.copy()
        inner.update(dcid)
        outer = salt_outer.copy()
        outer.update(inner.digest())
        initial_secret = outer.digest()  # HKDF-Extract(salt, DCID)
        secret = _expand(initial_secret, CLIENT_IN, 32)
        # The key, IV and HP key expand the same secret: its HMAC pads are hashed once.
        inner, outer = _hmac_pads(secret)
        key_info, iv_info, hp_info = version.labels
        self.aead = AESGCM(_expand_with(inner, outer, key_info, 16))
        self.iv = int.from_bytes(_expand_with(inner, outer, iv_info, 12), "big")
        hp_key = _expand_with(inner, outer, hp_info, 16)
        self.hp: CipherContext = Cipher(algorithms.AES(hp_key), modes.ECB()).encryptor()


# HMAC-SHA256 (RFC 2104) spelled out, because a QUIC connection needs five HMACs over three
# keys: hashing each key's padded blocks once and copying the hash state halves the cost of
# ``hmac.digest`` per connection. The tests check the keys against RFC 9001/9369 appendix A.
_IPAD = bytes(byte ^ 0x36 for byte in range(256))
_OPAD = bytes(byte ^ 0x5C for byte in range(256))
_SHA256_BLOCK = 64

_Pads = tuple["_Hash", "_Hash"]


def _hmac_pads(key: bytes) -> _Pads:
    """SHA-256 states after the HMAC inner and outer key blocks (``key`` <= 64 bytes)."""
    block = key.ljust(_SHA256_BLOCK, b"\x00")
    return sha256(block.translate(_IPAD)), sha256(block.translate(_OPAD))


_salt_pad_cache: dict[bytes, _Pads] = {}


def _salt_pads(salt: bytes) -> _Pads:
    """``_hmac_pads`` of a version's salt (a handful of constants), remembered."""
    pads = _salt_pad_cache.get(salt)
    if pads is None:
        pads = _salt_pad_cache[salt] = _hmac_pads(salt)
    return pads


def _expand_with(inner_pad: _Hash, outer_pad: _Hash, info: bytes, length: int) -> bytes:
    # HKDF-Expand (RFC 5869) for outputs up to one SHA-256 block, which is all QUIC needs here.
    inner = inner_pad.copy()
    inner.update(info)
    inner.update(b"\x01")
    outer = outer_pad.copy()
    outer.update(inner.digest())
    return outer.digest()[:length]


def _expand(secret: bytes, info: bytes, length: int) -> bytes:
    # ``_expand_with`` for a secret expanded once.
    return hmac.digest(secret, info + b"\x01", sha256)[:length]


class _Conn:
    """One QUIC connection's Initial state, from the client's side."""

    __slots__ = (
        "client",
        "dcid",
        "done",
        "keys",
        "largest_pn",
        "last_ts",
        "params",
        "ranges",
        "stream",
        "version",
    )

    def __init__(
        self, client: tuple[str, int], version: int, params: _Version, dcid: bytes, keys: _Keys
    ) -> None:
        self.client = client
        self.version = version
        self.params = params
        self.dcid = dcid
        self.keys = keys
        self.largest_pn = -1
        self.last_ts = 0.0
        self.done = False
        self.stream = bytearray()
        self.ranges: list[list[int]] = []
        """Received CRYPTO byte ranges ``[start, end)``, sorted and merged."""

    def restart(self, dcid: bytes, keys: _Keys) -> None:
        """New Initial keys (after a Retry): the CRYPTO stream starts again at offset 0."""
        self.dcid = dcid
        self.keys = keys
        self.largest_pn = -1
        self.stream = bytearray()
        self.ranges = []


class _Initial(NamedTuple):
    """Where one Initial packet sits in its datagram, and what its header says."""

    version: int
    params: _Version
    dcid: bytes
    start: int
    pn_offset: int
    end: int


def _varint(data: bytes, pos: int, end: int, what: str) -> tuple[int, int]:
    """A QUIC variable-length integer (RFC 9000 section 16) at ``pos``; the position after it."""
    if pos >= end:
        raise ValueError(VARINT_MISSING.format(what=what, pos=pos))
    first = data[pos]
    size = 1 << (first >> 6)
    if pos + size > end:
        raise ValueError(VARINT_PAST_END.format(what=what, size=size, pos=pos, end=end))
    if size == 1:
        return first, pos + 1
    value = int.from_bytes(data[pos : pos + size], "big") & ((1 << (8 * size - 2)) - 1)
    return value, pos + size


PN_LIMIT = 1 << 62
"""Packet numbers are below 2^62 (RFC 9000 17.1)."""
DEFAULT_MAX_CONNECTIONS = 16384
DEFAULT_MAX_CRYPTO_BYTES = 65536
DEFAULT_TIMEOUT_S = 30.0
KEY_CACHE_SIZE = 4096
"""Client Initial keys kept by (salt, DCID); a full cache is emptied."""


def _decode_pn(truncated: int, pn_len: int, largest: int) -> int:
    # RFC 9000 appendix A.3: the packet number closest to the next expected one.
    expected = largest + 1
    win = 1 << (8 * pn_len)
    half = win // 2
    candidate = (expected & ~(win - 1)) | truncated
    if candidate <= expected - half and candidate < PN_LIMIT - win:
        return candidate + win
    if candidate > expected + half and candidate >= win:
        return candidate - win
    return candidate


class QuicInitialTracker:
    """Follows QUIC connections until each client's ClientHello is complete.

    Feed it every UDP datagram (any port). It keeps at most ``max_connections`` connections
    (the oldest is dropped first), at most ``max_crypto_bytes`` of CRYPTO data per connection,
    and forgets connections idle for ``timeout_s`` when ``expire()`` is called. The integer
    attributes count what happened, for the health counters.
    """

    def __init__(
        self,
        *,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        max_crypto_bytes: int = DEFAULT_MAX_CRYPTO_BYTES,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self.max_connections = max_connections
        self.max_crypto_bytes = max_crypto_bytes
        self.timeout_s = timeout_s
        self._conns: dict[tuple[tuple[str, int], tuple[str, int]], _Conn] = {}
        self._keys: dict[tuple[bytes, bytes], _Keys] = {}
        self.decrypt_failures = 0
        """Initial packets whose AEAD tag did not verify (wrong keys, garbage, server packets)."""
        self.retries = 0
        """Retry packets that changed a connection's Initial keys."""
        self.crypto_overflows = 0
        """Connections given up because their CRYPTO data passed ``max_crypto_bytes``."""
        self.evictions = 0
        """Connections dropped to stay within ``max_connections``."""

    def __len__(self) -> int:
        return len(self._conns)

    def feed(self, flow: FlowKey, ts: float, datagram: bytes) -> QuicClientHello | None:
        """Read one UDP datagram of ``flow`` (directed: source, then destination).

        Returns the ClientHello once its CRYPTO data is complete, then ignores the connection.
        Returns None for anything else; raises ValueError for a malformed QUIC packet.
        """
        if len(datagram) < 7 or datagram[0] & LONG_HEADER_BITS != LONG_HEADER_BITS:
            return None
        if _version_params(int.from_bytes(datagram[1:5], "big")) is None:
            return None  # version negotiation, Google's own crypto, or not QUIC at all
        src = (flow[0], flow[1])
        dst = (flow[2], flow[3])
        key = (src, dst) if src <= dst else (dst, src)
        conn = self._conns.get(key)
        if conn is not None:
            conn.last_ts = ts
            if conn.done:
                return None
        pos = 0
        end = len(datagram)
        number = 0
        # Coalesced packets (RFC 9000 section 12.2): each long header's Length says where the
        # next starts; a short header (1-RTT) or padding runs to the end of the datagram.
        while pos < end and datagram[pos] & 0xC0 == 0xC0:
            number += 1
            try:
                pos, hello = self._packet(datagram, pos, key, src, dst, ts)
            except ValueError as e:
                raise ValueError(PACKET_ERROR.format(number=number, e=e)) from None
            if hello is not None or pos < 0:
                return hello
        return None

    def _packet(
        self,
        data: bytes,
        pos: int,
        key: tuple[tuple[str, int], tuple[str, int]],
        src: tuple[str, int],
        dst: tuple[str, int],
        ts: float,
    ) -> tuple[int, QuicClientHello | None]:
        """Read the long-header packet at ``pos``; return where the next one starts (-1: stop)."""
        end = len(data)
        if pos + 7 > end:
            raise ValueError(LONG_HEADER_SHORT.format(left=end - pos))
        first = data[pos]
        version = int.from_bytes(data[pos + 1 : pos + 5], "big")
        params = _version_params(version)
        if params is None:
            return -1, None  # version negotiation or a version we cannot read
        dcid_len = data[pos + 5]
        if dcid_len > 20:
            raise ValueError(DCID_TOO_LONG.format(dcid_len=dcid_len))
        at = pos + 6 + dcid_len
        if at >= end:
            raise ValueError(DCID_PAST_DATAGRAM.format(left=end - pos))
        dcid = data[pos + 6 : at]
        scid_len = data[at]
        if scid_len > 20:
            raise ValueError(SCID_TOO_LONG.format(scid_len=scid_len))
        at += 1 + scid_len
        if at > end:
            raise ValueError(SCID_PAST_DATAGRAM.format(left=end - pos))
        ptype = (first >> 4) & 3
        if ptype == params.retry_type:
            self._retry(key, dst, version, params, data[at - scid_len : at], ts)
            return -1, None  # a Retry fills the rest of the datagram
        if ptype == params.initial_type:
            token_len, at = _varint(data, at, end, "token length")
            at += token_len
        length, pn_offset = _varint(data, at, end, "Length")
        packet_end = pn_offset + length
        if packet_end > end:
            raise ValueError(LENGTH_TOO_LONG.format(length=length, left=end - pn_offset))
        if length < 20:
            raise ValueError(LENGTH_TOO_SHORT.format(length=length))
        if ptype != params.initial_type:
            return packet_end, None  # 0-RTT or Handshake: not ours to read
        packet = _Initial(version, params, dcid, pos, pn_offset, packet_end)
        hello = self._initial(data, packet, key, src, ts)
        return packet_end, hello

    def _retry(
        self,
        key: tuple[tuple[str, int], tuple[str, int]],
        client: tuple[str, int],
        version: int,
        params: _Version,
        new_dcid: bytes,
        ts: float,
    ) -> None:
        # The server's Retry (RFC 9000 section 17.2.5) goes to the client; the client's next
        # Initial uses the Retry's SCID as DCID, and the Initial keys derive from it.
        if not new_dcid:
            raise ValueError(RETRY_WITHOUT_SCID)
        conn = self._conns.get(key)
        if conn is not None and (
            conn.client != client or conn.done or conn.version != version or conn.dcid == new_dcid
        ):
            return
        keys = self._keys_for(params, new_dcid)
        if conn is None:
            self._add(key, _Conn(client, version, params, new_dcid, keys), ts)
        else:
            conn.restart(new_dcid, keys)
        self.retries += 1

    def _initial(
        self,
        data: bytes,
        packet: _Initial,
        key: tuple[tuple[str, int], tuple[str, int]],
        src: tuple[str, int],
        ts: float,
    ) -> QuicClientHello | None:
        conn = self._conns.get(key)
        if conn is not None and conn.client != src:
            return None  # the server's Initial: server keys, and no ClientHello
        plain = None
        if conn is not None and conn.version == packet.version:
            plain = self._decrypt(conn.keys, data, packet, conn.largest_pn)
        if plain is None and (
            conn is None or conn.dcid != packet.dcid or conn.version != packet.version
        ):
            keys = self._keys_for(packet.params, packet.dcid)
            plain = self._decrypt(keys, data, packet, -1)
            if plain is not None:
                if conn is None:
                    conn = _Conn(src, packet.version, packet.params, packet.dcid, keys)
                    self._add(key, conn, ts)
                else:  # keys from a Retry we did not see, or a new version after negotiation
                    conn.version = packet.version
                    conn.params = packet.params
                    conn.restart(packet.dcid, keys)
        if plain is None or conn is None:
            self.decrypt_failures += 1
            return None
        payload, pn = plain
        if pn > conn.largest_pn:
            conn.largest_pn = pn
        return self._frames(conn, payload)

    @staticmethod
    def _decrypt(
        keys: _Keys, data: bytes, packet: _Initial, largest_pn: int
    ) -> tuple[bytes, int] | None:
        """Remove header protection and decrypt; None when the AEAD tag does not verify."""
        pos = packet.start
        pn_offset = packet.pn_offset
        sample = pn_offset + 4
        mask = keys.hp.update(data[sample : sample + 16])
        first = data[pos] ^ (mask[0] & 0x0F)
        pn_len = (first & 3) + 1
        truncated = int.from_bytes(data[pn_offset : pn_offset + pn_len], "big") ^ int.from_bytes(
            mask[1 : 1 + pn_len], "big"
        )
        pn = _decode_pn(truncated, pn_len, largest_pn)
        header = bytes((first,)) + data[pos + 1 : pn_offset] + truncated.to_bytes(pn_len, "big")
        nonce = (keys.iv ^ pn).to_bytes(12, "big")
        try:
            plain = keys.aead.decrypt(nonce, data[pn_offset + pn_len : packet.end], header)
        except InvalidTag:
            return None
        return plain, pn

    def _frames(self, conn: _Conn, payload: bytes) -> QuicClientHello | None:
        """Walk the frames of a decrypted Initial, feeding CRYPTO data to the connection."""
        pos = 0
        end = len(payload)
        number = 0
        while pos < end:
            if payload[pos] == 0x00:  # PADDING, usually up to the end of the packet
                if payload.endswith(bytes(end - pos)):
                    break
                while payload[pos] == 0:
                    pos += 1
            number += 1
            try:
                pos, hello = self._frame(conn, payload, pos, end)
            except ValueError as e:
                raise ValueError(f"frame #{number} (type {payload[pos]:#x}): {e}") from None
            if hello is not None or pos < 0:
                return hello
        return None

    def _frame(
        self, conn: _Conn, payload: bytes, pos: int, end: int
    ) -> tuple[int, QuicClientHello | None]:
        """Read the frame at ``pos``: where the next starts (-1: stop), and a finished hello."""
        ftype = payload[pos]
        pos += 1
        if ftype == conn.params.crypto_frame:
            offset, pos = _varint(payload, pos, end, "CRYPTO offset")
            length, pos = _varint(payload, pos, end, "CRYPTO length")
            if pos + length > end:
                raise ValueError(CRYPTO_TOO_LONG.format(length=length, left=end - pos))
            hello = self._crypto(conn, offset, payload[pos : pos + length])
            return (-1 if conn.done else pos + length), hello
        if ftype == 0x01:  # PING
            return pos, None
        if ftype in (0x02, 0x03):  # ACK, ACK with ECN counts
            return _skip_ack(payload, pos, end, ftype == 0x03), None
        if ftype in (0x1C, 0x1D):  # CONNECTION_CLOSE
            _, pos = _varint(payload, pos, end, "error code")
            if ftype == 0x1C:
                _, pos = _varint(payload, pos, end, "frame type")
            reason, pos = _varint(payload, pos, end, "reason length")
            return pos + reason, None
        return -1, None  # a frame an Initial should not carry: nothing more we can read

    def _crypto(self, conn: _Conn, offset: int, chunk: bytes) -> QuicClientHello | None:
        """Add CRYPTO data at ``offset``; the ClientHello once bytes 0 .. 4+length are in."""
        if not chunk:
            return None
        stop = offset + len(chunk)
        if stop > self.max_crypto_bytes:
            self._overflow(conn)
            return None
        if offset == 0 and not conn.ranges and len(chunk) >= 4:  # the common single-frame case
            if chunk[0] != 0x01:
                conn.done = True
                raise ValueError(f"CRYPTO data starts with handshake type {chunk[0]}")
            need = 4 + int.from_bytes(chunk[1:4], "big")
            if need <= len(chunk):
                conn.done = True
                return QuicClientHello(conn.version, conn.dcid, chunk[:need])
        stream = conn.stream
        if stop > len(stream):
            stream.extend(bytes(stop - len(stream)))
        stream[offset:stop] = chunk
        add_range(conn.ranges, offset, stop)
        first = conn.ranges[0]
        if first[0] != 0 or first[1] < 4:
            return None
        if stream[0] != 0x01:
            conn.done = True
            raise ValueError(CRYPTO_NOT_CLIENT_HELLO.format(handshake_type=stream[0]))
        need = 4 + int.from_bytes(stream[1:4], "big")
        if need > self.max_crypto_bytes:
            self._overflow(conn)
            return None
        if first[1] < need:
            return None
        conn.done = True
        hello = bytes(stream[:need])
        conn.stream = bytearray()
        conn.ranges = []
        return QuicClientHello(conn.version, conn.dcid, hello)

    def _overflow(self, conn: _Conn) -> None:
        conn.done = True
        conn.stream = bytearray()
        conn.ranges = []
        self.crypto_overflows += 1

    def _keys_for(self, params: _Version, dcid: bytes) -> _Keys:
        cache_key = (params.salt, dcid)
        keys = self._keys.get(cache_key)
        if keys is None:
            if len(self._keys) >= KEY_CACHE_SIZE:
                del self._keys[next(iter(self._keys))]
            keys = self._keys[cache_key] = _Keys(params, dcid)
        return keys

    def _add(self, key: tuple[tuple[str, int], tuple[str, int]], conn: _Conn, ts: float) -> None:
        conn.last_ts = ts
        if len(self._conns) >= self.max_connections:
            del self._conns[next(iter(self._conns))]
            self.evictions += 1
        self._conns[key] = conn

    def expire(self, now: float) -> int:
        """Forget connections idle for more than ``timeout_s``; return how many were dropped."""
        cutoff = now - self.timeout_s
        stale = [key for key, conn in self._conns.items() if conn.last_ts < cutoff]
        for key in stale:
            del self._conns[key]
        return len(stale)


def _skip_ack(payload: bytes, pos: int, end: int, ecn: bool) -> int:
    # ACK frame (RFC 9000 section 19.3): largest, delay, range count, first range, ranges, ECN.
    _, pos = _varint(payload, pos, end, "ACK largest acknowledged")
    _, pos = _varint(payload, pos, end, "ACK delay")
    count, pos = _varint(payload, pos, end, "ACK range count")
    _, pos = _varint(payload, pos, end, "ACK first range")
    if count > end - pos:
        raise ValueError(ACK_RANGES_TOO_MANY.format(count=count, left=end - pos))
    for _ in range(2 * count + (3 if ecn else 0)):
        _, pos = _varint(payload, pos, end, "ACK range")
    return pos


def add_range(ranges: list[list[int]], start: int, stop: int) -> None:
    """Insert ``[start, stop)`` into sorted, merged ``ranges`` and merge neighbours."""
    merged = [start, stop]
    kept: list[list[int]] = []
    placed = False
    for current in ranges:
        if current[1] < merged[0]:
            kept.append(current)
        elif current[0] > merged[1]:
            if not placed:
                kept.append(merged)
                placed = True
            kept.append(current)
        else:
            merged[0] = min(merged[0], current[0])
            merged[1] = max(merged[1], current[1])
    if not placed:
        kept.append(merged)
    ranges[:] = kept
