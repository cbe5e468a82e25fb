"""Live capture: raw frames from one or more network interfaces, filtered in the kernel.

Scapy is the BPF layer: it compiles the tcpdump-syntax filter (through libpcap) and attaches it
to an ``AF_PACKET`` socket, and it sets promiscuous mode. Frames are then read without any
scapy dissection, because dissection cannot keep up: on this project's 2-core machine scapy's
``sniff`` handled about 2,000 packets/s and dropped 90% of a burst. Each socket gets a
memory-mapped ``TPACKET_V3`` receive ring, which the kernel fills a block (many packets) at a
time, so one ``poll`` and one copy serve hundreds of packets; ``tests/bench/bench_live.py``
measures it against a plain ``recvfrom`` loop (``ring=False``).

The ring also carries what a plain receive loses: the kernel timestamp, and the 802.1Q tag
that VLAN offload strips from the frame (it is put back, so the decoder sees the VLAN).
On ``lo`` every packet is seen twice, leaving and arriving; the leaving copy is skipped.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import mmap
import os
import select
import socket
import struct
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from types import TracebackType
from typing import Any

from monitor.values import Frame

logger = logging.getLogger(__name__)

DEFAULT_DNS_PORTS = (53, 5353, 5355)
"""DNS, multicast DNS, LLMNR."""

TLS_CLIENT_PORTS = (443, 853, 8443)
"""Server ports whose client-to-server segments pass the filter (ClientHello continuations)."""


def build_bpf_filter(dns_ports: Iterable[int] = DEFAULT_DNS_PORTS) -> str:
    """The kernel filter (tcpdump syntax) that passes what the extractors read, and little else.

    Passed: UDP to or from the DNS ports, DHCP (67, 68) and DNS over TCP (53); QUIC long-header
    datagrams (Initial packets) on any UDP port; TCP segments whose payload starts like a TLS
    handshake record (16 03) on any port; TCP SYN, FIN and RST (the reassembler's flow state);
    the later fragments of IPv4 UDP datagrams (they carry no ports to match, and without them
    a large DNS answer, DNSSEC's above all, would never be reassembled).

    A ClientHello split over several segments (post-quantum key shares make most browser
    ClientHellos span two) has continuation segments that start mid-record with arbitrary
    bytes. Classic BPF keeps no per-flow state, so the rule is: client-to-server TCP segments
    with payload to ports 443, 853 and 8443, except those starting with an application-data
    record header (17 03). The trade-off: uploads to those ports pass too (downloads, the bulk
    of the traffic, do not), and a ClientHello split on another port keeps only its first
    segment. The reassembler drops segments of flows with no pending ClientHello cheaply.

    Every rule appears three times, untagged, after one ``vlan`` and after two, so that 802.1Q
    and QinQ tags that the kernel has not already taken off the frame are looked past. IPv6 rules read the fixed header only: a packet with extension headers
    before UDP/TCP is not matched by the payload rules.
    """
    ports = sorted({int(port) for port in dns_ports} | {53})
    for port in ports:
        if not 0 < port < 65536:
            raise ValueError(f"DNS port {port} is not between 1 and 65535")
    udp_ports = " or ".join(f"port {port}" for port in [*ports, 67, 68])
    tls_ports = " or ".join(f"dst port {port}" for port in TLS_CLIENT_PORTS)

    def payload4(index: int, width: int = 1) -> str:
        # IPv4 TCP payload byte: libpcap's tcp[] already skips the IP header (with options).
        suffix = f":{width}" if width > 1 else ""
        return f"tcp[((tcp[12] & 0xf0) >> 2) + {index}{suffix}]"

    def payload6(index: int, width: int = 1) -> str:
        suffix = f":{width}" if width > 1 else ""
        return f"ip6[40 + ((ip6[52] & 0xf0) >> 2) + {index}{suffix}]"

    length4 = "ip[2:2] - ((ip[0] & 0x0f) << 2) - ((tcp[12] & 0xf0) >> 2)"
    length6 = "ip6[4:2] - ((ip6[52] & 0xf0) >> 2)"
    # Order matters: a load past the end of a packet rejects it outright, so rules that need
    # no payload bytes (ports, flags) come before rules that read the payload.
    rules = [
        f"(udp and ({udp_ports}))",
        "(tcp port 53)",
        "(ip and tcp[tcpflags] & (tcp-syn|tcp-fin|tcp-rst) != 0)",
        "(ip and ip[9] = 17 and ip[6:2] & 0x1fff != 0)",
        "(ip6 and ip6[6] = 6 and ip6[53] & 0x07 != 0)",
        "(ip and udp[8] & 0xc0 = 0xc0)",
        "(ip6 and ip6[6] = 17 and ip6[48] & 0xc0 = 0xc0)",
        f"(ip and tcp and {payload4(0)} = 0x16 and {payload4(1)} = 0x03)",
        f"(ip6 and ip6[6] = 6 and {payload6(0)} = 0x16 and {payload6(1)} = 0x03)",
        f"(ip and tcp and ({tls_ports}) and {length4} > 0 and {payload4(0, 2)} != 0x1703)",
        f"(ip6 and ip6[6] = 6 and ({tls_ports}) and {length6} > 0 and {payload6(0, 2)} != 0x1703)",
    ]
    core = " or ".join(rules)
    # libpcap's ``vlan`` shifts the offsets of everything after it, parentheses or not, so
    # the tagged variants nest: untagged, then one tag, then a tag inside that (QinQ).
    return f"({core}) or (vlan and (({core}) or (vlan and ({core}))))"


DEFAULT_BPF: str = build_bpf_filter()
"""The filter for the default DNS ports."""

# <linux/if_packet.h> and <linux/if_arp.h>
SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_RX_RING = 5
PACKET_STATISTICS = 6
PACKET_VERSION = 10
PACKET_FANOUT = 18
PACKET_FANOUT_HASH = 0
TPACKET_V3 = 2
PACKET_MR_PROMISC = 1
PACKET_OUTGOING = 4
ETH_P_ALL = 0x0003
SO_RCVBUFFORCE = 33
SO_ATTACH_FILTER = 26
TP_STATUS_KERNEL = 0
TP_STATUS_USER = 1
TP_STATUS_VLAN_VALID = 1 << 4
TP_STATUS_VLAN_TPID_VALID = 1 << 6
ARPHRD_LOOPBACK = 772
SIOCGIFHWADDR = 0x8927
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
DLT_RAW = 12
DLT_FOR_LINKTYPE = {LINKTYPE_RAW: DLT_RAW}
"""libpcap compiles filters for a DLT; the two differ only for raw IP."""

RING_BLOCK_BYTES = 1 << 20
"""One ring block: the unit the kernel hands over (and the largest frame it can hold)."""
RING_FRAME_BYTES = 2048
"""Only a sanity figure for TPACKET_V3, whose frames are variable-length."""
RING_RETIRE_MS = 50
"""A partly filled block is handed over after this long, so quiet links still deliver."""

# struct tpacket_block_desc: version, offset_to_priv, then tpacket_hdr_v1: block_status,
# num_pkts, offset_to_first_pkt, blk_len.
_BLOCK = struct.Struct("=IIIIII")
# struct tpacket3_hdr: tp_next_offset, tp_sec, tp_nsec, tp_snaplen, (tp_len), tp_status,
# tp_mac, (tp_net, tp_rxhash), tp_vlan_tci, tp_vlan_tpid. sockaddr_ll follows at 48.
_PACKET = struct.Struct("=IIII4xIH2x4xIH")
_SLL_PKTTYPE_OFFSET = 48 + 10
_VLAN_TAG = struct.Struct("!HH")
_STATS_V3 = struct.Struct("=III")
_STATS_V1 = struct.Struct("=II")
_RING_REQUEST = struct.Struct("=7I")

_new_frame = tuple.__new__


class CaptureSetupError(Exception):
    """Live capture cannot start; the message is one line saying what to do."""


class _Capture:
    """One interface: its socket, link type, ring and accumulated kernel counters."""

    def __init__(self, name: str, sock: socket.socket, linktype: int, loopback: bool) -> None:
        self.name = name
        self.sock = sock
        self.linktype = linktype
        self.skip_outgoing = loopback
        self.ring: mmap.mmap | None = None
        self.block_count = 0
        self.block_index = 0
        self.received = 0
        self.drops = 0

    def read_stats(self) -> None:
        """Add the kernel's counters (reading them resets them) to ours."""
        # TPACKET_V3 adds a third counter; the first two are the same in every version.
        raw = self.sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, _STATS_V3.size)
        packets, drops = _STATS_V1.unpack_from(raw)
        # The kernel reports packets including the ones it dropped.
        self.received += packets - drops
        self.drops += drops

    def close(self) -> None:
        if self.ring is not None:
            self.ring.close()
            self.ring = None
        self.sock.close()


class LiveSource:
    """Frames from live interfaces, passed through a kernel BPF filter.

    ``frames(stop)`` yields until ``stop`` is set; ``stats()`` reports per interface what the
    kernel delivered and dropped. Use as a context manager, or call ``close()``.
    """

    def __init__(
        self,
        interfaces: Sequence[str],
        *,
        bpf: str | None = None,
        snaplen: int = 65535,
        buffer_bytes: int = 32 << 20,
        ring: bool = True,
        fanout_group: int | None = None,
    ) -> None:
        if isinstance(interfaces, str):
            interfaces = [interfaces]
        if not interfaces:
            raise CaptureSetupError("name at least one network interface to capture on")
        self.bpf = DEFAULT_BPF if bpf is None else bpf
        self.snaplen = snaplen
        self.buffer_bytes = buffer_bytes
        self.fanout_group = fanout_group
        self._captures: list[_Capture] = []
        try:
            for index, name in enumerate(dict.fromkeys(interfaces)):
                fanout = None if fanout_group is None else (fanout_group + index) & 0xFFFF
                self._captures.append(self._open(name, ring, fanout))
        except BaseException:
            self.close()
            raise

    # -- setup ---------------------------------------------------------------------------------

    def _open(self, name: str, use_ring: bool, fanout: int | None) -> _Capture:
        if name == "any":
            raise CaptureSetupError(
                "the 'any' pseudo-interface is not supported: name the LAN-side interfaces"
            )
        try:
            ifindex = socket.if_nametoindex(name)
        except OSError:
            raise CaptureSetupError(
                f"no network interface {name!r}; this machine has: {', '.join(_interface_names())}"
            ) from None
        hatype = _hardware_type(name)
        linktype = _linktype(hatype)
        if linktype is None:
            raise CaptureSetupError(
                f"interface {name!r} has hardware type {hatype}, which Hall Monitor cannot decode"
            )
        # Compiled before any socket exists, so a bad filter is reported without privileges.
        program = self._compile_filter(DLT_FOR_LINKTYPE.get(linktype, linktype))
        try:
            return self._open_socket(name, ifindex, hatype, linktype, program, use_ring, fanout)
        finally:
            from scapy.arch.common import free_filter

            free_filter(program)

    def _open_socket(
        self,
        name: str,
        ifindex: int,
        hatype: int,
        linktype: int,
        program: Any,
        use_ring: bool,
        fanout: int | None,
    ) -> _Capture:
        try:
            # Protocol 0: nothing is queued until bind(), after the filter is in place.
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        except PermissionError:
            raise CaptureSetupError(_permission_advice()) from None
        try:
            capture = _Capture(name, sock, linktype, hatype == ARPHRD_LOOPBACK)
            from scapy.libs.structures import sock_fprog

            fprog = sock_fprog(program.bf_len, program.bf_insns)
            sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
            self._set_buffer(sock)
            if use_ring:
                self._set_ring(capture)
            mreq = struct.pack("IHH8s", ifindex, PACKET_MR_PROMISC, 0, b"")
            sock.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, mreq)
            sock.bind((name, ETH_P_ALL))
            if fanout is not None:
                # Sockets of one group share the interface's packets by the kernel's symmetric
                # flow hash: both directions of a flow, and every fragment of an IPv4 datagram
                # (whose hash then covers the addresses only), reach the same socket.
                sock.setsockopt(SOL_PACKET, PACKET_FANOUT, fanout | PACKET_FANOUT_HASH << 16)
            capture.read_stats()  # start the counters from zero
            capture.received = capture.drops = 0
        except PermissionError:
            sock.close()
            raise CaptureSetupError(_permission_advice()) from None
        except OSError as e:
            sock.close()
            raise CaptureSetupError(f"cannot capture on {name!r}: {e.strerror or e}") from e
        except BaseException:
            sock.close()
            raise
        return capture

    def _compile_filter(self, dlt: int) -> Any:
        """The filter as a libpcap ``bpf_program`` for this DLT (the caller frees it)."""
        # scapy's attach_filter() looks the interface up in its own table, which misses
        # interfaces of other network namespaces: compile for the link type instead.
        from scapy.arch.common import compile_filter
        from scapy.error import Scapy_Exception

        try:
            return compile_filter(self.bpf, linktype=dlt)
        except (Scapy_Exception, ImportError, OSError) as e:
            message = str(e)
            if "libpcap" in message:
                raise CaptureSetupError(
                    "install the libpcap package: apt-get install libpcap0.8; "
                    "scapy uses it to compile BPF filters"
                ) from e
            if "tcpdump" in message:
                raise CaptureSetupError(
                    "install the tcpdump package: apt-get install tcpdump; "
                    "scapy uses it to compile BPF filters"
                ) from e
            raise CaptureSetupError(f"the capture filter does not compile: {message}") from e

    def _set_buffer(self, sock: socket.socket) -> None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, self.buffer_bytes)
        except PermissionError:
            # Without CAP_NET_ADMIN the kernel caps the buffer at net.core.rmem_max.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.buffer_bytes)

    def _set_ring(self, capture: _Capture) -> None:
        blocks = max(2, self.buffer_bytes // RING_BLOCK_BYTES)
        size = blocks * RING_BLOCK_BYTES
        request = _RING_REQUEST.pack(
            RING_BLOCK_BYTES,
            blocks,
            RING_FRAME_BYTES,
            size // RING_FRAME_BYTES,
            RING_RETIRE_MS,
            0,
            0,
        )
        sock = capture.sock
        try:
            sock.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V3)
            sock.setsockopt(SOL_PACKET, PACKET_RX_RING, request)
            ring = mmap.mmap(sock.fileno(), size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        except OSError as e:
            if e.errno not in (errno.ENOMEM, errno.EINVAL, errno.ENOPROTOOPT):
                raise
            logger.warning(
                "No %d MiB receive ring on %s (%s); reading packets one by one instead",
                size >> 20,
                capture.name,
                e.strerror,
            )
            return
        capture.ring = ring
        capture.block_count = blocks

    # -- reading -------------------------------------------------------------------------------

    def frames(self, stop: threading.Event, poll_s: float = 0.2) -> Iterator[Frame]:
        """Frames from every interface, as they arrive, until ``stop`` is set.

        An interface that goes down and comes back is logged and read again; setting ``stop``
        ends the iteration within ``poll_s`` seconds, once what the kernel had delivered by
        then is read.
        """
        for batch in self.batches(stop, poll_s):
            yield from batch

    def batches(self, stop: Any, poll_s: float = 0.2) -> Iterator[list[Frame]]:
        """``frames`` a batch at a time (what one drain of a socket gave), and an empty list
        after each ``poll_s`` with nothing to read, so a reader can act on quiet links too.
        ``stop`` is anything with ``is_set()`` (a thread's or a process's event)."""
        poller = select.poll()
        by_fd = {}
        for capture in self._captures:
            poller.register(capture.sock.fileno(), select.POLLIN)
            by_fd[capture.sock.fileno()] = capture
        timeout_ms = max(1, int(poll_s * 1000))
        captures = self._captures
        while not stop.is_set():
            got = False
            for capture in captures:
                batch = self._drain(capture)
                if batch:
                    got = True
                    yield batch
            if got:
                continue
            ready = poller.poll(timeout_ms)
            for fd, events in ready:
                if events & (select.POLLERR | select.POLLHUP | select.POLLNVAL):
                    self._socket_error(by_fd[fd], poll_s)
            if not ready:
                yield []
        # What the kernel had delivered when ``stop`` came is read too: the block being filled
        # is handed over within the retire timeout, then every socket is drained to empty.
        time.sleep(2 * RING_RETIRE_MS / 1000)
        for capture in captures:
            while batch := self._drain(capture):
                yield batch

    def _socket_error(self, capture: _Capture, pause_s: float) -> None:
        """Report (and clear) a socket error such as ENETDOWN; pause so as not to spin."""
        code = capture.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code:
            logger.warning(
                "Capture on %s: %s; waiting for it to return", capture.name, os.strerror(code)
            )
        time.sleep(pause_s)

    def _drain(self, capture: _Capture) -> list[Frame]:
        if capture.ring is None:
            return self._drain_socket(capture)
        return self._drain_ring(capture)

    def _drain_ring(self, capture: _Capture) -> list[Frame]:
        ring = capture.ring
        assert ring is not None
        out: list[Frame] = []
        append = out.append
        unpack = _PACKET.unpack_from
        linktype = capture.linktype
        snaplen = self.snaplen
        skip_outgoing = capture.skip_outgoing
        ethernet = linktype == LINKTYPE_ETHERNET
        index = capture.block_index
        while True:
            start = index * RING_BLOCK_BYTES
            _, _, status, count, first, used = _BLOCK.unpack_from(ring, start)
            if not status & TP_STATUS_USER:
                break
            # Copy the block out and hand it straight back to the kernel.
            block = ring[
                start : start + (used if first <= used <= RING_BLOCK_BYTES else RING_BLOCK_BYTES)
            ]
            ring[start + 8 : start + 12] = b"\x00\x00\x00\x00"
            index = (index + 1) % capture.block_count
            offset = first
            for _ in range(count):
                step, sec, nsec, caplen, pstatus, mac, tci, tpid = unpack(block, offset)
                if not (skip_outgoing and block[offset + _SLL_PKTTYPE_OFFSET] == PACKET_OUTGOING):
                    begin = offset + mac
                    data = block[begin : begin + (caplen if caplen < snaplen else snaplen)]
                    if pstatus & TP_STATUS_VLAN_VALID and ethernet:
                        if not pstatus & TP_STATUS_VLAN_TPID_VALID:
                            tpid = 0x8100
                        data = data[:12] + _VLAN_TAG.pack(tpid, tci) + data[12:]
                    append(_new_frame(Frame, (sec + nsec * 1e-9, linktype, data)))
                offset += step
        capture.block_index = index
        return out

    def _drain_socket(self, capture: _Capture) -> list[Frame]:
        out: list[Frame] = []
        recvfrom = capture.sock.recvfrom
        linktype = capture.linktype
        snaplen = self.snaplen
        skip_outgoing = capture.skip_outgoing
        clock = time.time
        for _ in range(4096):
            try:
                data, address = recvfrom(snaplen, socket.MSG_DONTWAIT)
            except BlockingIOError:
                break
            except OSError as e:  # ENETDOWN while the interface is down: reported once
                logger.warning(
                    "Capture on %s: %s; waiting for it to return", capture.name, e.strerror
                )
                break
            if skip_outgoing and address[2] == PACKET_OUTGOING:
                continue
            out.append(_new_frame(Frame, (clock(), linktype, data)))
        return out

    # -- counters and teardown -----------------------------------------------------------------

    def stats(self) -> dict[str, tuple[int, int]]:
        """Per interface: (packets the kernel delivered, packets it dropped) since opening."""
        result = {}
        for capture in self._captures:
            capture.read_stats()
            result[capture.name] = (capture.received, capture.drops)
        return result

    @property
    def interfaces(self) -> list[str]:
        """The interfaces being captured."""
        return [capture.name for capture in self._captures]

    def linktype(self, interface: str) -> int:
        """The LINKTYPE of frames from ``interface``."""
        for capture in self._captures:
            if capture.name == interface:
                return capture.linktype
        raise KeyError(interface)

    def close(self) -> None:
        """Close every socket and ring; safe to call twice."""
        captures, self._captures = self._captures, []
        for capture in captures:
            capture.close()

    def __enter__(self) -> LiveSource:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _interface_names() -> list[str]:
    return sorted(name for _, name in socket.if_nameindex())


def _hardware_type(name: str) -> int:
    """The interface's ARPHRD_* type, asked of the kernel in this thread's network namespace."""
    request = struct.pack("16s16x", name.encode())
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            reply = fcntl.ioctl(probe.fileno(), SIOCGIFHWADDR, request)
        except OSError as e:
            raise CaptureSetupError(f"cannot read the type of interface {name!r}: {e}") from e
    return int.from_bytes(reply[16:18], sys.byteorder)


def _linktype(hatype: int) -> int | None:
    """The pcap LINKTYPE for frames read from an interface of this ARPHRD type."""
    from scapy.data import ARPHRD_TO_DLT

    dlt = ARPHRD_TO_DLT.get(hatype)
    if dlt is None or dlt < 0:
        return None
    # DLT_RAW differs between systems (12 or 14); the file format's LINKTYPE_RAW is 101.
    return LINKTYPE_RAW if dlt in (12, 14) else int(dlt)


def _permission_advice() -> str:
    who = "this user" if os.geteuid() else "this process"
    return (
        f"{who} may not capture packets: run as root or grant CAP_NET_RAW and CAP_NET_ADMIN "
        "(setcap cap_net_raw,cap_net_admin+eip on the Python binary, or "
        "AmbientCapabilities=CAP_NET_RAW CAP_NET_ADMIN in the systemd unit)"
    )
