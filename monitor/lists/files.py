"""The list file format: platform lists and allowlists, read and checked line by line.

The format is described in ``blocklists/README.md``::

    # platform: instagram
    # name: Instagram
    # category: social
    instagram.com primary          # the site and the app's API
    cdninstagram.com primary       # images and video, fetched only by Instagram itself

Every problem is a ``BlocklistError`` naming the file and the line.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import NamedTuple

from monitor.errors import BlocklistError
from monitor.hostnames import normalise_hostname
from monitor.values import Category, Presence

ALLOWLIST_FILE = "allowlist.txt"
"""The file in a list directory whose suffixes are never matched (each with a reason)."""

HEADER_KEYS = ("platform", "name", "category")

_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?\Z")
PLATFORM_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}\Z")
"""A platform id: a list file's ``# platform:`` header and its file name."""
_HEADER = re.compile(r"#\s*(platform|name|category)\s*:\s*(.*?)\s*\Z")


class PlatformInfo(NamedTuple):
    """A platform's display name and category, from its list file's header."""

    name: str
    category: Category


@dataclass(frozen=True, slots=True)
class ListEntry:
    """One line of a platform list: a domain suffix, whose it is, and what it means."""

    suffix: str
    """Normalised domain suffix; matches itself and every name below it."""
    platform: str
    category: Category
    presence: Presence
    source: str
    """Where the entry was read, ``file:line``."""


@dataclass(frozen=True, slots=True)
class ListSet:
    """Every platform list and the allowlist, as the classifier needs them."""

    entries: tuple[ListEntry, ...]
    allowlist: frozenset[str]
    platforms: dict[str, PlatformInfo]


# --- names --------------------------------------------------------------------------------


def domain_problem(name: str) -> str | None:
    """Why ``name`` (already normalised) is not a usable domain suffix, or None when it is."""
    if name.startswith(("*.", ".")):
        return f"{name!r}: write the domain without '*.' or a leading dot (a suffix already matches every name below it)"
    if len(name) > 253:
        return f"{name[:40]!r}... is longer than 253 characters"
    labels = name.split(".")
    if len(labels) < 2:
        return f"{name!r} is a single label; an entry needs at least two (example.com)"
    if is_ip_address(name):
        return f"{name!r} is an IP address, not a domain name"
    for label in labels:
        if not _LABEL.match(label):
            return f"{name!r} is not a domain name (label {label!r})"
    if labels[-1].isdigit():
        return f"{name!r} is not a domain name (its last label is a number)"
    return None


def is_ip_address(text: str) -> bool:
    """Whether ``text`` is an IPv4 or IPv6 address (not a domain name)."""
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def checked_domain(word: str, path: str, line: int) -> str:
    """The normalised domain in ``word``, or a BlocklistError naming the line."""
    name = normalise_hostname(word)
    problem = domain_problem(name)
    if problem is not None:
        raise BlocklistError(path, line, problem)
    return name


# --- platform list files -----------------------------------------------------------------


def parse_platform_list(text: str, path: str) -> tuple[list[ListEntry], PlatformInfo]:
    """Read one platform list; raise ``BlocklistError`` naming the first bad line."""
    entries, _, info, errors = scan_platform_list(text, path)
    if errors:
        raise errors[0]
    assert info is not None  # no errors means the header was complete
    return entries, info


def scan_platform_list(
    text: str, path: str
) -> tuple[list[ListEntry], str | None, PlatformInfo | None, list[BlocklistError]]:
    """Entries, platform id, header and every problem of one list (None when the header is bad)."""
    errors: list[BlocklistError] = []
    header, lines = _split_header(text, path, errors)
    platform, category, display = _check_header(header, path, errors)
    suffixes = _read_entries(lines, path, errors)
    if platform is None or category is None or display is None:
        return [], None, None, errors
    entries = [
        ListEntry(suffix, platform, category, presence, f"{path}:{number}")
        for number, suffix, presence in suffixes
    ]
    return entries, platform, PlatformInfo(display, category), errors


