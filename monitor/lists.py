"""Platform lists: read, check, and import the domain lists the classifier matches against.

This is an IO edge: it reads list files (the project's own in the ``blocklists`` package, and a
school's own directories) and public lists to import. The classifier (``monitor.classify``) only
ever sees the resulting ``ListSet``. The file format is described in ``blocklists/README.md``::

    # platform: instagram
    # name: Instagram
    # category: social
    instagram.com primary          # the site and the app's API
    cdninstagram.com primary       # images and video, fetched only by Instagram itself

Every problem is a ``BlocklistError`` naming the file and the line.
"""

from __future__ import annotations

import importlib.resources
import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NamedTuple, Protocol

from monitor.errors import BlocklistError
from monitor.hostnames import normalise_hostname
from monitor.values import Category, Presence

ALLOWLIST_FILE = "allowlist.txt"
"""The file in a list directory whose suffixes are never matched (each with a reason)."""

HEADER_KEYS = ("platform", "name", "category")
PublicFormat = Literal["hosts", "plain", "adblock", "ut1"]
PUBLIC_FORMATS: tuple[PublicFormat, ...] = ("hosts", "plain", "adblock", "ut1")

_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?\Z")
_PLATFORM_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}\Z")
_HEADER = re.compile(r"#\s*(platform|name|category)\s*:\s*(.*?)\s*\Z")
_ADBLOCK_DOMAIN_RULE = re.compile(r"\|\|([^/^$|*]+)\^\Z")
_LOCAL_HOST_NAMES = frozenset(
    {
        "localhost",
        "localhost.localdomain",
        "local",
        "broadcasthost",
        "ip6-localhost",
        "ip6-loopback",
        "ip6-localnet",
        "ip6-mcastprefix",
        "ip6-allnodes",
        "ip6-allrouters",
        "ip6-allhosts",
        "0.0.0.0",
    }
)


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
    if _is_ip_address(name):
        return f"{name!r} is an IP address, not a domain name"
    for label in labels:
        if not _LABEL.match(label):
            return f"{name!r} is not a domain name (label {label!r})"
    if labels[-1].isdigit():
        return f"{name!r} is not a domain name (its last label is a number)"
    return None


def _is_ip_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _domain(word: str, path: str, line: int) -> str:
    """The normalised domain in ``word``, or a BlocklistError naming the line."""
    name = normalise_hostname(word)
    problem = domain_problem(name)
    if problem is not None:
        raise BlocklistError(path, line, problem)
    return name


# --- platform list files -----------------------------------------------------------------


def parse_platform_list(text: str, path: str) -> tuple[list[ListEntry], PlatformInfo]:
    """Read one platform list; raise ``BlocklistError`` naming the first bad line."""
    entries, _, info, errors = _parse_platform_list(text, path)
    if errors:
        raise errors[0]
    assert info is not None  # no errors means the header was complete
    return entries, info


def _parse_platform_list(
    text: str, path: str
) -> tuple[list[ListEntry], str | None, PlatformInfo | None, list[BlocklistError]]:
    """Entries, platform id, header and every problem of one list (None when the header is bad)."""
    header: dict[str, tuple[str, int]] = {}
    lines: list[tuple[int, str]] = []
    errors: list[BlocklistError] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
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
            continue
        lines.append((number, line))

    platform, category, display = _check_header(header, path, errors)
    entries: list[ListEntry] = []
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
        if platform is not None and category is not None:
            entries.append(ListEntry(suffix, platform, category, presence, f"{path}:{number}"))
    info = PlatformInfo(display, category) if display is not None and category is not None else None
    if platform is None or info is None:
        return [], None, None, errors
    return entries, platform, info, errors


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
        if _PLATFORM_ID.match(value):
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
    suffix = _domain(words[0], path, number)
    try:
        presence = Presence(words[1])
    except ValueError:
        raise BlocklistError(
            path, number, f"{words[1]!r} is not a presence; use primary or embedded"
        ) from None
    return suffix, presence


def _parse_allowlist(text: str, path: str) -> tuple[list[str], list[BlocklistError]]:
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
            suffix = _domain(words[0], path, number)
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


# --- directories ----------------------------------------------------------------------------


def default_directory() -> Path:
    """The lists shipped with Hall Monitor (the installed ``blocklists`` package)."""
    return Path(str(importlib.resources.files("blocklists")))


