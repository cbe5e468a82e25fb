"""Read the server name, ECH and ALPN from a TLS ClientHello.

The ClientHello is the one plaintext message in which a TLS (and QUIC) client names the server
it wants. This module parses just enough of it: the handshake message itself (shared with QUIC,
whose CRYPTO frames carry handshake messages without TLS records), the TLS records that carry
it over TCP (one message may span several records), and a cheap scan for where such a record
starts in a TCP stream (after SOCKS, STARTTLS or RDP preambles).

Parser contract: a value when complete, ``None`` when more bytes are needed, ``ValueError``
(saying where) when malformed. Leniency follows the peers: extensions that are malformed
*after* a well-formed server_name extension do not lose the name (tshark reports it too, see
the ``ndpi-tls-invalid-reads`` capture); anything malformed before it is an error.

References: RFC 8446 section 4.1.2 (ClientHello), RFC 6066 section 3 (server_name),
RFC 7301 section 3.1 (ALPN), draft-ietf-tls-esni (encrypted_client_hello, 0xfe0d),
RFC 6101 appendix E.1 / RFC 5246 appendix E.2 (SSLv2-compatible ClientHello).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Protocol

from monitor.hostnames import hostname_from_wire

CONTENT_TYPE_HANDSHAKE = 22
HANDSHAKE_CLIENT_HELLO = 1
HANDSHAKE_SERVER_HELLO = 2
EXT_SERVER_NAME = 0
EXT_ALPN = 16
EXT_ENCRYPTED_CLIENT_HELLO = 0xFE0D
SERVER_NAME_HOST_NAME = 0

RECORD_HEADER_LEN = 5
MAX_MINOR_VERSION = 4
"""A record's minor version up to 0x04 (TLS 1.3's legacy versions are 0x03 0x01..0x03)."""
MAX_RECORD_LEN = 18432
"""2^14 + 2048: the largest TLSCiphertext fragment; no valid record is longer."""
MAX_CLIENT_HELLO_BYTES = 65536
"""A ClientHello message (header included) longer than this is refused; callers stop buffering."""

HANDSHAKE_RECORD_START = b"\x16\x03"
"""A handshake record of TLS 1.0 and later (major version 3): its first two bytes."""
_u16 = struct.Struct(">H").unpack_from
_u16_pair = struct.Struct(">HH").unpack_from
_record_and_message_header = struct.Struct(">BBBHBBH").unpack_from
"""Content type, version major and minor, record length, handshake type, 3-byte length."""


# The errors this module raises, as templates (``str.format``): the compiled twin
# (``monitor.compiled.tls``) raises the same ones from here, so they are written once.
CIPHER_SUITES_PAST_END = "cipher suites: length runs past the end of the ClientHello"
COMPRESSION_METHODS_PAST_END = "compression methods: length runs past the end of the ClientHello"
EXTENSIONS_LENGTH_CUT = "extensions: 1 byte left, need a 2-byte length"
CLIENT_HELLO_BODY_SHORT = "ClientHello body: {left} bytes, need 35 up to the session id"
ENTRY_EMPTY_HOST_NAME = "entry #{entry}: empty host_name"
ENTRY_HEADER_SHORT = "entry #{entry}: header needs 3 bytes, {left} left"
ENTRY_TOO_LONG = "entry #{entry}: length {name_len} > remaining {left}"
BAD_ALPN_EXTENSION = "extension #{index} (alpn): {e}"
BAD_SERVER_NAME_EXTENSION = "extension #{index} (server_name): {e}"
EXTENSION_TOO_LONG = "extension #{index} (type {ext_type}): length {length} > remaining {left}"
EXTENSION_HEADER_SHORT = "extension #{index}: header needs 4 bytes, {left} left"
EXTENSIONS_TOO_LONG = "extensions: length {ext_len} > remaining {left}"
LIST_LENGTH_SHORT = "list length needs 2 bytes, {left} left"
LIST_TOO_LONG = "list length {list_len} > remaining {left}"
PROTOCOL_LENGTH_OUT_OF_RANGE = "protocol #{index}: length {name_len} not in 1..{left}"
SESSION_ID_TOO_LONG = "session id: length {length} leaves no room for cipher suites"


@dataclass(frozen=True, slots=True)
class ClientHello:
    """What a ClientHello says about where the client is going."""

    sni: str | None
    """The first host_name of the server_name extension (``hostnames.hostname_from_wire``:
    normalised, odd bytes escaped); None when absent."""
    has_ech: bool
    """The encrypted_client_hello extension (0xfe0d) is present: ``sni`` is the outer name."""
    alpn: tuple[str, ...]
    """ALPN protocol names in the client's order (``h2``, ``http/1.1``, ``dot``...)."""
    legacy_version: int
    """The ClientHello's legacy_version field (0x0303 for TLS 1.2 and 1.3; 0x0002 for SSLv2)."""


