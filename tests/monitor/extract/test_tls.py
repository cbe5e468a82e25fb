# mypy: disallow-untyped-calls=False
# (scapy layer classes are untyped; a pyproject-wide untyped_calls_exclude would replace this)
"""Specification of the TLS ClientHello parser: messages, records, stream scan, captures.

Every test runs on the readers of monitor/extract/tls.py and on their compiled twins
(monitor/compiled/tls.pyx), which must also agree with them on damaged input."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import scapy.contrib.gtp  # noqa: F401  (binds GTP-U so that ndpi-tls-invalid-reads decodes)
from hypothesis import given
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP
from scapy.layers.inet6 import IPv6
from scapy.layers.tls.all import TLS, TLSClientHello
from scapy.layers.tls.extensions import (
    ProtocolName,
    ServerName,
    TLS_Ext_ALPN,
    TLS_Ext_ServerName,
    TLS_Ext_SupportedVersion_CH,
    TLS_Ext_Unknown,
)
from scapy.layers.tls.keyexchange_tls13 import KeyShareEntry, TLS_Ext_KeyShare_CH
from scapy.utils import PcapReader

from monitor.extract import tls as tls_module
from monitor.extract.reassembly import StreamReassembler
from monitor.extract.tls import (
    MAX_CLIENT_HELLO_BYTES,
    ClientHello,
    find_client_hello_record,
    parse_client_hello_message,
    parse_client_hello_records,
)
from monitor.values import FlowKey
from tests.compiled import assert_built_from_current_source, compiled_or_skip

READERS = ("parse_client_hello_message", "parse_client_hello_records", "find_client_hello_record")


@pytest.fixture(autouse=True, params=["python", "compiled"])
def readers_twin(request, monkeypatch):
    """Run the test on the Python readers, then on the compiled ones: the names imported
    above name the readers under test."""
    if request.param == "compiled":
        twin = compiled_or_skip("monitor.compiled.tls")
        for name in READERS:
            monkeypatch.setitem(globals(), name, getattr(twin, name))


def test_the_compiled_readers_are_built_from_the_current_source():
    assert_built_from_current_source("monitor.compiled.tls")


PCAPS = Path(__file__).parents[2] / "data" / "pcaps"

# One TLS record carrying a ClientHello for example.com with ALPN and ECH, field by field.
RECORD = bytes.fromhex(
    "16 0301 0066"  # record: handshake (22), version TLS 1.0, length 102
    "01 000062"  # handshake: ClientHello (1), length 98
    "0303"  # legacy_version TLS 1.2
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"  # random
    "00"  # session id: empty
    "0004 1301 1302"  # cipher suites: 4 bytes, TLS_AES_128_GCM_SHA256, TLS_AES_256_GCM_SHA384
    "01 00"  # compression methods: 1, null
    "0035"  # extensions: 53 bytes
    "0000 0010 000e 00 000b 6578616d706c652e636f6d"  # server_name: host_name "example.com"
    "0010 000e 000c 02 6832 08 687474702f312e31"  # ALPN: "h2", "http/1.1"
    "fe0d 0004 00010203"  # encrypted_client_hello (opaque here)
    "002b 0003 02 0304"  # supported_versions: TLS 1.3
)
MESSAGE = RECORD[5:]
EXPECTED = ClientHello(
    sni="example.com", has_ech=True, alpn=("h2", "http/1.1"), legacy_version=0x0303
)

# An SSLv2-compatible CLIENT-HELLO: no extensions, hence no SNI.
SSLV2_HELLO = bytes.fromhex(
    "802e"  # 2-byte header, length 46
    "01"  # CLIENT-HELLO
    "0301"  # version TLS 1.0
    "0015 0000 0010"  # cipher specs 21 bytes, session id 0, challenge 16
    "000039 000038 000035 000016 000013 00000a 000033"  # cipher specs
    "00112233445566778899aabbccddeeff"  # challenge
)


def client_hello_record(
    *extensions: object, version: int = 0x0303, record_version: int = 0x0301
) -> bytes:
    """A ClientHello record built by scapy's TLS layers."""
    hello = TLSClientHello(
        version=version,
        gmt_unix_time=0,
        random_bytes=bytes(28),
        sid=bytes(32),
        ciphers=[0x1301, 0x1302, 0xC02F],
        ext=list(extensions),
    )
    return bytes(TLS(type=22, version=record_version, msg=[hello]))


