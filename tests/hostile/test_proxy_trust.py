"""Who a request comes from is the address that connected, unless an operator names a proxy.

X-Forwarded-For and X-Forwarded-Proto are headers any client can send. The app believed them
from 127.0.0.1 by default, so any local program (or anything a local service relays) chose the
address the audit log records. Now no proxy is trusted unless ``web.forwarded_allow_ips``
names it, and ``config check`` refuses an entry it could not use, as it refuses a
``web.root_path`` that is not a path."""

from __future__ import annotations

from pathlib import Path

import pytest

from api.auth import SESSION_COOKIE
from monitor.config.check import run_config_check
from monitor.config.loading import load_settings
from monitor.config.settings import Settings
from monitor.store.workflow import UserRole
from tests.api.conftest import (  # noqa: F401
    PASSWORD,
    AppFactory,
    AppHarness,
    api_sqlite_template,
    app_client,
    db_url,
)

LOOPBACK = ("127.0.0.1", 50000)
FORGED = "10.66.6.6"


def sign_in_with(harness: AppHarness, username: str = "head", **headers: str) -> list[str]:
    """Sign in through the login form with extra headers; the Set-Cookie headers."""
    harness.add_user(UserRole.REVIEWER, username)
    response = harness.client.post(
        "/login",
        data={"username": username, "password": PASSWORD, "csrf_token": harness.login_token()},
        headers=headers,
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return response.headers.get_list("set-cookie")


def test_by_default_a_forged_x_forwarded_for_from_loopback_is_not_believed(
    app_client: AppFactory,  # noqa: F811
) -> None:
    harness = app_client(client=LOOPBACK)
    sign_in_with(harness, **{"X-Forwarded-For": FORGED})
    assert [(row.action, row.address) for row in harness.audit_rows()] == [("login", "127.0.0.1")]


def test_by_default_a_local_client_cannot_claim_https(
    app_client: AppFactory,  # noqa: F811
) -> None:
    harness = app_client(client=LOOPBACK)
    cookies = sign_in_with(harness, **{"X-Forwarded-Proto": "https"})
    session = next(c for c in cookies if c.startswith(SESSION_COOKIE + "="))
    assert "secure" not in session.lower()


def test_a_configured_proxy_gives_the_forwarded_address(
    app_client: AppFactory,  # noqa: F811
) -> None:
    harness = app_client(client=LOOPBACK, forwarded_allow_ips=["127.0.0.1", "::1"])
    sign_in_with(harness, **{"X-Forwarded-For": FORGED})
    assert [(row.action, row.address) for row in harness.audit_rows()] == [("login", FORGED)]


def test_a_configured_proxy_network_is_trusted_and_no_one_outside_it(
    app_client: AppFactory,  # noqa: F811
) -> None:
    outside = app_client(client=("10.9.9.9", 50000), forwarded_allow_ips=["192.168.50.0/24"])
    sign_in_with(outside, **{"X-Forwarded-For": FORGED})
    inside = app_client(client=("192.168.50.7", 50000), forwarded_allow_ips=["192.168.50.0/24"])
    sign_in_with(inside, "deputy", **{"X-Forwarded-For": FORGED})
    assert [row.address for row in outside.audit_rows()] == ["10.9.9.9", FORGED]


def test_the_default_trusts_no_proxy() -> None:
    assert Settings().web.forwarded_allow_ips == []


# --- config check --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("web", "problem"),
    [
        (
            'root_path = "no-leading-slash/"',
            "web.root_path: 'no-leading-slash/' does not start with \"/\"; write the path the "
            'reverse proxy serves the app below, starting with "/", e.g. "/monitor", or "" when '
            "the app is at the root of its name",
        ),
        (
            'root_path = "/two words"',
            "web.root_path: '/two words' is not a URL path; write the path the reverse proxy "
            'serves the app below, starting with "/", e.g. "/monitor", or "" when the app is at '
            "the root of its name",
        ),
        (
            'forwarded_allow_ips = ["not-an-ip"]',
            "web.forwarded_allow_ips[0]: 'not-an-ip' is not an IP address or network; list the "
            'reverse proxy\'s address as it connects to the app, e.g. ["127.0.0.1", "::1"] '
            "for nginx on this host, or [] to trust no proxy",
        ),
        (
            'forwarded_allow_ips = ["127.0.0.1", "10.0.0.1/8"]',
            "web.forwarded_allow_ips[1]: '10.0.0.1/8' has host bits set; use 10.0.0.0/8",
        ),
        (
            'forwarded_allow_ips = ["*", "127.0.0.1"]',
            'web.forwarded_allow_ips: "*" already trusts every client: give it alone, ["*"], '
            "or list only the proxies' addresses",
        ),
    ],
)
def test_config_check_refuses_a_proxy_setting_it_could_not_use(
    tmp_path: Path, web: str, problem: str
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f"[web]\n{web}\n")
    assert run_config_check(config, environ={}) == (1, [f"error: {config}: {problem}"])


@pytest.mark.parametrize(
    ("web", "root_path", "proxies"),
    [
        ("", "", []),
        ('root_path = "/monitor/"', "/monitor", []),  # the trailing slash is dropped
        ('root_path = "/"', "", []),
        ('forwarded_allow_ips = ["127.0.0.1", "::1"]', "", ["127.0.0.1", "::1"]),
        ('forwarded_allow_ips = ["10.0.0.0/8", "fd00::/8"]', "", ["10.0.0.0/8", "fd00::/8"]),
        ('forwarded_allow_ips = ["*"]', "", ["*"]),
    ],
)
def test_config_check_accepts_paths_and_proxy_addresses(
    tmp_path: Path, web: str, root_path: str, proxies: list[str]
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f"[web]\n{web}\n")
    status, lines = run_config_check(config, environ={})
    assert status == 0, lines
    web_settings = load_settings(config, environ={}).web
    assert (web_settings.root_path, web_settings.forwarded_allow_ips) == (root_path, proxies)


def test_config_check_warns_when_an_https_address_has_no_trusted_proxy(tmp_path: Path) -> None:
    """An upgrade from the old default (loopback trusted) behind nginx is told what to set."""
    config = tmp_path / "config.toml"
    config.write_text('[web]\nbase_url = "https://hallmonitor.school.example"\n')
    status, lines = run_config_check(config, environ={})
    assert status == 0
    assert lines[-1] == (
        "warning: web.base_url is https but web.forwarded_allow_ips is empty: behind a reverse "
        'proxy, list its address (["127.0.0.1", "::1"] for nginx on this host), or the audit '
        "log records the proxy's address for everyone"
    )
    config.write_text(
        '[web]\nbase_url = "https://hallmonitor.school.example"\n'
        'forwarded_allow_ips = ["127.0.0.1"]\n'
    )
    assert not any("warning: web" in line for line in run_config_check(config, environ={})[1])
