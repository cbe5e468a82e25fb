"""The pipeline guard: malformed input is counted, bugs are counted or raised, nothing stops."""

from __future__ import annotations

import logging

import pytest

from monitor.decode import Decoder
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
