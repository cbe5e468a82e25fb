"""Settings: one TOML file, environment overrides, one clear line per wrong value."""

from __future__ import annotations

import re
import tomllib
from datetime import UTC, date, datetime, time
from ipaddress import ip_network
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from monitor.config import (
    Settings,
    build_policy,
    default_config_path,
    load_closures,
    load_settings,
    run_config_check,
)
from monitor.errors import ConfigError
from monitor.values import Category, SegmentRole

ROOT = Path(__file__).resolve().parents[2]
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


# --- defaults ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "default"),
    [
        ("site.name", "school"),
        ("capture.interfaces", []),
        ("capture.dns_ports", []),
        ("capture.snaplen", 65535),
        ("capture.buffer_mb", 32),
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


# --- reading the file ----------------------------------------------------------------------

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


def test_load_settings_reads_the_file(school: Path) -> None:
    settings = load_settings(school, environ={})
    assert settings.site.name == "Hill School"
    assert settings.capture.interfaces == ["eth1", "eth2"]
    assert settings.capture.dns_ports == [5300]
    assert settings.lists.allow == ["education.example.org", "xn--bcher-kva.example"]
    staff, pupils, guests = settings.segments
    assert staff.cidrs == [ip_network("10.20.0.0/16"), ip_network("2001:db8:20::/48")]
    assert (staff.vlans, staff.role, staff.flags()) == ([20], SegmentRole.STAFF, ALL)
    assert (pupils.role, pupils.flags()) == (SegmentRole.PUPIL, frozenset({Category.SOCIAL}))
    assert (guests.role, guests.flags()) == (SegmentRole.GUEST, frozenset())
    hours = settings.calendar.hours
    assert hours.monday == [(time(8), time(12, 15)), (time(13), time(16))]
    assert hours.tuesday == [(time(8), time(16, 30))]  # a day left out keeps its default
    assert hours.friday == [(time(8), time(13))]
    assert hours.saturday == [(time(9), time.max)]  # 24:00 ends the day
    assert [(t.start, t.end, t.name) for t in settings.calendar.terms] == [
        (date(2026, 9, 3), date(2026, 12, 18), "autumn")
    ]
    assert settings.calendar.closure_days() == {
        date(2026, 11, 2): "",
        **{date(2026, 10, day): "half term" for day in range(26, 31)},
    }


def test_load_settings_takes_relative_paths_from_the_file_directory(school: Path) -> None:
    settings = load_settings(school, environ={})
    base = school.parent
    assert settings.lists.directories == [base / "lists.d", Path("/opt/lists")]
    assert settings.calendar.ical_files == [base / "closures.ics"]
    assert settings.calendar.bank_holidays_file == base / "bank-holidays.json"
    assert settings.database.data_dir == base / "state"
    assert settings.database.spool_dir == base / "state" / "spool"
    assert settings.database.url.get_secret_value() == f"sqlite:///{base}/state/hallmonitor.db"


def test_load_settings_of_an_empty_file_is_the_defaults(tmp_path: Path) -> None:
    assert load_settings(write(tmp_path, ""), environ={}) == load_settings(None, environ={})


# --- environment overrides -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "key", "value"),
    [
        ({"HALLMONITOR_SITE__NAME": "Env School"}, "site.name", "Env School"),
        ({"hallmonitor_site__name": "lower"}, "site.name", "lower"),
        ({"HALLMONITOR_CAPTURE__SNAPLEN": "1500"}, "capture.snaplen", 1500),
        ({"HALLMONITOR_CAPTURE__INTERFACES": "eth3, eth4"}, "capture.interfaces", ["eth3", "eth4"]),
        ({"HALLMONITOR_CAPTURE__INTERFACES": '["eth5"]'}, "capture.interfaces", ["eth5"]),
        ({"HALLMONITOR_CAPTURE__DNS_PORTS": "5300,5301"}, "capture.dns_ports", [5300, 5301]),
        ({"HALLMONITOR_CALENDAR__TIMEZONE": "Europe/Dublin"}, "calendar.timezone", "Europe/Dublin"),
        (
            {"HALLMONITOR_CALENDAR__HOURS__MONDAY": "08:00-12:00,13:00-15:00"},
            "calendar.hours.monday",
            [(time(8), time(12)), (time(13), time(15))],
        ),
        ({"HALLMONITOR_CALENDAR__HOURS__FRIDAY": ""}, "calendar.hours.friday", []),
        ({"HALLMONITOR_LOGGING__LEVEL": "debug"}, "logging.level", "DEBUG"),
        ({"HALLMONITOR_INCIDENTS__IDLE_GAP_MINUTES": "2.5"}, "incidents.idle_gap_minutes", 2.5),
        ({"HALLMONITOR_RETENTION__INCIDENTS_DAYS": "730"}, "retention.incidents_days", 730),
        (
            {"HALLMONITOR_DATABASE__DATA_DIR": "/srv/hm"},
            "database.spool_dir",
            Path("/srv/hm/spool"),
        ),
    ],
)
def test_environment_sets_a_key(environ: dict[str, str], key: str, value: object) -> None:
    assert value_at(load_settings(None, environ=environ), key) == value