class HelloReaders(Protocol):
    """The three readers the extractor uses: this module, or its compiled twin
    (``monitor/compiled/tls.pyx``)."""

    def parse_client_hello_message(self, msg: bytes) -> ClientHello | None: ...
    def find_client_hello_record(self, stream: bytes, start: int = 0) -> int: ...
    def parse_client_hello_records(self, stream: bytes) -> ClientHello | None: ...


def parse_client_hello_message(msg: bytes) -> ClientHello | None:
    """Parse a handshake message that must be a ClientHello (type 1, 3-byte length, body).

    Bytes after the message are ignored. None when ``msg`` is shorter than the message.
    """
    n = len(msg)
    if n == 0:
        return None
    if msg[0] != HANDSHAKE_CLIENT_HELLO:
        raise ValueError(f"handshake type {msg[0]}, expected ClientHello (1)")
    if n < 4:
        return None
    length = (msg[1] << 16) | (msg[2] << 8) | msg[3]
    if length > MAX_CLIENT_HELLO_BYTES - 4:
        raise ValueError(f"ClientHello length {length} > limit {MAX_CLIENT_HELLO_BYTES - 4}")
    if n < 4 + length:
        return None
    return _parse_body(msg, 4, 4 + length)


def find_client_hello_record(stream: bytes, start: int = 0) -> int:
    """Offset (>= start) of the first bytes that look like a TLS record carrying a ClientHello.

    A record header is 0x16, 0x03, a minor version 0x00..0x04, a length of 1..18432, then the
    handshake type 0x01. A candidate cut short by the end of ``stream`` counts when the bytes it
    has match, so the caller keeps them and waits for more. An SSLv2-compatible CLIENT-HELLO
    (which has no extensions, hence no SNI) is recognised only at ``start`` itself. -1 if none.
    """
    n = len(stream)
    if start < 0:
        start = 0
    if start < n and stream[start] & 0x80 and looks_like_sslv2_client_hello(stream, start):
        return start
    i = stream.find(HANDSHAKE_RECORD_START, start)
    while i != -1:
        if i + 2 >= n:
            return i
        if stream[i + 2] <= MAX_MINOR_VERSION:
            body = i + RECORD_HEADER_LEN
            if body > n:
                return i
            length = (stream[i + 3] << 8) | stream[i + 4]
            if 1 <= length <= MAX_RECORD_LEN and (
                body == n or stream[body] == HANDSHAKE_CLIENT_HELLO
            ):
                return i
        i = stream.find(HANDSHAKE_RECORD_START, i + 1)
    if n > start and stream[n - 1] == CONTENT_TYPE_HANDSHAKE:
        return n - 1
    return -1


def parse_client_hello_records(stream: bytes) -> ClientHello | None:
    """Parse the ClientHello carried by the TLS handshake records at the start of ``stream``.

    The message may span several records: their payloads are joined until it is complete. None
    when more bytes are needed. ValueError when a record is not a handshake record before the
    message is complete, a length is out of range, or the message is malformed. An
    SSLv2-compatible CLIENT-HELLO gives a ClientHello without SNI.
    """
    n = len(stream)
    if n == 0:
        return None
    if stream[0] != CONTENT_TYPE_HANDSHAKE:
        if stream[0] & 0x80:
            return parse_sslv2_client_hello(stream)
        raise ValueError(f"record #0: content type {stream[0]}, expected handshake (22)")
    # Fast path: the whole ClientHello sits in the first record, as it usually does.
    if n >= RECORD_HEADER_LEN + 4:
        _, major, _, record_len, msg_type, len_high, len_low = _record_and_message_header(stream)
        msg_len = (len_high << 16) | len_low
        if (
            major == 3
            and msg_type == HANDSHAKE_CLIENT_HELLO
            and 4 + msg_len <= record_len <= MAX_RECORD_LEN
            and RECORD_HEADER_LEN + 4 + msg_len <= n
            and msg_len <= MAX_CLIENT_HELLO_BYTES - 4
        ):
            return _parse_body(stream, RECORD_HEADER_LEN + 4, RECORD_HEADER_LEN + 4 + msg_len)
    return parse_records_slow(stream)


