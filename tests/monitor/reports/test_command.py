"""hallmonitor report weekly: preview, send, resend one week."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from monitor.reports.command import run_report_weekly
from monitor.reports.sending import send_due_reports
from tests.monitor.reports.conftest import SmtpServer, StartSmtp, free_port
from tests.monitor.reports.sent import DEPUTY, HEAD, MONDAY_0705, rows

# --- hallmonitor report weekly -------------------------------------------------------------


class TestRunReportWeekly:
    def test_run_report_weekly_preview_writes_both_versions(
        self, school: Engine, settings_for, tmp_path: Path
    ) -> None:
        out = tmp_path / "out"
        status, lines = run_report_weekly(
            settings_for(free_port()),
            week="2026-W47",
            preview=True,
            send=False,
            resend=False,
            out_dir=out,
        )
        assert status == 0
        names = sorted(p.name for p in out.iterdir())
        assert names == [
            "weekly-2026-W47-governor.html",
            "weekly-2026-W47-governor.txt",
            "weekly-2026-W47-reviewer.html",
            "weekly-2026-W47-reviewer.txt",
        ]
        assert lines == [f"wrote {out / name}" for name in names[2:] + names[:2]]

    def test_run_report_weekly_preview_prints_the_text_version(
        self, school: Engine, settings_for
    ) -> None:
        status, lines = run_report_weekly(
            settings_for(free_port()),
            week=None,
            preview=True,
            send=False,
            resend=False,
            out_dir=None,
            now=MONDAY_0705,
        )
        assert status == 0
        assert lines[0].startswith("--- reviewer version: Hill School weekly summary, 16–22")
        assert "5 incidents this week: up 3 from 2 the week before." in lines

    def test_run_report_weekly_send_then_resend(
        self, school: Engine, smtp: SmtpServer, settings_for
    ) -> None:
        settings = settings_for(smtp.port, reviewers=[HEAD], governors=[])
        options: dict[str, Any] = {
            "week": "2026-W47",
            "preview": False,
            "out_dir": None,
            "now": MONDAY_0705,
        }
        status, lines = run_report_weekly(settings, send=True, resend=False, **options)
        assert status == 0 and len(smtp.messages) == 2
        assert lines[0].startswith(f"sent 2026-W47 to {HEAD} (reviewer): <")
        status, lines = run_report_weekly(settings, send=True, resend=False, **options)
        assert status == 0 and len(smtp.messages) == 2
        assert lines[0].startswith(f"already sent 2026-W47 to {HEAD} (reviewer)")
        # The scheduler agrees: this week is done.
        assert send_due_reports(school, settings, MONDAY_0705) == []
        status, lines = run_report_weekly(settings, send=False, resend=True, **options)
        assert status == 0 and len(smtp.messages) == 4
        assert [m["To"] for m in smtp.messages].count(HEAD) == 2
        head = next(r for r in rows(school) if r.recipient == HEAD)
        assert (head.status, head.attempts) == ("sent", 2)
        last_to_head = [m for m in smtp.messages if m["To"] == HEAD][-1]
        assert head.message_id == last_to_head["Message-ID"].strip()

    def test_run_report_weekly_send_retries_a_failed_report_at_once(
        self, school: Engine, start_smtp: StartSmtp, settings_for
    ) -> None:
        port = free_port()
        settings = settings_for(port, reviewers=[HEAD], governors=[])
        options: dict[str, Any] = {
            "week": "2026-W47",
            "preview": False,
            "out_dir": None,
            "now": MONDAY_0705,
        }
        status, lines = run_report_weekly(settings, send=True, resend=False, **options)
        assert status == 1
        assert lines[0].startswith(f"error: 2026-W47 to {HEAD} (reviewer) failed: temporary:")
        server = start_smtp(port=port)
        status, _ = run_report_weekly(settings, send=True, resend=False, **options)
        assert status == 0 and [m["To"] for m in server.messages] == [HEAD, DEPUTY]

    @pytest.mark.parametrize(
        ("arguments", "status", "line"),
        [
            (
                {"preview": True, "send": True},
                2,
                "error: choose one of --preview, --send or --resend",
            ),
            ({"preview": False}, 2, "error: choose one of --preview, --send or --resend"),
            (
                {"preview": True, "week": "2026-47"},
                2,
                "error: --week '2026-47' is not an ISO week; write e.g. 2026-W47",
            ),
            (
                {"preview": True, "week": "2026-W54"},
                2,
                "error: --week '2026-W54': 2026 has no week 54",
            ),
        ],
    )
    def test_run_report_weekly_refuses_wrong_options(
        self, settings_for, arguments: dict[str, object], status: int, line: str
    ) -> None:
        options: dict[str, Any] = {
            "week": None,
            "preview": False,
            "send": False,
            "resend": False,
            "out_dir": None,
        }
        options.update(arguments)
        assert run_report_weekly(settings_for(free_port()), **options) == (status, [line])

    def test_run_report_weekly_send_needs_mail_enabled(self, school: Engine, settings_for) -> None:
        status, lines = run_report_weekly(
            settings_for(free_port(), enabled=False),
            week=None,
            preview=False,
            send=True,
            resend=False,
            out_dir=None,
        )
        assert status == 1 and lines[0].startswith("error: mail.enabled is false")
