"""Users, passwords, lockouts and API tokens, on SQLite and PostgreSQL."""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from argon2 import PasswordHasher
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from monitor.errors import SchemaNotCurrent
from monitor.store.models import (
    ApiTokenRecord,
    AuditEventRecord,
    UserRecord,
    WebSessionRecord,
)
from monitor.store.users import (
    LoginOutcome,
    LoginPolicy,
    UserRole,
    check_password_policy,
    create_api_token,
    create_user,
    find_api_token_user,
    get_user,
    list_api_tokens,
    list_users,
    revoke_api_token,
    run_users_add,
    run_users_disable,
    run_users_list,
    run_users_passwd,
    run_users_token,
    set_disabled,
    set_password,
    token_hash,
    verify_login,
)

FAST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
SLOWER = PasswordHasher(time_cost=2, memory_cost=8, parallelism=1)
PASSWORD = "correct horse battery staple"
NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
POLICY = LoginPolicy(max_failures=3, lockout=timedelta(minutes=15), hasher=FAST)


@pytest.fixture
def db(engine: Engine) -> Iterator[Session]:
    with Session(engine) as session:
        yield session


def add(db: Session, username: str = "head", role: UserRole = UserRole.REVIEWER) -> int:
    user = create_user(db, username, "Mrs Head", role, PASSWORD, hasher=FAST, now=NOW)
    db.commit()
    return user.id


def record(db: Session, username: str) -> UserRecord:
    db.expire_all()
    found = db.scalar(select(UserRecord).where(UserRecord.username == username))
    assert found is not None
    return found


def add_session(db: Session, user_id: int) -> None:
    db.add(
        WebSessionRecord(
            token_hash=token_hash(f"t{user_id}"), user_id=user_id, csrf_token="c",
            created_at=NOW, last_seen_at=NOW,
        )
    )  # fmt: skip
    db.commit()


def session_count(db: Session) -> int:
    return db.scalar(select(func.count()).select_from(WebSessionRecord)) or 0


# --- creating users --------------------------------------------------------------------------


def test_create_user_stores_an_argon2_hash_never_the_password(db: Session) -> None:
    add(db)
    stored = record(db, "head")
    assert stored.password_hash.startswith("$argon2id$")
    assert PASSWORD not in stored.password_hash
    assert (stored.role, stored.failed_logins, stored.disabled) == ("reviewer", 0, False)


def test_create_user_normalises_the_username_and_refuses_a_taken_one(db: Session) -> None:
    user = create_user(db, "  Head ", "Mrs Head", "reviewer", PASSWORD, hasher=FAST)
    assert user.username == "head"
    with pytest.raises(ValueError, match="'head' is taken"):
        create_user(db, "HEAD", "Someone", "admin", PASSWORD, hasher=FAST)