def parse_records_slow(stream: bytes) -> ClientHello | None:
    n = len(stream)
    parts: list[bytes] = []
    have = 0
    need = -1
    pos = 0
    index = 0
    while pos < n:
        content_type = stream[pos]
        if content_type != CONTENT_TYPE_HANDSHAKE:
            raise ValueError(
                f"record #{index} at offset {pos}: content type {content_type} "
                "before the ClientHello was complete"
            )
        if pos + 1 < n and stream[pos + 1] != 3:
            raise ValueError(
                f"record #{index} at offset {pos}: version major {stream[pos + 1]}, expected 3"
            )
        if pos + RECORD_HEADER_LEN > n:
            return None
        record_len = (stream[pos + 3] << 8) | stream[pos + 4]
        if record_len == 0 or record_len > MAX_RECORD_LEN:
            raise ValueError(
                f"record #{index} at offset {pos}: length {record_len} not in 1..{MAX_RECORD_LEN}"
            )
        record_end = pos + RECORD_HEADER_LEN + record_len
        chunk = stream[pos + RECORD_HEADER_LEN : record_end]
        if chunk:
            if not parts and chunk[0] != HANDSHAKE_CLIENT_HELLO:
                raise ValueError(f"handshake type {chunk[0]}, expected ClientHello (1)")
            parts.append(chunk)
            have += len(chunk)
        if need < 0 and have >= 4:
            head = b"".join(parts)[:4] if len(parts[0]) < 4 else parts[0]
            msg_len = (head[1] << 16) | (head[2] << 8) | head[3]
            if msg_len > MAX_CLIENT_HELLO_BYTES - 4:
                raise ValueError(
                    f"ClientHello length {msg_len} > limit {MAX_CLIENT_HELLO_BYTES - 4}"
                )
            need = 4 + msg_len
        if 0 <= need <= have:
            msg = parts[0] if len(parts) == 1 else b"".join(parts)
            return _parse_body(msg, 4, need)
        if record_end > n:
            return None
        pos = record_end
        index += 1
    return None


def _parse_body(buf: bytes, pos: int, end: int) -> ClientHello:
    """Parse the ClientHello body in ``buf[pos:end]`` (after the 4-byte handshake header)."""
    if end - pos < 35:
        raise ValueError(CLIENT_HELLO_BODY_SHORT.format(left=end - pos))
    version = _u16(buf, pos)[0]
    p = pos + 34  # legacy_version (2) + random (32)
    p += 1 + buf[p]  # session id
    if p + 2 > end:
        raise ValueError(SESSION_ID_TOO_LONG.format(length=buf[pos + 34]))
    p += 2 + _u16(buf, p)[0]  # cipher suites
    if p + 1 > end:
        raise ValueError(CIPHER_SUITES_PAST_END)
    p += 1 + buf[p]  # compression methods
    if p > end:
        raise ValueError(COMPRESSION_METHODS_PAST_END)
    if p == end:
        return ClientHello(None, False, (), version)  # no extensions (SSLv3, early TLS)
    if p + 2 > end:
        raise ValueError(EXTENSIONS_LENGTH_CUT)
    ext_len = _u16(buf, p)[0]
    p += 2
    ext_end = p + ext_len
    error: str | None = None
    if ext_end > end:
        error = EXTENSIONS_TOO_LONG.format(ext_len=ext_len, left=end - p)
        ext_end = end
    sni: str | None = None
    sni_seen = False
    alpn: tuple[str, ...] = ()
    alpn_seen = False
    has_ech = False
    index = 0
    while p < ext_end:
        if p + 4 > ext_end:
            error = EXTENSION_HEADER_SHORT.format(index=index, left=ext_end - p)
            break
        ext_type, length = _u16_pair(buf, p)
        p += 4
        if p + length > ext_end:
            error = EXTENSION_TOO_LONG.format(
                index=index, ext_type=ext_type, length=length, left=ext_end - p
            )
            break
        if ext_type == EXT_SERVER_NAME and not sni_seen:
            sni_seen = True
            try:
                sni = _server_name(buf, p, p + length)
            except ValueError as e:
                error = BAD_SERVER_NAME_EXTENSION.format(index=index, e=e)
                break
        elif ext_type == EXT_ALPN and not alpn_seen:
            alpn_seen = True
            try:
                alpn = _alpn(buf, p, p + length)
            except ValueError as e:
                error = BAD_ALPN_EXTENSION.format(index=index, e=e)
                break
        elif ext_type == EXT_ENCRYPTED_CLIENT_HELLO:
            has_ech = True
        p += length
        index += 1
    if error is not None and sni is None:
        raise ValueError(error)
    # With a well-formed server name already read, later damage is tolerated (as tshark does).
    return ClientHello(sni, has_ech, alpn, version)


