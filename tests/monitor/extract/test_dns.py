"""Specification of the DNS reader: names, compression, damage, answers, TCP framing, captures."""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import json
import struct
from pathlib import Path

import dns.message
import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.utils import rdpcap

from monitor.extract.dns import (
    DNS_PORTS,
    LLMNR_PORT,
    MDNS_PORT,
    DnsMessage,
    cname_chain,
    is_local_resolution,
    parse_dns_message,
    split_tcp_dns_stream,
)
from tests.data.tshark_names import as_tshark_prints, label_bytes

PCAPS = Path(__file__).parents[2] / "data" / "pcaps"

# A query for www.Example.com (type A), field by field.
QUERY = bytes.fromhex(
    "1234 0100"  # ID, flags: query, opcode 0, RD
    "0001 0000 0000 0000"  # QDCOUNT 1, ANCOUNT 0, NSCOUNT 0, ARCOUNT 0
    "03 777777 07 4578616d706c65 03 636f6d 00"  # www.Example.com (mixed case on the wire)
    "0001 0001"  # QTYPE A, QCLASS IN
)

# The answer to an Instagram lookup: two CNAMEs, then two A records, all owners compressed.
RESPONSE = bytes.fromhex(
    "abcd 8180"  # ID, flags: response, RD, RA, rcode 0
    "0001 0004 0000 0000"  # QDCOUNT 1, ANCOUNT 4
    "03 777777 09 696e7374616772616d 03 636f6d 00 0001 0001"  # @12 www.instagram.com A IN
    "c00c 0005 0001 0000012c 000c"  # @35 answer 1: www.instagram.com CNAME, RDLENGTH 12
    "09 7a2d70342d63313072 c010"  # @47 z-p4-c10r + pointer to @16 instagram.com
    "c02f 0005 0001 0000012c 0010"  # @59 answer 2: owner @47 CNAME, RDLENGTH 16
    "04 73746172 08 66616365626f6f6b c01a"  # @71 star.facebook + pointer to @26 com
    "c047 0001 0001 0000003c 0004 9df001ae"  # @87 answer 3: owner @71 A 157.240.1.174
    "c047 0001 0001 0000003c 0004 9df001af"  # @103 answer 4: owner @71 A 157.240.1.175
)
RESPONSE_MESSAGE = DnsMessage(
    is_response=True,
    opcode=0,
    rcode=0,
    questions=("www.instagram.com",),
    cnames=(
        ("www.instagram.com", "z-p4-c10r.instagram.com"),
        ("z-p4-c10r.instagram.com", "star.facebook.com"),
    ),
    addresses=(("star.facebook.com", "157.240.1.174"), ("star.facebook.com", "157.240.1.175")),
)


def header(*, flags: int = 0x0100, qd: int = 1, an: int = 0, ns: int = 0, ar: int = 0) -> bytes:
    return struct.pack("!6H", 0x1234, flags, qd, an, ns, ar)


def labels(*parts: bytes) -> bytes:
    """Uncompressed wire form of a name made of ``parts``."""
    return b"".join(bytes([len(part)]) + part for part in parts) + b"\0"


def question(wire_name: bytes) -> bytes:
    return wire_name + b"\x00\x01\x00\x01"


def query(*wire_names: bytes) -> bytes:
    return header(qd=len(wire_names)) + b"".join(question(name) for name in wire_names)


# --- the header and the question section ---------------------------------------------------


def test_parse_dns_message_reads_query() -> None:
    assert parse_dns_message(QUERY) == DnsMessage(
        is_response=False,
        opcode=0,
        rcode=0,
        questions=("www.example.com",),
        cnames=(),
        addresses=(),
    )


def test_parse_dns_message_reads_response_cnames_and_addresses() -> None:
    assert parse_dns_message(RESPONSE) == RESPONSE_MESSAGE


def test_parse_dns_message_reads_opcode_and_rcode() -> None:
    notify_refused = header(flags=0x8000 | (4 << 11) | 5) + question(labels(b"example", b"org"))
    message = parse_dns_message(notify_refused)
    assert (message.is_response, message.opcode, message.rcode) == (True, 4, 5)


