"""The review app: ``create_app(settings)`` builds it (``hallmonitor serve`` and ``up`` call it with
their settings; ``uvicorn --factory api.app:create_app`` reads the config file), uvicorn serves it.

Nothing exists at import time. ``create_app`` wires the routers, templates, middleware and
error pages; its lifespan makes the engine, refuses to start when the database schema is not at
this version's head (``SchemaNotCurrent``: "run `hallmonitor db upgrade`"), puts the
session factory on ``app.state`` and, with ``mail.enabled``, runs the weekly report scheduler
(``ReportScheduler``, stopped on shutdown before the engine is disposed).

Behind a reverse proxy: ``web.root_path`` is the path prefix (whether or not the proxy strips
it), and X-Forwarded-For / X-Forwarded-Proto are believed only from ``web.forwarded_allow_ips``
(the app applies them itself, so uvicorn runs with ``proxy_headers=False``).

Request bodies are capped and refused from anonymous visitors before they are read
(``api/limits.py``); sign-ins are throttled (``api/throttle.py``).

Errors: under ``/api/`` as JSON ``{"detail": ...}``; elsewhere as pages (403, 404, 500 and a
generic one). A refused value (``api.params``: ids, page numbers, days, text without NUL or
lone surrogates) is a 422 under ``/api/`` and a 400 page naming it. Every response carries the
security headers below; everything but ``/static/`` is ``Cache-Control: no-store`` (the pages
show personal data).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from http import HTTPStatus
from importlib.metadata import version
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import anyio.to_thread
import jinja2
from argon2 import PasswordHasher
from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from markupsafe import Markup
from sqlalchemy.orm import sessionmaker
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from api.csrf import csrf_protect
from api.deps import LoginRequired, Visitor, is_api_request, route_path
from api.limits import BodyLimitMiddleware
from api.pages import (
    NavLink,
    admin,
    dashboard,
    devices,
    health,
    home,
    incidents,
    links_for,
    lists,
    login,
    metrics,
    password,
    path_for,
    privacy,
    tokens,
)
from api.params import printable, reject_bad_url, sentence, validation_message
from api.routes import audit as audit_api
from api.routes import devices as devices_api
from api.routes import incidents as incidents_api
from api.routes import stats as stats_api
from api.throttle import LoginThrottle
from monitor.config.loading import default_config_path, load_settings
from monitor.config.settings import Settings
from monitor.errors import NotFound
from monitor.reports.scheduler import ReportScheduler
from monitor.store.db import display_url, ensure_schema_current, make_engine
from monitor.store.users import DEFAULT_HASHER
from monitor.store.workflow import label_of

logger = logging.getLogger(__name__)

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
STATIC_DIR = Path(__file__).resolve().parent / "static"
OPENAPI_URL = "/api/v1/openapi.json"

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "object-src 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}
"""Sent with every response. No inline scripts or style attributes: use static files."""


class PageModule(Protocol):
    """What ``api/pages/<area>.py`` provides."""

    router: APIRouter
    NAV: tuple[NavLink, ...]


PAGE_MODULES: tuple[PageModule, ...] = (
    login,
    password,
    home,
    dashboard,
    incidents,
    devices,
    lists,
    admin,
    tokens,
    privacy,
    health,
    metrics,
)
"""Every page module, in navigation order: add a new one here."""

API_ROUTERS: tuple[APIRouter, ...] = (
    incidents_api.router,
    devices_api.router,
    stats_api.router,
    audit_api.router,
)
"""The JSON API routers (``api/routes/<resource>.py``), mounted as they are: add them here."""


@dataclass(frozen=True, slots=True)
class ErrorPage:
    """An error page: the status, a heading and what the person can do next."""

    status: int
    title: str
    message: str


ERROR_TEXT = {
    400: ("That request was not understood", "Go back and check what you entered."),
    403: ("You cannot open this", "Your role does not give access to this page."),
    404: ("Page not found", "There is no page at this address."),
    405: ("That did not work", "This address does not accept that kind of request."),
    413: ("That was too large", "Send less at once, or ask the IT technician."),
    429: ("Too many attempts", "Wait a minute and try again."),
    500: (
        "Something went wrong",
        "The error was logged. Try again; if it keeps happening, tell the IT technician.",
    ),
}


def create_app(
    settings: Settings | None = None,
    *,
    password_hasher: PasswordHasher | None = None,
    run_scheduler: bool = True,
    report_clock: Callable[[], datetime] | None = None,
) -> FastAPI:
    """The review app for ``settings`` (None: read the config file, as ``uvicorn --factory``
    does). ``password_hasher`` lets tests use a cheap argon2 profile. With ``mail.enabled``
    the lifespan runs the weekly report scheduler unless ``run_scheduler`` is false;
    ``report_clock`` (tests) is the scheduler's clock."""
    if settings is None:
        settings = load_settings(default_config_path())
    app = FastAPI(
        title="Hall Monitor",
        version=version("hallmonitor"),
        lifespan=_lifespan,
        openapi_url=OPENAPI_URL,
        docs_url=None,  # the interactive docs load scripts from a CDN, which the CSP forbids
        redoc_url=None,
        dependencies=[Depends(reject_bad_url), Depends(csrf_protect)],
    )
    app.state.settings = settings
    app.state.password_hasher = password_hasher or DEFAULT_HASHER
    app.state.login_throttle = LoginThrottle()
    app.state.run_scheduler = run_scheduler
    app.state.report_clock = report_clock
    app.state.report_scheduler = None
    app.state.templates = build_templates(settings)
    app.state.nav = tuple(link for module in PAGE_MODULES for link in module.NAV)
    for module in PAGE_MODULES:
        app.include_router(module.router)
    for api_router in API_ROUTERS:
        app.include_router(api_router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(NotFound, _not_found)
    app.add_exception_handler(LoginRequired, _login_required)
    app.add_exception_handler(Exception, _server_error)
    # Added innermost first: the proxy headers are applied before anything reads them.
    app.add_middleware(BodyLimitMiddleware, render=_render_exception)
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(RootPathMiddleware, root_path=settings.web.root_path)
    app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.web.forwarded_allow_ips)
    return app


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    url = settings.database.url.get_secret_value()
    engine = make_engine(url)
    try:
        ensure_schema_current(engine)
        app.state.engine = engine
        app.state.sessionmaker = sessionmaker(engine, expire_on_commit=False)
        if settings.mail.enabled and app.state.run_scheduler:
            clock = app.state.report_clock
            scheduler = (
                ReportScheduler(engine, settings, clock=clock)
                if clock is not None
                else ReportScheduler(engine, settings)
            )
            scheduler.start()
            app.state.report_scheduler = scheduler
            logger.info("weekly report scheduler started")
        logger.info("review app started on database %s", display_url(url))
        yield
    finally:
        # Stop the scheduler before the engine it uses goes away.
        running: ReportScheduler | None = app.state.report_scheduler
        if running is not None:
            # A send in progress may take a few seconds: wait in a worker thread.
            await anyio.to_thread.run_sync(running.stop)
            app.state.report_scheduler = None
        engine.dispose()


