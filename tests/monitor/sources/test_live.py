"""Live capture: the kernel filter, LiveSource on real interfaces, and its setup errors.

The filter is checked offline by tcpdump (which compiles it with the same libpcap) over frames
built with scapy. LiveSource is checked for real: a veth pair into a fresh network namespace,
traffic sent from inside the namespace, frames captured on the host end.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from scapy.layers.dhcp import BOOTP, DHCP
from scapy.layers.dns import DNS, DNSQR
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Dot1Q, Ether
from scapy.packet import Packet, Raw
from scapy.utils import wrpcap

from monitor.sources.live import (
    DEFAULT_BPF,
    CaptureSetupError,
    LiveSource,
    build_bpf_filter,
)
from monitor.sources.pcap import read_capture
from monitor.values import Frame
from tests.monitor.sources.netns import (
    VethNamespace,
    inside_namespace,
    run_in_namespace,
    veth_namespace,
)

CLIENT4, SERVER4 = "198.18.0.2", "198.18.0.1"
CLIENT6, SERVER6 = "2001:2::2", "2001:2::1"
SRC_MAC, DST_MAC = "02:00:00:00:00:02", "02:00:00:00:00:01"

CLIENT_HELLO_START = bytes.fromhex("160301070001000703") + b"\x03" + bytes(31)
QUIC_INITIAL = bytes.fromhex("c300000001") + bytes(40)


def ether4(transport: Packet) -> Packet:
    return Ether(src=SRC_MAC, dst=DST_MAC) / IP(src=CLIENT4, dst=SERVER4) / transport


def ether6(transport: Packet) -> Packet:
    return Ether(src=SRC_MAC, dst=DST_MAC) / IPv6(src=CLIENT6, dst=SERVER6) / transport


def tagged(vlans: list[int], transport: Packet) -> Packet:
    frame: Packet = Ether(src=SRC_MAC, dst=DST_MAC)
    for vlan in vlans:
        frame = frame / Dot1Q(vlan=vlan)
    return frame / IP(src=CLIENT4, dst=SERVER4) / transport


DNS_QUERY = DNS(rd=1, qd=DNSQR(qname="example.org"))

FILTER_CASES: list[tuple[str, Packet, bool]] = [
    ("DNS query over UDP/IPv4", ether4(UDP(sport=40000, dport=53) / DNS_QUERY), True),
    ("DNS answer (from port 53)", ether4(UDP(sport=53, dport=40000) / DNS_QUERY), True),
    ("DNS query over UDP/IPv6", ether6(UDP(sport=40000, dport=53) / DNS_QUERY), True),
    ("mDNS", ether4(UDP(sport=5353, dport=5353) / DNS_QUERY), True),
    ("LLMNR over IPv6", ether6(UDP(sport=40000, dport=5355) / DNS_QUERY), True),
    ("DHCP request", ether4(UDP(sport=68, dport=67) / BOOTP() / DHCP(options=["end"])), True),
    (
        "DNS over TCP",
        ether4(TCP(sport=40000, dport=53, flags="PA") / (b"\x00\x1d" + bytes(29))),
        True,
    ),
    ("QUIC Initial on 443/IPv4", ether4(UDP(sport=40000, dport=443) / QUIC_INITIAL), True),
    ("QUIC Initial on any port", ether4(UDP(sport=40000, dport=4433) / QUIC_INITIAL), True),
    ("QUIC Initial over IPv6", ether6(UDP(sport=40000, dport=443) / QUIC_INITIAL), True),
    ("QUIC short header", ether4(UDP(sport=40000, dport=443) / (b"\x43" + bytes(40))), False),
    ("UDP to port 9999", ether4(UDP(sport=40000, dport=9999) / b"hello there"), False),
    ("TCP SYN to port 80", ether4(TCP(sport=40000, dport=80, flags="S")), True),
    ("TCP FIN from port 80", ether4(TCP(sport=80, dport=40000, flags="FA")), True),
    ("TCP RST", ether4(TCP(sport=40000, dport=22, flags="R")), True),
    ("TCP SYN over IPv6", ether6(TCP(sport=40000, dport=80, flags="S")), True),
    ("TCP FIN over IPv6", ether6(TCP(sport=40000, dport=80, flags="FA")), True),
    ("TCP bare ACK", ether4(TCP(sport=40000, dport=80, flags="A")), False),
    (
        "HTTP request to port 80",
        ether4(TCP(sport=40000, dport=80, flags="PA") / b"GET / HTTP/1.1\r\n"),
        False,
    ),
    (
        "ClientHello on port 443",
        ether4(TCP(sport=40000, dport=443, flags="PA") / CLIENT_HELLO_START),
        True,
    ),
    (
        "ClientHello on port 8080",
        ether4(TCP(sport=40000, dport=8080, flags="PA") / CLIENT_HELLO_START),
        True,
    ),
    (
        "ClientHello over IPv6",
        ether6(TCP(sport=40000, dport=9443, flags="PA") / CLIENT_HELLO_START),
        True,
    ),
    (
        "ServerHello from 443",
        ether4(TCP(sport=443, dport=40000, flags="PA") / CLIENT_HELLO_START),
        True,
    ),
    (
        "continuation to 443",
        ether4(TCP(sport=40000, dport=443, flags="PA") / (b"\x8a" * 600)),
        True,
    ),
    (
        "continuation to 853 over IPv6",
        ether6(TCP(sport=40000, dport=853, flags="PA") / (b"\x8a" * 600)),
        True,
    ),
    (
        "continuation to 8443",
        ether4(TCP(sport=40000, dport=8443, flags="A") / (b"\x01" * 600)),
        True,
    ),
    (
        "application data to 443",
        ether4(TCP(sport=40000, dport=443, flags="PA") / (b"\x17\x03\x03" + bytes(50))),
        False,
    ),
    (
        "application data to 443/IPv6",
        ether6(TCP(sport=40000, dport=443, flags="PA") / (b"\x17\x03\x03" + bytes(50))),
        False,
    ),
    ("download from 443", ether4(TCP(sport=443, dport=40000, flags="A") / (b"\x8a" * 600)), False),
    ("bulk data to 8444", ether4(TCP(sport=40000, dport=8444, flags="A") / (b"\x8a" * 600)), False),
    (
        "ICMP unreachable quoting a DNS query",
        ether4(ICMP(type=3, code=3) / IP(src=SERVER4, dst=CLIENT4) / UDP(dport=53) / DNS_QUERY),
        False,
    ),
    ("DNS query in VLAN 10", tagged([10], UDP(sport=40000, dport=53) / DNS_QUERY), True),
    ("QUIC Initial in VLAN 10", tagged([10], UDP(sport=40000, dport=4433) / QUIC_INITIAL), True),
    (
        "ClientHello in VLAN 10",
        tagged([10], TCP(sport=40000, dport=8080, flags="PA") / CLIENT_HELLO_START),
        True,
    ),
    ("DNS query in QinQ 100/10", tagged([100, 10], UDP(sport=40000, dport=53) / DNS_QUERY), True),
    (
        "UDP to port 9999 in VLAN 10",
        tagged([10], UDP(sport=40000, dport=9999) / b"hello there"),
        False,
    ),
    (
        "bulk data to port 80 in VLAN 10",
        tagged([10], TCP(sport=40000, dport=80, flags="A") / (b"x" * 600)),
        False,
    ),
    ("ARP", Ether(src=SRC_MAC, dst=DST_MAC, type=0x0806) / bytes(28), False),
    (
        "first fragment of a DNS answer",
        Ether(src=SRC_MAC, dst=DST_MAC)
        / IP(src=SERVER4, dst=CLIENT4, flags="MF", frag=0)
        / UDP(sport=53, dport=40000, len=1600)
        / bytes(1000),
        True,
    ),
    (
        "later fragment of a UDP datagram (no ports to match)",
        Ether(src=SRC_MAC, dst=DST_MAC)
        / IP(src=SERVER4, dst=CLIENT4, proto=17, frag=125)
        / bytes(600),
        True,
    ),
    (
        "later fragment of a TCP segment",
        Ether(src=SRC_MAC, dst=DST_MAC)
        / IP(src=SERVER4, dst=CLIENT4, proto=6, frag=125)
        / bytes(600),
        False,
    ),
]


@pytest.fixture(scope="module")
def filter_verdicts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bool]:
    """Which FILTER_CASES pass DEFAULT_BPF, as tcpdump (libpcap's compiler) decides."""
    folder = tmp_path_factory.mktemp("bpf")
    frames = [case[1] for case in FILTER_CASES]
    for index, frame in enumerate(frames):
        frame.time = 1_700_000_000 + index
    wrpcap(str(folder / "in.pcap"), frames)
    subprocess.run(
        ["tcpdump", "-r", str(folder / "in.pcap"), "-w", str(folder / "out.pcap"), DEFAULT_BPF],
        check=True,
        capture_output=True,
    )
    passed = {round(frame.ts) - 1_700_000_000 for frame in read_capture(folder / "out.pcap")}
    return {case[0]: index in passed for index, case in enumerate(FILTER_CASES)}


@pytest.mark.parametrize(("name", "expected"), [(case[0], case[2]) for case in FILTER_CASES])
def test_default_bpf_passes_only_what_extractors_read(
    filter_verdicts: dict[str, bool], name: str, expected: bool
) -> None:
    assert filter_verdicts[name] is expected


@pytest.mark.parametrize("dns_ports", [(53, 5353, 5355), (53, 5353, 5355, 8053), ()])
def test_build_bpf_filter_compiles_with_tcpdump(dns_ports: tuple[int, ...]) -> None:
    expression = build_bpf_filter(dns_ports)
    result = subprocess.run(
        ["tcpdump", "-y", "EN10MB", "-d", expression], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) < 4096  # the kernel's BPF_MAXINSNS


def test_build_bpf_filter_always_includes_port_53() -> None:
    assert "port 53 " in build_bpf_filter(()) or "port 53)" in build_bpf_filter(())


def test_build_bpf_filter_includes_extra_dns_ports() -> None:
    assert "port 8053" in build_bpf_filter((53, 8053))


@pytest.mark.parametrize("port", [0, 65536, -1])
def test_build_bpf_filter_rejects_impossible_ports(port: int) -> None:
    with pytest.raises(ValueError, match=str(port)):
        build_bpf_filter((port,))


# -- live capture on a veth pair -------------------------------------------------------------


def collect(
    source: LiveSource, done: Callable[[list[Frame]], bool], timeout: float = 5.0
) -> list[Frame]:
    """Frames from ``source`` until ``done(frames)`` or ``timeout`` seconds."""
    stop = threading.Event()
    timer = threading.Timer(timeout, stop.set)
    timer.start()
    frames: list[Frame] = []
    try:
        for frame in source.frames(stop, poll_s=0.05):
            frames.append(frame)
            if done(frames):
                break
    finally:
        timer.cancel()
    return frames


def containing(frames: list[Frame], needle: bytes) -> list[Frame]:
    return [frame for frame in frames if needle in frame.data]


def dns_query(name: str, qtype: int = 1) -> bytes:
    """A DNS query message (header, one question)."""
    labels = b"".join(bytes([len(label)]) + label.encode() for label in name.split("."))
    return (
        bytes.fromhex("abcd01000001000000000000")
        + labels
        + b"\x00"
        + qtype.to_bytes(2, "big")
        + b"\x00\x01"
    )


def client_hello(server_name: str) -> bytes:
    """Bytes shaped like a 1,700-byte TLS ClientHello record carrying ``server_name``."""
    body = (server_name.encode() + b"|") * (1700 // (len(server_name) + 1))
    handshake = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x01" + len(handshake).to_bytes(2, "big") + handshake


@pytest.fixture
def veth() -> Iterator[VethNamespace]:
    with veth_namespace() as pair:
        yield pair


class TcpSink:
    """A TCP listener on the host end that reads every connection to the end."""

    def __init__(self, address: str, port: int) -> None:
        self.server = socket.create_server((address, port))
        self.server.settimeout(0.05)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stopping.is_set():
            try:
                connection, _ = self.server.accept()
            except TimeoutError:
                continue
            with connection:
                connection.settimeout(5)
                while connection.recv(65536):
                    pass

    def close(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=10)
        self.server.close()


SENDER = """
import socket, time
host4, host6 = {host4!r}, {host6!r}
udp4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
# Traffic the filter must drop, first: anything of it that passed would arrive before the rest.
udp4.sendto(bytes.fromhex({junk_udp!r}), (host4, 9999))
bulk = socket.create_connection((host4, 80))
bulk.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
for _ in range(20):
    bulk.sendall(bytes.fromhex({junk_tcp!r}))
bulk.close()
# Traffic the extractors need.
udp4.sendto(bytes.fromhex({query4!r}), (host4, 53))
udp6.sendto(bytes.fromhex({query6!r}), (host6, 53))
udp4.sendto(bytes.fromhex({quic!r}), (host4, 4433))
hello = bytes.fromhex({hello!r})
tls = socket.create_connection((host4, 443))
tls.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
tls.sendall(hello[:1000])
time.sleep(0.2)
tls.sendall(hello[1000:])
time.sleep(0.1)
tls.close()
"""


@pytest.mark.live_capture
@pytest.mark.parametrize("ring", [True, False], ids=["ring", "recvfrom"])
def test_live_source_yields_what_the_filter_passes(veth: VethNamespace, ring: bool) -> None:
    host_iface, ns_name, host_ip, _ = veth
    token = secrets.token_hex(4)
    name4, name6 = f"v4-{token}.example.org", f"v6-{token}.example.org"
    junk_udp = f"\x40junk-udp-{token}".encode()
    junk_tcp = f"junk-tcp-{token}-".encode() * 60
    quic = QUIC_INITIAL + f"quic-{token}".encode()
    hello = client_hello(f"tls-{token}.example.org")
    sinks = [TcpSink(host_ip, 80), TcpSink(host_ip, 443)]
    try:
        with LiveSource([host_iface], ring=ring) as source:
            code = SENDER.format(
                host4=host_ip,
                host6=veth.host_ip6,
                junk_udp=junk_udp.hex(),
                junk_tcp=junk_tcp.hex(),
                query4=dns_query(name4).hex(),
                query6=dns_query(name6, qtype=28).hex(),
                quic=quic.hex(),
                hello=hello.hex(),
            )
            run_in_namespace(ns_name, code)

            def everything_seen(frames: list[Frame]) -> bool:
                return all(
                    containing(frames, needle)
                    for needle in (
                        dns_query(name4)[12:],
                        dns_query(name6, 28)[12:],
                        quic,
                        hello[:1000],
                        hello[1000:],
                    )
                )

            frames = collect(source, everything_seen)
    finally:
        for sink in sinks:
            sink.close()
    assert everything_seen(frames), f"{len(frames)} frames, not all expected traffic seen"
    assert len(containing(frames, dns_query(name4)[12:])) == 1
    assert not containing(frames, junk_udp)
    assert not containing(frames, b"junk-tcp-" + token.encode())
    assert {frame.linktype for frame in frames} == {1}
    assert all(abs(frame.ts - time.time()) < 60 for frame in frames)


@pytest.mark.live_capture
def test_live_source_stats_count_packets_and_accumulate(veth: VethNamespace) -> None:
    host_iface, ns_name, host_ip, _ = veth
    token = secrets.token_hex(4)
    with LiveSource([host_iface]) as source:
        assert source.stats() == {host_iface: (0, 0)}
        code = (
            "import socket\n"
            "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
            f"for i in range(50): s.sendto(bytes.fromhex({dns_query(f'n{token}.example').hex()!r}), ({host_ip!r}, 53))\n"
        )
        run_in_namespace(ns_name, code)
        frames = collect(source, lambda frames: len(containing(frames, token.encode())) >= 50)
        first = source.stats()[host_iface]
        again = source.stats()[host_iface]
    assert len(containing(frames, token.encode())) == 50
    assert first[0] >= 50
    assert first[1] == 0
    assert again[0] >= first[0]  # accumulated, although the kernel resets on every read


@pytest.mark.live_capture
@pytest.mark.parametrize("ring", [True, False], ids=["ring", "recvfrom"])
def test_live_source_stopped_still_yields_what_the_kernel_had_delivered(
    veth: VethNamespace, ring: bool
) -> None:
    """``stop`` set before a single frame was read: the frames the kernel already holds (in a
    ring block not yet handed over, too) still come out, so a stopping daemon loses none."""
    host_iface, ns_name, host_ip, _ = veth
    token = secrets.token_hex(4)
    with LiveSource([host_iface], ring=ring) as source:
        code = (
            "import socket\n"
            "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
            f"for i in range(300): s.sendto(bytes.fromhex({dns_query(f'n{token}.example').hex()!r}), ({host_ip!r}, 53))\n"
        )
        run_in_namespace(ns_name, code)
        stop = threading.Event()
        stop.set()
        frames = list(source.frames(stop))
    assert len(containing(frames, token.encode())) == 300


@pytest.mark.live_capture
def test_live_source_puts_back_the_vlan_tag_the_kernel_took_off(veth: VethNamespace) -> None:
    host_iface, ns_name, host_ip, ns_ip = veth
    token = secrets.token_hex(4)
    frame = bytes(
        Ether(src="02:00:00:00:00:02", dst="ff:ff:ff:ff:ff:ff")
        / Dot1Q(vlan=10, prio=5)
        / IP(src=ns_ip, dst=host_ip)
        / UDP(sport=40000, dport=53)
        / Raw(dns_query(f"vlan-{token}.example"))
    )
    code = (
        "import socket\n"
        "s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)\n"
        f"s.bind(({veth.ns_iface!r}, 0))\n"
        f"s.send(bytes.fromhex({frame.hex()!r}))\n"
    )
    with LiveSource([host_iface]) as source:
        run_in_namespace(ns_name, code)
        frames = containing(
            collect(source, lambda frames: bool(containing(frames, token.encode()))), token.encode()
        )
    assert len(frames) == 1
    assert frames[0].data == frame  # tag 0x8100, priority 5, VLAN 10, back in place


@pytest.mark.live_capture
def test_live_source_sees_loopback_packets_once(veth: VethNamespace) -> None:
    _, ns_name, _, _ = veth
    token = secrets.token_hex(4)
    query = dns_query(f"lo-{token}.example")
    with inside_namespace(ns_name):
        source = LiveSource(["lo"])
    with source:
        code = (
            "import socket\n"
            "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
            f"s.sendto(bytes.fromhex({query.hex()!r}), ('127.0.0.1', 53))\n"
            f"s.sendto(bytes.fromhex({query.hex()!r}), ('127.0.0.1', 5353))\n"
        )
        run_in_namespace(ns_name, code)
        frames = collect(
            source, lambda frames: len(containing(frames, token.encode())) >= 2, timeout=2.0
        )
    seen = containing(frames, token.encode())
    assert len(seen) == 2  # one per datagram: the outgoing copies are skipped
    assert {frame.linktype for frame in seen} == {1}


@pytest.mark.live_capture
@pytest.mark.parametrize("ring", [True, False], ids=["ring", "recvfrom"])
def test_live_source_carries_on_after_the_interface_goes_down_and_up(
    veth: VethNamespace, ring: bool, caplog: pytest.LogCaptureFixture
) -> None:
    host_iface, ns_name, host_ip, _ = veth
    token = secrets.token_hex(4)
    code = (
        "import socket\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        f"s.sendto(bytes.fromhex({dns_query(f'up-{token}.example').hex()!r}), ({host_ip!r}, 53))\n"
    )
    with LiveSource([host_iface], ring=ring) as source:
        subprocess.run(["ip", "link", "set", host_iface, "down"], check=True)
        assert collect(source, lambda frames: False, timeout=0.3) == []
        subprocess.run(["ip", "link", "set", host_iface, "up"], check=True)
        run_in_namespace(ns_name, code)
        frames = collect(source, lambda frames: bool(containing(frames, token.encode())))
    assert containing(frames, token.encode())
    assert f"Capture on {host_iface}: Network is down" in caplog.text


# -- setup errors ------------------------------------------------------------------------------


def test_live_source_names_the_interfaces_that_exist() -> None:
    with pytest.raises(CaptureSetupError, match=r"no network interface 'hm-nosuch0'.*\blo\b"):
        LiveSource(["hm-nosuch0"])


def test_live_source_refuses_the_any_pseudo_interface() -> None:
    with pytest.raises(CaptureSetupError, match="name the LAN-side interfaces"):
        LiveSource(["any"])


def test_live_source_refuses_no_interfaces() -> None:
    with pytest.raises(CaptureSetupError, match="at least one"):
        LiveSource([])


def test_live_source_reports_a_filter_that_does_not_compile() -> None:
    with pytest.raises(CaptureSetupError, match="does not compile"):
        LiveSource(["lo"], bpf="udp and (")


PROBE = """
from monitor.sources.live import CaptureSetupError, LiveSource
try:
    LiveSource(["lo"]).close()
except CaptureSetupError as e:
    print("CaptureSetupError:", e)
else:
    print("opened")
"""


def run_probe(prefix: list[str], env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [*prefix, sys.executable, "-c", PROBE],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=Path(__file__).parents[3],
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.mark.live_capture
def test_live_source_without_privileges_says_which_capabilities() -> None:
    out = run_probe(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"])
    assert out.startswith("CaptureSetupError:")
    assert "CAP_NET_RAW" in out
    assert "CAP_NET_ADMIN" in out


def libpcap_path() -> str:
    listing = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True, check=True).stdout
    for line in listing.splitlines():
        if "libpcap.so" in line and "=>" in line:
            return line.split("=>")[1].strip()
    raise AssertionError("libpcap is not installed")


@pytest.mark.live_capture
def test_live_source_without_libpcap_says_what_to_install() -> None:
    # A private mount namespace where the library file is empty: as if it were not installed.
    hide = f'mount --bind /dev/null {libpcap_path()} && exec "$@"'
    out = run_probe(["unshare", "--mount", "sh", "-c", hide, "sh"])
    assert out == (
        "CaptureSetupError: install the libpcap package: apt-get install libpcap0.8; "
        "scapy uses it to compile BPF filters"
    )


@pytest.mark.live_capture
def test_live_source_does_not_need_tcpdump() -> None:
    # scapy compiles filters through libpcap itself; tcpdump is only a test tool.
    path = os.pathsep.join(
        p for p in os.environ["PATH"].split(os.pathsep) if not Path(p, "tcpdump").exists()
    )
    assert shutil.which("tcpdump", path=path) is None
    assert run_probe([], env={**os.environ, "PATH": path}) == "opened"
