"""Users: creating, listing and disabling them, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from monitor.store.users import (
    check_password_policy,
    create_user,
    get_user,
    list_users,
    set_disabled,
)
from monitor.store.workflow import UserRole
from tests.monitor.store.accounts import FAST, PASSWORD, add, add_session, record, session_count

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
