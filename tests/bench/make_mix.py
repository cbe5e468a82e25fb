"""Deterministic generator of realistic mixed captures for the offline scan benchmark.

Why it exists: ``hallmonitor scan`` must find every name in gateway traffic and be many times
faster than tshark. Real school captures cannot be shared, so this module synthesises one:

- DNS queries and responses over UDP (IPv4 and IPv6; CNAME chains, A/AAAA answers, NXDOMAIN)
  and over TCP (length-prefixed, with the TCP handshake; some segments carry two queries);
- TLS 1.3 ClientHellos on port 443 in TCP flows, Chrome-like with a 1216-byte X25519MLKEM768
  key share and shuffled extensions; a fraction (``--split-fraction``) split over two TCP
  segments, the others in one (coalesced) segment; some with an ECH extension (the visible
  SNI is then the provider's public name);
- QUIC v1 Initials carrying a ClientHello, really encrypted per RFC 9001 (keys from a random
  DCID, AES-128-GCM, header protection), padded to at least 1200 bytes; a fraction
  (``--quic-split-fraction``) spread over two Initial packets, sometimes sent tail first or
  with CRYPTO frames out of order inside a packet; server Initials and 1-RTT packets follow;
- background: HTTPS bulk data on established TCP flows (1448-byte segments and ACKs),
  RTP-like UDP on high ports, ARP and ICMP echo.

Profiles: ``dense`` is what a sensor's kernel filter lets through (at least 60% of packets carry
or complete a name); ``bulk`` is a gateway mix where most packets are background (at most about
5% carry a name).

Run::

    python -m tests.bench.make_mix --profile dense --packets 200000 --out /tmp/dense.pcap [--seed 1]

Output: a classic pcap (LINKTYPE_ETHERNET, microsecond timestamps) and ``FILE.manifest.json``
with the sorted sets of expected DNS query names, TLS SNIs and QUIC SNIs, the packets per kind,
the number of name-bearing packets, and the name-bearing messages (DNS queries and responses,
TLS ClientHellos with and without ECH, QUIC ClientHellos). The same arguments give byte-identical files: all
randomness comes from one ``random.Random(seed)``, timestamps are synthetic, and AES-GCM is
deterministic for a given key and nonce.

Speed: no per-packet scapy. Headers are packed with ``struct`` and checksums (IPv4, UDP, TCP,
for both IP versions) are computed with the identity "the one's-complement sum of 16-bit words
is the big-endian integer modulo 0xFFFF"; 200k packets take 5-8 s here. The test
(``tests/bench/test_make_mix.py``) dissects a sample with scapy to check those headers.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import random
import struct
import sys
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MANIFEST_VERSION = 2
"""Bumped when the manifest's shape or the generated traffic changes."""

BASE_TS_US = 1_763_978_400 * 1_000_000
"""First packet time: Monday 2025-11-24 10:00:00 UTC (a school morning), in microseconds."""

PCAP_SNAPLEN = 262_144
LINKTYPE_ETHERNET = 1

TCP_FIN, TCP_SYN, TCP_RST, TCP_PSH, TCP_ACK = 0x01, 0x02, 0x04, 0x08, 0x10

QUIC_V1 = 0x00000001
QUIC_V1_SALT = bytes.fromhex("38762cf7f55934b34d179ae6a4c80cadccbb7f0a")
QUIC_MIN_DATAGRAM = 1200
"""RFC 9000 14.1: a client's Initial datagram is padded to at least this many bytes."""

TLS_MSS = 1448
"""Segment size of the servers' data (1460 minus a timestamp option, as seen on the wire)."""

GROUP_X25519MLKEM768 = 0x11EC
MLKEM_SHARE_BYTES = 1216
"""X25519MLKEM768 client key share: ML-KEM-768 encapsulation key (1184) + X25519 (32)."""

ECH_PUBLIC_NAME = "cloudflare-ech.com"
"""The outer SNI of ECH ClientHellos: the provider's public name, not the site's."""

SOCIAL_NAMES = (
    "www.instagram.com",
    "i.instagram.com",
    "graph.instagram.com",
    "scontent.cdninstagram.com",
    "scontent-lhr8-1.cdninstagram.com",
    "www.facebook.com",
    "graph.facebook.com",
    "edge-chat.facebook.com",
    "static.xx.fbcdn.net",
    "scontent-lhr6-2.xx.fbcdn.net",
    "connect.facebook.net",
    "www.tiktok.com",
    "m.tiktok.com",
    "v16-webapp-prime.tiktok.com",
    "p16-sign-va.tiktokcdn.com",
    "api.x.com",
    "x.com",
    "abs.twimg.com",
    "pbs.twimg.com",
    "web.snapchat.com",
    "app.snapchat.com",
    "www.youtube.com",
    "i.ytimg.com",
    "web.whatsapp.com",
    "www.reddit.com",
    "www.linkedin.com",
    "discord.com",
    "gateway.discord.gg",
    "www.pinterest.co.uk",
    "www.threads.net",
)
ORDINARY_NAMES = (
    "bbc.co.uk",
    "www.bbc.co.uk",
    "static.files.bbci.co.uk",
    "education.gov.uk",
    "www.gov.uk",
    "assets.publishing.service.gov.uk",
    "www.ofsted.gov.uk",
    "classroom.google.com",
    "docs.google.com",
    "www.google.com",
    "fonts.gstatic.com",
    "login.microsoftonline.com",
    "outlook.office365.com",
    "teams.microsoft.com",
    "graph.microsoft.com",
    "update.microsoft.com",
    "en.wikipedia.org",
    "upload.wikimedia.org",
    "ocsp.digicert.com",
    "www.bbc.com",
    "www.nationalarchives.gov.uk",
    "www.mathsisfun.com",
    "www.sparxmaths.uk",
    "app.seesaw.me",
    "www.theguardian.com",
    "api.weather.com",
    "time.apple.com",
    "mesu.apple.com",
    "clients4.google.com",
    "safebrowsing.googleapis.com",
)
RANDOM_NAME_BASES = (
    "cloudfront.net",
    "akamaihd.net",
    "s3.eu-west-2.amazonaws.com",
    "blob.core.windows.net",
    "cdn.jsdelivr.net",
    "sch.uk",
    "example-academy.org.uk",
    "googleusercontent.com",
)
_LABEL_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789"