def test_parse_dns_message_accepts_empty_message() -> None:
    """QDCOUNT 0 with no records is valid DNS (mDNS answers without questions look like this)."""
    assert parse_dns_message(header(qd=0)).questions == ()


def test_parse_dns_message_keeps_every_question_in_order() -> None:
    message = parse_dns_message(query(labels(b"b", b"example"), labels(b"a", b"example")))
    assert message.questions == ("b.example", "a.example")


@pytest.mark.parametrize(
    ("wire_name", "expected"),
    [
        (b"\0", "."),
        (labels(b"WWW", b"Example", b"COM"), "www.example.com"),
        (labels(b"_sip", b"_udp", b"example"), "_sip._udp.example"),
        (labels(b"*", b"teams", b"microsoft", b"com"), "*.teams.microsoft.com"),
        # Bytes outside printable ASCII: three-digit octal, as tshark prints them.
        (labels(b"a\x04\x05\x06b", b"cn"), "a\\004\\005\\006b.cn"),
        (labels(b"in-a\x1adr", b"arpa"), "in-a\\032dr.arpa"),
        (labels(b"caf\xe9", b"fr"), "caf\\351.fr"),
        (labels(b"a\x7fb"), "a\\177b"),
        (labels(b"%s\x00", b"dk"), "%s\\000.dk"),
        # A dot or backslash inside a label is escaped, so the text maps back to one name.
        (labels(b"a.b", b"com"), "a\\.b.com"),
        (labels(b"arp\\"), "arp\\\\"),
        # Space is printable ASCII and stays, as in tshark; only ASCII letters are folded.
        (labels(b"Sam's Mac", b"local"), "sam's mac.local"),
        (labels(b"\xc3\x89T\xc3\xa9"), "\\303\\211t\\303\\251"),
    ],
)
def test_parse_dns_message_presents_names(wire_name: bytes, expected: str) -> None:
    assert parse_dns_message(query(wire_name)).questions == (expected,)


def test_parse_dns_message_escapes_like_tshark_on_invalid_chars_capture() -> None:
    """ndpi-dns-invalid-chars: tshark printed exactly these names."""
    payloads = [payload for _, payload in dns_payloads("ndpi-dns-invalid-chars.pcap")]
    names = {name for payload in payloads for name in parse_dns_message(payload).questions}
    assert names == {
        "www.allyourba\\004\\005\\006arebelongto.cn",
        "www.allyourbasesare\\001\\002\\003ongto.cn",
    }


def test_parse_dns_message_octal_escapes_differ_from_dnspython_decimal() -> None:
    """dnspython writes ``\\DDD`` in decimal; we follow tshark's octal. Both mean byte 0x1a."""
    wire_name = labels(b"in-a\x1adr", b"arpa")
    ours = parse_dns_message(query(wire_name)).questions[0]
    theirs = dns.name.from_wire(question(wire_name), 0)[0].to_text(omit_final_dot=True)
    assert (ours, theirs) == ("in-a\\032dr.arpa", "in-a\\026dr.arpa")
    assert label_bytes(ours) == list(dns.name.from_text(theirs).labels[:-1])


# --- compression ---------------------------------------------------------------------------


def test_parse_dns_message_follows_backward_pointers() -> None:
    data = query(labels(b"example", b"com"), b"\x03www\xc0\x0c")  # second: www + ptr to @12
    assert parse_dns_message(data).questions == ("example.com", "www.example.com")


def test_parse_dns_message_follows_chains_of_backward_pointers() -> None:
    """zeek-dns-max-compression-depth: each owner points at the previous pointer (depth 6)."""
    payloads = [payload for _, payload in dns_payloads("zeek-dns-max-compression-depth.pcap")]
    message = parse_dns_message(payloads[0])
    assert message.questions == ("a",)
    assert message.addresses == tuple(("a", f"127.0.0.{n}") for n in range(1, 8))