def sni_ext(*names: bytes) -> object:
    return TLS_Ext_ServerName(servernames=[ServerName(servername=name) for name in names])


def alpn_ext(*protocols: bytes) -> object:
    return TLS_Ext_ALPN(protocols=[ProtocolName(protocol=p) for p in protocols])


def split_records(message: bytes, size: int, *, version: bytes = b"\x03\x01") -> bytes:
    """``message`` carried in handshake records of at most ``size`` payload bytes each."""
    out = bytearray()
    for i in range(0, len(message), size):
        chunk = message[i : i + size]
        out += b"\x16" + version + len(chunk).to_bytes(2, "big") + chunk
    return bytes(out)


def with_extensions(extensions: bytes, *, ext_len: int | None = None) -> bytes:
    """A ClientHello message with the given raw extensions block (lengths made consistent)."""
    declared = len(extensions) if ext_len is None else ext_len
    body = (
        b"\x03\x03"
        + bytes(32)
        + b"\x00"
        + b"\x00\x02\x13\x01"
        + b"\x01\x00"
        + declared.to_bytes(2, "big")
        + extensions
    )
    return b"\x01" + len(body).to_bytes(3, "big") + body


def ext(ext_type: int, data: bytes) -> bytes:
    return ext_type.to_bytes(2, "big") + len(data).to_bytes(2, "big") + data


def sni_data(*entries: tuple[int, bytes]) -> bytes:
    items = b"".join(t.to_bytes(1, "big") + len(n).to_bytes(2, "big") + n for t, n in entries)
    return len(items).to_bytes(2, "big") + items


# --- the handshake message ----------------------------------------------------------------


def test_parse_client_hello_message_reads_sni_alpn_ech_and_version():
    assert parse_client_hello_message(MESSAGE) == EXPECTED


def test_parse_client_hello_records_reads_one_record():
    assert parse_client_hello_records(RECORD) == EXPECTED


def test_parse_client_hello_message_ignores_bytes_after_the_message():
    assert parse_client_hello_message(MESSAGE + b"\x02\x00\x00\x00junk") == EXPECTED


@pytest.mark.parametrize("cut", range(len(MESSAGE)))
def test_parse_client_hello_message_prefix_is_incomplete(cut):
    assert parse_client_hello_message(MESSAGE[:cut]) is None


@pytest.mark.parametrize("cut", range(len(RECORD)))
def test_parse_client_hello_records_prefix_is_incomplete(cut):
    assert parse_client_hello_records(RECORD[:cut]) is None


