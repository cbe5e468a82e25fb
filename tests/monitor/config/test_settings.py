"""The settings schema: defaults, descriptions, the example file, the groups' own rules."""

from __future__ import annotations

import re
import tomllib
from datetime import date, time
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from monitor.config.loading import load_settings
from monitor.config.settings import Settings
from tests.monitor.config.conftest import (
    EXAMPLE,
    _model_in,
    field_paths,
    problems_of,
    value_at,
    write,
)

# --- defaults ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "default"),
    [
        ("site.name", "school"),
        ("capture.interfaces", []),
        ("capture.dns_ports", []),
        ("capture.snaplen", 65535),
        ("capture.buffer_mb", 32),
        ("capture.workers", 1),
        ("lists.directories", []),
        ("lists.allow", []),
        ("lists.address_ttl_minutes", 60),
        ("segments", []),
        ("calendar.timezone", "Europe/London"),
        ("calendar.hours.monday", [(time(8), time(16, 30))]),
        ("calendar.hours.friday", [(time(8), time(16, 30))]),
        ("calendar.hours.saturday", []),
        ("calendar.hours.sunday", []),
        ("calendar.terms", []),
        ("calendar.closures", []),
        ("calendar.ical_files", []),
        ("calendar.bank_holidays_file", None),
        ("calendar.bank_holidays_division", "england-and-wales"),
        ("incidents.idle_gap_minutes", 10),
        ("incidents.max_evidence", 50),
        ("incidents.floor_connections", 2),
        ("incidents.floor_minutes", 2.0),
        ("database.data_dir", Path("/var/lib/hallmonitor")),
        ("database.spool_dir", Path("/var/lib/hallmonitor/spool")),
        ("database.batch_size", 500),
        ("database.flush_interval_s", 1.0),
        ("retention.observations_days", 30),
        ("retention.incidents_days", 365),
        ("retention.false_positive_days", 30),
        ("logging.level", "INFO"),
    ],
)
def test_settings_defaults(key: str, default: object) -> None:
    assert value_at(load_settings(None, environ={}), key) == default


def test_settings_default_database_is_sqlite_in_the_data_dir() -> None:
    settings = load_settings(None, environ={})
    assert settings.database.url.get_secret_value() == (
        "sqlite:////var/lib/hallmonitor/hallmonitor.db"
    )


def test_settings_every_field_has_a_description() -> None:
    undocumented = []
    for path in field_paths(Settings):
        *parents, name = path.split(".")
        model: type[BaseModel] = Settings
        for parent in parents:
            found = _model_in(model.model_fields[parent].annotation)
            assert found is not None
            model = found
        if not model.model_fields[name].description:
            undocumented.append(path)
    assert undocumented == []


# --- the example file ----------------------------------------------------------------------


def uncommented_example() -> str:
    """The example with every ``#key = value`` and ``#[table]`` line switched on."""
    return re.sub(r"(?m)^#(?=[\[a-z])", "", EXAMPLE.read_text(encoding="utf-8"))


def test_example_file_shows_every_key() -> None:
    document = tomllib.loads(uncommented_example())

    def keys(value: object, prefix: str = "") -> set[str]:
        found: set[str] = set()
        if isinstance(value, dict):
            for key, inner in value.items():
                found |= {f"{prefix}{key}"} | keys(inner, f"{prefix}{key}.")
        elif isinstance(value, list):
            for item in value:
                found |= keys(item, prefix)
        return found

    assert sorted(set(field_paths(Settings)) - keys(document)) == []


def test_example_file_as_shipped_loads_to_the_defaults() -> None:
    assert load_settings(EXAMPLE, environ={}) == load_settings(None, environ={})


