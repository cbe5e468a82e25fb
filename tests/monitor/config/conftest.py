"""Helpers and the sample school file shared by the settings tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from monitor.config.loading import load_settings
from monitor.errors import ConfigError
from monitor.values import Category

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "deploy" / "config.example.toml"
CALENDARS = ROOT / "tests" / "data" / "calendars"
ALL = frozenset(Category)


def write(tmp_path: Path, text: str, name: str = "config.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> list[str]:
    """The problem lines ``load_settings`` reports for a config file."""
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, text), environ=environ or {})
    return list(caught.value.problems)


def value_at(settings: BaseModel, dotted: str) -> Any:
    value: Any = settings
    for part in dotted.split("."):
        value = getattr(value, part)
    return value


def field_paths(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Every key of the settings, dotted (``calendar.hours.monday``, ``segments.role``)."""
    paths = []
    for name, field in model.model_fields.items():
        path = f"{prefix}{name}"
        paths.append(path)
        nested = _model_in(field.annotation)
        if nested is not None:
            paths += field_paths(nested, f"{path}.")
    return paths


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in getattr(annotation, "__args__", ()) + getattr(annotation, "__metadata__", ()):
        found = _model_in(argument)
        if found is not None:
            return found
    if hasattr(annotation, "__origin__"):
        return _model_in(annotation.__origin__)
    return None


SCHOOL = """
[site]
name = "Hill School"

[capture]
interfaces = ["eth1", "eth2"]
dns_ports = [5300]

[lists]
directories = ["lists.d", "/opt/lists"]
allow = ["Education.Example.ORG.", "bücher.example"]

[[segments]]
name = "staff"
cidrs = ["10.20.0.0/16", "2001:db8:20::/48"]
vlans = [20]
role = "staff"

[[segments]]
name = "pupils"
cidrs = ["10.30.0.0/16"]
role = "pupil"
flag = ["social"]

[[segments]]
name = "guests"
vlans = [90]
role = "guest"

[calendar]
timezone = "Europe/London"
closures = [2026-11-02, {start = 2026-10-26, end = 2026-10-30, reason = "half term"}]
ical_files = ["closures.ics"]
bank_holidays_file = "bank-holidays.json"

[calendar.hours]
monday = ["08:00-12:15", "13:00-16:00"]
friday = ["08:00-13:00"]
saturday = ["09:00-24:00"]

[[calendar.terms]]
start = 2026-09-03
end = 2026-12-18
name = "autumn"

[database]
data_dir = "state"
"""


@pytest.fixture
def school(tmp_path: Path) -> Path:
    for name in ("closures.ics", "bank-holidays.json"):
        (tmp_path / name).write_bytes((CALENDARS / name).read_bytes())
    return write(tmp_path, SCHOOL)
