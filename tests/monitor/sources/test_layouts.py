"""Specification of monitor.sources.layouts: the two byte orders of capture files."""

from __future__ import annotations

import struct

import pytest

from monitor.sources.layouts import BIG, LITTLE, PCAP_MAGIC_MICRO, PCAP_MAGIC_NANO, Layout


@pytest.mark.parametrize(("order", "layout"), [("<", LITTLE), (">", BIG)])
@pytest.mark.parametrize("magic", [PCAP_MAGIC_MICRO, PCAP_MAGIC_NANO])
def test_each_layout_reads_a_pcap_header_written_in_its_byte_order(
    order: str, layout: Layout, magic: int
) -> None:
    header = struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, 65535, 1)
    assert layout.pcap_header.unpack_from(header) == (magic, 2, 4, 0, 0, 65535, 1)
    assert layout.u32.unpack_from(header)[0] == magic
