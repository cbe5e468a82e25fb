"""Hostile values in every parameter of every route are a 4xx with a clear message, never a 500.

A NUL character (PostgreSQL refuses it in a text value), a number past 64 bits (the driver or
``bigint`` overflows), a date near ``date.max`` (the end of a range is the next midnight) and a
lone surrogate from a JSON ``\\ud800`` escape (not UTF-8) once gave HTTP 500s, and the CSV export
answered 200 and then broke off mid-stream. The rules live in ``api/params.py``; here each
hostile value goes into each parameter of each page and API route, on SQLite and PostgreSQL,
as a table and as Hypothesis-made query strings. The answer must be below 500, and where the
value is one the parameter cannot take, a 4xx whose message names the problem (the page's own
error style for pages, a JSON ``detail`` for the API).
"""

from __future__ import annotations

import json
import logging
import shutil
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Annotated, Any
from urllib.parse import quote

import pytest
from fastapi._compat import ModelField
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, TypeAdapter, ValidationError

from api.app import API_ROUTERS, PAGE_MODULES, create_app
from monitor.store.workflow import UserRole
from tests.api.conftest import FAST_HASHER, AppHarness, make_settings
from tests.api.routes.conftest import Seeded, bearer, seeded
from tests.monitor.conftest import (
    BACKENDS,
    PostgresServer,
    postgres_server,
    postgres_test_url,
    sqlite_template,
)

__all__ = ["postgres_server", "postgres_test_url", "sqlite_template"]  # fixtures used here

logger = logging.getLogger(__name__)

NUL = "a\x00b"
BIG = "99999999999999999999"
FAR = "9999-12-31"
EARLY = "0001-01-01"
NOT_UTF8 = "\udcff"
"""Sent in a URL or form as the bytes ``%ED%B3%BF`` (not UTF-8); in JSON as ``\\udcff``."""
VALUES = {"nul": NUL, "big": BIG, "far": FAR, "early": EARLY, "not-utf8": NOT_UTF8}

TEXT, NUMBER, DAY = "text", "number", "day"
REFUSED = {
    TEXT: {NUL},
    NUMBER: {NUL, BIG, FAR, EARLY, NOT_UTF8},
    DAY: {NUL, BIG, FAR, EARLY, NOT_UTF8},
}
"""The values each kind of parameter must refuse with a 4xx (others may be accepted)."""
NOT_THIS_KIND = ("valid integer", "valid date", "valid datetime", "YYYY-MM-DD", "whole number")
EXPLAINED = {
    NUL: ("NUL character",),
    BIG: ("less than or equal to", *NOT_THIS_KIND),
    FAR: ("is outside 2000", *NOT_THIS_KIND),
    EARLY: ("is outside 2000", *NOT_THIS_KIND),
    NOT_UTF8: ("lone surrogate", "valid string", *NOT_THIS_KIND),
}
"""What a refusal's message says about each value (any one of these phrases): never only a
generic "check what you entered"."""

QUEUE = [("platform", TEXT), ("segment", TEXT), ("site", TEXT), ("device", TEXT),
         ("sort", TEXT), ("status", TEXT), ("date_from", DAY), ("date_to", DAY),
         ("page", NUMBER)]  # fmt: skip