def test_parse_dns_message_skips_question_with_forward_pointer() -> None:
    """sv-dns-forward-pointer frame 1: question 1 points forward at question 2.

    tshark follows the forward pointer and shows codemonkey.net twice; we refuse the pointer,
    leave question 1 out and still read question 2, so the set of names is the same.
    """
    data = bytes.fromhex(
        "8e04 0100 0002 0000 0000 0000"  # query, QDCOUNT 2
        "c012 0001 0001"  # @12 question 1: pointer to @18 (forward)
        "0a636f64656d6f6e6b6579 036e6574 00 0001 0001"  # @18 question 2: codemonkey.net
    )
    assert parse_dns_message(data).questions == ("codemonkey.net",)


@pytest.mark.parametrize(
    ("data", "where"),
    [
        (header() + b"\xc0\x0c\x00\x01\x00\x01", "to 12 does not point before 12"),  # self
        (header() + b"\xc0\x0e\xc0\x0c\x00\x01\x00\x01", "to 14 does not point before 12"),
        (header() + b"\x01a\xc0\x0c\x00\x01\x00\x01", "to 12 does not point before 12"),  # loop
        (header() + b"\xff\xff\x00\x01\x00\x01", "to 16383 does not point before 12"),
    ],
)
def test_parse_dns_message_rejects_pointers_that_do_not_point_back(data: bytes, where: str) -> None:
    with pytest.raises(ValueError, match=where):
        parse_dns_message(data)


def test_parse_dns_message_rejects_zlip_pointer_loop() -> None:
    """td-dns-zlip-1's DNS bytes (tshark sees none: the UDP length is 8); a pointer loop."""
    data = bytes.fromhex("ed6900000001000000000000c00cc007c010c017c020c027c030c0ffcf000000010001")
    with pytest.raises(ValueError, match="does not point before"):
        parse_dns_message(data)


def test_parse_dns_message_rejects_too_many_pointers() -> None:
    """Question 1 is ``a``; question k + 1 points at question k, so it needs k pointers."""
    body = question(labels(b"a"))  # @12, 7 bytes
    for index in range(200):
        target = 12 if index == 0 else 19 + (index - 1) * 6
        body += struct.pack("!H", 0xC000 | target) + b"\0\x01\0\x01"
    message = parse_dns_message(header(qd=201) + body)
    assert message.questions == ("a",) * 128  # the question, then chains of 1..127 pointers


@pytest.mark.parametrize("label_type", [0x40, 0x80])
def test_parse_dns_message_rejects_extended_label_types(label_type: int) -> None:
    data = header() + bytes([label_type | 1]) + b"\x00\x00\x00\x01\x00\x01"
    with pytest.raises(ValueError, match=f"extended label type 0x{label_type:02x}"):
        parse_dns_message(data)


def test_parse_dns_message_keeps_questions_before_extended_label() -> None:
    data = header(qd=2) + question(labels(b"ok", b"example")) + b"\x41\x00\x00\x01\x00\x01"
    assert parse_dns_message(data).questions == ("ok.example",)


# --- length limits -------------------------------------------------------------------------


def name_of_wire_length(length: int) -> bytes:
    parts: list[bytes] = []
    remaining = length - 1
    while remaining:
        size = min(63, remaining - 1)
        parts.append(b"a" * size)
        remaining -= size + 1
    wire = labels(*parts)
    assert len(wire) == length
    return wire


def test_parse_dns_message_accepts_255_byte_name() -> None:
    (name,) = parse_dns_message(query(name_of_wire_length(255))).questions
    assert len(name) == 253


@pytest.mark.parametrize("length", [256, 300])
def test_parse_dns_message_refuses_longer_names_like_tshark(length: int) -> None:
    """tshark prints <Name too long> from 256 wire bytes on (checked with tshark 4.0.17)."""
    with pytest.raises(ValueError, match="longer than 255 bytes"):
        parse_dns_message(query(name_of_wire_length(length)))
    data = query(name_of_wire_length(length), labels(b"next", b"example"))
    assert parse_dns_message(data).questions == ("next.example",)