DNS_A, DNS_CNAME, DNS_AAAA, DNS_OPT, DNS_HTTPS = 1, 5, 28, 41, 65

MESSAGE_KINDS = (
    "dns_query",
    "dns_response",
    "tls_client_hello",
    "tls_client_hello_ech",
    "quic_client_hello",
)
"""Counted in the manifest's ``messages``: what a scanner should report one observation for
(``tls_client_hello_ech`` is the subset of ``tls_client_hello`` with an ECH extension)."""

SESSION_KINDS = (
    "dns_udp",
    "dns_tcp",
    "tls",
    "quic",
    "tcp_bulk",
    "udp_noise",
    "arp",
    "icmp",
)


@dataclass(frozen=True)
class Profile:
    """How often each kind of conversation starts, and how long the flows run."""

    weights: dict[str, float]
    """Relative start rate per conversation kind (keys from ``SESSION_KINDS``)."""
    full_flows: bool
    """Whether TLS/QUIC flows carry data after the handshake (bulk) or stop near it (dense)."""
    concurrency: int
    """How many conversations are interleaved at once."""
    mean_gap_us: float
    """Mean time between packets."""


PROFILES = {
    "dense": Profile(
        weights={
            "dns_udp": 72,
            "dns_tcp": 2,
            "tls": 14,
            "quic": 10,
            "arp": 1,
            "icmp": 1,
        },
        full_flows=False,
        concurrency=16,
        mean_gap_us=200.0,
    ),
    "bulk": Profile(
        weights={
            "dns_udp": 30,
            "dns_tcp": 0.5,
            "tls": 6,
            "quic": 3,
            "tcp_bulk": 12,
            "udp_noise": 8,
            "arp": 3,
            "icmp": 2,
        },
        full_flows=True,
        concurrency=48,
        mean_gap_us=25.0,
    ),
}


@dataclass
class Conversation:
    """Frames of one exchange, in order, plus what the manifest must learn if it is used."""

    kind: str
    frames: list[bytes]
    names: list[tuple[str, str]] = field(default_factory=list)
    """(proto, name) pairs it shows: proto is ``dns``, ``tls`` or ``quic``."""
    name_bearing: int = 0
    """How many of its frames carry or complete a name."""
    messages: dict[str, int] = field(default_factory=dict)
    """Name-bearing messages it holds, by ``MESSAGE_KINDS`` key."""
    next_index: int = 0


# --- checksums and headers --------------------------------------------------------------


def _checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of ``data``."""
    if len(data) & 1:
        data += b"\x00"
    value = int.from_bytes(data, "big")
    total = value % 0xFFFF
    if total == 0 and value:
        total = 0xFFFF
    return ~total & 0xFFFF


def _pseudo_header(src: bytes, dst: bytes, proto: int, length: int) -> bytes:
    if len(src) == 4:
        return src + dst + struct.pack("!BBH", 0, proto, length)
    return src + dst + struct.pack("!I3xB", length, proto)


def _udp(src: bytes, dst: bytes, sport: int, dport: int, payload: bytes) -> bytes:
    length = 8 + len(payload)
    header = struct.pack("!HHH", sport, dport, length)
    csum = _checksum(_pseudo_header(src, dst, 17, length) + header + b"\0\0" + payload) or 0xFFFF
    return header + csum.to_bytes(2, "big") + payload


def _tcp(
    src: bytes,
    dst: bytes,
    ports: tuple[int, int],
    seq: int,
    ack: int,
    flags: int,
    payload: bytes,
    options: bytes = b"",
    window: int = 1024,
) -> bytes:
    offset = (20 + len(options)) // 4
    head = struct.pack(
        "!HHIIBBH",
        ports[0],
        ports[1],
        seq & 0xFFFFFFFF,
        ack & 0xFFFFFFFF if flags & TCP_ACK else 0,
        offset << 4,
        flags,
        window,
    )
    tail = b"\0\0" + options + payload
    length = len(head) + 2 + len(tail)
    csum = _checksum(_pseudo_header(src, dst, 6, length) + head + b"\0\0" + tail)
    return head + csum.to_bytes(2, "big") + tail


@dataclass(frozen=True)
class Host:
    """One end of a conversation as it appears on the school's LAN segment."""

    mac: bytes
    """The MAC in frames from this host: the device's own, or the gateway's for servers."""
    ip4: bytes
    ip6: bytes


# --- DNS --------------------------------------------------------------------------------


def _encode_name(name: str) -> bytes:
    return b"".join(bytes([len(label)]) + label.encode() for label in name.split(".")) + b"\0"


_OPT_RR = b"\x00" + struct.pack("!HHIH", DNS_OPT, 1232, 0, 0)


def build_dns_query(ident: int, name: str, qtype: int) -> bytes:
    """A recursive query with an EDNS OPT record, as stub resolvers send it."""
    header = struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 1)
    return header + _encode_name(name) + struct.pack("!HH", qtype, 1) + _OPT_RR