@pytest.mark.parametrize("cut", range(38, len(MESSAGE)))
def test_parse_client_hello_message_body_cut_short_is_malformed_or_shorter(cut):
    """A body cut short with its length field adjusted: a value (extensions cut at a
    boundary after the server name) or ValueError, never anything else."""
    body = MESSAGE[4:cut]
    msg = b"\x01" + len(body).to_bytes(3, "big") + body
    try:
        hello = parse_client_hello_message(msg)
    except ValueError:
        return
    assert hello is not None
    assert hello.sni in (None, "example.com")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (b"www.example.com", "www.example.com"),
        (b"WWW.Example.COM.", "www.example.com"),  # normalised: lowercase, no trailing dot
        (b"192.168.1.150", "192.168.1.150"),  # IP literal (zeek-tls-rdp-to-ssl): as is
        (b"xn--bcher-kva.example", "xn--bcher-kva.example"),
        ("bücher.example".encode(), "xn--bcher-kva.example"),  # UTF-8 becomes IDNA
        (b"under_score.example", "under_score.example"),
        (b"a" * 300 + b".example", "a" * 300 + ".example"),
        # Odd bytes are written as DNS names write them (monitor.hostnames.ESCAPED_BYTES):
        (b"evil\x00x.example", "evil\\000x.example"),  # NUL (PostgreSQL refuses it in text)
        (b"a\x1b[31mred.example", "a\\033[31mred.example"),  # a terminal escape
        (b"cr\r\nlf.Example", "cr\\015\\012lf.example"),  # CR/LF, still lowercased
        ("\u202eelpmaxe.com".encode(), "\\342\\200\\256elpmaxe.com"),  # a bidi override
        (b"caf\xe9.example", "caf\\351.example"),  # not UTF-8
        (b"back\\slash.example", "back\\\\slash.example"),  # the escape character
        (("ü" * 70 + ".example").encode(), "\\303\\274" * 70 + ".example"),  # IDNA refuses
    ],
)
def test_parse_client_hello_records_normalises_the_server_name(name, expected):
    hello = parse_client_hello_records(client_hello_record(sni_ext(name)))
    assert hello is not None
    assert hello.sni == expected


@pytest.mark.parametrize(
    ("extensions", "sni"),
    [
        pytest.param(b"", None, id="no-extensions-at-all"),
        pytest.param(ext(0x0017, b""), None, id="extensions-without-server-name"),
        pytest.param(ext(0, b"\x00\x00"), None, id="empty-server-name-list"),
        pytest.param(ext(0, sni_data((0, b"a.example"), (0, b"b.example"))), "a.example", id="first-entry-counts"),
        pytest.param(ext(0, sni_data((7, b"other"), (0, b"b.example"))), "b.example", id="first-host-name-entry"),
        pytest.param(ext(0, sni_data((7, b"other"))), None, id="no-host-name-entry"),
        pytest.param(ext(0, sni_data((0, b"a.example"))) + ext(0, sni_data((0, b"b.example"))), "a.example", id="second-extension-ignored"),
        pytest.param(ext(0, sni_data((0, b"a.example"), (0, b""))), "a.example", id="entries-after-the-first-not-checked"),
    ],
)  # fmt: skip
def test_parse_client_hello_message_server_name_cases(extensions, sni):
    if extensions:
        msg = with_extensions(extensions)
    else:  # no extensions block at all (SSLv3, early TLS)
        msg = with_extensions(b"")[:-2]
        msg = b"\x01" + (len(msg) - 4).to_bytes(3, "big") + msg[4:]
    hello = parse_client_hello_message(msg)
    assert hello is not None
    assert hello.sni == sni


@pytest.mark.parametrize(
    ("ext_type", "has_ech"),
    [(0xFE0D, True), (0xFFCE, False), (0xFE0C, False), (0x0000 + 21, False)],
)
def test_parse_client_hello_message_ech_flag(ext_type, has_ech):
    msg = with_extensions(ext(0, sni_data((0, b"cloudflare-ech.com"))) + ext(ext_type, b"\x00"))
    hello = parse_client_hello_message(msg)
    assert hello is not None
    assert hello.has_ech is has_ech
    assert hello.sni == "cloudflare-ech.com"


def test_parse_client_hello_records_reads_alpn_built_by_scapy():
    record = client_hello_record(sni_ext(b"dns.google"), alpn_ext(b"dot"))
    assert parse_client_hello_records(record) == ClientHello("dns.google", False, ("dot",), 0x0303)