def test_environment_wins_over_the_file(school: Path) -> None:
    environ = {
        "HALLMONITOR_SITE__NAME": "From Env",
        "HALLMONITOR_CALENDAR__HOURS__MONDAY": "09:00-10:00",
        "HALLMONITOR_CAPTURE__INTERFACES": "eth9",
    }
    settings = load_settings(school, environ=environ)
    assert settings.site.name == "From Env"
    assert settings.capture.interfaces == ["eth9"]  # lists are replaced, not merged
    assert settings.capture.dns_ports == [5300]  # the rest of the group still from the file
    assert settings.calendar.hours.monday == [(time(9), time(10))]
    assert settings.calendar.hours.friday == [(time(8), time(13))]
    assert settings.calendar.timezone == "Europe/London"


def test_environment_sets_tables_as_json() -> None:
    environ = {
        "HALLMONITOR_SEGMENTS": '[{"name": "staff", "cidrs": ["10.20.0.0/16"], "role": "staff"}]',
        "HALLMONITOR_CALENDAR__TERMS": '[{"start": "2026-09-03", "end": "2026-12-18"}]',
        "HALLMONITOR_CALENDAR__CLOSURES": '["2026-11-02", {"start": "2026-10-26", "end": "2026-10-30"}]',
    }
    settings = load_settings(None, environ=environ)
    assert [segment.name for segment in settings.segments] == ["staff"]
    assert settings.calendar.terms[0].end == date(2026, 12, 18)
    assert len(settings.calendar.closure_days()) == 6


def test_environment_ignores_variables_that_are_not_settings() -> None:
    environ = {
        "HALLMONITOR_CONFIG": "/nowhere.toml",
        "HALLMONITOR_TEST_POSTGRES_URL": "postgresql://x@y/z",
        "PATH": "/usr/bin",
    }
    assert load_settings(None, environ=environ) == load_settings(None, environ={})


def test_load_settings_reads_os_environ_when_no_mapping_is_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HALLMONITOR_SITE__NAME", "From os.environ")
    assert load_settings(None).site.name == "From os.environ"
    assert load_settings(None, environ={}).site.name == "school"