# --- templates -------------------------------------------------------------------------------


def build_templates(settings: Settings) -> Jinja2Templates:
    """Jinja2 with autoescape on, undefined names as errors, and the layout's helpers."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    zone = ZoneInfo(settings.calendar.timezone)
    env.globals["path_for"] = _path_for
    env.globals["static_path"] = _static_path
    env.globals["csrf_field"] = _csrf_field
    env.filters["label"] = label_of
    env.filters["local_time"] = lambda value, fmt="%a %d %b %Y %H:%M": _local_time(value, zone, fmt)

    def layout_context(request: Request) -> dict[str, Any]:
        visitor: Visitor | None = getattr(request.state, "visitor", None)
        viewer = visitor.user if visitor is not None else None
        csrf = getattr(request.state, "csrf_token", None)
        return {
            "viewer": viewer,
            "nav": links_for(
                request, viewer.role if viewer else None, viewer.site if viewer else None
            ),
            "site_name": settings.site.name,
            "csrf_token": csrf or (visitor.csrf_token if visitor is not None else None),
        }

    return Jinja2Templates(env=env, context_processors=[layout_context])


@jinja2.pass_context
def _path_for(context: jinja2.runtime.Context, route: str, /, **params: object) -> str:
    request: Request = context["request"]
    return path_for(request, route, **params)


@jinja2.pass_context
def _static_path(context: jinja2.runtime.Context, name: str) -> str:
    request: Request = context["request"]
    return path_for(request, "static", path=name)


@jinja2.pass_context
def _csrf_field(context: jinja2.runtime.Context) -> Markup:
    token = context.get("csrf_token")
    if not token:
        return Markup("")
    return Markup('<input type="hidden" name="csrf_token" value="{}">').format(token)


def _local_time(value: datetime, zone: ZoneInfo, fmt: str) -> str:
    """A stored UTC time shown on the school's clock."""
    return value.astimezone(zone).strftime(fmt)


# --- middleware ------------------------------------------------------------------------------


