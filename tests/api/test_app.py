"""The app as a whole: start-up, security headers, error pages, path prefix, templates."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from fastapi.testclient import TestClient
from sqlalchemy import text

from api.app import OPENAPI_URL, SECURITY_HEADERS, build_templates, create_app
from monitor.errors import SchemaNotCurrent
from monitor.store.db import make_engine
from monitor.store.workflow import UserRole
from tests.api.conftest import (
    FAST_HASHER,
    AppFactory,
    AppHarness,
    csrf_token_in,
    make_settings,
    probe_router,
)

# --- start-up --------------------------------------------------------------------------------


def test_an_empty_database_refuses_to_start(tmp_path: Path) -> None:
    app = create_app(make_settings(f"sqlite:///{tmp_path / 'empty.sqlite3'}"))
    with pytest.raises(SchemaNotCurrent, match="run `hallmonitor db upgrade`"), TestClient(app):
        pass


def test_an_old_schema_refuses_to_start(api_sqlite_template: Path, tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    shutil.copyfile(api_sqlite_template, path)
    engine = make_engine(f"sqlite:///{path}")
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '1d118027e993'"))
    engine.dispose()
    app = create_app(make_settings(f"sqlite:///{path}"))
    with pytest.raises(SchemaNotCurrent, match="at revision 1d118027e993"), TestClient(app):
        pass


def test_without_settings_the_factory_reads_the_config_file(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[site]\nname = "north"\n[database]\nurl = "{db_url}"\n')
    monkeypatch.setenv("HALLMONITOR_CONFIG", str(config))
    app = create_app()
    assert app.state.settings.site.name == "north"
    with TestClient(app) as client:
        assert "north" in client.get("/login").text


# --- headers ---------------------------------------------------------------------------------


@pytest.fixture
def probes(app_client: AppFactory) -> AppHarness:
    return app_client(routers=(probe_router(),), raise_server_exceptions=False)


@pytest.mark.parametrize(
    "path", ["/login", "/", "/no-such-page", "/api/test/probe", "/test/boom", "/api/test/boom"]
)
def test_every_response_has_the_security_headers(probes: AppHarness, path: str) -> None:
    response = probes.client.get(path, follow_redirects=False)
    for name, value in SECURITY_HEADERS.items():
        assert response.headers[name] == value, name
    assert response.headers["cache-control"] == "no-store"


def test_the_policy_forbids_inline_scripts_and_framing(probes: AppHarness) -> None:
    policy = probes.client.get("/login").headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert "frame-ancestors 'none'" in policy


def test_pages_have_no_inline_scripts_or_styles(probes: AppHarness) -> None:
    probes.sign_in(UserRole.ADMIN)
    for path in ("/", "/login?failed=1", "/no-such-page"):
        soup = BeautifulSoup(probes.client.get(path).text, "html.parser")
        assert soup.find("script") is None
        assert soup.find("style") is None
        assert soup.select("[style]") == []


def test_static_files_are_served_and_may_be_cached(probes: AppHarness) -> None:
    response = probes.client.get("/static/style.css")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/css")
    assert "cache-control" not in response.headers
    assert ":focus-visible" in response.text


# --- errors ----------------------------------------------------------------------------------


def test_an_unknown_page_gets_the_404_page(probes: AppHarness) -> None:
    response = probes.client.get("/no-such-page")
    assert response.status_code == 404
    assert response.template.name == "pages/errors/404.html"  # type: ignore[attr-defined]
    assert BeautifulSoup(response.text, "html.parser").h1.get_text() == "Page not found"  # type: ignore[union-attr]


def test_an_unknown_api_path_gets_json(probes: AppHarness) -> None:
    response = probes.client.get("/api/v1/nothing")
    assert (response.status_code, response.json()) == (404, {"detail": "Not Found"})


def test_a_missing_item_is_a_404_naming_it_on_pages_and_the_api(probes: AppHarness) -> None:
    page = probes.client.get("/test/missing")
    assert page.status_code == 404
    assert page.template.name == "pages/errors/404.html"  # type: ignore[attr-defined]
    assert "No incident 42." in page.text and "see the queue" not in page.text
    api = probes.client.get("/api/test/missing")
    assert (api.status_code, api.json()) == (404, {"detail": "No incident 42."})


def test_other_lookup_errors_are_bugs_not_missing_items(probes: AppHarness) -> None:
    assert probes.client.get("/test/key-error").status_code == 500


def test_a_failing_page_gets_the_500_page_without_details(probes: AppHarness) -> None:
    response = probes.client.get("/test/boom")
    assert response.status_code == 500
    assert response.template.name == "pages/errors/500.html"  # type: ignore[attr-defined]
    assert "deliberate failure" not in response.text
    assert "Something went wrong" in response.text


def test_a_failing_api_call_gets_json(probes: AppHarness) -> None:
    response = probes.client.get("/api/test/boom")
    assert (response.status_code, response.json()) == (500, {"detail": "Internal Server Error"})


def test_bad_parameters_are_400_on_pages_and_422_json_on_the_api(probes: AppHarness) -> None:
    page = probes.client.get("/test/number/abc")
    api = probes.client.get("/api/test/number/abc")
    assert page.status_code == 400
    assert page.template.name == "pages/errors/error.html"  # type: ignore[attr-defined]
    assert api.status_code == 422 and api.json()["detail"][0]["loc"] == ["path", "value"]


def test_a_wrong_method_gets_the_generic_error_page(probes: AppHarness) -> None:
    response = probes.client.put("/login")
    assert response.status_code == 405
    assert response.context["page"].status == 405  # type: ignore[attr-defined]


def test_the_openapi_schema_is_under_api_v1(probes: AppHarness) -> None:
    schema = probes.client.get(OPENAPI_URL).json()
    assert schema["info"]["title"] == "Hall Monitor"
    assert "/login" not in schema["paths"]  # pages are not part of the API


# --- path prefix -----------------------------------------------------------------------------


@pytest.mark.parametrize("proxy_strips_prefix", [True, False])
def test_the_app_works_below_a_path_prefix(
    app_client: AppFactory, proxy_strips_prefix: bool
) -> None:
    harness = app_client(root_path="/monitor")
    prefix = "" if proxy_strips_prefix else "/monitor"
    response = harness.client.get(prefix + "/", follow_redirects=False)
    assert response.headers["location"] == "/monitor/login?next=%2F"
    login = harness.client.get(prefix + "/login")
    soup = BeautifulSoup(login.text, "html.parser")
    assert soup.find("form")["action"] == "/monitor/login"  # type: ignore[index]
    assert soup.find("link", rel="stylesheet")["href"] == "/monitor/static/style.css"  # type: ignore[index]
    assert "Path=/monitor" in login.headers["set-cookie"]
    assert harness.client.get(prefix + "/static/style.css").status_code == 200


def test_signing_in_below_a_path_prefix(app_client: AppFactory) -> None:
    harness = app_client(root_path="/monitor")
    user = harness.add_user(UserRole.REVIEWER, "head")
    token = csrf_token_in(harness.client.get("/monitor/login").text)
    response = harness.client.post(
        "/monitor/login",
        data={"username": user.username, "password": "correct horse battery staple",
              "csrf_token": token, "next": "/"},
        follow_redirects=False,
    )  # fmt: skip
    assert response.headers["location"] == "/monitor/"
    assert "Path=/monitor" in response.headers["set-cookie"]
    home = harness.client.get("/monitor/")
    assert home.status_code == 200 and home.url.path == "/monitor/"
    logout = BeautifulSoup(home.text, "html.parser").find("form", class_="sign-out")
    assert logout is not None and logout["action"] == "/monitor/logout"


# --- templates -------------------------------------------------------------------------------


def test_templates_escape_and_refuse_undefined_names(db_url: str) -> None:
    env = build_templates(make_settings(db_url)).env
    assert env.from_string("{{ x }}").render(x="<b>") == "&lt;b&gt;"
    with pytest.raises(Exception, match="'missing' is undefined"):
        env.from_string("{{ missing }}").render()


def test_local_time_shows_the_schools_clock(db_url: str) -> None:
    env = build_templates(make_settings(db_url)).env
    summer = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
    assert env.from_string("{{ t|local_time }}").render(t=summer) == "Wed 01 Jul 2026 13:00"
    assert env.from_string("{{ t|local_time('%H:%M') }}").render(t=summer) == "13:00"


def test_a_cheap_hasher_can_be_given_for_tests(db_url: str) -> None:
    assert (
        create_app(make_settings(db_url), password_hasher=FAST_HASHER).state.password_hasher
        is FAST_HASHER
    )