def build_dns_response(
    ident: int, name: str, qtype: int, cnames: list[str], addresses: list[bytes], rcode: int = 0
) -> bytes:
    """A response: the question, a CNAME chain, then addresses for the last name in the chain."""
    question = _encode_name(name) + struct.pack("!HH", qtype, 1)
    body = bytearray()
    owner = 12
    for target in cnames:
        encoded = _encode_name(target)
        body += struct.pack("!HHHIH", 0xC000 | owner, DNS_CNAME, 1, 300, len(encoded))
        owner = 12 + len(question) + len(body)
        body += encoded
    for address in addresses:
        rtype = DNS_A if len(address) == 4 else DNS_AAAA
        body += struct.pack("!HHHIH", 0xC000 | owner, rtype, 1, 60, len(address)) + address
    answers = len(cnames) + len(addresses)
    header = struct.pack("!HHHHHH", ident, 0x8180 | rcode, 1, answers, 0, 1)
    return header + question + bytes(body) + _OPT_RR


# --- TLS --------------------------------------------------------------------------------


def _ext(ext_type: int, body: bytes) -> bytes:
    return struct.pack("!HH", ext_type, len(body)) + body


def _vec16(body: bytes) -> bytes:
    return len(body).to_bytes(2, "big") + body


def _varint(value: int) -> bytes:
    if value < 0x40:
        return bytes([value])
    if value < 0x4000:
        return (0x4000 | value).to_bytes(2, "big")
    if value < 0x40000000:
        return (0x80000000 | value).to_bytes(4, "big")
    return (0xC000000000000000 | value).to_bytes(8, "big")


def _tls_record(content_type: int, version: int, body: bytes) -> bytes:
    return struct.pack("!BHH", content_type, version, len(body)) + body


def _handshake(msg_type: int, body: bytes) -> bytes:
    return bytes([msg_type]) + len(body).to_bytes(3, "big") + body


def _quic_transport_parameters(scid: bytes) -> bytes:
    params = (
        (0x01, _varint(30000)),
        (0x04, _varint(15728640)),
        (0x05, _varint(6291456)),
        (0x06, _varint(6291456)),
        (0x07, _varint(6291456)),
        (0x08, _varint(100)),
        (0x09, _varint(103)),
        (0x0F, scid),
        (0x2AB2, b""),  # a GREASE-style reserved parameter
    )
    return b"".join(_varint(pid) + _varint(len(val)) + val for pid, val in params)


@dataclass(frozen=True)
class HelloOptions:
    """What varies between generated ClientHellos."""

    sni: str
    post_quantum: bool
    ech: bool
    quic_scid: bytes | None = None
    """For QUIC: the client's source connection id (transport parameters); None for TLS."""


def build_client_hello(rng: random.Random, options: HelloOptions) -> bytes:
    """A Chrome-like ClientHello handshake message (no record header), extensions shuffled."""
    grease = [0x0A0A + 0x1010 * rng.randrange(16) for _ in range(4)]
    quic = options.quic_scid is not None
    name = options.sni.encode()
    groups = [grease[1], GROUP_X25519MLKEM768, 0x001D, 0x0017, 0x0018]
    shares = struct.pack("!HH", grease[1], 1) + b"\x00"
    if options.post_quantum:
        shares += struct.pack("!HH", GROUP_X25519MLKEM768, MLKEM_SHARE_BYTES)
        shares += rng.randbytes(MLKEM_SHARE_BYTES)
    else:
        groups.remove(GROUP_X25519MLKEM768)
    shares += struct.pack("!HH", 0x001D, 32) + rng.randbytes(32)
    alpn = [b"h3"] if quic else [b"h2", b"http/1.1"]
    sig_algs = (0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601)
    versions = b"\x02\x03\x04" if quic else b"\x06" + struct.pack("!HHH", grease[2], 0x0304, 0x0303)
    exts = [
        _ext(0x0000, _vec16(b"\x00" + _vec16(name))),
        _ext(0x0017, b""),
        _ext(0xFF01, b"\x00"),
        _ext(0x000A, _vec16(b"".join(g.to_bytes(2, "big") for g in groups))),
        _ext(0x000B, b"\x01\x00"),
        _ext(0x0023, b""),
        _ext(0x0010, _vec16(b"".join(bytes([len(p)]) + p for p in alpn))),
        _ext(0x0005, b"\x01\x00\x00\x00\x00"),
        _ext(0x000D, _vec16(b"".join(s.to_bytes(2, "big") for s in sig_algs))),
        _ext(0x0012, b""),
        _ext(0x0033, _vec16(shares)),
        _ext(0x002D, b"\x01\x01"),
        _ext(0x002B, versions),
        _ext(0x001B, b"\x02\x00\x02"),
        _ext(0x44CD, _vec16(bytes([len(alpn[0])]) + alpn[0])),
    ]
    if options.ech:
        payload = rng.randbytes(rng.choice((144, 176, 208, 240)))
        ech = b"\x00" + struct.pack("!HHB", 1, 1, rng.randrange(256))
        exts.append(_ext(0xFE0D, ech + _vec16(rng.randbytes(32)) + _vec16(payload)))
    if options.quic_scid is not None:
        exts.append(_ext(0x0039, _quic_transport_parameters(options.quic_scid)))
    rng.shuffle(exts)
    exts = [_ext(grease[0], b""), *exts, _ext(grease[3], b"\x00")]
    ciphers = [0x1301, 0x1302, 0x1303]
    if not quic:
        ciphers = [grease[0], *ciphers, 0xC02B, 0xC02F, 0xC02C, 0xC030, 0xCCA9, 0xCCA8]
        ciphers += [0xC013, 0xC014, 0x009C, 0x009D, 0x002F, 0x0035]
    session_id = b"" if quic else rng.randbytes(32)
    head = b"\x03\x03" + rng.randbytes(32) + bytes([len(session_id)]) + session_id
    head += _vec16(b"".join(c.to_bytes(2, "big") for c in ciphers)) + b"\x01\x00"
    ext_bytes = b"".join(exts)
    unpadded = 4 + len(head) + 2 + len(ext_bytes)
    if not quic and 0xFF < unpadded < 0x200:  # BoringSSL's padding extension
        pad = 0x200 - unpadded
        pad = pad - 4 if pad >= 5 else 1
        ext_bytes += _ext(0x0015, bytes(pad))
    return _handshake(1, head + _vec16(ext_bytes))