def test_example_file_with_every_line_switched_on_loads(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, uncommented_example()), environ={})
    defaults = load_settings(None, environ={})
    # The values shown are the defaults, except where the example can only show an example.
    examples_only: Any = {
        "segments": True,
        "calendar": {"terms", "closures", "bank_holidays_file"},
        "web": {"base_url"},
        "mail": {"password_file", "reviewers", "governors", "ca_file"},
    }
    assert settings.model_dump(exclude=examples_only) == defaults.model_dump(exclude=examples_only)
    assert [segment.name for segment in settings.segments] == ["staff", "pupils", "guests"]
    assert settings.calendar.terms[0].start == date(2026, 9, 3)


# --- the database URL's secret -------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "stored", "shown"),
    [
        (
            "postgresql://hm:s3cret@db.example.org/hallmonitor",
            "postgresql+psycopg://hm:s3cret@db.example.org/hallmonitor",
            "postgresql+psycopg://hm:***@db.example.org/hallmonitor",
        ),
        (
            "postgres://hm:s3cret@127.0.0.1:5432/test",
            "postgresql+psycopg://hm:s3cret@127.0.0.1:5432/test",
            "postgresql+psycopg://hm:***@127.0.0.1:5432/test",
        ),
        (
            "postgresql+psycopg://hm@/hallmonitor?host=/run/postgresql",
            "postgresql+psycopg://hm@/hallmonitor?host=/run/postgresql",
            "postgresql+psycopg://hm@/hallmonitor?host=%2Frun%2Fpostgresql",
        ),
        ("sqlite:///relative.db", "sqlite:///relative.db", "sqlite:///relative.db"),
    ],
)
def test_database_url_is_stored_whole_and_shown_without_password(
    url: str, stored: str, shown: str
) -> None:
    settings = load_settings(None, environ={"HALLMONITOR_DATABASE__URL": url})
    assert settings.database.url.get_secret_value() == stored
    assert settings.database.display_url() == shown
    for text in (repr(settings), str(settings), str(settings.model_dump())):
        assert "s3cret" not in text


def test_settings_built_directly_validate_and_read_no_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HALLMONITOR_SITE__NAME", "ignored")
    assert Settings().site.name == "school"
    assert Settings(site={"name": "given"}).site.name == "given"  # type: ignore[arg-type]


def test_reports_cover_this_school_unless_all_sites() -> None:
    school = Settings.model_validate({"site": {"name": "Hill School"}})
    trust = Settings.model_validate(
        {"site": {"name": "Trust office"}, "reports": {"all_sites": True}}
    )
    assert (school.report_site(), trust.report_site()) == ("Hill School", None)


# --- metrics: capture.metrics_listen and web.metrics_token ---------------------------------


@pytest.mark.parametrize(
    ("listen", "address"),
    [
        ("127.0.0.1:9464", ("127.0.0.1", 9464)),
        (" 10.0.0.5:9100 ", ("10.0.0.5", 9100)),
        ("[::1]:9464", ("::1", 9464)),
        ("localhost:9464", ("localhost", 9464)),
        ("", None),
    ],
)
def test_metrics_listen_is_host_and_port_or_off(
    listen: str, address: tuple[str, int] | None
) -> None:
    settings = Settings.model_validate({"capture": {"metrics_listen": listen}})
    assert settings.capture.metrics_address() == address


@pytest.mark.parametrize(
    ("listen", "problem"),
    [
        ("9464", '\'9464\' is not "host:port"; write e.g. "127.0.0.1:9464", or "" for off'),
        (":9464", "':9464' is not \"host:port\""),
        ("::1:9464", "'::1:9464' is not \"host:port\""),
        ("127.0.0.1:http", "'127.0.0.1:http' is not \"host:port\""),
        ("127.0.0.1:70000", "'127.0.0.1:70000': the port must be 1 to 65535"),
        ("127.0.0.1:0", "'127.0.0.1:0': the port must be 1 to 65535"),
    ],
)
def test_wrong_metrics_listen_names_key_value_and_the_form(
    tmp_path: Path, listen: str, problem: str
) -> None:
    (found,) = problems_of(tmp_path, f"[capture]\nmetrics_listen = '{listen}'")
    assert found.startswith(f"capture.metrics_listen: {problem}")