PAGE_QUERIES: dict[str, list[tuple[str, str]]] = {
    "/incidents": QUEUE,
    "/incidents.csv": QUEUE,
    "/devices": [("q", TEXT), ("page", NUMBER), ("done", TEXT)],
    "/admin/audit": [("action", TEXT), ("user", TEXT), ("target_type", TEXT),
                     ("target_id", TEXT), ("start", DAY), ("end", DAY), ("page", NUMBER)],
    "/admin/lists": [("platform", TEXT), ("done", TEXT)],
    "/admin/users": [("done", TEXT)],
    "/admin/tokens": [("done", TEXT)],
    "/password": [("next", TEXT)],
}  # fmt: skip
API_QUERIES: dict[str, list[tuple[str, str]]] = {
    "/api/v1/incidents": [("platform", TEXT), ("segment", TEXT), ("role", TEXT),
                          ("device", TEXT), ("site", TEXT), ("date_from", DAY),
                          ("date_to", DAY), ("page", NUMBER), ("per_page", NUMBER)],
    "/api/v1/devices": [("search", TEXT), ("page", NUMBER), ("per_page", NUMBER)],
    "/api/v1/audit": [("action", TEXT), ("username", TEXT), ("target_type", TEXT),
                      ("target_id", TEXT), ("since", DAY), ("until", DAY), ("page", NUMBER)],
    "/api/v1/stats/incidents": [("date_from", DAY), ("date_to", DAY)],
    "/api/v1/stats/capture": [("date_from", DAY), ("date_to", DAY)],
    "/api/v1/stats/governors": [("date_from", DAY), ("date_to", DAY)],
}  # fmt: skip
PATHS = [
    "/incidents/{}", "/devices/{}", "/devices/{}/erase",
    "/api/v1/incidents/{}", "/api/v1/devices/{}",
]  # fmt: skip
FORMS: list[tuple[str, str, dict[str, str]]] = [
    ("/incidents/{incident}/review", "note", {"to_status": "in_review"}),
    ("/incidents/{incident}/review", "second_reviewer", {"to_status": "in_review"}),
    ("/devices/{device}/label", "label", {}),
    ("/devices/{device}/merge", "reason", {"new_mac": "not-a-mac"}),  # never merges
    ("/devices/{device}/erase", "reason", {"confirm": "nothing"}),
    ("/admin/users", "username", {"display_name": "X", "role": "reviewer", "password": "x" * 20}),
    ("/admin/users", "site", {"username": "x", "display_name": "X", "role": "reviewer",
                              "password": "x" * 20}),
    ("/admin/tokens", "name", {"username": "nobody"}),
    ("/admin/lists/changes", "reason", {"action": "add", "list_name": "social",
                                        "suffix": "example.org", "approved_by": "head"}),
    ("/login", "username", {"password": "x"}),
]  # fmt: skip
"""Page forms: (path, the field given the hostile value, the other fields)."""
JSON_BODIES: list[tuple[str, str, str, dict[str, str]]] = [
    ("PUT", "/api/v1/devices/{device}/label", "label", {}),
    ("POST", "/api/v1/incidents/{incident}/review", "note", {"to_status": "in_review"}),
    ("POST", "/api/v1/incidents/{incident}/review", "second_reviewer", {"to_status": "in_review"}),
]  # fmt: skip


@dataclass
class HostileApp:
    """One app per backend: an admin signed in (cookie) and an admin's bearer token."""

    harness: AppHarness
    ids: Seeded
    api_headers: dict[str, str]
    csrf: str
    statuses: Counter[int] = field(default_factory=Counter)

    @property
    def client(self) -> TestClient:
        return self.harness.client

    def send(self, method: str, url: str, **kwargs: Any) -> Any:
        headers = {**(self.api_headers if url.startswith("/api/") else {}), **kwargs.pop("headers", {})}  # fmt: skip
        response = self.client.request(method, url, headers=headers, follow_redirects=False, **kwargs)  # fmt: skip
        self.statuses[response.status_code] += 1
        return response


def in_url(value: str) -> str:
    """``value`` percent-encoded as a client sends it (a lone surrogate as its raw bytes)."""
    return quote(value.encode("utf-8", "surrogatepass"), safe="")


def message(response: Any) -> str:
    """What the answer tells the person: the JSON ``detail`` (with each field's location), or
    the page's message (the error page's, or the queue's own error box)."""
    if response.headers.get("content-type", "").startswith("application/json"):
        detail = response.json()["detail"]
        if isinstance(detail, str):
            return detail
        return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in detail)
    page = response.context["page"]
    return str(getattr(page, "message", None) or getattr(page, "error", None) or "")


def assert_refused(response: Any, value: str, where: str) -> None:
    """A 4xx whose message explains ``value``'s problem in words, not a generic sentence."""
    assert 400 <= response.status_code < 500, f"{where}: {response.status_code} {response.text[:300]}"  # fmt: skip
    said = message(response)
    assert any(phrase in said for phrase in EXPLAINED[value]), f"{where}: {said!r}"
    assert not response.headers.get("content-type", "").startswith("text/csv"), where


