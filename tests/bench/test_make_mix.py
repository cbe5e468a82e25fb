"""Specification of the benchmark capture generator (``tests.bench.make_mix``).

The benchmark trusts the generator twice: its captures must be reproducible (so figures from
different days compare) and its manifest must say exactly what the capture holds. tshark checks
the names at benchmark time; these fast tests check determinism, the manifest's bookkeeping and
that the hand-packed headers are valid.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dns.message
import pytest
from scapy.layers.inet import IP, TCP, UDP, in4_chksum
from scapy.layers.inet6 import IPv6, in6_chksum
from scapy.layers.l2 import Ether
from scapy.utils import checksum

from tests.bench.make_mix import MESSAGE_KINDS, main, manifest_path, write_mix

PACKETS = 4000

IN6_CHKSUM: Callable[[int, Any, bytes], int] = in6_chksum
"""scapy's IPv6 pseudo-header checksum (typed here: scapy's own annotations vary by version)."""

NAME_BEARING_BOUNDS = {"dense": (0.60, 1.0), "bulk": (0.0, 0.05)}
"""Share of packets that carry or complete a name, per profile (module docstring of make_mix)."""


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _records(path: Path) -> list[bytes]:
    """The frames of a classic little-endian pcap file."""
    data = path.read_bytes()
    magic, major, minor, _, _, _, linktype = struct.unpack_from("<IHHiIII", data)
    assert (magic, major, minor, linktype) == (0xA1B2C3D4, 2, 4, 1)
    frames, offset = [], 24
    while offset < len(data):
        _, _, incl, orig = struct.unpack_from("<IIII", data, offset)
        assert incl == orig
        frames.append(data[offset + 16 : offset + 16 + incl])
        offset += 16 + incl
    return frames


@pytest.fixture(scope="module", params=["dense", "bulk"])
def mix(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, object]]:
    out = tmp_path_factory.mktemp("mix") / f"{request.param}.pcap"
    return out, write_mix(out, request.param, PACKETS, seed=7)


class TestDeterminism:
    def test_write_mix_same_arguments_give_identical_files(self, mix, tmp_path):
        out, manifest = mix
        again = tmp_path / "again.pcap"
        write_mix(again, str(manifest["profile"]), PACKETS, seed=7)
        assert _sha256(again) == _sha256(out)
        assert manifest_path(again).read_bytes() == manifest_path(out).read_bytes()

    def test_write_mix_other_seed_gives_other_capture(self, mix, tmp_path):
        out, manifest = mix
        other = tmp_path / "other.pcap"
        write_mix(other, str(manifest["profile"]), PACKETS, seed=8)
        assert _sha256(other) != _sha256(out)

    def test_main_writes_what_write_mix_writes(self, tmp_path, capsys):
        direct, via_cli = tmp_path / "direct.pcap", tmp_path / "cli.pcap"
        write_mix(direct, "dense", 300, seed=3)
        argv = ["--profile", "dense", "--packets", "300", "--seed", "3", "--out", str(via_cli)]
        assert main(argv) == 0
        assert _sha256(via_cli) == _sha256(direct)
        assert "300 packets" in capsys.readouterr().out


class TestManifest:
    def test_manifest_is_the_json_file_beside_the_capture(self, mix):
        out, manifest = mix
        assert json.loads(manifest_path(out).read_text()) == manifest
        assert manifest["pcap_sha256"] == _sha256(out)

    def test_manifest_counts_every_packet_once(self, mix):
        out, manifest = mix
        per_kind = manifest["packets_per_kind"]
        assert isinstance(per_kind, dict)
        assert sum(per_kind.values()) == manifest["packets"] == PACKETS == len(_records(out))

    def test_manifest_lists_sorted_names_for_every_protocol(self, mix):
        _, manifest = mix
        names = manifest["names"]
        assert isinstance(names, dict)
        assert sorted(names) == ["dns", "quic", "tls"]
        for found in names.values():
            assert found and found == sorted(set(found))

    def test_manifest_counts_name_bearing_messages(self, mix):
        _, manifest = mix
        messages = manifest["messages"]
        assert isinstance(messages, dict)
        assert sorted(messages) == sorted(MESSAGE_KINDS)
        assert all(
            messages[kind] > 0 for kind in ("dns_query", "dns_response", "quic_client_hello")
        )
        assert 0 <= messages["tls_client_hello_ech"] < messages["tls_client_hello"]
        assert messages["dns_response"] <= messages["dns_query"]

    def test_profile_sets_the_name_bearing_fraction(self, mix):
        _, manifest = mix
        low, high = NAME_BEARING_BOUNDS[str(manifest["profile"])]
        fraction = manifest["name_bearing_fraction"]
        assert isinstance(fraction, float)
        assert low <= fraction <= high

    def test_dns_payloads_parse_and_ask_manifest_names(self, mix):
        out, manifest = mix
        names = manifest["names"]
        messages = manifest["messages"]
        assert isinstance(names, dict) and isinstance(messages, dict)
        asked, parsed = set(), 0
        for frame in _records(out):
            packet = Ether(frame)
            if UDP in packet and 53 in (packet[UDP].sport, packet[UDP].dport):
                message = dns.message.from_wire(bytes(packet[UDP].payload))
                asked.add(message.question[0].name.to_text(omit_final_dot=True))
                parsed += 1
        assert asked and asked <= set(names["dns"])
        assert 0 < parsed <= messages["dns_query"] + messages["dns_response"]


@pytest.fixture(scope="module")
def frames(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    out = tmp_path_factory.mktemp("frames") / "dense.pcap"
    write_mix(out, "dense", 1500, seed=11)
    return _records(out)


class TestFrames:
    def test_ip_and_transport_checksums_are_valid(self, frames):
        checked = 0
        for frame in frames:
            packet = Ether(frame)
            ip = packet.getlayer(IP) or packet.getlayer(IPv6)
            transport = packet.getlayer(TCP) or packet.getlayer(UDP)
            if ip is None or transport is None:
                continue
            segment = bytearray(bytes(transport))
            offset = 16 if isinstance(transport, TCP) else 6
            segment[offset : offset + 2] = b"\0\0"
            proto = 6 if isinstance(transport, TCP) else 17
            if isinstance(ip, IP):
                header = bytearray(bytes(ip)[:20])
                header[10:12] = b"\0\0"
                assert checksum(bytes(header)) == ip.chksum
                expected = in4_chksum(proto, ip, bytes(segment))
            else:
                expected = IN6_CHKSUM(proto, ip, bytes(segment))
            if proto == 17 and expected == 0:
                expected = 0xFFFF
            assert transport.chksum == expected
            checked += 1
        assert checked > 1000

    @staticmethod
    def _payloads(frames: list[bytes], layer: type, port: int) -> list[bytes]:
        """Non-empty payloads of ``layer`` (TCP or UDP) segments sent to ``port``."""
        found = []
        for frame in frames:
            packet = Ether(frame)
            if layer in packet and packet[layer].dport == port:
                payload = bytes(packet[layer].payload)
                if payload:
                    found.append(payload)
        return found

    def test_quic_client_initials_fill_1200_byte_datagrams(self, frames):
        long_headers = [p for p in self._payloads(frames, UDP, 443) if p[0] & 0x80]
        assert long_headers
        assert all(len(p) >= 1200 for p in long_headers)

    def test_tls_client_hellos_start_with_a_handshake_record(self, frames):
        starts = [p[:3] for p in self._payloads(frames, TCP, 443)]
        assert b"\x16\x03\x01" in starts
