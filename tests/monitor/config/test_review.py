"""The [web], [mail] and [reports] groups."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.config.loading import load_settings
from monitor.errors import ConfigError
from tests.monitor.config.conftest import write


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


def test_metrics_token_is_secret_and_empty_by_default(tmp_path: Path) -> None:
    assert load_settings(None, environ={}).web.metrics_token.get_secret_value() == ""
    settings = load_settings(write(tmp_path, '[web]\nmetrics_token = "t0ken"\n'), environ={})
    assert settings.web.metrics_token.get_secret_value() == "t0ken"
    assert "t0ken" not in repr(settings)