def test_parse_dns_message_keeps_name_before_long_question() -> None:
    """ndpi-malformed-dns: www.xt.com, then a question name far over 255 bytes (<Name too long>)."""
    payloads = [payload for _, payload in dns_payloads("ndpi-malformed-dns.pcap")]
    assert {parse_dns_message(payload).questions[0] for payload in payloads} == {"www.xt.com"}
    assert {parse_dns_message(payload).questions for payload in payloads} == {("www.xt.com",)}


def test_parse_dns_message_label_length_64_is_an_extended_type() -> None:
    """63 bytes is the longest label; a length byte of 64 is label type 0x40."""
    assert parse_dns_message(query(labels(b"a" * 63))).questions == ("a" * 63,)
    with pytest.raises(ValueError, match="extended label type 0x40"):
        parse_dns_message(header() + b"\x40" + b"a" * 64 + b"\0\0\x01\0\x01")


# --- not DNS, or cut short ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "where"),
    [
        (b"", "header: 0 bytes < 12"),
        (QUERY[:11], "header: 11 bytes < 12"),
        (header(qd=40000) + bytes(18), "40000 questions cannot fit in the 18 bytes"),
        (header(qd=2) + question(b"\0"), "2 questions cannot fit in the 5 bytes"),
        (header() + b"\x07abcde", "question #1: name at offset 12: runs past the end"),
        (header() + labels(b"abc") + b"\x00\x01\x00", "question #1: QTYPE/QCLASS cut at 20"),
    ],
)
def test_parse_dns_message_rejects(data: bytes, where: str) -> None:
    with pytest.raises(ValueError, match=where):
        parse_dns_message(data)


def test_parse_dns_message_rejects_junk_on_port_53() -> None:
    """sv-dns-udp-junk-first frame 1: an SNMP-like blob claiming 816 questions in 54 bytes."""
    (first, *_rest) = [payload for _, payload in dns_payloads("sv-dns-udp-junk-first.pcap")]
    with pytest.raises(ValueError, match="816 questions cannot fit"):
        parse_dns_message(first)


@pytest.mark.parametrize("data", [QUERY, RESPONSE], ids=["query", "response"])
def test_parse_dns_message_prefixes_give_value_or_value_error(data: bytes) -> None:
    """Every prefix raises, or keeps the full questions and a prefix of the answers."""
    full = parse_dns_message(data)
    for end in range(len(data)):
        try:
            message = parse_dns_message(data[:end])
        except ValueError:
            continue
        assert message.questions == full.questions
        assert full.cnames[: len(message.cnames)] == message.cnames
        assert full.addresses[: len(message.addresses)] == message.addresses


def test_parse_dns_message_truncated_response_keeps_question_and_complete_answers() -> None:
    cut = RESPONSE[: len(RESPONSE) - 3]  # the last A record loses its last bytes
    assert parse_dns_message(cut) == DnsMessage(
        is_response=True,
        opcode=0,
        rcode=0,
        questions=RESPONSE_MESSAGE.questions,
        cnames=RESPONSE_MESSAGE.cnames,
        addresses=RESPONSE_MESSAGE.addresses[:1],
    )


# --- answers -------------------------------------------------------------------------------


def response(*records: bytes, an: int | None = None) -> bytes:
    count = len(records) if an is None else an
    return (
        header(flags=0x8180, an=count) + question(labels(b"host", b"example")) + b"".join(records)
    )


def record(rtype: int, rdata: bytes, *, owner: bytes = b"\xc0\x0c", rclass: int = 1) -> bytes:
    return owner + struct.pack("!HHIH", rtype, rclass, 60, len(rdata)) + rdata


def test_parse_dns_message_reads_aaaa_in_rfc5952_text() -> None:
    packed = ipaddress.IPv6Address("2a03:2880:f20c:e3:face:b00c:0:4420").packed
    message = parse_dns_message(response(record(28, packed)))
    assert message.addresses == (("host.example", "2a03:2880:f20c:e3:face:b00c:0:4420"),)


