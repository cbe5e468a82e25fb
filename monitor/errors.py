"""The few exceptions of Hall Monitor's own.

Built-in exceptions come first: parsers raise ``ValueError`` for malformed input and return
``None`` for input that is not (yet) their protocol. The classes here exist where a caller
needs to tell one failure from another::

    Exception
    ├── ValueError
    │   ├── CaptureFileError      a capture file cannot be read (names the file)
    │   ├── ConfigError           a setting is wrong (names the key and what is allowed)
    │   └── BlocklistError        a list file has a bad line (names the file and the line)
    ├── LookupError
    │   └── NotFound              an item asked for is missing (or another site's: the same)
    ├── UnsupportedLinkType       a frame's link type is one the decoder does not read
    └── SchemaNotCurrent          the database is not at this version's migration head
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


class ConfigError(ValueError):
    """A setting is wrong: ``key`` names it (``calendar.hours.monday[1]``, a file), ``message`` says
    what is allowed. ``problems`` lists every problem found, one line each, key first."""

    def __init__(self, key: str, message: str, problems: tuple[str, ...] = ()) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key
        self.message = message
        self.problems = problems or (f"{key}: {message}",)


class SchemaNotCurrent(Exception):
    """The database schema is not at the revision this version needs (or the database is empty)."""

    def __init__(self, current: str | None, required: str) -> None:
        shown = current if current is not None else "none (an empty database)"
        super().__init__(
            f"the database schema is at revision {shown} but this version needs {required}: "
            "run `hallmonitor db upgrade`"
        )
        self.current = current
        self.required = required


class BlocklistError(ValueError):
    """A list file has a bad line, or cannot be read; names the file and the line.

    ``line`` counts from 1; 0 means the file as a whole (missing header, unreadable file).
    """

    def __init__(self, path: str, line: int, message: str) -> None:
        super().__init__(f"{path}:{line}: {message}" if line else f"{path}: {message}")
        self.path = path
        self.line = line
        self.message = message


class NotFound(LookupError):
    """An item asked for by its id or name is missing, or belongs to a site the asker may not
    see (said exactly alike). ``message`` says what is missing (``no incident 42``), fit to show
    anyone who may ask; ``hint`` adds where to look (``see `hallmonitor users list```). The
    review app answers 404 with ``message`` as a sentence."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(f"{message}: {hint}" if hint else message)
        self.message = message
        self.hint = hint