class RootPathMiddleware:
    """Serve below ``root_path`` whether or not the proxy strips the prefix (ASGI: ``path``
    includes ``root_path``). ``root_path`` as ``web.root_path`` holds it: "" or without a
    trailing slash."""

    def __init__(self, app: ASGIApp, root_path: str) -> None:
        self.app = app
        self.root_path = root_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.root_path and scope["type"] in ("http", "websocket"):
            path: str = scope["path"]
            if path != self.root_path and not path.startswith(self.root_path + "/"):
                scope["path"] = self.root_path + path
                scope["raw_path"] = self.root_path.encode() + scope.get("raw_path", b"")
            scope["root_path"] = self.root_path
        await self.app(scope, receive, send)


class SecurityHeadersMiddleware:
    """Add ``SECURITY_HEADERS`` to every response, and ``no-store`` outside ``/static/``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cacheable = route_path(Request(scope)).startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
                if not cacheable:
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)


# --- errors ----------------------------------------------------------------------------------


def render_error(request: Request, status: int, detail: object = None) -> Response:
    """The error page for ``status`` (JSON under ``/api/``)."""
    if is_api_request(request):
        shown = detail if detail is not None else HTTPStatus(status).phrase
        return JSONResponse({"detail": shown}, status_code=status)
    title, message = ERROR_TEXT.get(status, (HTTPStatus(status).phrase, "Go back and try again."))
    if isinstance(detail, str) and detail and detail != HTTPStatus(status).phrase:
        message = detail
    template = (
        f"pages/errors/{status}.html" if status in (403, 404, 500) else "pages/errors/error.html"
    )
    templates: Jinja2Templates = request.app.state.templates
    return templates.TemplateResponse(
        request, template, {"page": ErrorPage(status, title, message)}, status_code=status
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, StarletteHTTPException):  # pragma: no cover - registered for it
        raise exc
    response = render_error(request, exc.status_code, exc.detail)
    for name, value in (exc.headers or {}).items():
        response.headers[name] = value
    return response


async def _not_found(request: Request, exc: Exception) -> Response:
    """A missing item (or another site's: the queries say it alike) is a 404 naming it, for
    every page and API route: handlers let the store's ``NotFound`` through."""
    if not isinstance(exc, NotFound):  # pragma: no cover - registered for it
        raise exc
    return render_error(request, 404, sentence(exc.message))


async def _validation_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, RequestValidationError):  # pragma: no cover - registered for it
        raise exc
    if is_api_request(request):
        # The answer echoes what was sent, which may hold a lone surrogate (not UTF-8).
        safe = RequestValidationError(printable(exc.errors()))
        return await request_validation_exception_handler(request, safe)
    return render_error(request, 400, validation_message(exc.errors()))


async def _login_required(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, LoginRequired):  # pragma: no cover - registered for it
        raise exc
    if exc.password_change:
        return _password_change_required(request)
    if is_api_request(request):
        detail = (
            "That API token is unknown or revoked."
            if exc.visitor.token_refused
            else "Sign in, or send an API token: Authorization: Bearer hm_..."
        )
        return JSONResponse(
            {"detail": detail}, status_code=401, headers={"WWW-Authenticate": "Bearer"}
        )
    target = route_path(request)
    if request.url.query:
        target += "?" + request.url.query
    query = {"next": target}
    if exc.visitor.session_ended:
        query["ended"] = "1"
    return RedirectResponse(path_for(request, "login") + "?" + urlencode(query), status_code=303)


def _password_change_required(request: Request) -> Response:
    """A user with a one-time password: to the password form, then back here."""
    if is_api_request(request):
        detail = "Choose a new password first: sign in to the review app in a browser."
        return JSONResponse({"detail": detail}, status_code=403)
    target = route_path(request)
    if request.url.query:
        target += "?" + request.url.query
    query = urlencode({"next": target})
    return RedirectResponse(path_for(request, "password") + "?" + query, status_code=303)


async def _render_exception(request: Request, exc: Exception) -> Response:
    """The answer to ``LoginRequired`` or an HTTP error raised outside the routes (middleware)."""
    if isinstance(exc, LoginRequired):
        return await _login_required(request, exc)
    return await _http_error(request, exc)


async def _server_error(request: Request, exc: Exception) -> Response:
    logger.error("%s %s failed", request.method, route_path(request), exc_info=exc)
    response = render_error(request, 500)
    # This answer comes from outside the middleware stack: add the headers here.
    for name, value in SECURITY_HEADERS.items():
        response.headers[name] = value
    response.headers["Cache-Control"] = "no-store"
    return response