def build_server_hello(rng: random.Random, session_id: bytes) -> bytes:
    """A TLS 1.3 ServerHello handshake message (x25519, TLS_AES_128_GCM_SHA256)."""
    exts = _ext(0x002B, b"\x03\x04") + _ext(
        0x0033, struct.pack("!HH", 0x001D, 32) + rng.randbytes(32)
    )
    body = b"\x03\x03" + rng.randbytes(32) + bytes([len(session_id)]) + session_id
    body += b"\x13\x01\x00" + _vec16(exts)
    return _handshake(2, body)


# --- QUIC -------------------------------------------------------------------------------


def _hkdf_expand_label(secret: bytes, label: bytes, length: int) -> bytes:
    full = b"tls13 " + label
    info = struct.pack("!HB", length, len(full)) + full + b"\x00"
    return hmac.new(secret, info + b"\x01", hashlib.sha256).digest()[:length]


class QuicInitialKeys:
    """Initial packet protection for one direction (RFC 9001 5.2), from the original DCID."""

    def __init__(self, dcid: bytes, label: bytes) -> None:
        initial = hmac.new(QUIC_V1_SALT, dcid, hashlib.sha256).digest()
        secret = _hkdf_expand_label(initial, label, 32)
        self.aead = AESGCM(_hkdf_expand_label(secret, b"quic key", 16))
        self.iv = _hkdf_expand_label(secret, b"quic iv", 12)
        hp = _hkdf_expand_label(secret, b"quic hp", 16)
        self.hp = Cipher(algorithms.AES(hp), modes.ECB()).encryptor()

    def protect(self, header_prefix: bytes, pn: int, pn_len: int, plaintext: bytes) -> bytes:
        """Encrypt and header-protect; ``header_prefix`` ends with the Length field."""
        pn_bytes = pn.to_bytes(pn_len, "big")
        header = header_prefix + pn_bytes
        nonce = (int.from_bytes(self.iv, "big") ^ pn).to_bytes(12, "big")
        sealed = self.aead.encrypt(nonce, plaintext, header)
        sample = sealed[4 - pn_len : 20 - pn_len]
        mask = self.hp.update(sample)
        first = header[0] ^ (mask[0] & 0x0F)
        masked_pn = bytes(b ^ m for b, m in zip(pn_bytes, mask[1 : 1 + pn_len], strict=True))
        return bytes([first]) + header_prefix[1:] + masked_pn + sealed


def build_quic_initial(
    keys: QuicInitialKeys,
    dcid: bytes,
    scid: bytes,
    pn: int,
    pn_len: int,
    frames: bytes,
    min_size: int = QUIC_MIN_DATAGRAM,
) -> bytes:
    """One protected Initial packet carrying ``frames``, PADDING-padded to ``min_size`` bytes."""
    prefix = bytes([0xC0 | (pn_len - 1)]) + QUIC_V1.to_bytes(4, "big")
    prefix += bytes([len(dcid)]) + dcid + bytes([len(scid)]) + scid + b"\x00"
    fixed = len(prefix) + 2 + pn_len + 16
    if fixed + len(frames) < min_size:
        frames += bytes(min_size - fixed - len(frames))
    prefix += (0x4000 | (pn_len + len(frames) + 16)).to_bytes(2, "big")
    return keys.protect(prefix, pn, pn_len, frames)


def _crypto_frame(offset: int, data: bytes) -> bytes:
    return b"\x06" + _varint(offset) + _varint(len(data)) + data


# --- the generator ----------------------------------------------------------------------


