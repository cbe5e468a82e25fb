"""What the sending, scheduler and command tests share: the Monday the summary is due, its
recipients, and how to read what was sent."""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import EmailMessage

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from monitor.store.models import SentReportRecord
from tests.monitor.reports.conftest import SmtpServer

MONDAY_0705 = datetime(2026, 11, 23, 7, 5, tzinfo=UTC)
"""Monday 23 November 2026, 07:05 in London (GMT): the summary of 2026-W47 is due."""
HEAD, GOVERNOR, DEPUTY = (
    "head@hill-school.example",
    "governor@hill-school.example",
    "deputy@hill-school.example",
)


def parts(message: EmailMessage) -> tuple[str, str]:
    """The text and HTML parts of a multipart/alternative message."""
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    return str(text.get_content()), str(html.get_content())


def by_recipient(server: SmtpServer) -> dict[str, EmailMessage]:
    messages = server.messages
    assert len({m["To"] for m in messages}) == len(messages), "a recipient got two messages"
    return {str(m["To"]): m for m in messages}


def rows(engine: Engine) -> list[SentReportRecord]:
    with Session(engine) as db:
        return list(db.scalars(select(SentReportRecord).order_by(SentReportRecord.recipient)))
