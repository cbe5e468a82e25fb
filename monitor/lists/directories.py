"""List directories: the shipped lists, a school's own, and the review app's, loaded in order.

This is an IO edge: it reads the list files in each directory. The classifier
(``monitor.classify``) only ever sees the resulting ``ListSet``.
"""

from __future__ import annotations

import importlib.resources
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Protocol

from monitor.errors import BlocklistError
from monitor.lists.files import (
    ALLOWLIST_FILE,
    ListEntry,
    ListSet,
    PlatformInfo,
    checked_domain,
    scan_allowlist,
    scan_platform_list,
)


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
    errors: list[BlocklistError] = []
    files, allow_files = _list_files(directories, errors)
    entries, platforms = _read_platform_files(files, errors)
    allow: set[str] = set()
    for path in allow_files:
        suffixes, problems = scan_allowlist(_read(path, errors), str(path))
        allow.update(suffixes)
        errors.extend(problems)
    if not platforms:
        errors.append(no_platforms(directories))
    return entries, platforms, allow, errors


def _list_files(
    directories: Sequence[Path], errors: list[BlocklistError]
) -> tuple[list[Path], list[Path]]:
    """The platform files, by name, the last directory's file winning; and every allowlist."""
    files: dict[str, Path] = {}
    allow_files: list[Path] = []
    for directory in directories:
        if not directory.is_dir():
            errors.append(BlocklistError(str(directory), 0, "is not a directory"))
            continue
        for path in sorted(directory.glob("*.txt")):
            if path.name == ALLOWLIST_FILE:
                allow_files.append(path)
            else:
                files[path.name] = path
    return [files[name] for name in sorted(files)], allow_files


def _read_platform_files(
    files: list[Path], errors: list[BlocklistError]
) -> tuple[list[ListEntry], dict[str, PlatformInfo]]:
    """Every entry and platform of the files; a file named after another platform, or a
    suffix another file already lists, is a problem."""
    entries: list[ListEntry] = []
    platforms: dict[str, PlatformInfo] = {}
    owner: dict[str, str] = {}
    for path in files:
        found, platform, info, problems = scan_platform_list(_read(path, errors), str(path))
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
    return entries, platforms


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
        allow.add(checked_domain(word, "extra allowlist", number))
    return ListSet(tuple(entries), frozenset(allow), platforms)


def check_lists(directories: Sequence[Path] | None = None) -> list[BlocklistError]:
    """Every problem in the list directories (empty when they load cleanly)."""
    return _read_directories(directories)[3]


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