def _read_directories(
    directories: Sequence[Path] | None,
) -> tuple[list[ListEntry], dict[str, PlatformInfo], set[str], list[BlocklistError]]:
    """Everything in the directories (None: the shipped lists), in order, with every problem
    found; no platform list at all is one of them.

    A platform file in a later directory replaces the file of the same name in an earlier one
    (a school's own ``facebook.txt`` overrides the shipped one); allowlists add up.
    """
    if directories is None:
        directories = (default_directory(),)
    files: dict[str, Path] = {}
    allow_files: list[Path] = []
    errors: list[BlocklistError] = []
    for directory in directories:
        if not directory.is_dir():
            errors.append(BlocklistError(str(directory), 0, "is not a directory"))
            continue
        for path in sorted(directory.glob("*.txt")):
            if path.name == ALLOWLIST_FILE:
                allow_files.append(path)
            else:
                files[path.name] = path

    entries: list[ListEntry] = []
    platforms: dict[str, PlatformInfo] = {}
    owner: dict[str, str] = {}
    for name in sorted(files):
        path = files[name]
        found, platform, info, problems = _parse_platform_list(_read(path, errors), str(path))
        errors.extend(problems)
        if platform is None or info is None:
            continue
        if platform != path.stem:
            errors.append(
                BlocklistError(
                    str(path),
                    0,
                    f"the '# platform: {platform}' header does not match the file name; rename the file to {platform}.txt",
                )
            )
            continue
        platforms[platform] = info
        for entry in found:
            if entry.suffix in owner:
                errors.append(_duplicate(entry, owner[entry.suffix]))
                continue
            owner[entry.suffix] = entry.source
            entries.append(entry)

    allow: set[str] = set()
    for path in allow_files:
        suffixes, problems = _parse_allowlist(_read(path, errors), str(path))
        allow.update(suffixes)
        errors.extend(problems)
    if not platforms:
        errors.append(no_platforms(directories))
    return entries, platforms, allow, errors


def no_platforms(directories: Sequence[Path]) -> BlocklistError:
    """No platform list loaded: nothing would ever be flagged, so this is an error, naming
    where the lists were looked for (a package installed without its list files did this)."""
    where = ", ".join(str(directory) for directory in directories) or "no directory"
    return BlocklistError(
        where,
        0,
        "no platform list (a *.txt file with a '# platform:' header) loaded from here, so "
        "nothing would ever be flagged: reinstall Hall Monitor if its shipped lists are "
        "missing, or check lists.directories and lists.shipped in the configuration",
    )


def _duplicate(entry: ListEntry, first: str) -> BlocklistError:
    path, _, line = entry.source.rpartition(":")
    return BlocklistError(path, int(line), f"{entry.suffix!r} is already listed at {first}")


def _read(path: Path, errors: list[BlocklistError]) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        errors.append(BlocklistError(str(path), 0, f"cannot be read: {error}"))
        return ""


def load_lists(
    directories: Sequence[Path] | None = None, *, extra_allow: Iterable[str] = ()
) -> ListSet:
    """Read the platform lists and allowlists in ``directories`` (default: the shipped lists).

    Raises the first ``BlocklistError`` found; ``check_lists`` reports them all.
    ``extra_allow`` adds allowlist suffixes from the configuration.
    """
    entries, platforms, allow, errors = _read_directories(directories)
    if errors:
        raise errors[0]
    for number, word in enumerate(extra_allow, start=1):
        allow.add(_domain(word, "extra allowlist", number))
    return ListSet(tuple(entries), frozenset(allow), platforms)


def check_lists(directories: Sequence[Path] | None = None) -> list[BlocklistError]:
    """Every problem in the list directories (empty when they load cleanly)."""
    return _read_directories(directories)[3]


# --- public lists ---------------------------------------------------------------------------


class ImportedList(NamedTuple):
    """Domains read from a public list, its bad lines, and rules skipped as not domain rules."""

    domains: list[str]
    errors: list[BlocklistError]
    skipped: int


def import_public_list(
    text: str, fmt: PublicFormat, *, source: str
) -> tuple[list[str], list[BlocklistError]]:
    """Domains in a public list (first-seen order, no repeats) and its bad lines.

    ``hosts``: ``0.0.0.0 name`` lines (localhost entries skipped); ``plain`` and ``ut1``: one
    domain a line (``ut1`` skips IP addresses); ``adblock``: ``||domain^`` rules (others skipped).
    """
    imported = read_public_list(text, fmt, source=source)
    return imported.domains, imported.errors


def read_public_list(text: str, fmt: PublicFormat, *, source: str) -> ImportedList:
    """As ``import_public_list``, with the count of adblock rules skipped."""
    if fmt not in PUBLIC_FORMATS:
        raise ValueError(f"{fmt!r} is not a list format; use {', '.join(PUBLIC_FORMATS)}")
    seen: dict[str, None] = {}
    errors: list[BlocklistError] = []
    skipped = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if fmt == "adblock":
            if not line or line.startswith(("!", "[")):
                continue
            found = _ADBLOCK_DOMAIN_RULE.match(line)
            if found is None:
                skipped += 1
                continue
            words = [found.group(1)]
        else:
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            words = _words(line, fmt, source, number, errors)
        for word in words:
            try:
                seen[_domain(word, source, number)] = None
            except BlocklistError as error:
                errors.append(error)
    return ImportedList(list(seen), errors, skipped)


