"""The demo's built-in settings, under a named config file and the environment."""

from __future__ import annotations

from ipaddress import ip_network
from pathlib import Path

from monitor.demo.settings import DEMO_SITE, demo_base, load_demo_settings


def test_the_demo_is_a_school_with_a_staff_segment_and_data_under_the_data_dir(
    tmp_path: Path,
) -> None:
    settings = load_demo_settings(None, tmp_path / "var", environ={})
    assert settings.site.name == DEMO_SITE
    [staff] = settings.segments
    assert staff.role == "staff"
    assert ip_network("10.20.0.0/16") in staff.cidrs
    assert settings.database.url.get_secret_value() == f"sqlite:///{tmp_path}/var/hallmonitor.db"
    assert settings.database.spool_dir == tmp_path / "var" / "spool"


def test_the_default_data_dir_is_var_in_the_current_directory() -> None:
    assert demo_base(Path("var"))["database"]["data_dir"] == str(Path("var").resolve())


def test_a_config_file_overrides_the_demo_key_by_key(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[site]\nname = "st-marys"\n[calendar]\ntimezone = "Europe/Dublin"\n')
    settings = load_demo_settings(config, tmp_path, environ={})
    assert (settings.site.name, settings.calendar.timezone) == ("st-marys", "Europe/Dublin")
    assert settings.segments[0].name == "staff"
    assert settings.database.data_dir == tmp_path


def test_the_environment_overrides_the_demo(tmp_path: Path) -> None:
    settings = load_demo_settings(None, tmp_path, environ={"HALLMONITOR_WEB__PORT": "9090"})
    assert settings.web.port == 9090