@pytest.mark.parametrize(
    ("extensions", "where"),
    [
        pytest.param(ext(0, b"\x00"), "extension #0 (server_name): list length", id="sni-list-length-cut"),
        pytest.param(ext(0, b"\x00\x09\x00\x00\x01a"), "extension #0 (server_name): list length 9", id="sni-list-overruns"),
        pytest.param(ext(0, b"\x00\x02\x00\x00"), "entry #0: header", id="sni-entry-header-cut"),
        pytest.param(ext(0, b"\x00\x03\x00\x00\x05"), "entry #0: length 5", id="sni-entry-overruns"),
        pytest.param(ext(0, sni_data((0, b""))), "empty host_name", id="sni-empty-host-name"),
        pytest.param(ext(16, b"\x00\x03\x00ab"), "extension #0 (alpn): protocol #0", id="alpn-zero-length-name"),
        pytest.param(ext(16, b"\x00\x05\x02h2"), "extension #0 (alpn): list length 5", id="alpn-list-overruns"),
        pytest.param(ext(16, b"\x00"), "extension #0 (alpn): list length needs", id="alpn-list-length-cut"),
        pytest.param(ext(0x17, b"") + b"\x00\x0d\x00\x20\x00", "extension #1 (type 13): length 32", id="extension-overruns"),
        pytest.param(ext(0x17, b"") + b"\x00", "extension #1: header needs 4 bytes", id="extension-header-cut"),
    ],
)  # fmt: skip
def test_parse_client_hello_message_malformed_before_sni_raises_where(extensions, where):
    with pytest.raises(ValueError, match=where.replace("(", r"\(").replace(")", r"\)")):
        parse_client_hello_message(with_extensions(extensions))


def test_parse_client_hello_message_extensions_block_overrunning_the_body_raises():
    msg = with_extensions(ext(0x17, b""), ext_len=40)
    with pytest.raises(ValueError, match="extensions: length 40 > remaining 4"):
        parse_client_hello_message(msg)


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(ext(16, b"\xb8\x89\xa5\x2f\x56\x35\x19"), id="alpn-vector-too-long"),  # as ndpi-tls-invalid-reads
        pytest.param(b"\xc6\x94\x35\x77\xc3", id="extension-overruns-block"),
        pytest.param(b"\x00", id="extension-header-cut"),
    ],
)  # fmt: skip
def test_parse_client_hello_message_damage_after_a_good_server_name_keeps_it(damage):
    """tshark reports e.crashlytics.com from a ClientHello whose ALPN and later extensions
    are malformed (ndpi-tls-invalid-reads); so do we."""
    msg = with_extensions(ext(0, sni_data((0, b"e.crashlytics.com"))) + ext(0x17, b"") + damage)
    hello = parse_client_hello_message(msg)
    assert hello is not None
    assert hello.sni == "e.crashlytics.com"


def test_parse_client_hello_message_extensions_block_overrun_after_sni_keeps_it():
    msg = with_extensions(ext(0, sni_data((0, b"a.example"))), ext_len=200)
    hello = parse_client_hello_message(msg)
    assert hello is not None
    assert hello.sni == "a.example"


@pytest.mark.parametrize(
    ("msg", "where"),
    [
        pytest.param(b"\x02\x00\x00\x26", "handshake type 2", id="server-hello"),
        pytest.param(b"\x01\xff\xff\xff", "length 16777215 > limit", id="length-over-limit"),
        pytest.param(b"\x01\x00\x00\x10" + bytes(16), "16 bytes, need 35", id="body-too-short"),
        pytest.param(b"\x01\x00\x00\x23" + bytes(34) + b"\x05", "session id: length 5", id="session-id-overruns"),
        pytest.param(b"\x01\x00\x00\x25" + bytes(35) + b"\x00\x08", "cipher suites", id="cipher-suites-overrun"),
        pytest.param(b"\x01\x00\x00\x26" + bytes(37) + b"\x03", "compression methods", id="compression-overruns"),
        pytest.param(b"\x01\x00\x00\x28" + bytes(35) + b"\x00\x00\x01\x00\x00", "extensions: 1 byte left", id="extensions-length-cut"),
    ],
)  # fmt: skip
def test_parse_client_hello_message_malformed_raises_where(msg, where):
    with pytest.raises(ValueError, match=where):
        parse_client_hello_message(msg)


# --- records ----------------------------------------------------------------------------


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 17, 50, 97, 98, 101])
def test_parse_client_hello_records_joins_records(size):
    assert parse_client_hello_records(split_records(MESSAGE, size)) == EXPECTED


