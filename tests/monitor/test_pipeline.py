"""The pipeline guard: malformed input is counted, bugs are counted or raised, nothing stops."""

from __future__ import annotations

import logging

import pytest

from monitor.decode.decoder import Decoder
from monitor.pipeline import Pipeline
from monitor.values import Frame, Packet
from tests.data.traffic import dns_query, tls_flow

ETHERNET = 1
RADIOTAP = 127


def frame(packet: object, ts: float = 1_700_000_000.0) -> Frame:
    return Frame(ts, ETHERNET, bytes(packet))  # type: ignore[call-overload]


class ExplodingDecoder(Decoder):
    """A decoder with a bug: every frame raises something other than ValueError."""

    def decode(self, frame: Frame) -> Packet | None:
        raise RuntimeError("bug")


def test_pipeline_turns_frames_into_observations() -> None:
    pipeline = Pipeline(strict=True)
    frames = [frame(dns_query("www.tiktok.com")), *(frame(p) for p in tls_flow("www.tiktok.com"))]
    observations = list(pipeline.run(frames))
    assert [(o.proto, o.name) for o in observations] == [
        ("dns", "www.tiktok.com"),
        ("tls", "www.tiktok.com"),
    ]
    assert pipeline.counters.frames == 3
    assert pipeline.counters.observations == 2


def test_pipeline_counts_unsupported_link_types_and_goes_on() -> None:
    pipeline = Pipeline(strict=True)
    frames = [Frame(0.0, RADIOTAP, b"\x00" * 40), frame(dns_query("example.com"))]
    assert [o.name for o in pipeline.run(frames)] == ["example.com"]
    assert pipeline.counters.unsupported_linktypes == {RADIOTAP: 1}


def test_pipeline_counts_malformed_frames_by_stage() -> None:
    pipeline = Pipeline(strict=True)
    truncated_ipv4 = bytes(dns_query("example.com"))[:20]
    assert pipeline.process(Frame(0.0, ETHERNET, truncated_ipv4)) == []
    assert pipeline.counters.malformed == {"decode": 1}


def test_pipeline_counts_a_bug_logs_it_once_and_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    pipeline = Pipeline(decoder=ExplodingDecoder())
    with caplog.at_level(logging.ERROR, logger="monitor.pipeline"):
        for _ in range(3):
            assert pipeline.process(frame(dns_query("example.com"))) == []
    assert pipeline.counters.errors == {"decode": 3}
    assert len(caplog.records) == 1
    assert "decode stage" in caplog.records[0].getMessage()


def test_strict_pipeline_raises_bugs_for_tests() -> None:
    pipeline = Pipeline(strict=True, decoder=ExplodingDecoder())
    with pytest.raises(RuntimeError, match="bug"):
        pipeline.process(frame(dns_query("example.com")))


# -- live capture, end to end -------------------------------------------------------------------

LIVE_SENDER = """
import socket, time
host4, host6 = {host4!r}, {host6!r}
udp4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
udp4.sendto(bytes.fromhex({query4!r}), (host4, 53))
udp6.sendto(bytes.fromhex({query6!r}), (host6, 53))
udp4.sendto(bytes.fromhex({quic!r}), (host4, 443))
hello = bytes.fromhex({hello!r})
tls = socket.create_connection((host4, 443))
tls.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
tls.sendall(hello[:1000])
time.sleep(0.2)
tls.sendall(hello[1000:])
time.sleep(0.1)
tls.close()
"""


def real_quic_initial(server_name: str) -> bytes:
    """A QUIC v1 Initial really encrypted with the client's Initial keys (RFC 9001)."""
    import random

    from tests.bench.make_mix import (
        HelloOptions,
        QuicInitialKeys,
        build_client_hello,
        build_quic_initial,
    )

    dcid, scid = bytes(range(8)), bytes(range(8, 16))
    hello = build_client_hello(random.Random(1), HelloOptions(server_name, False, False, scid))
    crypto = b"\x06\x00" + (0x4000 | len(hello)).to_bytes(2, "big") + hello
    return build_quic_initial(QuicInitialKeys(dcid, b"client in"), dcid, scid, 0, 1, crypto)