@pytest.mark.parametrize(
    ("environ", "problem"),
    [
        (
            {"HALLMONITOR_CAPTUR__SNAPLEN": "100"},
            "HALLMONITOR_CAPTUR__SNAPLEN: 'captur' is not a settings group; use one of site, "
            "capture, lists, segments, calendar, incidents, database, retention, logging, web, mail, reports, selftest",
        ),
        (
            {"HALLMONITOR_CAPTURE__SNAPLEN": "big"},
            "capture.snaplen: 'big' is not a whole number (from HALLMONITOR_CAPTURE__SNAPLEN)",
        ),
        (
            {"HALLMONITOR_CAPTURE__SNAPLENGTH": "100"},
            "capture.snaplength: unknown key; allowed keys: interfaces, dns_ports, snaplen, "
            "buffer_mb, metrics_listen (from HALLMONITOR_CAPTURE__SNAPLENGTH)",
        ),
        (
            {"HALLMONITOR_SEGMENTS": "[{oops"},
            "HALLMONITOR_SEGMENTS: not valid JSON; give a JSON list [...] or table {...}",
        ),
        (
            {"HALLMONITOR_CAPTURE__INTERFACES": "[eth0"},
            "capture.interfaces: '[eth0' is not a JSON list: Expecting value "
            "(from HALLMONITOR_CAPTURE__INTERFACES)",
        ),
        (
            {"HALLMONITOR_SEGMENTS__0__NAME": "x"},
            "segments: {'0': {'name': 'x'}} is not a list; use [...] "
            "(from HALLMONITOR_SEGMENTS__0__NAME)",
        ),
    ],
)
def test_environment_errors_name_the_variable(environ: dict[str, str], problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(None, environ=environ)
    assert list(caught.value.problems) == [problem]


# --- one line per wrong value --------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        # unknown keys, with the allowed keys listed
        (
            "sites = 1",
            "sites: unknown key; allowed keys: site, capture, lists, segments, calendar, "
            "incidents, database, retention, logging, web, mail, reports, selftest",
        ),
        (
            "[capture]\ninterface = ['eth0']",
            "capture.interface: unknown key; allowed keys: interfaces, dns_ports, snaplen, "
            "buffer_mb, metrics_listen",
        ),
        (
            "[[segments]]\nname = 'a'\nvlans = [2]\nrole = 'staff'\nflags = ['social']",
            "segments[0].flags: unknown key; allowed keys: name, cidrs, vlans, role, flag",
        ),
        (
            "[calendar.hours]\nmon = []",
            "calendar.hours.mon: unknown key; allowed keys: monday, tuesday, wednesday, "
            "thursday, friday, saturday, sunday",
        ),
        (
            "[calendar]\nclosures = [{start = 2026-11-02, why = 'x'}]",
            "calendar.closures[0].why: unknown key; allowed keys: start, end, reason",
        ),
        # site and capture
        ("[site]\nname = ''", "site.name: '' is empty; give a name"),
        ("[capture]\nsnaplen = 'abc'", "capture.snaplen: 'abc' is not a whole number"),
        ("[capture]\nsnaplen = 10", "capture.snaplen: 10 is too small; use 256 or more"),
        ("[capture]\nbuffer_mb = 9999", "capture.buffer_mb: 9999 is too large; use 4096 or less"),
        (
            "[capture]\ndns_ports = [53, 70000]",
            "capture.dns_ports[1]: 70000 is too large; use 65535 or less",
        ),
        ("[capture]\ninterfaces = 'eth0'", None),  # a string is a one-item list, as in env
        ("[capture]\ninterfaces = [1]", "capture.interfaces[0]: 1 is not a string; use quotes"),
        # lists
        (
            "[lists]\nallow = ['*.example.org']",
            "lists.allow[0]: '*.example.org' is not a domain suffix; write e.g. example.org "
            "(a suffix matches the name and every name under it, no wildcards)",
        ),
        (
            "[lists]\naddress_ttl_minutes = 0",
            "lists.address_ttl_minutes: 0 is too small; use more than 0",
        ),
        # segments
        (
            "[[segments]]\nname = 'a'\nvlans = [2]\nrole = 'teacher'",
            "segments[0].role: 'teacher' is not allowed; use one of staff, pupil, guest, admin",
        ),
        (
            "[[segments]]\nname = 'a'\nvlans = [2]\nrole = 'staff'\nflag = ['social', 'games']",
            "segments[0].flag[1]: 'games' is not allowed; use one of social, messaging, video",
        ),
        (
            "[[segments]]\nname = 'a'\ncidrs = ['10.0.0.1/8']\nrole = 'staff'",
            "segments[0].cidrs[0]: '10.0.0.1/8' has host bits set; use 10.0.0.0/8",
        ),
        (
            "[[segments]]\nname = 'a'\ncidrs = ['2001:db8::1/32']\nrole = 'staff'",
            "segments[0].cidrs[0]: '2001:db8::1/32' has host bits set; use 2001:db8::/32",
        ),
        (
            "[[segments]]\nname = 'a'\ncidrs = ['10.0/33']\nrole = 'staff'",
            "segments[0].cidrs[0]: '10.0/33' is not an IPv4 or IPv6 network; use "
            "ADDRESS/PREFIX, e.g. 10.20.0.0/16",
        ),
        (
            "[[segments]]\nname = 'a'\nvlans = [4095]\nrole = 'staff'",
            "segments[0].vlans[0]: 4095 is too large; use 4094 or less",
        ),
        (
            "[[segments]]\nname = 'a'\nrole = 'staff'",
            "segments[0]: segment 'a' needs at least one of cidrs or vlans",
        ),
        (
            "[[segments]]\nvlans = [2]\nrole = 'staff'",
            "segments[0].name: missing; this key is required",
        ),
        ("[segments]\nname = 'a'", "segments: {'name': 'a'} is not a list; use [...]"),
        # calendar
        (
            "[calendar]\ntimezone = 'Europe/Londn'",
            "calendar.timezone: 'Europe/Londn' is not a known time zone; use an IANA name such "
            "as Europe/London",
        ),
        (
            "[calendar.hours]\nmonday = ['08:00-12:15', '13:00-12:00']",
            "calendar.hours.monday[1]: '13:00-12:00' ends before it starts; use HH:MM-HH:MM",
        ),
        (
            "[calendar.hours]\ntuesday = ['08:00-08:00']",
            "calendar.hours.tuesday[0]: '08:00-08:00' ends before it starts; use HH:MM-HH:MM",
        ),
        (
            "[calendar.hours]\nmonday = ['8am-4pm']",
            "calendar.hours.monday[0]: '8am-4pm' is not a time range; use HH:MM-HH:MM",
        ),
        (
            "[calendar.hours]\nmonday = ['08:00']",
            "calendar.hours.monday[0]: '08:00' is not a time range; use HH:MM-HH:MM",
        ),
        (
            "[calendar.hours]\nmonday = ['08:00-25:00']",
            "calendar.hours.monday[0]: '08:00-25:00': 25:00 is not a time of day; use HH:MM-HH:MM",
        ),
        (
            "[calendar.hours]\nmonday = ['24:00-24:00']",
            "calendar.hours.monday[0]: '24:00-24:00': 24:00 is not a time of day; use HH:MM-HH:MM",
        ),
        (
            "[[calendar.terms]]\nstart = 2026-12-18\nend = 2026-09-03",
            "calendar.terms[0]: ends 2026-09-03 before it starts 2026-12-18",
        ),
        (
            "[[calendar.terms]]\nstart = 2026-09-03",
            "calendar.terms[0].end: missing; this key is required",
        ),
        (
            "[[calendar.terms]]\nstart = '3 Sept'\nend = 2026-12-18",
            "calendar.terms[0].start: '3 Sept' is not a date; use YYYY-MM-DD",
        ),
        (
            "[calendar]\nclosures = [2026-11-02, 'Monday']",
            "calendar.closures[1].start: 'Monday' is not a date; use YYYY-MM-DD",
        ),
        (
            "[calendar]\nclosures = [{start = 2026-10-30, end = 2026-10-26}]",
            "calendar.closures[0]: ends 2026-10-26 before it starts 2026-10-30",
        ),
        (
            "[calendar]\nbank_holidays_division = 'wales'",
            "calendar.bank_holidays_division: 'wales' is not allowed; use one of "
            "england-and-wales, scotland, northern-ireland",
        ),
        # incidents, database, retention, logging
        (
            "[incidents]\nidle_gap_minutes = -1",
            "incidents.idle_gap_minutes: -1 is too small; use more than 0",
        ),
        ("[incidents]\nmax_evidence = 1.5", "incidents.max_evidence: 1.5 is not a whole number"),
        (
            "[incidents]\nfloor_connections = -1",
            "incidents.floor_connections: -1 is too small; use 0 or more",
        ),
        (
            "[incidents]\nfloor_minutes = 2000",
            "incidents.floor_minutes: 2000 is too large; use 1440 or less",
        ),
        (
            "[database]\nurl = 'mysql://hm:s3cret@db/hm'",
            "database.url: 'mysql://hm:***@db/hm': mysql is not supported; use sqlite:///PATH "
            "or postgresql+psycopg://USER:PASSWORD@HOST/DATABASE",
        ),
        (
            "[database]\nurl = 'postgresql://hm:s3cret@db'",
            "database.url: 'postgresql+psycopg://hm:***@db' names no database; use "
            "sqlite:///PATH or postgresql+psycopg://USER:PASSWORD@HOST/DATABASE",
        ),
        (
            "[database]\nurl = 'just words'",
            "database.url: 'just words' is not a database URL; use sqlite:///PATH or "
            "postgresql+psycopg://USER:PASSWORD@HOST/DATABASE",
        ),
        ("[database]\nbatch_size = 0", "database.batch_size: 0 is too small; use 1 or more"),
        (
            "[database]\nflush_interval_s = 'soon'",
            "database.flush_interval_s: 'soon' is not a number",
        ),
        (
            "[retention]\nincidents_days = 0",
            "retention.incidents_days: 0 is too small; use 1 or more",
        ),
        (
            "[logging]\nlevel = 'LOUD'",
            "logging.level: 'LOUD' is not allowed; use one of DEBUG, INFO, WARNING, ERROR, CRITICAL",
        ),
        ("logging = 'INFO'", "logging: 'INFO' is not a table; use [group] or {key = value}"),
    ],
)
def test_wrong_value_names_key_value_and_what_is_allowed(
    tmp_path: Path, text: str, problem: str | None
) -> None:
    if problem is None:
        load_settings(write(tmp_path, text), environ={})
    else:
        assert problems_of(tmp_path, text) == [problem]


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = """
[capture]
snaplen = "abc"
[[segments]]
name = "staff"
vlans = [20]
role = "teacher"
[calendar.hours]
monday = ["08:00-12:15", "13:00-12:00"]
"""
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={})
    error = caught.value
    assert error.problems == (
        "capture.snaplen: 'abc' is not a whole number",
        "segments[0].role: 'teacher' is not allowed; use one of staff, pupil, guest, admin",
        "calendar.hours.monday[1]: '13:00-12:00' ends before it starts; use HH:MM-HH:MM",
    )
    assert error.key == str(path)
    assert str(error) == f"{path}: 3 problems\n  " + "\n  ".join(error.problems)
    assert isinstance(error, ValueError)