def test_parse_dns_message_accepts_mdns_cache_flush_class() -> None:
    message = parse_dns_message(response(record(1, bytes([10, 0, 0, 7]), rclass=0x8001)))
    assert message.addresses == (("host.example", "10.0.0.7"),)


@pytest.mark.parametrize(
    "bad",
    [
        record(1, bytes([10, 0, 0, 1]), rclass=3),  # CHAOS class: not an Internet address
        record(1, bytes(5)),  # A with 5 bytes
        record(28, bytes(4)),  # AAAA with 4 bytes
        record(5, labels(b"x") + b"junk"),  # CNAME whose name does not fill the RDATA
        record(5, b"\xc0\xff"),  # CNAME target pointing forward
        record(16, b"\x05hello"),  # TXT: not read
        record(1, bytes(4), owner=b"\xc0\x40"),  # owner pointing forward
    ],
)
def test_parse_dns_message_skips_records_it_cannot_use(bad: bytes) -> None:
    good = record(1, bytes([192, 0, 2, 1]))
    assert parse_dns_message(response(bad, good)).addresses == (("host.example", "192.0.2.1"),)


@pytest.mark.parametrize(
    "damage",
    [
        record(1, bytes(4))[:-2],  # RDLENGTH past the end
        b"\xc0",  # owner cut
        b"\xc0\x0c\x00\x01",  # fixed part cut
    ],
)
def test_parse_dns_message_reads_answers_up_to_truncation(damage: bytes) -> None:
    good = record(1, bytes([192, 0, 2, 1]))
    message = parse_dns_message(response(good, damage, an=3))
    assert message.questions == ("host.example",)
    assert message.addresses == (("host.example", "192.0.2.1"),)


def test_parse_dns_message_stops_answers_at_undelimited_owner() -> None:
    """An extended label type leaves the record's end unknown: nothing after it is read."""
    good = record(1, bytes([192, 0, 2, 1]))
    message = parse_dns_message(response(good, b"\x41\x00" + bytes(10), good))
    assert message.addresses == (("host.example", "192.0.2.1"),)


@pytest.mark.parametrize(
    "capture",
    [
        "sv-dns-corrupt-additionals.pcap",
        "zeek-dns-edns-bad-length.pcap",
        "zeek-dns-svcb-rdlength-mismatch.pcap",
    ],
)
def test_parse_dns_message_ignores_damage_after_the_answers(capture: str) -> None:
    """Corrupt additional records, an EDNS option of bad length, an SVCB RDLENGTH mismatch."""
    names = {n for _, p in dns_payloads(capture) for n in parse_dns_message(p).questions}
    assert names
    assert names == expected_names(capture)


def test_parse_dns_message_reads_no_answers_in_queries() -> None:
    as_query = bytearray(response(record(1, bytes(4))))
    as_query[2] &= 0x7F
    assert parse_dns_message(bytes(as_query)).addresses == ()


# --- dnspython as an oracle ----------------------------------------------------------------

LABEL = st.binary(min_size=1, max_size=20)
NAME = st.lists(LABEL, min_size=1, max_size=5).filter(
    lambda parts: sum(len(p) + 1 for p in parts) < 200
)


@given(st.lists(NAME, min_size=1, max_size=3))
def test_parse_dns_message_questions_match_dnspython(names: list[list[bytes]]) -> None:
    """Any label bytes, compressed by dnspython where names share suffixes."""
    message = dns.message.Message(id=7)
    for parts in names:
        message.find_rrset(
            message.question,
            dns.name.Name([*parts, b""]),
            dns.rdataclass.IN,
            dns.rdatatype.A,
            create=True,
        )
    wire = message.to_wire()
    parsed = parse_dns_message(wire)
    reference = dns.message.from_wire(wire)
    assert [label_bytes(name) for name in parsed.questions] == [
        [label.lower() for label in rrset.name.labels[:-1]] for rrset in reference.question
    ]


