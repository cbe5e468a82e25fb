"""API tokens: shown once, stored as a hash, refused once revoked, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor.store.api_tokens import (
    create_api_token,
    find_api_token_user,
    list_api_tokens,
    revoke_api_token,
    token_hash,
)
from monitor.store.models import ApiTokenRecord
from monitor.store.users import set_disabled
from tests.monitor.store.accounts import NOW, add

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