@pytest.mark.parametrize(
    ("username", "display_name", "role", "email", "message"),
    [
        ("has space", "A", "reviewer", None, "username 'has space'"),
        ("", "A", "reviewer", None, "username ''"),
        ("-dash", "A", "reviewer", None, "starting with a letter or digit"),
        ("ok", " ", "reviewer", None, "display name"),
        ("ok", "A", "teacher", None, "role 'teacher': use one of admin, reviewer, governor"),
        ("ok", "A", "reviewer", "not-an-address", "email 'not-an-address'"),
    ],
)
def test_create_user_refuses_bad_fields(
    db: Session, username: str, display_name: str, role: str, email: str | None, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        create_user(db, username, display_name, role, PASSWORD, email=email, hasher=FAST)


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("x" * 11, r"too short \(11 characters\): use at least 12 characters"),
        ("", "at least 12 characters"),
        ("x" * 1025, "at most 1024 characters"),
    ],
)
def test_password_policy_says_what_is_allowed(password: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_password_policy(password)


@pytest.mark.parametrize("password", ["x" * 12, "four words in a row", "x" * 1024])
def test_password_policy_accepts_twelve_to_1024_characters(password: str) -> None:
    check_password_policy(password)


def test_list_users_is_sorted_by_username(db: Session) -> None:
    add(db, "zoe", UserRole.GOVERNOR)
    add(db, "adam", UserRole.ADMIN)
    assert [(u.username, u.role) for u in list_users(db)] == [
        ("adam", UserRole.ADMIN),
        ("zoe", UserRole.GOVERNOR),
    ]


# --- verify_login ----------------------------------------------------------------------------


def test_verify_login_accepts_the_right_password_and_notes_the_time(db: Session) -> None:
    add(db)
    result = verify_login(db, "Head", PASSWORD, NOW, POLICY)
    db.commit()
    assert result.ok and result.user is not None and result.user.username == "head"
    assert record(db, "head").last_login_at == NOW


@pytest.mark.parametrize(
    ("username", "password", "outcome"),
    [
        ("head", "wrong password here", LoginOutcome.WRONG_PASSWORD),
        ("nobody", PASSWORD, LoginOutcome.UNKNOWN_USER),
        ("", PASSWORD, LoginOutcome.UNKNOWN_USER),
        ("head", "", LoginOutcome.WRONG_PASSWORD),
    ],
)
def test_verify_login_refuses(
    db: Session, username: str, password: str, outcome: LoginOutcome
) -> None:
    add(db)
    result = verify_login(db, username, password, NOW, POLICY)
    assert (result.ok, result.outcome) == (False, outcome)


def test_failures_lock_the_account_after_max_failures(db: Session) -> None:
    add(db)
    outcomes = [verify_login(db, "head", "wrong password!", NOW, POLICY) for _ in range(3)]
    db.commit()
    assert [r.locked_until for r in outcomes] == [None, None, NOW + timedelta(minutes=15)]
    stored = record(db, "head")
    assert (stored.failed_logins, stored.locked_until) == (0, NOW + timedelta(minutes=15))


def test_a_locked_account_refuses_the_right_password_until_the_lock_ends(db: Session) -> None:
    add(db)
    for _ in range(3):
        verify_login(db, "head", "wrong password!", NOW, POLICY)
    during = verify_login(db, "head", PASSWORD, NOW + timedelta(minutes=14), POLICY)
    after = verify_login(db, "head", PASSWORD, NOW + timedelta(minutes=15, seconds=1), POLICY)
    db.commit()
    assert during.outcome is LoginOutcome.LOCKED
    assert after.outcome is LoginOutcome.SUCCESS
    assert record(db, "head").locked_until is None


def test_attempts_during_a_lock_do_not_extend_it(db: Session) -> None:
    add(db)
    for _ in range(3):
        verify_login(db, "head", "wrong password!", NOW, POLICY)
    for minute in range(1, 10):
        verify_login(db, "head", "wrong password!", NOW + timedelta(minutes=minute), POLICY)
    db.commit()
    assert record(db, "head").locked_until == NOW + timedelta(minutes=15)


def test_a_success_resets_the_failure_count(db: Session) -> None:
    add(db)
    verify_login(db, "head", "wrong password!", NOW, POLICY)
    verify_login(db, "head", "wrong password!", NOW, POLICY)
    verify_login(db, "head", PASSWORD, NOW, POLICY)
    db.commit()
    assert record(db, "head").failed_logins == 0


def test_a_disabled_user_cannot_sign_in(db: Session) -> None:
    add(db)
    set_disabled(db, "head", True)
    assert verify_login(db, "head", PASSWORD, NOW, POLICY).outcome is LoginOutcome.DISABLED


def test_verify_login_rehashes_with_the_current_parameters(db: Session) -> None:
    add(db)
    assert verify_login(db, "head", PASSWORD, NOW, LoginPolicy(hasher=SLOWER)).ok
    db.commit()
    assert not SLOWER.check_needs_rehash(record(db, "head").password_hash)


# --- changing users --------------------------------------------------------------------------


def test_set_password_replaces_it_clears_the_lock_and_signs_out(db: Session) -> None:
    user_id = add(db)
    for _ in range(3):
        verify_login(db, "head", "wrong password!", NOW, POLICY)
    add_session(db, user_id)
    set_password(db, "head", "a brand new passphrase", hasher=FAST)
    db.commit()
    assert session_count(db) == 0
    assert record(db, "head").locked_until is None
    assert verify_login(db, "head", "a brand new passphrase", NOW, POLICY).ok
    with pytest.raises(ValueError, match="at least 12"):
        set_password(db, "head", "short", hasher=FAST)


def test_a_one_time_password_is_marked_and_replacing_it_clears_the_mark(db: Session) -> None:
    user = create_user(
        db, "admin", "Admin", UserRole.ADMIN, PASSWORD, hasher=FAST, must_change_password=True
    )
    assert user.must_change_password
    assert verify_login(db, "admin", PASSWORD, NOW, POLICY).user.must_change_password  # type: ignore[union-attr]
    assert not set_password(
        db, "admin", "a brand new passphrase", hasher=FAST
    ).user.must_change_password
    assert record(db, "admin").must_change_password is False


def test_users_made_by_hand_keep_their_password(db: Session) -> None:
    add(db)
    assert record(db, "head").must_change_password is False


def test_set_disabled_signs_out_and_can_be_undone(db: Session) -> None:
    user_id = add(db)
    add_session(db, user_id)
    assert set_disabled(db, "head", True).disabled
    db.commit()
    assert session_count(db) == 0
    assert not set_disabled(db, "head", False).disabled


def test_changing_an_unknown_user_raises_lookup_error(db: Session) -> None:
    with pytest.raises(LookupError, match="no user 'ghost'"):
        set_disabled(db, "ghost", True)
    with pytest.raises(LookupError):
        get_user(db, "ghost")


# --- API tokens ------------------------------------------------------------------------------


def test_api_token_is_shown_once_and_stored_as_its_hash(db: Session) -> None:
    user_id = add(db)
    token = create_api_token(db, user_id, "timetable sync", now=NOW)
    db.commit()
    assert token.startswith("hm_") and len(token) == 46
    stored = db.scalar(select(ApiTokenRecord))
    assert stored is not None and stored.token_hash == token_hash(token) != token
    found = find_api_token_user(db, token, NOW)
    assert found is not None and found.username == "head"


def test_api_token_lookup_notes_the_last_use_at_most_once_a_minute(db: Session) -> None:
    user_id = add(db)
    token = create_api_token(db, user_id, "sync", now=NOW)
    find_api_token_user(db, token, NOW)
    find_api_token_user(db, token, NOW + timedelta(seconds=30))
    assert list_api_tokens(db)[0].last_used_at == NOW
    find_api_token_user(db, token, NOW + timedelta(minutes=2))
    assert list_api_tokens(db)[0].last_used_at == NOW + timedelta(minutes=2)


def test_revoked_tokens_and_tokens_of_disabled_users_are_refused(db: Session) -> None:
    user_id = add(db)
    revoked = create_api_token(db, user_id, "old")
    live = create_api_token(db, user_id, "new")
    revoke_api_token(db, list_api_tokens(db)[-1].id, now=NOW)
    assert find_api_token_user(db, revoked, NOW) is None
    assert find_api_token_user(db, live, NOW) is not None
    set_disabled(db, "head", True)
    assert find_api_token_user(db, live, NOW) is None


def test_a_new_password_revokes_every_live_api_token_of_the_user_only(db: Session) -> None:
    user_id = add(db)
    other_id = add(db, "deputy")
    tokens = [create_api_token(db, user_id, name) for name in ("sync", "export")]
    theirs = create_api_token(db, other_id, "sync")
    revoke_api_token(db, list_api_tokens(db)[-1].id, now=NOW)  # already revoked: not counted
    changed = set_password(db, "head", "a brand new passphrase", hasher=FAST, now=NOW)
    assert changed.tokens_revoked == 1
    assert all(find_api_token_user(db, token, NOW) is None for token in tokens)
    assert find_api_token_user(db, theirs, NOW) is not None


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


@pytest.mark.parametrize("token", ["", "hm_", "hm_unknown", "Bearer", "x" * 300])
def test_unknown_tokens_are_refused(db: Session, token: str) -> None:
    add(db)
    assert find_api_token_user(db, token, NOW) is None


def test_token_functions_refuse_bad_input(db: Session) -> None:
    user_id = add(db)
    with pytest.raises(ValueError, match="token name"):
        create_api_token(db, user_id, " ")
    with pytest.raises(LookupError):
        create_api_token(db, user_id + 100, "sync")
    with pytest.raises(LookupError):
        revoke_api_token(db, 999)


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
