"""Request bodies: who may send one, and how large, decided before any of it is read.

``BodyLimitMiddleware`` runs for every route, in one place:

- a request that may carry a body (POST, PUT, PATCH, DELETE, or any request announcing one)
  from nobody signed in is answered at once, body unread, as any anonymous request for that
  route would be (401 under ``/api/``, the login page elsewhere), except on the few routes that
  take a body from anonymous visitors (``ANONYMOUS_BODY_PATHS``: signing in and out);
- a body over the route's limit gets 413: at once when ``Content-Length`` says so, and as soon
  as the bytes read pass the limit when it does not (chunked transfer), so no more is read.

The limit is ``DEFAULT_BODY_LIMIT`` (every form and JSON body of the app is a few KiB);
``ROUTE_BODY_LIMITS`` is where a route that needs more (an upload) would say so. There is
none today: list imports run at the command line (``hallmonitor lists import``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.deps import LoginRequired, get_visitor, route_path

DEFAULT_BODY_LIMIT = 64 * 1024
"""Bytes of request body any route accepts unless ``ROUTE_BODY_LIMITS`` says otherwise."""
ROUTE_BODY_LIMITS: Mapping[str, int] = {}
"""Larger limits for the routes that need them, by path inside the app."""
ANONYMOUS_BODY_PATHS = frozenset({"/login", "/logout"})
"""The routes that take a body from someone not signed in (the login form, and signing out
after the session has already ended)."""
BODILESS_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

ErrorRenderer = Callable[[Request, Exception], Awaitable[Response]]
"""Turns ``LoginRequired`` or an ``HTTPException`` into the app's usual answer for it."""


class BodyTooLarge(HTTPException):
    """A request body over its route's limit (413)."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            status_code=413,
            detail=f"The request is too large: this address accepts at most {_size(limit)}.",
        )


class BodyLimitMiddleware:
    """See the module docstring; ``render`` makes the error answers (``api.app``)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        render: ErrorRenderer,
        default_limit: int = DEFAULT_BODY_LIMIT,
        limits: Mapping[str, int] = ROUTE_BODY_LIMITS,
    ) -> None:
        self.app = app
        self.render = render
        self.default_limit = default_limit
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        path = route_path(request)
        limit = self.limits.get(path, self.default_limit)
        length = request.headers.get("content-length")
        announced = length not in (None, "0") or "transfer-encoding" in request.headers
        if request.method not in BODILESS_METHODS or announced:
            if path not in ANONYMOUS_BODY_PATHS:
                visitor = await run_in_threadpool(get_visitor, request)
                if visitor.user is None:
                    await self._refuse(request, LoginRequired(visitor), send)
                    return
            if length is not None and (not length.isdigit() or int(length) > limit):
                refusal = (
                    BodyTooLarge(limit)
                    if length.isdigit()
                    else HTTPException(400, "The Content-Length header is not a number.")
                )
                await self._refuse(request, refusal, send)
                return
        await self._call_limited(scope, receive, send, request, limit)

    async def _call_limited(
        self, scope: Scope, receive: Receive, send: Send, request: Request, limit: int
    ) -> None:
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def noting_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, noting_send)
        except BodyTooLarge as e:
            # Normally the app turns it into its 413 answer; this is for a reader that let it
            # through (a streaming route).
            if started:
                raise
            await self._refuse(request, e, send)

    async def _refuse(self, request: Request, error: Exception, send: Send) -> None:
        response = await self.render(request, error)
        # The body stays unread: ask the client not to send the next request on this
        # connection after it.
        response.headers["Connection"] = "close"
        await response(request.scope, _no_body, send)


async def _no_body() -> Message:
    return {"type": "http.disconnect"}


def _size(limit: int) -> str:
    if limit % (1024 * 1024) == 0:
        return f"{limit // (1024 * 1024)} MiB"
    if limit % 1024 == 0:
        return f"{limit // 1024} KiB"
    return f"{limit} bytes"