@pytest.mark.live_capture
def test_live_capture_reports_dns_tls_and_quic_names() -> None:
    """Real packets on a veth pair the test creates: the whole live path finds every name."""
    import secrets
    import threading

    from monitor.sources.live import LiveSource
    from tests.data.traffic import client_hello_bytes
    from tests.monitor.sources.netns import run_in_namespace, veth_namespace
    from tests.monitor.sources.test_live import TcpSink, dns_query

    token = secrets.token_hex(4)
    names = {
        ("dns", f"v4-{token}.example.org"),
        ("dns", f"v6-{token}.example.org"),
        ("tls", f"tls-{token}.instagram.com"),
        ("quic", f"quic-{token}.facebook.com"),
    }
    hello = client_hello_bytes(f"tls-{token}.instagram.com", padding=1400)
    assert len(hello) > 1460  # split over two segments, as post-quantum ClientHellos are
    with veth_namespace() as veth:
        sink = TcpSink(veth.host_ip, 443)
        pipeline = Pipeline(strict=True)
        found: set[tuple[str, str]] = set()
        stop = threading.Event()
        timer = threading.Timer(10.0, stop.set)
        try:
            with LiveSource([veth.host_iface]) as source:
                code = LIVE_SENDER.format(
                    host4=veth.host_ip,
                    host6=veth.host_ip6,
                    query4=dns_query(f"v4-{token}.example.org").hex(),
                    query6=dns_query(f"v6-{token}.example.org", 28).hex(),
                    quic=real_quic_initial(f"quic-{token}.facebook.com").hex(),
                    hello=hello.hex(),
                )
                run_in_namespace(veth.ns_name, code)
                timer.start()
                for frame in source.frames(stop, poll_s=0.05):
                    found |= {(o.proto.value, o.name) for o in pipeline.process(frame)}
                    if names <= found:
                        break
        finally:
            timer.cancel()
            sink.close()
    assert names <= found
    assert pipeline.counters.malformed == {}


def test_batches_gives_what_process_gives_frame_by_frame() -> None:
    frames = [
        frame(dns_query("www.tiktok.com")),
        Frame(0.0, RADIOTAP, b"\x00" * 40),
        Frame(0.0, ETHERNET, bytes(dns_query("example.com"))[:20]),
        *(frame(p) for p in tls_flow("www.tiktok.com", split_at=300)),
        *(frame(p) for p in tls_flow("www.tiktok.com", split_at=300)),  # again: flow ignored
    ]
    one_by_one = Pipeline(strict=True)
    expected = [o for f in frames for o in one_by_one.process(f)]
    batched = Pipeline(strict=True)
    assert [o for batch in batched.batches(frames) for o in batch] == expected
    assert batched.counters == one_by_one.counters


def test_process_packet_counts_a_packet_and_its_observations_but_no_frame() -> None:
    pipeline = Pipeline(strict=True)
    packet = Decoder().decode(frame(dns_query("www.tiktok.com")))
    assert packet is not None
    observations = pipeline.process_packet(packet)
    assert [o.name for o in observations] == ["www.tiktok.com"]
    counters = pipeline.counters
    assert (counters.frames, counters.packets, counters.observations) == (0, 1, 1)


def test_process_packet_counts_malformed_extraction_and_goes_on() -> None:
    pipeline = Pipeline()
    packet = Packet(1.0, "10.0.0.1", "10.0.0.2", 17, 40000, 53, b"\x00\x01\x00")
    assert pipeline.process_packet(packet) == []
    assert pipeline.counters.packets == 1
    assert pipeline.counters.malformed == {"dns": 1}


def test_count_bug_raises_in_a_strict_pipeline_and_counts_otherwise() -> None:
    with pytest.raises(RuntimeError):
        Pipeline(strict=True).count_bug("extract", RuntimeError("bug"))
    pipeline = Pipeline()
    pipeline.count_bug("extract", RuntimeError("bug"))
    assert pipeline.counters.errors == {"extract": 1}
