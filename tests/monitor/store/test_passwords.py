"""Passwords: the lockout at sign-in, and changing one, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.orm import Session

from monitor.store.api_tokens import (
    create_api_token,
    find_api_token_user,
    list_api_tokens,
    revoke_api_token,
)
from monitor.store.passwords import LoginOutcome, LoginPolicy, set_password, verify_login
from monitor.store.users import create_user, set_disabled
from monitor.store.workflow import UserRole
from tests.monitor.store.accounts import (
    FAST,
    NOW,
    PASSWORD,
    POLICY,
    SLOWER,
    add,
    add_session,
    record,
    session_count,
)

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
