"""Our own exceptions carry what a caller needs to say what went wrong."""

from __future__ import annotations

from monitor.errors import CaptureFileError, UnsupportedLinkType


def test_capture_file_error_names_the_file_and_is_a_value_error() -> None:
    error = CaptureFileError("/tmp/x.pcap", "not a pcap or pcapng file")
    assert str(error) == "/tmp/x.pcap: not a pcap or pcapng file"
    assert isinstance(error, ValueError)
    assert (error.path, error.reason) == ("/tmp/x.pcap", "not a pcap or pcapng file")


def test_unsupported_link_type_is_not_a_value_error() -> None:
    error = UnsupportedLinkType(127)
    assert error.linktype == 127
    assert not isinstance(error, ValueError)
