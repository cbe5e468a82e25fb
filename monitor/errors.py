"""The few exceptions of Hall Monitor's own.

Built-in exceptions come first: parsers raise ``ValueError`` for malformed input and return
``None`` for input that is not (yet) their protocol. The classes here exist where a caller
needs to tell one failure from another::

    Exception
    ├── ValueError
    │   └── CaptureFileError      a capture file cannot be read (names the file)
    └── UnsupportedLinkType       a frame's link type is one the decoder does not read
"""

from __future__ import annotations


class CaptureFileError(ValueError):
    """A capture file is missing, unreadable, or not pcap/pcapng."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class UnsupportedLinkType(Exception):
    """The decoder does not read this link type; the pipeline counts it and moves on."""

    def __init__(self, linktype: int) -> None:
        super().__init__(f"unsupported link type {linktype}")
        self.linktype = linktype
