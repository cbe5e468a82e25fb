"""send_message against a real SMTP server: plain, STARTTLS, implicit TLS, AUTH, and failures."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from monitor.config.review import MailSettings
from monitor.reports.mail import (
    PermanentMailError,
    TemporaryMailError,
    check_server,
    send_message,
)
from tests.monitor.reports.conftest import PASSWORD, USERNAME, StartSmtp, free_port


def mail_settings(port: int, **changes: Any) -> MailSettings:
    values: dict[str, Any] = {
        "enabled": True,
        "host": "127.0.0.1",
        "port": port,
        "security": "none",
        "from_address": "hallmonitor@hill-school.example",
        "timeout_s": 5,
    }
    values.update(changes)
    return MailSettings(**values)


def message(to: str = "head@hill-school.example") -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = "Test"
    msg["From"] = "hallmonitor@hill-school.example"
    msg["To"] = to
    msg.set_content("Hello\n")
    return msg


class TestSendMessage:
    def test_send_message_plain_delivers_and_returns_the_message_id(
        self, start_smtp: StartSmtp
    ) -> None:
        server = start_smtp("none")
        message_id = send_message(message(), mail_settings(server.port))
        assert message_id.startswith("<") and message_id.endswith("@hill-school.example>")
        [received] = server.messages
        assert received["Message-ID"].strip() == message_id
        assert server.recipients == [["head@hill-school.example"]]

    def test_send_message_starttls_with_auth_trusts_the_configured_ca(
        self, start_smtp: StartSmtp
    ) -> None:
        server = start_smtp("starttls", auth=True)
        settings = mail_settings(
            server.port,
            security="starttls",
            ca_file=server.ca_file,
            username=USERNAME,
            password=PASSWORD,
        )
        send_message(message(), settings)
        assert [m["Subject"] for m in server.messages] == ["Test"]
        assert server.handler.logins == [USERNAME]

    def test_send_message_implicit_tls_with_auth_from_a_password_file(
        self, start_smtp: StartSmtp, tmp_path: Path
    ) -> None:
        server = start_smtp("tls", auth=True)
        secret = tmp_path / "smtp-password"
        secret.write_text(PASSWORD + "\n")
        settings = mail_settings(
            server.port,
            security="tls",
            ca_file=server.ca_file,
            username=USERNAME,
            password_file=secret,
        )
        send_message(message(), settings)
        assert len(server.messages) == 1
        assert server.handler.logins == [USERNAME]

    def test_send_message_wrong_password_is_permanent(self, start_smtp: StartSmtp) -> None:
        server = start_smtp("starttls", auth=True)
        settings = mail_settings(
            server.port,
            security="starttls",
            ca_file=server.ca_file,
            username=USERNAME,
            password="wrong",
        )
        with pytest.raises(PermanentMailError, match="refused the login of 'hallmonitor'"):
            send_message(message(), settings)
        assert server.messages == []

    def test_send_message_untrusted_certificate_is_permanent(self, start_smtp: StartSmtp) -> None:
        server = start_smtp("starttls")
        with pytest.raises(PermanentMailError, match="mail.ca_file"):
            send_message(message(), mail_settings(server.port, security="starttls"))

    def test_send_message_without_starttls_offered_is_permanent(
        self, start_smtp: StartSmtp
    ) -> None:
        server = start_smtp("none")
        with pytest.raises(PermanentMailError, match="does not offer STARTTLS"):
            send_message(message(), mail_settings(server.port, security="starttls"))

    def test_send_message_server_down_is_temporary(self) -> None:
        with pytest.raises(TemporaryMailError, match="127.0.0.1"):
            send_message(message(), mail_settings(free_port()))

    @pytest.mark.parametrize(
        ("reply", "error"),
        [
            ("451 4.3.0 Mail server temporarily rejected message", TemporaryMailError),
            ("452 4.3.1 Insufficient system storage", TemporaryMailError),
            ("554 5.7.1 Message rejected as spam", PermanentMailError),
        ],
    )
    def test_send_message_refused_data_is_sorted_by_reply_code(
        self, start_smtp: StartSmtp, reply: str, error: type[Exception]
    ) -> None:
        server = start_smtp("none")
        server.handler.reply = reply
        with pytest.raises(error, match=reply.split()[0]):
            send_message(message(), mail_settings(server.port))

    def test_send_message_missing_password_file_is_permanent(
        self, start_smtp: StartSmtp, tmp_path: Path
    ) -> None:
        server = start_smtp("none")
        settings = mail_settings(server.port, username=USERNAME, password_file=tmp_path / "absent")
        with pytest.raises(PermanentMailError, match="mail.password_file"):
            send_message(message(), settings)

    def test_send_message_unreadable_ca_file_is_permanent(
        self, start_smtp: StartSmtp, tmp_path: Path
    ) -> None:
        server = start_smtp("starttls")
        settings = mail_settings(server.port, security="starttls", ca_file=tmp_path / "absent.pem")
        with pytest.raises(PermanentMailError, match="mail.ca_file .*cannot load"):
            send_message(message(), settings)


class TestCheckServer:
    """``check_server`` (behind ``hallmonitor doctor``) connects as configured and sends nothing."""

    def test_check_server_says_what_a_starttls_server_with_auth_accepted(
        self, start_smtp: StartSmtp
    ) -> None:
        server = start_smtp("starttls", auth=True)
        settings = mail_settings(
            server.port,
            security="starttls",
            username=USERNAME,
            password=PASSWORD,
            ca_file=server.ca_file,
        )

        done = check_server(settings)

        assert done == f"127.0.0.1:{server.port} accepted EHLO and STARTTLS, AUTH as {USERNAME!r}"
        assert server.messages == []

    def test_check_server_over_implicit_tls(self, start_smtp: StartSmtp) -> None:
        server = start_smtp("tls")
        settings = mail_settings(server.port, security="tls", ca_file=server.ca_file)

        assert check_server(settings) == f"127.0.0.1:{server.port} accepted TLS and EHLO"

    def test_check_server_refused_login_is_permanent(self, start_smtp: StartSmtp) -> None:
        server = start_smtp("starttls", auth=True)
        settings = mail_settings(
            server.port,
            security="starttls",
            username=USERNAME,
            password="wrong password",
            ca_file=server.ca_file,
        )

        with pytest.raises(PermanentMailError, match="refused the login"):
            check_server(settings)

    def test_check_server_on_a_closed_port_is_temporary(self) -> None:
        with pytest.raises(TemporaryMailError, match="refused"):
            check_server(mail_settings(free_port()))