class MixBuilder:
    """Builds conversations from one seeded random source; see the module docstring."""

    def __init__(
        self, profile: Profile, seed: int, split_fraction: float, quic_split_fraction: float
    ) -> None:
        self.profile = profile
        self.rng = random.Random(seed)
        self.split_fraction = split_fraction
        self.quic_split_fraction = quic_split_fraction
        self.pool = self.rng.randbytes(1 << 20)
        self.gateway = Host(bytes.fromhex("00163e5c0001"), bytes([10, 20, 0, 1]), _ip6(0x20, 1))
        ouis = ("3c22fb", "f4d488", "001b63", "a4c361", "e8d0fc", "70f087")
        self.clients = [
            Host(
                bytes.fromhex(ouis[i % len(ouis)]) + (0x100000 + i * 7919).to_bytes(3, "big"),
                bytes([10, 20, 1 + i // 250, 2 + i % 250]),
                _ip6(0x20, 0x1000 + i),
            )
            for i in range(600)
        ]
        self.resolvers = [
            (self.gateway.ip4, self.gateway.ip6),
            (bytes([8, 8, 8, 8]), bytes.fromhex("20014860486000000000000000008888")),
            (bytes([1, 1, 1, 1]), bytes.fromhex("26064700470000000000000000001111")),
        ]
        self.ip_id = 0
        self.builders: dict[str, Callable[[], Conversation]] = {
            "dns_udp": self.dns_udp,
            "dns_tcp": self.dns_tcp,
            "tls": self.tls,
            "quic": self.quic,
            "tcp_bulk": self.tcp_bulk,
            "udp_noise": self.udp_noise,
            "arp": self.arp,
            "icmp": self.icmp,
        }

    # frames -----------------------------------------------------------------------------

    def ip_frame(self, src: Host, dst: Host, v6: bool, proto: int, l4: bytes) -> bytes:
        """Ethernet + IPv4/IPv6 around a transport segment; the sender's MAC is ``src.mac``."""
        if v6:
            ip = struct.pack("!IHBB", 0x60000000, len(l4), proto, 64) + src.ip6 + dst.ip6
            return dst.mac + src.mac + b"\x86\xdd" + ip + l4
        self.ip_id = (self.ip_id + 1) & 0xFFFF
        head = struct.pack("!BBHHHBB", 0x45, 0, 20 + len(l4), self.ip_id, 0x4000, 64, proto)
        tail = src.ip4 + dst.ip4
        csum = _checksum(head + b"\0\0" + tail)
        return dst.mac + src.mac + b"\x08\x00" + head + csum.to_bytes(2, "big") + tail + l4

    def udp_frame(
        self, src: Host, dst: Host, v6: bool, ports: tuple[int, int], data: bytes
    ) -> bytes:
        """A UDP datagram in a frame."""
        s_ip, d_ip = (src.ip6, dst.ip6) if v6 else (src.ip4, dst.ip4)
        return self.ip_frame(src, dst, v6, 17, _udp(s_ip, d_ip, ports[0], ports[1], data))

    # random choices -----------------------------------------------------------------------

    def name(self) -> str:
        """A host name: social, ordinary, or a random label under a common base."""
        rng = self.rng
        draw = rng.random()
        if draw < 0.35:
            return rng.choice(SOCIAL_NAMES)
        if draw < 0.85:
            return rng.choice(ORDINARY_NAMES)
        label = "".join(rng.choice(_LABEL_CHARS) for _ in range(rng.randrange(6, 14)))
        return f"{label}.{rng.choice(RANDOM_NAME_BASES)}"

    def server_for(self, name: str) -> Host:
        """A stable public-looking address per name (behind the gateway's MAC)."""
        h = zlib.crc32(name.encode())
        first = (31, 57, 104, 142, 151, 157, 185, 199, 216)[h % 9]
        ip4 = bytes([first, (h >> 8) & 0xFF, (h >> 16) & 0xFF, 1 + (h >> 24) % 250])
        ip6 = bytes.fromhex("2a0300000000") + h.to_bytes(4, "big") + bytes(5) + b"\x01"
        return Host(self.gateway.mac, ip4, ip6)

    def client(self) -> Host:
        return self.rng.choice(self.clients)

    def ephemeral_port(self) -> int:
        return self.rng.randrange(49152, 65536)

    def random_bytes(self, n: int) -> bytes:
        """``n`` pseudo-random bytes (a slice of a fixed pool: fast, and still deterministic)."""
        start = self.rng.randrange(len(self.pool) - n)
        return self.pool[start : start + n]

    def resolver(self) -> Host:
        ip4, ip6 = self.rng.choices(self.resolvers, weights=(8, 1, 1))[0]
        return Host(self.gateway.mac, ip4, ip6)

    def dns_answer(self, name: str, qtype: int) -> tuple[list[str], list[bytes], int]:
        """CNAME chain, addresses and rcode for a response."""
        rng = self.rng
        if rng.random() < 0.03:
            return [], [], 3  # NXDOMAIN
        depth = rng.choices((0, 1, 2, 3), weights=(40, 35, 20, 5))[0]
        chain = [f"{name}.edgekey.net", f"e{rng.randrange(1000, 9999)}.a.akamaiedge.net"]
        chain.append(f"a{rng.randrange(100, 999)}.g.akamai.net")
        cnames = chain[:depth]
        if qtype == DNS_HTTPS:
            return cnames, [], 0
        server = self.server_for(cnames[-1] if cnames else name)
        count = rng.choice((1, 1, 2, 4))
        if qtype == DNS_A:
            addresses = [server.ip4[:3] + bytes([(server.ip4[3] + k) & 0xFF]) for k in range(count)]
        else:
            addresses = [server.ip6[:15] + bytes([k + 1]) for k in range(count)]
        return cnames, addresses, 0

    # conversations ------------------------------------------------------------------------

    def dns_udp(self) -> Conversation:
        """One query and its response (sometimes an A+AAAA pair, sometimes unanswered)."""
        rng = self.rng
        v6 = rng.random() < 0.25
        client, server, name = self.client(), self.resolver(), self.name()
        qtypes = [rng.choices((DNS_A, DNS_AAAA, DNS_HTTPS), weights=(50, 35, 15))[0]]
        if rng.random() < 0.3:
            qtypes = [DNS_A, DNS_AAAA]
        frames: list[bytes] = []
        for qtype in qtypes:
            ident, port = rng.randrange(65536), self.ephemeral_port()
            query = build_dns_query(ident, name, qtype)
            frames.append(self.udp_frame(client, server, v6, (port, 53), query))
            if rng.random() < 0.97:
                cnames, addresses, rcode = self.dns_answer(name, qtype)
                answer = build_dns_response(ident, name, qtype, cnames, addresses, rcode)
                frames.append(self.udp_frame(server, client, v6, (53, port), answer))
        kind = "dns_udp6" if v6 else "dns_udp4"
        messages = {"dns_query": len(qtypes), "dns_response": len(frames) - len(qtypes)}
        return Conversation(kind, frames, [("dns", name)], len(frames), messages)

    def dns_tcp(self) -> Conversation:
        """A TCP connection to port 53 with one query, or A+AAAA queries in one segment."""
        rng = self.rng
        client, server, name = self.client(), self.resolver(), self.name()
        flow = TcpFlow(self, client, server, rng.random() < 0.2, (self.ephemeral_port(), 53))
        frames = flow.open()
        qtypes = [DNS_A, DNS_AAAA] if rng.random() < 0.25 else [DNS_A]
        idents = [rng.randrange(65536) for _ in qtypes]
        queries = [build_dns_query(i, name, q) for i, q in zip(idents, qtypes, strict=True)]
        frames.append(flow.client_send(b"".join(_vec16(q) for q in queries)))
        for ident, qtype in zip(idents, qtypes, strict=True):
            cnames, _, rcode = self.dns_answer(name, qtype)
            server_ip = self.server_for(name)
            addresses = [server_ip.ip4[:3] + bytes([k]) for k in range(1, rng.randrange(2, 24))]
            if qtype == DNS_AAAA:
                addresses = [server_ip.ip6[:15] + bytes([k]) for k in range(1, 8)]
            answer = build_dns_response(ident, name, qtype, cnames, addresses, rcode)
            frames.append(flow.server_send(_vec16(answer)))
        frames.append(flow.client_ack())
        frames += flow.close()
        messages = {"dns_query": len(qtypes), "dns_response": len(qtypes)}
        return Conversation("dns_tcp", frames, [("dns", name)], 1 + len(qtypes), messages)

    def tls(self) -> Conversation:
        """A TLS 1.3 connection to port 443; the ClientHello in one or two segments."""
        rng, full = self.rng, self.profile.full_flows
        name = self.name()
        client, server = self.client(), self.server_for(name)
        ech = rng.random() < 0.1
        sni = ECH_PUBLIC_NAME if ech else name
        split = rng.random() < self.split_fraction
        post_quantum = split or rng.random() < 0.7
        hello = build_client_hello(rng, HelloOptions(sni, post_quantum, ech))
        record = _tls_record(0x16, 0x0301, hello)
        flow = TcpFlow(self, client, server, rng.random() < 0.15, (self.ephemeral_port(), 443))
        frames = flow.open()
        if split:
            cut = min(rng.choice((1460, 1440, 1400, 1380, 1220)), len(record) - 1)
            frames.append(flow.client_send(record[:cut], TCP_ACK))
            frames.append(flow.client_send(record[cut:]))
        else:
            frames.append(flow.client_send(record))
        messages = {"tls_client_hello": 1, "tls_client_hello_ech": int(ech)}
        session_id = hello[39 : 39 + 32]
        reply = _tls_record(0x16, 0x0303, build_server_hello(rng, session_id))
        reply += _tls_record(0x14, 0x0303, b"\x01")
        reply += _tls_record(0x17, 0x0303, self.random_bytes(rng.randrange(2500, 5000)))
        if not full:
            frames.append(flow.server_send(reply[:TLS_MSS]))
            if rng.random() < 0.3:
                frames += flow.close()
            return Conversation("tls", frames, [("tls", sni)], 1 + split, messages)
        frames += flow.server_stream(reply)
        finished = _tls_record(0x14, 0x0303, b"\x01") + _tls_record(
            0x17, 0x0303, self.random_bytes(53)
        )
        request = _tls_record(0x17, 0x0303, self.random_bytes(rng.randrange(200, 700)))
        frames.append(flow.client_send(finished + request))
        response = self.random_bytes(rng.randrange(1000, 30000))
        frames += flow.server_stream(_tls_record(0x17, 0x0303, response[:16000]) + response[16000:])
        frames += flow.close()
        return Conversation("tls", frames, [("tls", sni)], 1 + split, messages)

    def quic(self) -> Conversation:
        """A QUIC v1 connection: client Initial(s) with the ClientHello, server Initial, 1-RTT."""
        rng, full = self.rng, self.profile.full_flows
        name = self.name()
        client, server = self.client(), self.server_for(name)
        v6 = rng.random() < 0.2
        ports = (self.ephemeral_port(), 443)
        dcid, scid, server_cid = (
            rng.randbytes(8),
            rng.randbytes(rng.choice((0, 8))),
            rng.randbytes(8),
        )
        split = rng.random() < self.quic_split_fraction
        hello = build_client_hello(rng, HelloOptions(name, split, False, scid))
        client_keys = QuicInitialKeys(dcid, b"client in")
        server_keys = QuicInitialKeys(dcid, b"server in")
        # Which CRYPTO frames go in which packet (Chrome reorders and splits them).
        cut = rng.randrange(len(hello) // 3, len(hello) - len(hello) // 4)
        pieces = [_crypto_frame(0, hello[:cut]), _crypto_frame(cut, hello[cut:])]
        packets = [pieces] if not split else [[pieces[0]], [pieces[1]]]
        if split and rng.random() < 0.4:
            packets.reverse()
        elif not split and rng.random() < 0.4:
            pieces.reverse()
        frames: list[bytes] = []
        pn_len = rng.choice((1, 2, 4))
        for pn, packet_frames in enumerate(packets):
            ping = b"\x01" if rng.random() < 0.3 else b""
            payload = build_quic_initial(
                client_keys, dcid, scid, pn, pn_len, ping + b"".join(packet_frames)
            )
            frames.append(self.udp_frame(client, server, v6, ports, payload))
        largest = len(packets) - 1
        ack = b"\x02" + _varint(largest) + b"\x00\x00" + _varint(largest)
        server_hello = build_server_hello(rng, b"")
        server_initial = build_quic_initial(
            server_keys, scid, server_cid, 0, 2, ack + _crypto_frame(0, server_hello)
        )
        rev = (ports[1], ports[0])
        frames.append(self.udp_frame(server, client, v6, rev, server_initial))
        client_ack = build_quic_initial(
            client_keys, server_cid, scid, len(packets), pn_len, b"\x02\x00\x00\x00\x00"
        )
        frames.append(self.udp_frame(client, server, v6, ports, client_ack))
        short_packets = rng.randrange(20, 120) if full else rng.randrange(0, 2)
        for _ in range(short_packets):
            from_server = rng.random() < 0.8
            cid = scid if from_server else server_cid
            size = 1252 if from_server else rng.randrange(30, 60)
            data = bytes([0x40 | rng.randrange(32)]) + cid + self.random_bytes(size - 1 - len(cid))
            src, dst, p = (server, client, rev) if from_server else (client, server, ports)
            frames.append(self.udp_frame(src, dst, v6, p, data))
        messages = {"quic_client_hello": 1}
        return Conversation("quic", frames, [("quic", name)], len(packets), messages)

    def tcp_bulk(self) -> Conversation:
        """Server-to-client HTTPS data on an established flow (1448-byte segments, ACKs)."""
        rng = self.rng
        client, server = self.client(), self.server_for(self.name())
        flow = TcpFlow(self, client, server, rng.random() < 0.1, (self.ephemeral_port(), 443))
        size = TLS_MSS * rng.randrange(20, 400)
        data = b"\x17\x03\x03\x40\x11" + self.random_bytes(size - 5)
        return Conversation("tcp_bulk", flow.server_stream(data))

    def udp_noise(self) -> Conversation:
        """An RTP-like media stream between high ports, both directions."""
        rng = self.rng
        client, peer = self.client(), self.server_for(self.name())
        ports = (self.ephemeral_port(), rng.randrange(3478, 3482))
        ssrc, seq, ts = rng.getrandbits(32), rng.randrange(65536), rng.getrandbits(32)
        frames = []
        for i in range(rng.randrange(10, 60)):
            rtp = struct.pack(
                "!BBHII", 0x80, 111, (seq + i) & 0xFFFF, (ts + 960 * i) & 0xFFFFFFFF, ssrc
            )
            payload = rtp + self.random_bytes(rng.randrange(60, 200))
            if rng.random() < 0.5:
                frames.append(self.udp_frame(client, peer, False, ports, payload))
            else:
                frames.append(self.udp_frame(peer, client, False, (ports[1], ports[0]), payload))
        return Conversation("udp_noise", frames)

    def arp(self) -> Conversation:
        """A broadcast who-has for the gateway, padded to the Ethernet minimum."""
        client = self.client()
        arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + client.mac + client.ip4
        arp += bytes(6) + self.gateway.ip4
        frame = b"\xff" * 6 + client.mac + b"\x08\x06" + arp
        return Conversation("arp", [frame + bytes(60 - len(frame))])

    def icmp(self) -> Conversation:
        """An echo request and reply."""
        rng = self.rng
        client, server = self.client(), self.server_for(self.name())
        ident, seq, data = rng.randrange(65536), rng.randrange(100), self.random_bytes(56)
        frames = []
        for icmp_type, src, dst in ((8, client, server), (0, server, client)):
            head = struct.pack("!BBHHH", icmp_type, 0, 0, ident, seq)
            csum = _checksum(head + data)
            message = head[:2] + csum.to_bytes(2, "big") + head[4:] + data
            frames.append(self.ip_frame(src, dst, False, 1, message))
        return Conversation("icmp", frames)


def _ip6(subnet: int, host: int) -> bytes:
    return (
        bytes.fromhex("20010db8") + subnet.to_bytes(2, "big") + bytes(6) + host.to_bytes(4, "big")
    )


class TcpFlow:
    """Sequence-number bookkeeping for one TCP connection; each method returns frames."""

    def __init__(
        self, mix: MixBuilder, client: Host, server: Host, v6: bool, ports: tuple[int, int]
    ) -> None:
        self.mix, self.client, self.server, self.v6, self.ports = mix, client, server, v6, ports
        self.c_seq = mix.rng.getrandbits(32)
        self.s_seq = mix.rng.getrandbits(32)

    def _frame(
        self, from_client: bool, flags: int, payload: bytes = b"", options: bytes = b""
    ) -> bytes:
        src, dst = (self.client, self.server) if from_client else (self.server, self.client)
        s_ip, d_ip = (src.ip6, dst.ip6) if self.v6 else (src.ip4, dst.ip4)
        ports = self.ports if from_client else (self.ports[1], self.ports[0])
        seq, ack = (self.c_seq, self.s_seq) if from_client else (self.s_seq, self.c_seq)
        window = 502 if from_client else 501
        if flags & TCP_SYN:
            window = 64240 if from_client else 65535
        segment = _tcp(s_ip, d_ip, ports, seq, ack, flags, payload, options, window)
        advance = len(payload) + (1 if flags & (TCP_SYN | TCP_FIN) else 0)
        if from_client:
            self.c_seq += advance
        else:
            self.s_seq += advance
        return self.mix.ip_frame(src, dst, self.v6, 6, segment)

    def open(self) -> list[bytes]:
        """SYN, SYN-ACK, ACK."""
        syn_options = b"\x02\x04\x05\xb4\x01\x03\x03\x07\x04\x02\x01\x01"  # MSS, WS, SACK-OK
        return [
            self._frame(True, TCP_SYN, options=syn_options),
            self._frame(False, TCP_SYN | TCP_ACK, options=syn_options),
            self._frame(True, TCP_ACK),
        ]

    def client_send(self, payload: bytes, flags: int = TCP_PSH | TCP_ACK) -> bytes:
        return self._frame(True, flags, payload)

    def server_send(self, payload: bytes, flags: int = TCP_PSH | TCP_ACK) -> bytes:
        return self._frame(False, flags, payload)

    def client_ack(self) -> bytes:
        return self._frame(True, TCP_ACK)

    def server_stream(self, data: bytes) -> list[bytes]:
        """``data`` in server segments of ``TLS_MSS`` bytes, the client ACKing every second."""
        frames = []
        chunks = [data[i : i + TLS_MSS] for i in range(0, len(data), TLS_MSS)]
        for i, chunk in enumerate(chunks):
            last = i == len(chunks) - 1
            frames.append(self.server_send(chunk, TCP_PSH | TCP_ACK if last else TCP_ACK))
            if i % 2 == 1 or last:
                frames.append(self.client_ack())
        return frames

    def close(self) -> list[bytes]:
        """FIN from the client, FIN from the server, last ACK."""
        return [
            self._frame(True, TCP_FIN | TCP_ACK),
            self._frame(False, TCP_FIN | TCP_ACK),
            self._frame(True, TCP_ACK),
        ]


# --- scheduling and output --------------------------------------------------------------


def manifest_path(out: Path) -> Path:
    """Where the manifest of capture ``out`` is written."""
    return out.with_name(out.name + ".manifest.json")


def write_mix(
    out: Path,
    profile: str,
    packets: int,
    seed: int = 1,
    split_fraction: float = 0.5,
    quic_split_fraction: float = 0.5,
) -> dict[str, object]:
    """Write the capture ``out`` and its manifest; return the manifest."""
    if packets < 1:
        raise ValueError(f"packets must be at least 1, not {packets}")
    spec = PROFILES[profile]
    mix = MixBuilder(spec, seed, split_fraction, quic_split_fraction)
    rng = mix.rng
    kinds = [k for k in SESSION_KINDS if spec.weights.get(k)]
    weights = [spec.weights[k] for k in kinds]
    names: dict[str, set[str]] = {"dns": set(), "tls": set(), "quic": set()}
    per_kind: Counter[str] = Counter()
    messages: Counter[str] = Counter(dict.fromkeys(MESSAGE_KINDS, 0))
    name_bearing = 0
    active: list[Conversation] = []
    pending = emitted = 0
    ts_us = BASE_TS_US
    digest = hashlib.sha256()
    with out.open("wb") as f:
        header = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, PCAP_SNAPLEN, LINKTYPE_ETHERNET)
        f.write(header)
        digest.update(header)
        while emitted < packets:
            while len(active) < spec.concurrency and emitted + pending < packets:
                conv = mix.builders[rng.choices(kinds, weights)[0]]()
                if emitted + pending + len(conv.frames) > packets:
                    if pending:
                        break
                    conv = mix.arp()
                active.append(conv)
                pending += len(conv.frames)
                per_kind[conv.kind] += len(conv.frames)
                name_bearing += conv.name_bearing
                messages.update(conv.messages)
                for proto, name in conv.names:
                    names[proto].add(name)
            index = rng.randrange(len(active))
            conv = active[index]
            frame = conv.frames[conv.next_index]
            conv.next_index += 1
            if conv.next_index == len(conv.frames):
                active[index] = active[-1]
                active.pop()
            ts_us += 1 + int(rng.expovariate(1.0 / spec.mean_gap_us))
            record = struct.pack(
                "<IIII", ts_us // 1_000_000, ts_us % 1_000_000, len(frame), len(frame)
            )
            f.write(record)
            f.write(frame)
            digest.update(record)
            digest.update(frame)
            emitted += 1
            pending -= 1
    manifest: dict[str, object] = {
        "generator": "tests.bench.make_mix",
        "version": MANIFEST_VERSION,
        "profile": profile,
        "packets": packets,
        "seed": seed,
        "split_fraction": split_fraction,
        "quic_split_fraction": quic_split_fraction,
        "pcap_sha256": digest.hexdigest(),
        "packets_per_kind": dict(sorted(per_kind.items())),
        "name_bearing_packets": name_bearing,
        "messages": dict(sorted(messages.items())),
        "name_bearing_fraction": round(name_bearing / packets, 4),
        "names": {proto: sorted(found) for proto, found in names.items()},
    }
    manifest_path(out).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return manifest


def main(argv: list[str] | None = None) -> int:
    """Command line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench.make_mix", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--profile", choices=sorted(PROFILES), required=True)
    parser.add_argument("--packets", type=int, default=200_000)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--split-fraction",
        type=float,
        default=0.5,
        help="TLS ClientHellos split over two TCP segments",
    )
    parser.add_argument(
        "--quic-split-fraction", type=float, default=0.5, help="QUIC ClientHellos over two Initials"
    )
    args = parser.parse_args(argv)
    manifest = write_mix(
        args.out,
        args.profile,
        args.packets,
        args.seed,
        args.split_fraction,
        args.quic_split_fraction,
    )
    names = cast(dict[str, list[str]], manifest["names"])
    counts = ", ".join(f"{proto} {len(found)}" for proto, found in names.items())
    sys.stdout.write(
        f"{args.out}: {args.packets} packets, name-bearing {manifest['name_bearing_fraction']:.1%}, "
        f"distinct names: {counts}\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