@pytest.mark.parametrize("size", [1, 4, 50])
def test_parse_client_hello_records_every_prefix_of_split_records_is_incomplete(size):
    stream = split_records(MESSAGE, size)
    for cut in range(len(stream)):
        assert parse_client_hello_records(stream[:cut]) is None, cut
    assert parse_client_hello_records(stream) == EXPECTED


def test_parse_client_hello_records_ignores_what_follows_the_message():
    stream = split_records(MESSAGE, 60) + b"\x17\x03\x03\x00\x05hello"
    assert parse_client_hello_records(stream) == EXPECTED


def test_parse_client_hello_records_message_complete_inside_a_record_cut_short():
    record = b"\x16\x03\x01\x10\x00" + MESSAGE  # claims 4096 bytes, message ends first
    assert parse_client_hello_records(record) == EXPECTED


@pytest.mark.parametrize(
    ("stream", "where"),
    [
        pytest.param(b"\x17\x03\x03\x00\x10", "record #0: content type 23", id="application-data"),
        pytest.param(b"GET / HTTP/1.1\r\n", "record #0: content type 71", id="http"),
        pytest.param(b"\x16\x02", "version major 2", id="version-major"),
        pytest.param(b"\x16\x03\x01\x00\x00", "length 0 not in 1..18432", id="empty-record"),
        pytest.param(b"\x16\x03\x01\x48\x01", "length 18433 not in", id="record-too-long"),
        pytest.param(b"\x16\x03\x01\x00\x04\x02\x00\x00\x46", "handshake type 2", id="server-hello"),
        pytest.param(split_records(MESSAGE[:40], 40) + b"\x15\x03\x01\x00\x02\x02\x28", "record #1 at offset 45: content type 21", id="alert-before-complete"),
        pytest.param(b"\x16\x03\x01\x00\x02\x01\x01" + b"\x16\x03\x01\x00\x02\xff\xff", "length 131071 > limit", id="message-over-limit-across-records"),
        pytest.param(b"\x16\x03\x01\x00\x04\x01\x01\x00\x00", "length 65536 > limit", id="message-over-limit"),
    ],
)  # fmt: skip
def test_parse_client_hello_records_malformed_raises_where(stream, where):
    with pytest.raises(ValueError, match=where):
        parse_client_hello_records(stream)


def test_parse_client_hello_records_accepts_the_largest_client_hello():
    padding = bytes(MAX_CLIENT_HELLO_BYTES - 4 - 43 - 4)  # header, body fields, ext header
    msg = with_extensions(ext(21, padding))
    assert len(msg) == MAX_CLIENT_HELLO_BYTES
    hello = parse_client_hello_records(split_records(msg, 16384))
    assert hello == ClientHello(None, False, (), 0x0303)


def test_parse_client_hello_records_sslv2_hello_has_no_sni():
    assert parse_client_hello_records(SSLV2_HELLO) == ClientHello(None, False, (), 0x0301)


@pytest.mark.parametrize("cut", range(len(SSLV2_HELLO)))
def test_parse_client_hello_records_sslv2_prefix_is_incomplete(cut):
    assert parse_client_hello_records(SSLV2_HELLO[:cut]) is None


@pytest.mark.parametrize(
    "stream",
    [
        pytest.param(b"\x80\x2e\x02\x03\x01", id="not-client-hello"),
        pytest.param(b"\x80\x2e\x01\x03\x01\x00\x14\x00\x00\x00\x10" + bytes(36), id="ciphers-not-multiple-of-3"),
    ],
)  # fmt: skip
def test_parse_client_hello_records_malformed_sslv2_raises(stream):
    with pytest.raises(ValueError, match="SSLv2"):
        parse_client_hello_records(stream)


# --- scanning a stream for the record ---------------------------------------------------