@pytest.mark.parametrize(
    ("text", "problems"),
    [
        (
            "[[segments]]\nname = 'a'\nvlans = [2]\nrole = 'staff'\n"
            "[[segments]]\nname = 'a'\nvlans = [3]\nrole = 'pupil'",
            ["segments[1].name: 'a' is already segments[0]'s name; use a different name"],
        ),
        (
            "[[segments]]\nname = 'a'\nvlans = [2]\nrole = 'staff'\n"
            "[[segments]]\nname = 'b'\nvlans = [3, 2]\nrole = 'pupil'",
            ["segments[1].vlans: VLAN 2 is already in segments[0]; a VLAN belongs to one segment"],
        ),
        (
            "[[segments]]\nname = 'a'\ncidrs = ['10.0.0.0/8']\nrole = 'staff'\n"
            "[[segments]]\nname = 'b'\ncidrs = ['10.0.0.0/8']\nrole = 'pupil'",
            [
                "segments[1].cidrs: 10.0.0.0/8 is already in segments[0]; a network belongs to "
                "one segment (a smaller one inside it may differ)"
            ],
        ),
    ],
)
def test_segments_must_not_share_names_vlans_or_networks(
    tmp_path: Path, text: str, problems: list[str]
) -> None:
    assert problems_of(tmp_path, text) == problems


