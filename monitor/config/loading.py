"""Loading the settings: one TOML file, overridden by ``HALLMONITOR_<GROUP>__<KEY>`` variables.

The IT technician edits one file (``/etc/hallmonitor/config.toml``; every key is shown with its
default in ``deploy/config.example.toml``). Any key can be overridden from the environment, e.g.
``HALLMONITOR_DATABASE__URL`` or ``HALLMONITOR_CALENDAR__TIMEZONE``; the environment wins over
the file. Lists in the environment are JSON (``["eth0", "eth1"]``) or, for lists of plain
values, comma-separated (``eth0,eth1``). Relative paths in the file are taken from the file's
own directory.

A wrong value is reported with its key, the value and what is allowed, every problem at once
(``load_settings`` raises one ``ConfigError`` whose ``problems`` has one line each)."""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_settings import BaseSettings, EnvSettingsSource, SettingsError

from monitor.config.messages import describe_error
from monitor.config.settings import ENV_PREFIX, Settings
from monitor.errors import ConfigError

CONFIG_ENV = "HALLMONITOR_CONFIG"
"""Names the config file; ``/etc/hallmonitor/config.toml`` otherwise."""
SYSTEM_CONFIG_PATH = Path("/etc/hallmonitor/config.toml")


class _MappingEnvSource(EnvSettingsSource):
    """pydantic-settings' environment source, reading a given mapping instead of os.environ."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {key.lower(): value for key, value in self._environ.items()}


_PATH_KEYS = (
    ("lists", "directories"),
    ("calendar", "ical_files"),
    ("calendar", "bank_holidays_file"),
    ("database", "data_dir"),
    ("database", "spool_dir"),
    ("mail", "ca_file"),
)


def default_config_path(
    *, environ: Mapping[str, str] | None = None, system_path: Path = SYSTEM_CONFIG_PATH
) -> Path | None:
    """``$HALLMONITOR_CONFIG`` if set, else ``/etc/hallmonitor/config.toml`` if it exists."""
    environ = os.environ if environ is None else environ
    named = environ.get(CONFIG_ENV)
    if named:
        return Path(named)
    return system_path if system_path.is_file() else None


def load_settings(
    path: Path | None,
    *,
    environ: Mapping[str, str] | None = None,
    base: Mapping[str, Any] | None = None,
) -> Settings:
    """Settings from the TOML file at ``path`` (none: defaults) overridden by ``environ``
    (default ``os.environ``). ``base`` (``up --demo``'s built-in settings) sits under the file.
    Raises ``ConfigError`` listing every problem."""
    environ = os.environ if environ is None else environ
    file_data = _read_toml(path) if path is not None else {}
    if path is not None:
        _resolve_paths(file_data, path.parent)
    file_data = _merge(dict(base or {}), file_data)
    problems = _unknown_env_groups(environ)
    try:
        env_data = _MappingEnvSource(Settings, environ)()
    except SettingsError as e:
        problems.append(_describe_env_error(str(e), environ))
        env_data = {}
    source = str(path) if path is not None else "settings"
    env_keys = {".".join(key): name for key, name in _env_origins(environ)}
    try:
        settings = Settings(**_merge(file_data, env_data))
    except ValidationError as e:
        problems += [describe_error(error, env_keys) for error in e.errors()]
        raise _collected(source, problems) from None
    problems += _cross_check(settings)
    if problems:
        raise _collected(source, problems)
    return settings


def _read_toml(path: Path) -> dict[str, Any]:
    where = f"config file {path}"
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(
            where, "not found; copy deploy/config.example.toml there, or name another file"
        ) from None
    except OSError as e:
        raise ConfigError(where, f"cannot read: {e.strerror}") from None
    except UnicodeDecodeError as e:
        line = path.read_bytes()[: e.start].count(b"\n") + 1
        raise ConfigError(where, f"line {line}: not UTF-8 text (TOML)") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        message = str(e)
        found = re.search(r"\s*\(at line (\d+), column \d+\)$", message)
        line = int(found[1]) if found else text.count("\n") + 1
        message = message[: found.start()] if found else message.split(" (at ")[0]
        raise ConfigError(
            where, f"line {line}: {message[:1].lower()}{message[1:]} (TOML)"
        ) from None


def _resolve_paths(data: dict[str, Any], base: Path) -> None:
    """Relative paths in the file are taken from the file's directory."""

    def resolve(value: object) -> object:
        if isinstance(value, str) and value and not Path(value).is_absolute():
            return str(base / value)
        return value

    for group, key in _PATH_KEYS:
        table = data.get(group)
        if not isinstance(table, dict) or key not in table:
            continue
        value = table[key]
        table[key] = [resolve(v) for v in value] if isinstance(value, list) else resolve(value)


def _unknown_env_groups(environ: Mapping[str, str]) -> list[str]:
    """``HALLMONITOR_CAPTUR__SNAPLEN`` would be silently ignored: name it instead."""
    problems = []
    for name in environ:
        upper = name.upper()
        if not upper.startswith(ENV_PREFIX) or "__" not in upper:
            continue
        group = upper[len(ENV_PREFIX) :].split("__", 1)[0].lower()
        if group not in Settings.model_fields:
            problems.append(
                f"{name}: {group!r} is not a settings group; use one of "
                + ", ".join(Settings.model_fields)
            )
    return problems


def _describe_env_error(message: str, environ: Mapping[str, str]) -> str:
    """pydantic-settings says which field's JSON failed; name the variables instead."""
    found = re.search(r'field "([^"]+)"', message)
    group = found[1] if found else ""
    names = [name for key, name in _env_origins(environ) if key[0] == group] or [ENV_PREFIX + "*"]
    return f"{', '.join(sorted(names))}: not valid JSON; give a JSON list [...] or table {{...}}"


def _env_origins(environ: Mapping[str, str]) -> Iterator[tuple[tuple[str, ...], str]]:
    for name in environ:
        upper = name.upper()
        if upper.startswith(ENV_PREFIX) and upper != CONFIG_ENV:
            yield tuple(upper[len(ENV_PREFIX) :].lower().split("__")), name


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``over`` wins; tables merge key by key, anything else (lists too) is replaced."""
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _collected(source: str, problems: Sequence[str]) -> ConfigError:
    count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
    return ConfigError(source, count + "".join(f"\n  {p}" for p in problems), tuple(problems))


def _cross_check(settings: Settings) -> list[str]:
    """What no single key can see: names, VLANs and networks used twice."""
    problems = []
    names: dict[str, int] = {}
    vlans: dict[int, int] = {}
    networks: dict[IPv4Network | IPv6Network, int] = {}
    for index, segment in enumerate(settings.segments):
        first = names.setdefault(segment.name, index)
        if first != index:
            problems.append(
                f"segments[{index}].name: {segment.name!r} is already segments[{first}]'s name; "
                "use a different name"
            )
        for vlan in segment.vlans:
            first = vlans.setdefault(vlan, index)
            if first != index:
                problems.append(
                    f"segments[{index}].vlans: VLAN {vlan} is already in segments[{first}]; a "
                    "VLAN belongs to one segment"
                )
        for network in segment.cidrs:
            first = networks.setdefault(network, index)
            if first != index:
                problems.append(
                    f"segments[{index}].cidrs: {network} is already in segments[{first}]; a "
                    "network belongs to one segment (a smaller one inside it may differ)"
                )
    return problems