def _server_name(buf: bytes, p: int, end: int) -> str | None:
    """The first host_name of a server_name extension's data ``buf[p:end]``."""
    if end - p < 2:
        raise ValueError(LIST_LENGTH_SHORT.format(left=end - p))
    list_len = (buf[p] << 8) | buf[p + 1]
    p += 2
    if list_len > end - p:
        raise ValueError(LIST_TOO_LONG.format(list_len=list_len, left=end - p))
    list_end = p + list_len
    entry = 0
    while p < list_end:
        if p + 3 > list_end:
            raise ValueError(ENTRY_HEADER_SHORT.format(entry=entry, left=list_end - p))
        name_type = buf[p]
        name_len = (buf[p + 1] << 8) | buf[p + 2]
        p += 3
        if name_len > list_end - p:
            raise ValueError(
                ENTRY_TOO_LONG.format(entry=entry, name_len=name_len, left=list_end - p)
            )
        if name_type == SERVER_NAME_HOST_NAME:
            if name_len == 0:
                raise ValueError(ENTRY_EMPTY_HOST_NAME.format(entry=entry))
            return hostname_from_wire(buf[p : p + name_len])
        p += name_len
        entry += 1
    return None


def _alpn(buf: bytes, p: int, end: int) -> tuple[str, ...]:
    """The protocol names of an ALPN extension's data ``buf[p:end]``."""
    if end - p < 2:
        raise ValueError(LIST_LENGTH_SHORT.format(left=end - p))
    list_len = (buf[p] << 8) | buf[p + 1]
    p += 2
    if list_len > end - p:
        raise ValueError(LIST_TOO_LONG.format(list_len=list_len, left=end - p))
    list_end = p + list_len
    names: list[str] = []
    while p < list_end:
        name_len = buf[p]
        p += 1
        if name_len == 0 or name_len > list_end - p:
            raise ValueError(
                PROTOCOL_LENGTH_OUT_OF_RANGE.format(
                    index=len(names), name_len=name_len, left=list_end - p
                )
            )
        names.append(buf[p : p + name_len].decode("ascii", "backslashreplace"))
        p += name_len
    return tuple(names)


def _sslv2_header(stream: bytes, start: int) -> tuple[int, int] | None:
    """(record length, version) of an SSLv2 CLIENT-HELLO header at ``start``, or None.

    Needs the 11 header bytes; checks them against the SSLv2 rules so that a random byte with
    the high bit set is not taken for one.
    """
    if len(stream) - start < 11:
        return None
    b = stream
    record_len = ((b[start] & 0x7F) << 8) | b[start + 1]
    version = (b[start + 3] << 8) | b[start + 4]
    if b[start + 2] != HANDSHAKE_CLIENT_HELLO or not (
        version == 0x0002 or 0x0300 <= version <= 0x0304
    ):
        return None
    cipher_len = (b[start + 5] << 8) | b[start + 6]
    session_len = (b[start + 7] << 8) | b[start + 8]
    challenge_len = (b[start + 9] << 8) | b[start + 10]
    if (
        cipher_len == 0
        or cipher_len % 3
        or session_len not in (0, 16)
        or not 16 <= challenge_len <= 32
        or record_len != 9 + cipher_len + session_len + challenge_len
    ):
        return None
    return record_len, version


def looks_like_sslv2_client_hello(stream: bytes, start: int) -> bool:
    return _sslv2_header(stream, start) is not None


def parse_sslv2_client_hello(stream: bytes) -> ClientHello | None:
    if len(stream) < 11:
        if len(stream) >= 3 and stream[2] != HANDSHAKE_CLIENT_HELLO:
            raise ValueError(f"SSLv2 record: message type {stream[2]}, expected CLIENT-HELLO (1)")
        return None
    header = _sslv2_header(stream, 0)
    if header is None:
        raise ValueError("SSLv2 record: not a well-formed CLIENT-HELLO header")
    record_len, version = header
    if len(stream) < 2 + record_len:
        return None
    return ClientHello(None, False, (), version)