def _words(
    line: str, fmt: PublicFormat, source: str, number: int, errors: list[BlocklistError]
) -> list[str]:
    words = line.split()
    if fmt == "hosts":
        if not _is_ip_address(words[0]):
            errors.append(
                BlocklistError(
                    source,
                    number,
                    f"expected '<address> <name>...', {words[0]!r} is not an address",
                )
            )
            return []
        if len(words) == 1:
            errors.append(BlocklistError(source, number, f"address {words[0]!r} has no host name"))
            return []
        return [word for word in words[1:] if word.lower() not in _LOCAL_HOST_NAMES]
    if len(words) != 1:
        errors.append(
            BlocklistError(source, number, f"expected one domain a line, found {len(words)} words")
        )
        return []
    if fmt == "ut1" and _is_ip_address(words[0]):
        return []
    return words


def collapse(domains: Iterable[str]) -> list[str]:
    """The domains not covered by a shorter suffix also in ``domains``, sorted by their labels."""
    unique = set(domains)
    kept = [name for name in unique if not _covered(name, unique)]
    return sorted(kept, key=lambda name: name.split(".")[::-1])


def _covered(name: str, suffixes: set[str]) -> bool:
    start = name.find(".") + 1
    while start:
        if name[start:] in suffixes:
            return True
        start = name.find(".", start) + 1
    return False


def render_platform_list(
    platform: str,
    name: str,
    category: Category | str,
    presence: Presence | str,
    domains: Iterable[str],
    source: str,
) -> str:
    """A platform list file holding ``domains`` (collapsed under shorter suffixes) as one presence."""
    if not _PLATFORM_ID.match(platform):
        raise ValueError(
            f"{platform!r} is not a platform id; use lowercase letters, digits, '-' or '_'"
        )
    category = Category(category)
    presence = Presence(presence)
    kept = collapse(domains)
    lines = [
        f"# platform: {platform}",
        f"# name: {name}",
        f"# category: {category.value}",
        f"# imported from {source} ({len(kept)} entries): review every line before shipping",
        "",
    ]
    lines.extend(f"{domain} {presence.value}" for domain in kept)
    return "\n".join(lines) + "\n"


# --- the functions behind `hallmonitor lists check` and `hallmonitor lists import` ----------


def run_lists_check(directories: Sequence[Path] | None = None) -> tuple[int, list[str]]:
    """Exit status and lines to print for ``hallmonitor lists check``."""
    errors = check_lists(directories)
    if errors:
        return 1, [str(error) for error in errors] + [f"{len(errors)} problem(s) found"]
    lists = load_lists(directories)
    return 0, [
        f"{len(lists.platforms)} platform lists, {len(lists.entries)} entries, "
        f"{len(lists.allowlist)} allowlist entries: no problems"
    ]


def run_lists_import(
    path: Path,
    fmt: PublicFormat,
    platform: str,
    name: str,
    category: Category | str,
    presence: Presence | str,
    out_dir: Path,
) -> str:
    """Import a public list into ``<out_dir>/<platform>.txt``; return the summary to print.

    The first line sums up; each bad line follows as ``file:line: message``. Raises
    ``BlocklistError`` when the file cannot be read, ``ValueError`` for a bad argument.
    """
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as error:
        raise BlocklistError(str(path), 0, f"cannot be read: {error.strerror or error}") from error
    imported = read_public_list(text, fmt, source=str(path))
    rendered = render_platform_list(platform, name, category, presence, imported.domains, path.name)
    kept = sum(1 for line in rendered.splitlines() if line and not line.startswith("#"))
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{platform}.txt"
    target.write_text(rendered, encoding="utf-8")
    summary = (
        f"{target}: {kept} entries from {len(imported.domains)} domains in {path} ({fmt}); "
        f"{len(imported.errors)} bad line(s)"
    )
    if fmt == "adblock":
        summary += f"; {imported.skipped} rule(s) other than ||domain^ skipped"
    return "\n".join([summary, *(str(error) for error in imported.errors)])


# --- the review app's own list directory -----------------------------------------------------

LOCAL_LIST_DIRECTORY = "lists"
"""The directory under ``database.data_dir`` where the review app writes an admin's changes."""


class _DataDir(Protocol):
    @property
    def data_dir(self) -> Path: ...


class _Directories(Protocol):
    @property
    def shipped(self) -> bool: ...

    @property
    def directories(self) -> Sequence[Path]: ...


class ListSettings(Protocol):
    """The part of ``monitor.config.Settings`` read here (not imported: this module stays free
    of the configuration's dependencies, which the classifier must not pull in)."""

    @property
    def database(self) -> _DataDir: ...

    @property
    def lists(self) -> _Directories: ...


def local_list_directory(settings: ListSettings) -> Path:
    """Where the review app keeps list changes made by an admin: ``<database.data_dir>/lists``.

    It holds whole ``<platform>.txt`` files (which replace the file of the same name read
    earlier) and an ``allowlist.txt`` (which adds to the others). Load it last.
    """
    return settings.database.data_dir / LOCAL_LIST_DIRECTORY


def list_directories(settings: ListSettings) -> list[Path]:
    """Every list directory in load order: the shipped lists (unless ``lists.shipped`` is
    false), ``lists.directories``, then the review app's local directory when it exists."""
    shipped = [default_directory()] if settings.lists.shipped else []
    directories = [*shipped, *settings.lists.directories]
    local = local_list_directory(settings)
    if local.is_dir():
        directories.append(local)
    return directories