@given(
    st.lists(st.from_regex(r"[a-z0-9]{1,10}", fullmatch=True), min_size=1, max_size=4),
    st.lists(st.binary(min_size=16, max_size=16), max_size=3, unique=True),
    st.lists(st.binary(min_size=4, max_size=4), max_size=3, unique=True),
)
def test_parse_dns_message_answers_match_dnspython(
    chain: list[str], v6: list[bytes], v4: list[bytes]
) -> None:
    names = [f"n{index}.{label}.example" for index, label in enumerate(chain)]
    reply = dns.message.make_response(dns.message.make_query(names[0], "A"))
    for owner, target in zip(names, names[1:], strict=False):
        reply.answer.append(dns.rrset.from_text(owner + ".", 60, "IN", "CNAME", target + "."))
    for packed in v6:
        reply.answer.append(
            dns.rrset.from_text(
                names[-1] + ".", 60, "IN", "AAAA", str(ipaddress.IPv6Address(packed))
            )
        )
    for packed in v4:
        reply.answer.append(
            dns.rrset.from_text(names[-1] + ".", 60, "IN", "A", str(ipaddress.IPv4Address(packed)))
        )
    parsed = parse_dns_message(reply.to_wire())
    assert parsed.questions == (names[0],)
    assert parsed.cnames == tuple(zip(names, names[1:], strict=False))
    assert cname_chain(parsed, names[0]) == tuple(names[1:])
    assert sorted(parsed.addresses) == sorted(
        (names[-1], str(ipaddress.ip_address(packed))) for packed in [*v6, *v4]
    )


@given(st.binary(max_size=300))
def test_parse_dns_message_arbitrary_bytes_give_message_or_value_error(data: bytes) -> None:
    try:
        message = parse_dns_message(data)
    except ValueError:
        return
    assert isinstance(message, DnsMessage)


@given(st.binary(max_size=120), st.integers(min_value=0, max_value=4))
def test_parse_dns_message_mutated_response_gives_message_or_value_error(
    junk: bytes, mode: int
) -> None:
    cut = len(junk) % len(RESPONSE)
    data = RESPONSE[:cut] + junk if mode else junk + RESPONSE[cut:]
    with contextlib.suppress(ValueError):
        parse_dns_message(data)


# --- DNS over TCP --------------------------------------------------------------------------


def framed(*messages: bytes) -> bytes:
    return b"".join(struct.pack("!H", len(message)) + message for message in messages)


def test_split_tcp_dns_stream_returns_complete_messages() -> None:
    stream = framed(QUERY, RESPONSE)
    assert split_tcp_dns_stream(stream) == ([QUERY, RESPONSE], len(stream))


@pytest.mark.parametrize("cut", [0, 1, 2, 10, len(RESPONSE) + 1])
def test_split_tcp_dns_stream_keeps_incomplete_tail(cut: int) -> None:
    stream = framed(QUERY) + framed(RESPONSE)[:cut]
    assert split_tcp_dns_stream(stream) == ([QUERY], len(QUERY) + 2)


def test_split_tcp_dns_stream_joins_segments() -> None:
    stream = framed(QUERY, RESPONSE)
    messages, used = split_tcp_dns_stream(stream[:40])
    rest = stream[used:40] + stream[40:]
    more, used_more = split_tcp_dns_stream(rest)
    assert (messages + more, used_more) == ([QUERY, RESPONSE], len(rest))


def test_split_tcp_dns_stream_rejects_length_shorter_than_header() -> None:
    with pytest.raises(ValueError, match="offset 0: length 3 < 12-byte header"):
        split_tcp_dns_stream(b"\x00\x03abc")
    # After good messages, those come back first; the next call raises.
    messages, used = split_tcp_dns_stream(framed(QUERY) + b"\x00\x00")
    assert (messages, used) == ([QUERY], len(QUERY) + 2)