@pytest.mark.parametrize(
    ("stream", "start", "expected"),
    [
        pytest.param(RECORD, 0, 0, id="at-start"),
        pytest.param(b"\x05\x00\x00\x01\x0a\x00\x00\x01\x01\xbb" + RECORD, 0, 10, id="after-socks5"),
        pytest.param(b"\x03\x00\x00\x13\x0e\xe0\x00\x00\x00\x00\x00" + RECORD, 0, 11, id="after-rdp-x224"),
        pytest.param(b"\x16\x03\x05\x00\x10\x01" + RECORD, 0, 6, id="skips-minor-5"),
        pytest.param(b"\x16\x03\x01\x00\x00\x01" + RECORD, 0, 6, id="skips-empty-record"),
        pytest.param(b"\x16\x03\x01\x48\x01\x01" + RECORD, 0, 6, id="skips-too-long-record"),
        pytest.param(b"\x16\x03\x03\x00\x4a\x02" + RECORD, 0, 6, id="skips-server-hello"),
        pytest.param(RECORD + RECORD, 1, len(RECORD), id="from-start-offset"),
        pytest.param(b"220 smtp ready\r\n\x16\x03\x01", 0, 16, id="partial-header-at-end"),
        pytest.param(b"junk\x16", 0, 4, id="lone-content-type-at-end"),
        pytest.param(b"junk\x16\x03", 0, 4, id="two-bytes-at-end"),
        pytest.param(b"junk\x16\x03\x01\x00\x66", 0, 4, id="header-without-payload"),
        pytest.param(b"EHLO example\r\n", 0, -1, id="no-record"),
        pytest.param(b"", 0, -1, id="empty"),
        pytest.param(SSLV2_HELLO, 0, 0, id="sslv2-at-start"),
        pytest.param(b"x" + SSLV2_HELLO, 0, -1, id="sslv2-only-at-start"),
        pytest.param(b"\x80\x2e\x01", 0, -1, id="sslv2-header-incomplete"),
        pytest.param(RECORD, -5, 0, id="negative-start"),
    ],
)  # fmt: skip
def test_find_client_hello_record(stream, start, expected):
    assert find_client_hello_record(stream, start) == expected


# --- scapy as an oracle -------------------------------------------------------------------


def scapy_sni(record: bytes) -> str | None:
    """What scapy's TLS dissector reads as the first server name of a ClientHello record."""
    hello = TLS(record).msg[0]
    assert isinstance(hello, TLSClientHello)
    for extension in hello.ext or []:
        if isinstance(extension, TLS_Ext_ServerName):
            return bytes(extension.servernames[0].servername).decode().lower()
    return None


ORACLE_RECORDS = {
    "handwritten": RECORD,
    "scapy-sni-alpn": client_hello_record(sni_ext(b"www.facebook.com"), alpn_ext(b"h2")),
    "scapy-no-sni": client_hello_record(alpn_ext(b"http/1.1")),
    "scapy-two-names": client_hello_record(sni_ext(b"first.example", b"second.example")),
    "scapy-tls13": client_hello_record(
        sni_ext(b"Instagram.COM"),
        TLS_Ext_SupportedVersion_CH(versions=[0x0304]),
        record_version=0x0303,
    ),
}


@pytest.mark.parametrize("record", ORACLE_RECORDS.values(), ids=ORACLE_RECORDS.keys())
def test_parse_client_hello_records_agrees_with_scapy(record):
    hello = parse_client_hello_records(record)
    assert hello is not None
    assert hello.sni == scapy_sni(record)


