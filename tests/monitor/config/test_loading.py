"""Loading: the file, the environment over it, every problem at once."""

from __future__ import annotations

from datetime import date, time
from ipaddress import ip_network
from pathlib import Path

import pytest

from monitor.config.loading import default_config_path, load_settings
from monitor.config.rules import build_policy
from monitor.errors import ConfigError
from monitor.values import Category, SegmentRole
from tests.monitor.config.conftest import ALL, problems_of, value_at, write


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


def test_mail_ca_file_is_taken_from_the_config_file_directory(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, '[mail]\nca_file = "smtp-ca.pem"\n'), environ={})
    assert settings.mail.ca_file == tmp_path / "smtp-ca.pem"
    assert load_settings(None, environ={}).mail.ca_file is None
