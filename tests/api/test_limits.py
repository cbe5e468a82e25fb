"""Request bodies are judged before they are read: who may send one, and how large.

These drive ``api.limits.BodyLimitMiddleware`` inside the real app through the test client;
``tests/hostile/test_floods_and_limits.py`` sends the same requests over real sockets to a
running server and measures its memory."""

from __future__ import annotations

from collections.abc import Iterator

from api.limits import ANONYMOUS_BODY_PATHS, DEFAULT_BODY_LIMIT
from monitor.store.workflow import UserRole
from tests.api.conftest import AppHarness


def chunks(total: int, size: int = 16 * 1024) -> Iterator[bytes]:
    """``total`` bytes in chunks, sent without a Content-Length (chunked transfer)."""
    sent = 0
    while sent < total:
        piece = min(size, total - sent)
        sent += piece
        yield b"x" * piece


def test_an_anonymous_api_write_is_refused_with_401_whatever_its_body(
    harness: AppHarness,
) -> None:
    response = harness.client.put(
        "/api/v1/devices/1/label", content=b"{" * 1000, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 401
    assert response.headers["Connection"] == "close"


def test_an_anonymous_page_write_goes_to_the_login_page_unread(harness: AppHarness) -> None:
    response = harness.client.post("/devices/1/label", content=b"label=x", follow_redirects=False)
    assert response.status_code == 303
    assert "/login" in response.headers["location"]


def test_signing_in_is_the_anonymous_body_that_is_accepted(harness: AppHarness) -> None:
    assert {"/login", "/logout"} == ANONYMOUS_BODY_PATHS
    harness.sign_in(UserRole.REVIEWER)  # the form's body was read: the session cookie is set
    assert "hm_session" in harness.client.cookies


def test_a_signed_in_body_over_the_limit_is_413_from_its_content_length(
    harness: AppHarness,
) -> None:
    harness.sign_in(UserRole.ADMIN)
    response = harness.client.put(
        "/api/v1/devices/1/label",
        content=b" " * (DEFAULT_BODY_LIMIT + 1),
        headers={"Content-Type": "application/json", "X-CSRF-Token": harness.session_csrf()},
    )
    assert response.status_code == 413
    assert "at most 64 KiB" in response.text


def test_a_chunked_body_over_the_limit_is_413_too(harness: AppHarness) -> None:
    harness.sign_in(UserRole.ADMIN)
    response = harness.client.put(
        "/api/v1/devices/1/label",
        content=chunks(DEFAULT_BODY_LIMIT * 4),
        headers={"Content-Type": "application/json", "X-CSRF-Token": harness.session_csrf()},
    )
    assert response.status_code == 413


def test_a_content_length_that_is_not_a_number_is_400(harness: AppHarness) -> None:
    harness.sign_in(UserRole.ADMIN)
    response = harness.client.put(
        "/api/v1/devices/1/label",
        content=b"{}",
        headers={
            "Content-Type": "application/json",
            "Content-Length": "lots",
            "X-CSRF-Token": harness.session_csrf(),
        },
    )
    assert response.status_code == 400
    assert "Content-Length" in response.text


def test_a_body_within_the_limit_reaches_the_route(harness: AppHarness) -> None:
    harness.sign_in(UserRole.ADMIN)
    response = harness.client.put(
        "/api/v1/devices/999999/label",
        json={"label": "Room 4"},
        headers={"X-CSRF-Token": harness.session_csrf()},
    )
    assert response.status_code == 404  # the route ran: no such device