@given(st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?(\.[a-z]{2,10}){1,3}", fullmatch=True))
def test_parse_client_hello_records_agrees_with_scapy_on_any_name(name):
    record = client_hello_record(sni_ext(name.encode()))
    hello = parse_client_hello_records(record)
    assert hello is not None
    assert hello.sni == scapy_sni(record) == name


# --- arbitrary input ------------------------------------------------------------------------


@given(st.binary(max_size=300))
def test_parse_client_hello_message_arbitrary_bytes(data):
    try:
        result = parse_client_hello_message(data)
    except ValueError:
        return
    assert result is None or isinstance(result, ClientHello)


@given(st.binary(max_size=300))
def test_parse_client_hello_records_arbitrary_bytes(data):
    try:
        result = parse_client_hello_records(data)
    except ValueError:
        return
    assert result is None or isinstance(result, ClientHello)


@given(st.binary(max_size=200), st.integers(min_value=0, max_value=len(RECORD) - 1))
def test_parse_client_hello_records_mutated_record(garbage, at):
    """Bytes of a real record overwritten from some offset: still value/None/ValueError."""
    data = RECORD[:at] + garbage
    try:
        result = parse_client_hello_records(data)
    except ValueError:
        return
    assert result is None or isinstance(result, ClientHello)


def outcome(read, *args):
    """What a reader gives: its value, or the ValueError's text."""
    try:
        return read(*args)
    except ValueError as e:
        return f"ValueError: {e}"


@given(
    st.binary(max_size=200),
    st.integers(min_value=0, max_value=len(RECORD) - 1),
    st.integers(min_value=0, max_value=len(RECORD) - 1),
    st.integers(min_value=1, max_value=255),
)
def test_compiled_readers_agree_with_python_on_damaged_records(garbage, at, flip_at, flip):
    """The twin gives what the Python readers give, errors word for word, on records with a
    flipped byte or a replaced tail, whole or as messages."""
    twin = compiled_or_skip("monitor.compiled.tls")
    flipped = bytearray(RECORD)
    flipped[flip_at] ^= flip
    for data in (RECORD[:at] + garbage, bytes(flipped), garbage):
        for name, args in (
            ("parse_client_hello_records", (data,)),
            ("parse_client_hello_message", (data[5:],)),
            ("find_client_hello_record", (data, at - 3)),
        ):
            python_reader = getattr(tls_module, name)
            assert outcome(getattr(twin, name), *args) == outcome(python_reader, *args), name


@given(st.binary(max_size=200), st.integers(min_value=-3, max_value=210))
def test_find_client_hello_record_arbitrary_bytes(data, start):
    found = find_client_hello_record(data, start)
    assert found == -1 or max(start, 0) <= found < len(data)


@given(st.integers(min_value=1, max_value=120), st.binary(max_size=20))
def test_find_then_parse_finds_a_record_after_any_preamble(size, preamble):
    stream = preamble + split_records(MESSAGE, size)
    start = find_client_hello_record(stream)
    while True:
        assert 0 <= start <= len(preamble)
        try:
            hello = parse_client_hello_records(stream[start:])
        except ValueError:
            start = find_client_hello_record(stream, start + 1)
            continue
        if hello == EXPECTED:
            break
        start = find_client_hello_record(stream, start + 1)


# --- real captures: reassembly, scan, parse ------------------------------------------------


def capture_segments(path: Path) -> Iterator[tuple[FlowKey, float, int, int, bytes]]:
    """(flow, ts, seq, flags, payload) of every TCP segment, IPv4 or IPv6, in a capture.

    Test-only: scapy picks the link layer (Ethernet, DLT_NULL/Loopback, ...) and follows
    VLAN tags and GTP-U. The payload is the TCP data cut to the IP length.
    """
    with PcapReader(str(path)) as reader:
        for packet in reader:
            tcp = packet.getlayer(TCP)
            if tcp is None:
                continue
            ip = tcp.underlayer
            while ip is not None and not isinstance(ip, (IP, IPv6)):
                ip = ip.underlayer
            if ip is None:
                continue
            payload = bytes(tcp.original[tcp.dataofs * 4 :])
            flow = (str(ip.src), int(tcp.sport), str(ip.dst), int(tcp.dport))
            yield flow, float(packet.time), int(tcp.seq), int(tcp.flags), payload


def client_hellos_in_capture(path: Path) -> list[ClientHello]:
    """Reassemble every TCP flow, scan it for a ClientHello record and parse it, as the
    extractor would: stop at the first ClientHello of a flow, move past malformed ones."""
    streams = StreamReassembler()
    buffers: dict[FlowKey, bytes] = {}
    hellos: list[ClientHello] = []
    for flow, ts, seq, flags, payload in capture_segments(path):
        data = streams.feed(flow, ts, seq, flags, payload)
        if streams.skipped_gap:
            buffers.pop(flow, None)
        if not data:
            continue
        stream = buffers[flow] = buffers.get(flow, b"") + data
        start = find_client_hello_record(stream)
        while start >= 0:
            try:
                hello = parse_client_hello_records(stream[start:])
            except ValueError:
                start = find_client_hello_record(stream, start + 1)
                continue
            if hello is not None:
                hellos.append(hello)
                streams.forget(flow)
                buffers.pop(flow, None)
            break
    return hellos


CAPTURES = [
    "sv-tls-ch-frag-mtu300",  # one ClientHello over 3 segments
    "zeek-tls-fragmented-handshake",  # SNI is an IP literal
    "zeek-tls13-kyber-large-ch",  # 1,751-byte post-quantum ClientHello
    "ndpi-tls-2-reasms",
    "ndpi-tls-2-reasms-b",  # retransmitted SYN-ACK
    "ndpi-tls-huge-ch",  # 11,418-byte ClientHello over 12 segments, no SNI
    "ndpi-tls-invalid-reads",  # malformed extensions after the SNI; GTP-U, QinQ
    "ndpi-tls-multi-synack",  # SYN-ACKs with different ISNs
    "zeek-tls-socks",  # ClientHello after a SOCKS5 handshake
    "zeek-tls13-ech",  # ECH: outer SNI
    "ndpi-tls-ech",  # ECH over IPv6
    "zeek-tls-rdp-to-ssl",  # ClientHello after RDP negotiation; SNI an IP literal
    "zeek-sslv3",  # SSLv2-compatible and SSLv3 hellos, no SNI
    "zeek-tls-smtp-starttls",  # ClientHello after SMTP STARTTLS, no SNI
    "sv-tls-duplicate-hello",  # DLT_NULL; two ClientHellos on one connection
    "sv-tls-subjectaltname",  # an out-of-window RST before a retransmitted SYN
]


@pytest.mark.parametrize("name", CAPTURES)
def test_client_hellos_in_capture_match_the_peer(name):
    path = next(PCAPS.glob(f"{name}.pcap*"))
    expected = json.loads((PCAPS / "expected" / f"{name}.json").read_text())
    hellos = client_hellos_in_capture(path)
    assert hellos, "the capture holds at least one ClientHello"
    assert {hello.sni for hello in hellos if hello.sni is not None} == set(expected["sni"])


@pytest.mark.parametrize(
    ("name", "ech"),
    [
        ("zeek-tls13-ech", True),
        ("ndpi-tls-ech", True),
        # Chrome 125 sends GREASE ECH (a 0xfe0d extension made to look real): present is present.
        ("zeek-tls13-kyber-large-ch", True),
        ("sv-tls-ch-frag-mtu300", False),
    ],
)
def test_client_hellos_in_capture_ech_flag(name, ech):
    hellos = client_hellos_in_capture(next(PCAPS.glob(f"{name}.pcap*")))
    assert {hello.has_ech for hello in hellos} == {ech}


def test_client_hellos_in_capture_reads_post_quantum_key_share():
    hellos = client_hellos_in_capture(PCAPS / "zeek-tls13-kyber-large-ch.pcap")
    assert [(h.sni, h.alpn) for h in hellos] == [("lh3.google.com", ("h2", "http/1.1"))]


def test_post_quantum_client_hello_built_by_scapy_parses():
    record = client_hello_record(
        sni_ext(b"www.tiktok.com"),
        TLS_Ext_KeyShare_CH(client_shares=[KeyShareEntry(group=0x11EC, key_exchange=bytes(1216))]),
        TLS_Ext_Unknown(type=0xFE0D, val=bytes(200)),
    )
    assert len(record) > 1400
    assert parse_client_hello_records(record) == ClientHello("www.tiktok.com", True, (), 0x0303)