@given(st.binary(max_size=200))
def test_split_tcp_dns_stream_arbitrary_bytes(stream: bytes) -> None:
    try:
        messages, used = split_tcp_dns_stream(stream)
    except ValueError:
        return
    assert framed(*messages) == stream[:used]


# --- CNAME chains and ports ----------------------------------------------------------------


def message_with_cnames(*pairs: tuple[str, str]) -> DnsMessage:
    return DnsMessage(True, 0, 0, ("a.example",), tuple(pairs), ())


@pytest.mark.parametrize(
    ("pairs", "start", "chain"),
    [
        ((), "a.example", ()),
        (
            (("a.example", "b.example"), ("b.example", "c.example")),
            "a.example",
            ("b.example", "c.example"),
        ),
        (
            (("b.example", "c.example"), ("a.example", "b.example")),
            "A.Example.",
            ("b.example", "c.example"),
        ),
        (
            (("a.example", "b.example"), ("b.example", "a.example")),
            "a.example",
            ("b.example",),
        ),  # loop
        ((("a.example", "a.example"),), "a.example", ()),  # self loop
        ((("a.example", "b.example"), ("a.example", "x.example")), "a.example", ("b.example",)),
        ((("x.example", "y.example"),), "a.example", ()),  # unrelated
    ],
)
def test_cname_chain(
    pairs: tuple[tuple[str, str], ...], start: str, chain: tuple[str, ...]
) -> None:
    assert cname_chain(message_with_cnames(*pairs), start) == chain


def test_dns_ports_and_local_resolution() -> None:
    assert MDNS_PORT == 5353
    assert LLMNR_PORT == 5355
    assert frozenset({53, 5353, 5355}) == DNS_PORTS
    assert [is_local_resolution(port) for port in (53, 5353, 5355, 8053)] == [
        False,
        True,
        True,
        False,
    ]


# --- the reference captures ----------------------------------------------------------------


def test_as_tshark_prints_reproduces_tshark_choices() -> None:
    assert as_tshark_prints("_sip._udp.s\\015p.cibercity.dk") == "_sip._udp.s\\rp.cibercity.dk"
    assert as_tshark_prints("1.0.0.127.in-addr.arp\\\\") == "1.0.0.127.in-addr.arp\\"
    assert as_tshark_prints("reg.sip\\272star.com") == "reg.sip\ufffdstar.com"
    assert as_tshark_prints("in-a\\032dr.arpa") == "in-a\\032dr.arpa"


@functools.cache
def dns_payloads(capture: str) -> tuple[tuple[int, bytes], ...]:
    """(frame number, DNS message) for UDP and TCP on ports 53/5353/5355, IPv4 and IPv6.

    Test-only and simple: IP fragments are skipped (tshark waits for the other fragments), UDP
    payloads are cut to the UDP length, and TCP bytes are joined per direction in capture order.
    """
    found: list[tuple[int, bytes]] = []
    streams: dict[tuple[str, int, str, int], bytes] = {}
    for number, packet in enumerate(rdpcap(str(PCAPS / capture)), start=1):
        if IP in packet:
            ip = packet[IP]
            if ip.flags.MF or ip.frag:
                continue
        elif IPv6 not in packet:
            continue
        network = packet[IP] if IP in packet else packet[IPv6]
        if UDP in packet:
            udp = packet[UDP]
            if udp.sport in DNS_PORTS or udp.dport in DNS_PORTS:
                found.append((number, bytes(udp.payload)[: max(udp.len - 8, 0)]))
        elif TCP in packet:
            tcp = packet[TCP]
            if tcp.sport in DNS_PORTS or tcp.dport in DNS_PORTS:
                key = (network.src, tcp.sport, network.dst, tcp.dport)
                messages, used = split_tcp_dns_stream(streams.get(key, b"") + bytes(tcp.payload))
                streams[key] = (streams.get(key, b"") + bytes(tcp.payload))[used:]
                found.extend((number, message) for message in messages)
    return tuple(found)


