"""Sending one message over SMTP: STARTTLS, implicit TLS or plain, with optional AUTH.

Failures are sorted into two kinds, because the scheduler treats them differently:

- ``TemporaryMailError``: try again later. A 4xx reply, a refused or dropped connection, a
  time-out, a name that does not resolve yet.
- ``PermanentMailError``: trying again will not help until someone changes something. A 5xx
  reply (a refused sender or recipient, failed AUTH), a certificate that does not verify, a
  server without STARTTLS when it is required, an unreadable password file.

Both derive from ``MailError``; the message says what failed and, where it can, what to do.
"""

from __future__ import annotations

import logging
import smtplib
import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage

from monitor.config.review import MailSettings
from monitor.reports.render import new_message_id

logger = logging.getLogger(__name__)


class MailError(Exception):
    """Sending failed; see the subclasses for whether to retry."""


class TemporaryMailError(MailError):
    """Sending failed for now: retry later."""


class PermanentMailError(MailError):
    """Sending failed and will fail again until the settings or the server change."""


def tls_context(mail: MailSettings) -> ssl.SSLContext:
    """Verifies the server's certificate and name, against ``mail.ca_file`` if set."""
    cafile = str(mail.ca_file) if mail.ca_file is not None else None
    try:
        return ssl.create_default_context(cafile=cafile)
    except (OSError, ssl.SSLError) as e:
        raise PermanentMailError(f"mail.ca_file {mail.ca_file}: cannot load: {e}") from e


def _classify_reply(code: int, text: str) -> MailError:
    if 400 <= code < 500:
        return TemporaryMailError(f"SMTP server answered {code} {text}")
    return PermanentMailError(f"SMTP server answered {code} {text}")


def _reply_text(raw: bytes | str) -> str:
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw


def _connect(mail: MailSettings) -> smtplib.SMTP:
    timeout = mail.timeout_s
    if mail.security == "tls":
        return smtplib.SMTP_SSL(mail.host, mail.port, timeout=timeout, context=tls_context(mail))
    client = smtplib.SMTP(mail.host, mail.port, timeout=timeout)
    if mail.security == "starttls":
        try:
            client.ehlo()
            if not client.has_extn("starttls"):
                raise PermanentMailError(
                    f"{mail.host}:{mail.port} does not offer STARTTLS; set mail.security to "
                    '"tls" for port 465, or check the port'
                )
            client.starttls(context=tls_context(mail))
            client.ehlo()
        except BaseException:
            client.close()
            raise
    return client


def send_message(msg: EmailMessage, mail: MailSettings) -> str:
    """Send ``msg`` as configured; returns its Message-ID (one is added if missing).

    Raises ``TemporaryMailError`` or ``PermanentMailError``.
    """
    if msg["Message-ID"] is None:
        msg["Message-ID"] = new_message_id(mail.from_address)
    message_id = str(msg["Message-ID"])
    with smtp_session(mail) as client:
        client.send_message(msg)
    logger.info(
        "sent %s to %d recipient(s) through %s",
        message_id,
        len(msg.get_all("To", [])),
        f"{mail.host}:{mail.port}",
    )
    return message_id


def check_server(mail: MailSettings) -> str:
    """Connect, EHLO, STARTTLS and AUTH as configured, send nothing; say what was done.

    ``hallmonitor doctor`` runs this; it raises what ``send_message`` raises.
    """
    with smtp_session(mail) as client:
        client.ehlo_or_helo_if_needed()
        client.noop()
    steps = {"starttls": "EHLO and STARTTLS", "tls": "TLS and EHLO", "none": "EHLO (unencrypted)"}
    done = steps[mail.security]
    if mail.username:
        done += f", AUTH as {mail.username!r}"
    return f"{mail.host}:{mail.port} accepted {done}"


@contextmanager
def smtp_session(mail: MailSettings) -> Iterator[smtplib.SMTP]:
    """A connection, secured and logged in as configured; every failure becomes a MailError."""
    where = f"{mail.host}:{mail.port}"
    try:
        password = mail.smtp_password() if mail.username else ""
    except OSError as e:
        raise PermanentMailError(f"mail.password_file {mail.password_file}: {e.strerror}") from e
    try:
        client = _connect(mail)
        try:
            if mail.username:
                client.login(mail.username, password)
            yield client
        finally:
            _quit(client)
    except MailError:
        raise
    except smtplib.SMTPRecipientsRefused as e:
        codes = [code for code, _ in e.recipients.values()]
        detail = "; ".join(
            f"{rcpt}: {code} {_reply_text(text)}" for rcpt, (code, text) in e.recipients.items()
        )
        kind = TemporaryMailError if all(400 <= c < 500 for c in codes) else PermanentMailError
        raise kind(f"{where} refused the recipient: {detail}") from e
    except smtplib.SMTPAuthenticationError as e:
        raise PermanentMailError(
            f"{where} refused the login of {mail.username!r} ({e.smtp_code}); check "
            "mail.username and the password"
        ) from e
    except smtplib.SMTPResponseException as e:
        error = _classify_reply(e.smtp_code, _reply_text(e.smtp_error))
        raise type(error)(f"{where}: {error}") from e
    except smtplib.SMTPNotSupportedError as e:
        raise PermanentMailError(f"{where}: {e}; check mail.security and mail.username") from e
    except ssl.SSLCertVerificationError as e:
        raise PermanentMailError(
            f"{where}: the server's certificate does not verify ({e.verify_message}); set "
            "mail.ca_file to its CA, or fix the server's certificate"
        ) from e
    except (smtplib.SMTPServerDisconnected, smtplib.SMTPException) as e:
        raise TemporaryMailError(f"{where}: {e}") from e
    except socket.gaierror as e:
        raise TemporaryMailError(f"{where}: cannot resolve {mail.host}: {e.strerror}") from e
    except (TimeoutError, ssl.SSLError, OSError) as e:
        raise TemporaryMailError(f"{where}: {e.strerror or e}") from e


def _quit(client: smtplib.SMTP) -> None:
    """Say goodbye; the message is already accepted, so a failure here is no failure."""
    try:
        client.quit()
    except (smtplib.SMTPException, OSError):
        client.close()
