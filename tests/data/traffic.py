"""Small, deterministic packets for tests, built with scapy (tests may use it; the engine may not)."""

from __future__ import annotations

from pathlib import Path

from scapy.layers.dns import DNS, DNSQR, DNSRR
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.layers.tls.extensions import ServerName, TLS_Ext_Padding, TLS_Ext_ServerName
from scapy.layers.tls.handshake import TLSClientHello
from scapy.layers.tls.record import TLS
from scapy.packet import Packet as ScapyPacket
from scapy.utils import wrpcap

CLIENT_MAC = "02:00:00:00:00:01"
GATEWAY_MAC = "02:00:00:00:00:fe"
CLIENT_IP = "10.20.0.15"
RESOLVER_IP = "10.20.0.1"
SERVER_IP = "157.240.221.174"


def ether() -> ScapyPacket:
    return Ether(src=CLIENT_MAC, dst=GATEWAY_MAC)


def dns_query(name: str, *, qid: int = 0x1234, ipv6: bool = False) -> ScapyPacket:
    ip = IPv6(src="fd00::15", dst="fd00::1") if ipv6 else IP(src=CLIENT_IP, dst=RESOLVER_IP)
    return ether() / ip / UDP(sport=40000, dport=53) / DNS(id=qid, rd=1, qd=DNSQR(qname=name))


def dns_answer(name: str, cname: str, address: str) -> ScapyPacket:
    answers = [
        DNSRR(rrname=name, type="CNAME", rdata=cname),
        DNSRR(rrname=cname, type="A", rdata=address),
    ]
    return (
        Ether(src=GATEWAY_MAC, dst=CLIENT_MAC)
        / IP(src=RESOLVER_IP, dst=CLIENT_IP)
        / UDP(sport=53, dport=40000)
        / DNS(id=1, qr=1, rd=1, ra=1, qd=DNSQR(qname=name), an=answers)
    )


def client_hello_bytes(server_name: str, *, padding: int = 0) -> bytes:
    """A TLS record holding a ClientHello for ``server_name``, padded to make it long."""
    extensions: list[ScapyPacket] = [
        TLS_Ext_ServerName(servernames=[ServerName(servername=server_name.encode())])
    ]
    if padding:
        extensions.append(TLS_Ext_Padding(padding=bytes(padding)))
    hello = TLSClientHello(ciphers=[0x1301, 0x1302], ext=extensions)
    return bytes(TLS(msg=[hello]))


def tls_flow(
    server_name: str, *, split_at: int | None = None, padding: int = 0, client_port: int = 50000
) -> list[ScapyPacket]:
    """SYN, then the ClientHello in one segment or two (split at ``split_at`` bytes)."""
    record = client_hello_bytes(server_name, padding=padding)
    ip = IP(src=CLIENT_IP, dst=SERVER_IP)
    syn = ether() / ip / TCP(sport=client_port, dport=443, flags="S", seq=1000)
    segments = [record] if split_at is None else [record[:split_at], record[split_at:]]
    packets = [syn]
    seq = 1001
    for segment in segments:
        packets.append(
            ether() / ip / TCP(sport=client_port, dport=443, flags="PA", seq=seq) / segment
        )
        seq += len(segment)
    return packets


def write_pcap(path: Path, packets: list[ScapyPacket], *, start: float = 1_700_000_000.0) -> Path:
    for index, packet in enumerate(packets):
        packet.time = start + index * 0.001
    wrpcap(str(path), packets)
    return path