@pytest.fixture(scope="module", params=BACKENDS)
def hostile(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[HostileApp]:
    """The review app on a seeded database of the backend, shared by this module's tests: the
    hostile requests are refused, and the few accepted (non-UTF-8 bytes read as U+FFFD) only
    label the device or move the incident to review. Any 5xx seen fails the module here."""
    server: PostgresServer | None = None
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("hostile") / "app.sqlite3"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        url = f"sqlite:///{path}"
    else:
        server = request.getfixturevalue("postgres_server")
        database = server.create_database(template=server.template)
        url = database.render_as_string(hide_password=False)
    settings_ = make_settings(url)
    app = create_app(settings_, password_hasher=FAST_HASHER)
    with TestClient(app, raise_server_exceptions=False) as client:
        harness = AppHarness(client, app, settings_)
        ids = seeded(harness)
        headers = bearer(harness, UserRole.ADMIN)
        harness.sign_in(UserRole.ADMIN)
        result = HostileApp(harness, ids, headers, harness.session_csrf())
        yield result
        logger.info(
            "%s: %d hostile requests, statuses %s",
            request.param, result.statuses.total(), dict(sorted(result.statuses.items())),
        )  # fmt: skip
        assert not [status for status in result.statuses if status >= 500]
    if server is not None:
        server.drop_database(database)


QUERY_CASES = [
    pytest.param(path, name, kind, value, id=f"{path}?{name}={label}")
    for path, params in (PAGE_QUERIES | API_QUERIES).items()
    for name, kind in params
    for label, value in VALUES.items()
]


@pytest.mark.parametrize(("path", "name", "kind", "value"), QUERY_CASES)
def test_hostile_query_value_is_refused_clearly_or_accepted(
    hostile: HostileApp, path: str, name: str, kind: str, value: str
) -> None:
    response = hostile.send("GET", f"{path}?{name}={in_url(value)}")
    where = f"GET {path}?{name}={value!r}"
    assert response.status_code < 500, f"{where}: {response.text[:300]}"
    if value in REFUSED[kind]:
        assert_refused(response, value, where)


@pytest.mark.parametrize("template", PATHS)
@pytest.mark.parametrize("label", list(VALUES))
def test_hostile_id_in_a_path_is_refused_clearly(
    hostile: HostileApp, template: str, label: str
) -> None:
    value = VALUES[label]
    response = hostile.send("GET", template.format(in_url(value)))
    assert_refused(response, value, f"GET {template.format(repr(value))}")


@pytest.mark.parametrize("action", ["disabled", "password"])
def test_nul_in_a_username_path_is_refused_clearly(hostile: HostileApp, action: str) -> None:
    form = {"disabled": "true", "password": "x" * 20, "csrf_token": hostile.csrf}
    response = hostile.send("POST", f"/admin/users/{in_url(NUL)}/{action}", data=form)
    assert_refused(response, NUL, f"POST /admin/users/<NUL>/{action}")


def test_a_token_id_past_64_bits_is_refused_clearly(hostile: HostileApp) -> None:
    form = {"csrf_token": hostile.csrf}
    response = hostile.send("POST", f"/admin/tokens/{BIG}/revoke", data=form)
    assert_refused(response, BIG, f"POST /admin/tokens/{BIG}/revoke")


@pytest.mark.parametrize(("path", "name", "others"), FORMS)
@pytest.mark.parametrize("label", ["nul", "not-utf8"])
def test_hostile_form_field_is_refused_clearly(
    hostile: HostileApp, path: str, name: str, others: dict[str, str], label: str
) -> None:
    url = path.format(incident=hostile.ids.staff_incident, device=hostile.ids.staff_device)
    value = VALUES[label]
    fields = {**others, name: value, "csrf_token": hostile.csrf}
    body = "&".join(f"{key}={in_url(item)}" for key, item in fields.items())
    response = hostile.send(
        "POST", url, content=body, headers={"content-type": "application/x-www-form-urlencoded"}
    )
    where = f"POST {url} {name}={value!r}"
    if label == "nul":
        assert_refused(response, value, where)
    else:  # the browser's bytes are not UTF-8: read as U+FFFD, or refused; never a 500
        assert response.status_code < 500, f"{where}: {response.text[:300]}"


@pytest.mark.parametrize(("method", "path", "name", "others"), JSON_BODIES)
@pytest.mark.parametrize("label", ["nul", "not-utf8"])
def test_hostile_json_field_is_refused_clearly(
    hostile: HostileApp, method: str, path: str, name: str, others: dict[str, str], label: str
) -> None:
    url = path.format(incident=hostile.ids.staff_incident, device=hostile.ids.staff_device)
    value = VALUES[label]
    body = json.dumps({**others, name: value})  # ASCII: "\u0000", "\udcff"
    response = hostile.send(
        method, url, content=body.encode(), headers={"content-type": "application/json"}
    )
    assert_refused(response, value, f"{method} {url} {name}={value!r}")
    response.content.decode("utf-8")  # the answer itself is UTF-8 (the surrogate escaped)


@pytest.mark.parametrize(
    "body",
    [b'{"\\udcff": 1}', b'"\\udcff"', b'["\\ud800"]', b'{"label": "\xed\xb3\xbf"}', b"\xff\xfe"],
    ids=["surrogate-key", "surrogate-string", "surrogate-in-list", "surrogate-bytes", "not-json"],
)
def test_a_json_body_with_lone_surrogates_anywhere_gets_a_utf8_422(
    hostile: HostileApp, body: bytes
) -> None:
    url = f"/api/v1/devices/{hostile.ids.staff_device}/label"
    response = hostile.send("PUT", url, content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text[:300]
    assert response.json()["detail"][0]["msg"]
    response.content.decode("utf-8")


@pytest.mark.parametrize("value", [NUL, FAR, BIG], ids=["nul", "far", "big-page"])
def test_csv_export_refuses_before_streaming(hostile: HostileApp, value: str) -> None:
    name = "page" if value == BIG else "date_to" if value == FAR else "device"
    response = hostile.send("GET", f"/incidents.csv?{name}={in_url(value)}")
    assert_refused(response, value, f"GET /incidents.csv?{name}={value!r}")
    assert response.headers["content-type"].startswith("text/html")


LIST_ROUTES = {
    path: [name for name, _ in params]
    for path, params in (PAGE_QUERIES | API_QUERIES).items()
    if path in ("/incidents", "/incidents.csv", "/devices", "/admin/audit",
                "/api/v1/incidents", "/api/v1/devices", "/api/v1/audit")
}  # fmt: skip
HOSTILE_TEXT = st.sampled_from(list(VALUES.values())) | st.text(max_size=12)


@st.composite
def list_queries(draw: st.DrawFn) -> tuple[str, list[tuple[str, str]]]:
    """A list route and a query of its parameters (repeats allowed) with hostile values."""
    path = draw(st.sampled_from(sorted(LIST_ROUTES)))
    names = st.sampled_from(LIST_ROUTES[path])
    pairs = draw(st.lists(st.tuples(names, HOSTILE_TEXT), min_size=1, max_size=4))
    return path, pairs


@settings(max_examples=150, deadline=None, database=None, derandomize=True)
@given(query=list_queries())
def test_list_routes_never_fail_on_hostile_query_strings(
    hostile: HostileApp, query: tuple[str, list[tuple[str, str]]]
) -> None:
    path, pairs = query
    response = hostile.send("GET", path + "?" + "&".join(f"{n}={in_url(v)}" for n, v in pairs))
    where = f"GET {path} {pairs!r}"
    assert response.status_code < 500, f"{where}: {response.text[:300]}"
    if any("\x00" in value for _, value in pairs):
        assert_refused(response, NUL, where)


# --- every route, by its declared parameters --------------------------------------------------


def declared_parameters() -> list[tuple[str, str, Any, ModelField]]:
    """(route, where, name, field) for every path, query and body parameter of the app."""
    found = []

    def walk(dependant: Dependant) -> Iterator[tuple[str, ModelField]]:
        yield from (("path", f) for f in dependant.path_params)
        yield from (("query", f) for f in dependant.query_params)
        yield from (("body", f) for f in dependant.body_params)
        for sub in dependant.dependencies:
            yield from walk(sub)

    for router in [*(module.router for module in PAGE_MODULES), *API_ROUTERS]:
        for route in router.routes:
            assert isinstance(route, APIRoute), route
            label = f"{'/'.join(sorted(route.methods or ()))} {route.path}"
            for where, model_field in walk(route.dependant):
                found.append((label, where, model_field.name, model_field))
    return found


def adapter(annotation: Any, metadata: list[Any]) -> TypeAdapter[Any]:
    return TypeAdapter(Annotated[annotation, *metadata] if metadata else annotation)


def refuses(checker: TypeAdapter[Any], value: object) -> bool:
    try:
        checker.validate_python(value)
    except ValidationError:
        return True
    return False


def test_every_declared_number_and_date_is_bounded() -> None:
    """Ids, page numbers and sizes refuse 2**63; dates refuse the year 9999 (datetimes are
    checked by their handler, ``check_instant``)."""
    unbounded = []
    for route, where, name, model_field in declared_parameters():
        if where == "body":
            continue
        checker = adapter(model_field.field_info.annotation, model_field.field_info.metadata)
        if not refuses(checker, 2**63):
            accepted = checker.validate_python(2**63)
            if isinstance(accepted, int | list) and not isinstance(accepted, bool):
                unbounded.append(f"{route} {name}")
        if not refuses(checker, FAR) and type(checker.validate_python(FAR)) is date:
            unbounded.append(f"{route} {name}")
    assert unbounded == []


def test_every_field_of_every_form_and_json_body_refuses_nul_and_lone_surrogates() -> None:
    """Each string field of a body is ``api.params.Text`` (the URL is checked app-wide)."""
    loose = []
    for route, where, _name, model_field in declared_parameters():
        if where != "body":
            continue
        model = model_field.field_info.annotation
        assert isinstance(model, type) and issubclass(model, BaseModel), route
        for name, field_info in model.model_fields.items():
            checker = adapter(field_info.annotation, field_info.metadata)
            if not (refuses(checker, NUL) and refuses(checker, NOT_UTF8)):
                loose.append(f"{route} {model.__name__}.{name}")
    assert loose == []