def test_overlapping_networks_of_different_sizes_are_allowed(tmp_path: Path) -> None:
    text = (
        "[[segments]]\nname = 'pupils'\ncidrs = ['10.0.0.0/8']\nrole = 'pupil'\n"
        "[[segments]]\nname = 'staff'\ncidrs = ['10.20.0.0/16']\nrole = 'staff'"
    )
    policy = build_policy(load_settings(write(tmp_path, text), environ={}))
    found = policy.segments.find("10.20.1.1", None)
    assert found is not None and found.name == "staff"


# --- the file itself -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            b'[site]\nname = "a"\nfoo bar\n',
            "line 3: expected '=' after a key in a key/value pair (TOML)",
        ),
        (b'[site]\nname = "a\n', "line 2: illegal character '\\n' (TOML)"),
        (b"[site]\n[site]\n", "line 2: cannot declare ('site',) twice (TOML)"),
        (b"[site\n", "line 1: expected ']' at the end of a table declaration (TOML)"),
        (b'[site]\nname = "caf\xe9"\n', "line 2: not UTF-8 text (TOML)"),
    ],
)
def test_unreadable_toml_names_file_and_line(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={})
    assert str(caught.value) == f"config file {path}: {message}"
    assert caught.value.problems == (str(caught.value),)