def _split_header(
    text: str, path: str, errors: list[BlocklistError]
) -> tuple[dict[str, tuple[str, int]], list[tuple[int, str]]]:
    """The ``# key: value`` header lines (value and line number) and the numbered entry lines;
    a header given twice or after the first entry is a problem."""
    header: dict[str, tuple[str, int]] = {}
    lines: list[tuple[int, str]] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        if not line.startswith("#"):
            lines.append((number, line))
            continue
        found = _HEADER.match(line)
        if found is None:
            continue
        key, value = found.groups()
        if key in header:
            errors.append(
                BlocklistError(
                    path, number, f"second '# {key}:' header (first on line {header[key][1]})"
                )
            )
        elif lines:
            errors.append(
                BlocklistError(
                    path, number, f"'# {key}:' header after the first entry; move it to the top"
                )
            )
        else:
            header[key] = (value, number)
    return header, lines


def _read_entries(
    lines: list[tuple[int, str]], path: str, errors: list[BlocklistError]
) -> list[tuple[int, str, Presence]]:
    """Line number, suffix and presence of each good entry; a suffix listed twice is a problem."""
    entries: list[tuple[int, str, Presence]] = []
    first_seen: dict[str, int] = {}
    for number, line in lines:
        try:
            suffix, presence = _parse_entry(line, path, number)
        except BlocklistError as error:
            errors.append(error)
            continue
        if suffix in first_seen:
            errors.append(
                BlocklistError(
                    path, number, f"{suffix!r} is listed twice (first on line {first_seen[suffix]})"
                )
            )
            continue
        first_seen[suffix] = number
        entries.append((number, suffix, presence))
    return entries


def _check_header(
    header: dict[str, tuple[str, int]], path: str, errors: list[BlocklistError]
) -> tuple[str | None, Category | None, str | None]:
    for key in HEADER_KEYS:
        if key not in header:
            errors.append(
                BlocklistError(path, 0, f"missing header line '# {key}: ...' before the entries")
            )
    platform = category = display = None
    if "platform" in header:
        value, number = header["platform"]
        if PLATFORM_ID.match(value):
            platform = value
        else:
            errors.append(
                BlocklistError(
                    path,
                    number,
                    f"{value!r} is not a platform id; use lowercase letters, digits, '-' or '_'",
                )
            )
    if "category" in header:
        value, number = header["category"]
        try:
            category = Category(value)
        except ValueError:
            allowed = ", ".join(c.value for c in Category)
            errors.append(
                BlocklistError(path, number, f"{value!r} is not a category; use {allowed}")
            )
    if "name" in header:
        value, number = header["name"]
        if value:
            display = value
        else:
            errors.append(
                BlocklistError(
                    path, number, "empty '# name:' header; give the platform's display name"
                )
            )
    return platform, category, display


def _parse_entry(line: str, path: str, number: int) -> tuple[str, Presence]:
    words = line.split("#", 1)[0].split()
    if len(words) == 1:
        raise BlocklistError(
            path, number, f"{words[0]!r} has no presence; add primary or embedded after it"
        )
    if len(words) != 2:
        raise BlocklistError(
            path, number, f"expected '<domain suffix> <primary|embedded>', found {len(words)} words"
        )
    suffix = checked_domain(words[0], path, number)
    try:
        presence = Presence(words[1])
    except ValueError:
        raise BlocklistError(
            path, number, f"{words[1]!r} is not a presence; use primary or embedded"
        ) from None
    return suffix, presence


def scan_allowlist(text: str, path: str) -> tuple[list[str], list[BlocklistError]]:
    """Allowlist suffixes, each of which must give its reason in a trailing comment."""
    suffixes: list[str] = []
    errors: list[BlocklistError] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        body, _, reason = line.partition("#")
        words = body.split()
        if len(words) != 1:
            errors.append(
                BlocklistError(
                    path, number, f"expected '<domain suffix>  # reason', found {len(words)} words"
                )
            )
            continue
        try:
            suffix = checked_domain(words[0], path, number)
        except BlocklistError as error:
            errors.append(error)
            continue
        if not reason.strip():
            errors.append(
                BlocklistError(
                    path, number, f"{suffix!r} needs a reason in a comment: '{suffix}  # why'"
                )
            )
            continue
        suffixes.append(suffix)
    return suffixes, errors
