"""hallmonitor users ...: the commands, their messages and their audit rows."""

from __future__ import annotations

import getpass

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from monitor.errors import SchemaNotCurrent
from monitor.store.api_tokens import find_api_token_user, token_hash
from monitor.store.models import ApiTokenRecord, AuditEventRecord
from monitor.store.user_admin import (
    run_users_add,
    run_users_disable,
    run_users_list,
    run_users_passwd,
    run_users_token,
)
from tests.monitor.store.accounts import NOW, PASSWORD


def test_run_users_passwd_says_how_many_tokens_it_revoked_and_audits_it(
    engine_url: str, engine: Engine
) -> None:
    run_users_add(engine_url, "head", "Mrs Head", "reviewer", None, "school-a", PASSWORD)
    token = run_users_token(engine_url, "head", "timetable sync")
    summary = run_users_passwd(engine_url, "head", "a brand new passphrase")
    assert summary == (
        "password changed for 'head'; their sessions were ended and 1 API token was revoked"
    )
    with Session(engine) as db:
        assert find_api_token_user(db, token, NOW) is None
        last = db.scalars(select(AuditEventRecord).order_by(AuditEventRecord.id.desc())).first()
        assert last is not None
        assert (last.detail, last.site) == ({"change": "password", "tokens_revoked": 1}, "school-a")


# --- command line ----------------------------------------------------------------------------


def test_run_users_commands(engine_url: str) -> None:
    summary = run_users_add(
        engine_url, "Head", "Mrs Head", "reviewer", "head@school.example", None, PASSWORD
    )
    assert summary == "added reviewer 'head' (Mrs Head)"
    run_users_add(engine_url, "tech", "IT technician", "admin", None, "north", PASSWORD)
    assert "sessions were ended" in run_users_passwd(engine_url, "head", "another passphrase")
    assert run_users_disable(engine_url, "tech") == (
        "disabled 'tech': signed out, API tokens refused"
    )
    lines = run_users_list(engine_url)
    assert lines[0].split() == [
        "USERNAME",
        "ROLE",
        "NAME",
        "EMAIL",
        "SITE",
        "STATE",
        "LAST",
        "LOGIN",
    ]
    assert lines[1].split()[:2] == ["head", "reviewer"]
    assert "head@school.example" in lines[1] and "never" in lines[1]
    assert "disabled" in lines[2] and "north" in lines[2]
    assert run_users_disable(engine_url, "tech", disabled=False) == "enabled 'tech'"


def test_run_users_changes_are_audited_and_tokens_issued(engine_url: str, engine: Engine) -> None:
    run_users_add(engine_url, "head", "Mrs Head", "reviewer", None, None, PASSWORD)
    token = run_users_token(engine_url, "head", "timetable sync")
    run_users_disable(engine_url, "head")
    with Session(engine) as db:
        rows = db.scalars(select(AuditEventRecord).order_by(AuditEventRecord.id)).all()
        assert [(r.action, r.detail.get("change")) for r in rows] == [
            ("change_user", "add"), ("create_api_token", None), ("change_user", "disable"),
        ]  # fmt: skip
        assert {r.username for r in rows} == {"cli:" + getpass.getuser()}
        assert db.scalar(select(ApiTokenRecord.token_hash)) == token_hash(token)


def test_run_users_add_refuses_a_short_password_and_writes_nothing(engine_url: str) -> None:
    with pytest.raises(ValueError, match="at least 12 characters"):
        run_users_add(engine_url, "head", "Mrs Head", "reviewer", None, None, "short")
    assert run_users_list(engine_url)[1:] == []


def test_run_users_refuses_an_old_schema(empty_url: str) -> None:
    with pytest.raises(SchemaNotCurrent, match="hallmonitor db upgrade"):
        run_users_list(empty_url)