def test_missing_config_file_says_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    with pytest.raises(ConfigError, match="absent.toml: not found; copy deploy/config.example"):
        load_settings(path, environ={})


def test_config_file_that_is_a_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=f"config file {tmp_path}: cannot read: Is a directory"):
        load_settings(tmp_path, environ={})


@pytest.mark.parametrize(
    ("environ", "system_exists", "expected"),
    [
        ({"HALLMONITOR_CONFIG": "/srv/hm.toml"}, True, "/srv/hm.toml"),
        ({"HALLMONITOR_CONFIG": ""}, True, "SYSTEM"),
        ({}, True, "SYSTEM"),
        ({}, False, None),
    ],
)
def test_default_config_path(
    tmp_path: Path, environ: dict[str, str], system_exists: bool, expected: str | None
) -> None:
    system = tmp_path / "config.toml"
    if system_exists:
        system.write_text("")
    found = default_config_path(environ=environ, system_path=system)
    assert found == (system if expected == "SYSTEM" else expected and Path(expected))


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


def test_database_url_password_is_not_in_check_output(tmp_path: Path) -> None:
    environ = {"HALLMONITOR_DATABASE__URL": "postgresql://hm:s3cret@db/hm"}
    status, lines = run_config_check(write(tmp_path, ""), environ=environ)
    assert status == 0
    assert "database: postgresql+psycopg://hm:***@db/hm" in lines
    assert not any("s3cret" in line for line in lines)
    environ = {"HALLMONITOR_DATABASE__URL": "oracle://hm:s3cret@db/hm"}
    status, lines = run_config_check(write(tmp_path, ""), environ=environ)
    assert status == 1
    assert not any("s3cret" in line for line in lines)


# --- closures from files, and the policy ---------------------------------------------------


def test_load_closures_merges_ical_and_bank_holidays() -> None:
    days = load_closures(
        [CALENDARS / "closures.ics"],
        CALENDARS / "bank-holidays.json",
        "england-and-wales",
        "Europe/London",
    )
    assert days[date(2026, 9, 2)] == "INSET day"
    assert days[date(2026, 10, 28)] == "Half term"
    assert days[date(2026, 11, 19)] == "Closed: polling station"
    assert days[date(2026, 12, 28)] == "Boxing Day"
    assert len(days) == 8 + 11


