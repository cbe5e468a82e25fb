"""One line per wrong value: key, value, what is allowed, and the variable that set it."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.config.loading import load_settings
from monitor.errors import ConfigError
from tests.monitor.config.conftest import problems_of, write


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
            "buffer_mb, workers, metrics_listen",
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
        ("[capture]\nworkers = 0", "capture.workers: 0 is too small; use 1 or more"),
        (
            "[capture]\ndns_ports = [53, 70000]",
            "capture.dns_ports[1]: 70000 is too large; use 65535 or less",
        ),
        ("[capture]\ninterfaces = 'eth0'", None),  # a string is a one-item list, as in env
        ("[capture]\ninterfaces = [1]", "capture.interfaces[0]: 1 is not a string; use quotes"),
        # lists
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
            "buffer_mb, workers, metrics_listen (from HALLMONITOR_CAPTURE__SNAPLENGTH)",
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


def test_config_error_single_problem() -> None:
    error = ConfigError("calendar.timezone", "'Mars' is not a known time zone")
    assert str(error) == "calendar.timezone: 'Mars' is not a known time zone"
    assert error.problems == (str(error),)
    assert (error.key, error.message) == ("calendar.timezone", "'Mars' is not a known time zone")
