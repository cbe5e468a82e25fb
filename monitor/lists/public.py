"""Public lists (hosts files, plain domain lists, adblock rules, UT1): importing them into a
platform list file to review (``hallmonitor lists import``)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Literal, NamedTuple

from monitor.errors import BlocklistError
from monitor.lists.files import PLATFORM_ID, checked_domain, is_ip_address
from monitor.values import Category, Presence

PublicFormat = Literal["hosts", "plain", "adblock", "ut1"]
PUBLIC_FORMATS: tuple[PublicFormat, ...] = ("hosts", "plain", "adblock", "ut1")

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
                seen[checked_domain(word, source, number)] = None
            except BlocklistError as error:
                errors.append(error)
    return ImportedList(list(seen), errors, skipped)


def _words(
    line: str, fmt: PublicFormat, source: str, number: int, errors: list[BlocklistError]
) -> list[str]:
    words = line.split()
    if fmt == "hosts":
        if not is_ip_address(words[0]):
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
    if fmt == "ut1" and is_ip_address(words[0]):
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
    if not PLATFORM_ID.match(platform):
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