@pytest.mark.parametrize(
    ("ical", "bank", "division", "key", "message"),
    [
        (["absent.ics"], None, "england-and-wales", "calendar.ical_files[0]", "cannot read"),
        (
            ["bank-holidays.json"],
            None,
            "england-and-wales",
            "calendar.ical_files[0]",
            "not an iCalendar",
        ),
        ([], "absent.json", "england-and-wales", "calendar.bank_holidays_file", "cannot read"),
        ([], "closures.ics", "england-and-wales", "calendar.bank_holidays_file", "not JSON"),
        ([], "bank-holidays.json", "wales", "calendar.bank_holidays_file", "no division 'wales'"),
    ],
)
def test_load_closures_errors_name_the_key_and_file(
    ical: list[str], bank: str | None, division: str, key: str, message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_closures(
            [CALENDARS / name for name in ical],
            CALENDARS / bank if bank else None,
            division,
        )
    assert caught.value.key == key
    assert str(CALENDARS) in caught.value.message
    assert message in caught.value.message


def at(local: str) -> float:
    """Epoch seconds of a London wall-clock time."""
    from zoneinfo import ZoneInfo

    return datetime.fromisoformat(local).replace(tzinfo=ZoneInfo("Europe/London")).timestamp()


@pytest.mark.parametrize(
    ("local", "expected", "why"),
    [
        ("2026-11-03T10:00", True, "a Tuesday in term"),
        ("2026-11-02T10:00", False, "INSET day, from the config and the .ics file"),
        ("2026-10-28T10:00", False, "half term, from the .ics file"),
        ("2026-11-19T10:00", False, "polling station, a timed .ics event"),
        ("2026-12-28T10:00", False, "outside term anyway"),
        ("2026-11-02T10:00", False, "closure"),
        ("2026-11-09T12:30", False, "Monday lunch: between the configured ranges"),
        ("2026-11-09T13:00", True, "Monday afternoon"),
        ("2026-11-13T14:00", False, "Friday afternoon: school ends 13:00"),
        ("2026-11-14T10:00", True, "Saturday school 09:00-24:00"),
        ("2026-11-14T23:59", True, "Saturday, up to midnight"),
    ],
)
def test_build_policy_calendar_from_settings_and_files(
    school: Path, local: str, expected: bool, why: str
) -> None:
    policy = build_policy(load_settings(school, environ={}))
    assert policy.calendar.is_school_time(at(local)) is expected, why


def test_build_policy_segments_from_settings(school: Path) -> None:
    policy = build_policy(load_settings(school, environ={}))
    staff = policy.segments.find("10.1.1.1", 20)
    assert staff is not None
    assert (staff.name, staff.role, staff.flags) == ("staff", SegmentRole.STAFF, ALL)
    assert staff.networks == (ip_network("10.20.0.0/16"), ip_network("2001:db8:20::/48"))
    guests = policy.segments.find("192.0.2.1", 90)
    assert guests is not None and guests.flags == frozenset()
    assert policy.segments.find("192.0.2.1", None) is None


def test_build_policy_bank_holidays_in_term_close_the_day(tmp_path: Path) -> None:
    (tmp_path / "bh.json").write_bytes((CALENDARS / "bank-holidays.json").read_bytes())
    text = (
        "[calendar]\nbank_holidays_file = 'bh.json'\nbank_holidays_division = 'scotland'\n"
        "[[calendar.terms]]\nstart = 2026-08-17\nend = 2026-12-18\n"
    )
    policy = build_policy(load_settings(write(tmp_path, text), environ={}))
    assert not policy.calendar.is_school_time(at("2026-11-30T10:00"))  # St Andrew's Day
    assert policy.calendar.is_school_time(at("2026-08-31T10:00"))  # an English holiday only


# --- hallmonitor config check --------------------------------------------------------------


def test_config_check_ok_summarises_the_file(school: Path) -> None:
    status, lines = run_config_check(school, environ={})
    assert status == 0
    assert lines == [
        f"ok: {school}: 3 segments, timezone Europe/London, 1 terms, 19 closures",
        f"database: sqlite:///{school.parent}/state/hallmonitor.db",
    ]


def test_config_check_warns_about_what_makes_no_incidents(tmp_path: Path) -> None:
    path = write(tmp_path, "")
    status, lines = run_config_check(path, environ={})
    assert status == 0
    assert lines == [
        f"ok: {path}: 0 segments, timezone Europe/London, 0 terms, 0 closures",
        "database: sqlite:////var/lib/hallmonitor/hallmonitor.db",
        "warning: no segments: every address is unsegmented and nothing is flagged",
        "warning: no terms: every week of the year counts as school time",
    ]


def test_config_check_uses_the_environment_when_no_path_is_given(tmp_path: Path) -> None:
    path = write(tmp_path, "[site]\nname = 'x'\n")
    status, lines = run_config_check(None, environ={"HALLMONITOR_CONFIG": str(path)})
    assert (status, lines[0].split(":")[0:2]) == (0, ["ok", f" {path}"])


def test_config_check_reports_every_problem(tmp_path: Path) -> None:
    path = write(tmp_path, "[capture]\nsnaplen = 'x'\n[logging]\nlevel = 'LOUD'\n")
    status, lines = run_config_check(path, environ={})
    assert status == 1
    assert lines == [
        f"error: {path}: capture.snaplen: 'x' is not a whole number",
        f"error: {path}: logging.level: 'LOUD' is not allowed; use one of DEBUG, INFO, "
        "WARNING, ERROR, CRITICAL",
    ]


def test_config_check_reports_toml_and_closure_file_errors(tmp_path: Path) -> None:
    path = write(tmp_path, "[site\n")
    assert run_config_check(path, environ={}) == (
        1,
        [
            f"error: config file {path}: line 1: expected ']' at the end of a table declaration (TOML)"
        ],
    )
    path = write(tmp_path, "[calendar]\nical_files = ['absent.ics']\n")
    status, lines = run_config_check(path, environ={})
    assert status == 1
    assert lines == [
        f"error: {path}: calendar.ical_files[0]: {tmp_path / 'absent.ics'}: cannot read: "
        "No such file or directory"
    ]


def test_config_error_single_problem() -> None:
    error = ConfigError("calendar.timezone", "'Mars' is not a known time zone")
    assert str(error) == "calendar.timezone: 'Mars' is not a known time zone"
    assert error.problems == (str(error),)
    assert (error.key, error.message) == ("calendar.timezone", "'Mars' is not a known time zone")


def test_settings_built_directly_validate_and_read_no_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HALLMONITOR_SITE__NAME", "ignored")
    assert Settings().site.name == "school"
    assert Settings(site={"name": "given"}).site.name == "given"  # type: ignore[arg-type]


def test_timestamps_helper_is_london_time() -> None:
    assert at("2026-07-01T09:00") == datetime(2026, 7, 1, 8, tzinfo=UTC).timestamp()


# --- web, mail and reports ----------------------------------------------------------------------


def test_web_public_url_prefers_base_url_then_host_port_and_prefix(tmp_path: Path) -> None:
    settings = load_settings(None, environ={})
    assert settings.web.public_url() == "http://127.0.0.1:8080"
    settings = load_settings(
        write(tmp_path, '[web]\nhost = "::1"\nport = 9000\nroot_path = "/monitor/"\n'), environ={}
    )
    assert settings.web.public_url() == "http://[::1]:9000/monitor"
    settings = load_settings(
        None, environ={"HALLMONITOR_WEB__BASE_URL": "https://hm.school.example/"}
    )
    assert settings.web.public_url() == "https://hm.school.example"


def test_mail_password_comes_from_its_file_before_the_setting(tmp_path: Path) -> None:
    secret = tmp_path / "smtp-password"
    secret.write_text("from-file\n")
    settings = load_settings(
        write(tmp_path, f'[mail]\npassword = "in-config"\npassword_file = "{secret}"\n'), environ={}
    )
    assert settings.mail.smtp_password() == "from-file"
    assert "in-config" not in repr(settings)
    assert (
        load_settings(None, environ={"HALLMONITOR_MAIL__PASSWORD": "env"}).mail.smtp_password()
        == "env"
    )


def test_mail_ca_file_is_taken_from_the_config_file_directory(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, '[mail]\nca_file = "smtp-ca.pem"\n'), environ={})
    assert settings.mail.ca_file == tmp_path / "smtp-ca.pem"
    assert load_settings(None, environ={}).mail.ca_file is None


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('[mail]\nreviewers = ["not-an-address"]', "mail.reviewers[0]"),
        ('[mail]\nsecurity = "ssl"', "mail.security"),
        ('[reports]\nweekly_time = "7am"', "reports.weekly_time"),
        ('[web]\nsecure_cookies = "yes"', "web.secure_cookies"),
    ],
)
def test_wrong_web_mail_and_report_values_name_their_key(
    tmp_path: Path, text: str, key: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, text), environ={})
    assert str(caught.value).count(key) >= 1


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


def test_metrics_token_is_secret_and_empty_by_default(tmp_path: Path) -> None:
    assert load_settings(None, environ={}).web.metrics_token.get_secret_value() == ""
    settings = load_settings(write(tmp_path, '[web]\nmetrics_token = "t0ken"\n'), environ={})
    assert settings.web.metrics_token.get_secret_value() == "t0ken"
    assert "t0ken" not in repr(settings)