def expected_names(capture: str) -> set[str]:
    expected = json.loads(
        (PCAPS / "expected" / capture.rsplit(".", 1)[0]).with_suffix(".json").read_text()
    )
    return {name.lower() for name in expected["dns_queries"]}


def names_in(capture: str) -> set[str]:
    names: set[str] = set()
    for _, payload in dns_payloads(capture):
        with contextlib.suppress(ValueError):
            names.update(parse_dns_message(payload).questions)
    return names


@pytest.mark.parametrize(
    "capture",
    [
        "ndpi-bad-dns-traffic.pcap",
        "ndpi-dns-invalid-chars.pcap",
        "ndpi-dns-long-domainname.pcap",
        "ndpi-malformed-dns.pcap",
        "sv-dns-bug-1158.pcap",
        "sv-dns-forward-pointer.pcap",
        "td-dns-badlabel.pcap",
        "td-dns-fwdptr.pcap",
        "td-dns-zlip-1.pcap",
        "td-dns-zlip-3.pcap",
        "zeek-dns-max-compression-depth.pcap",
        "sv-dns-tcp-multirequest.pcap",
        "sv-dns-corrupt-additionals.pcap",
        "zeek-dns-edns-bad-length.pcap",
        "zeek-dns-svcb-rdlength-mismatch.pcap",
        "sv-dns-udp-junk-first.pcap",
    ],
)
def test_question_names_match_peer(capture: str) -> None:
    assert {as_tshark_prints(name) for name in names_in(capture)} == expected_names(capture)


# Frames whose header claims more questions than the datagram can hold (frame 187: 29440
# questions in 32 bytes; 452: 100 in 51; 588: 12800 in 32). tshark decodes the first question
# anyway and then stops on the missing bytes; we reject such a header as not DNS, because a
# resolver would answer it with FORMERR and a junk datagram on port 53 looks exactly like this.
FUZZ_IMPOSSIBLE_HEADER_NAMES = {
    "_sip._udp.sip.sybertity.dk",
    "1.0.0.127.in-a\\032dr.arpa",
    "_sip._udp.sip.cybescity.dk",
}


def test_fuzz_capture_matches_peer_except_impossible_headers() -> None:
    """ndpi-fuzz-2006: mangled DNS on many ports; every port 53/5353/5355 datagram is read."""
    ours = {as_tshark_prints(name) for name in names_in("ndpi-fuzz-2006.pcap")}
    assert ours == expected_names("ndpi-fuzz-2006.pcap") - FUZZ_IMPOSSIBLE_HEADER_NAMES


def test_fuzz_capture_impossible_headers_are_rejected() -> None:
    rejected = {
        number: payload
        for number, payload in dns_payloads("ndpi-fuzz-2006.pcap")
        if number in (187, 452, 588)
    }
    assert sorted(rejected) == [187, 452, 588]
    for payload in rejected.values():
        with pytest.raises(ValueError, match="questions cannot fit"):
            parse_dns_message(payload)


def test_fuzz_capture_escapes_differ_from_tshark_only_in_form() -> None:
    """Names tshark prints lossily (\\r, a bare backslash, U+FFFD), which we print exactly."""
    ours = names_in("ndpi-fuzz-2006.pcap")
    assert {
        "_sip._udp.s\\015p.cibercity.dk",
        "1.0.0.127.in-addr.arp\\\\",
        "reg.sip\\272star.com",
    } <= ours


def test_parse_dns_message_gives_the_same_message_whatever_the_id() -> None:
    query = bytes.fromhex(
        "1234 0100 0001 0000 0000 0000"  # header: ID, RD, one question
        "03 777777 07 6578616d706c65 03 636f6d 00 0001 0001"  # www.example.com A IN
    )
    first = parse_dns_message(query)
    again = parse_dns_message(b"\xab\xcd" + query[2:])
    assert first == again == DnsMessage(False, 0, 0, ("www.example.com",), (), ())
    with pytest.raises(ValueError):
        parse_dns_message(query[:14])  # malformed: raises every time, not remembered
    with pytest.raises(ValueError):
        parse_dns_message(query[:14])
