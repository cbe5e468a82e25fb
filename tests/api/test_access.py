"""The site rules of ``api.access``: what an admin of one school may see, change and grant."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi import HTTPException

from api.access import (
    audit_scope,
    check_user_in_scope,
    in_scope,
    require_trust_wide,
    site_for_new_user,
    users_in_scope,
)
from api.deps import CurrentUser
from monitor.store.users import UserInfo
from monitor.store.workflow import UserRole

TRUST_ADMIN = CurrentUser(1, "trust-it", "Trust IT", UserRole.ADMIN, None)
SCHOOL_ADMIN = CurrentUser(2, "head-it", "Head IT", UserRole.ADMIN, "school-a")


def person(username: str, site: str | None) -> UserInfo:
    return UserInfo(
        3, username, username, UserRole.REVIEWER, None, site, False, None, datetime.now(UTC), None
    )


@pytest.mark.parametrize(
    ("user", "site", "allowed"),
    [
        (TRUST_ADMIN, "school-b", True),
        (TRUST_ADMIN, None, True),
        (SCHOOL_ADMIN, "school-a", True),
        (SCHOOL_ADMIN, "school-b", False),
        (SCHOOL_ADMIN, None, False),  # the trust's own: never for an admin of one school
    ],
)
def test_a_user_of_one_school_reaches_that_school_only(
    user: CurrentUser, site: str | None, allowed: bool
) -> None:
    assert in_scope(user, site) is allowed


def test_people_outside_the_admins_school_are_missing_to_them() -> None:
    people = [person("head-a", "school-a"), person("head-b", "school-b"), person("all", None)]
    assert [p.username for p in users_in_scope(SCHOOL_ADMIN, people)] == ["head-a"]
    assert users_in_scope(TRUST_ADMIN, people) == tuple(people)
    assert check_user_in_scope(SCHOOL_ADMIN, people[0]) is people[0]
    for outside in people[1:]:
        with pytest.raises(HTTPException) as refused:
            check_user_in_scope(SCHOOL_ADMIN, outside)
        assert refused.value.status_code == 404
        assert refused.value.detail == f"No user {outside.username!r}."


def test_an_admin_of_one_school_grants_only_that_school() -> None:
    assert site_for_new_user(SCHOOL_ADMIN, "") == "school-a"
    assert site_for_new_user(SCHOOL_ADMIN, " school-a ") == "school-a"
    with pytest.raises(HTTPException) as refused:
        site_for_new_user(SCHOOL_ADMIN, "school-b")
    assert refused.value.status_code == 403
    assert refused.value.detail == (
        "You manage school-a only: a user for school-b must be added by an admin without a site."
    )
    assert site_for_new_user(TRUST_ADMIN, "") is None
    assert site_for_new_user(TRUST_ADMIN, "school-b") == "school-b"


def test_shared_things_are_refused_to_an_admin_of_one_school_saying_who_may() -> None:
    check = require_trust_wide("The platform lists")
    assert check(TRUST_ADMIN) is TRUST_ADMIN
    with pytest.raises(HTTPException) as refused:
        check(SCHOOL_ADMIN)
    assert refused.value.status_code == 403
    assert str(refused.value.detail).startswith(
        "The platform lists are shared by every school of the trust: an admin without a site"
    )


def test_the_audit_log_is_read_within_the_admins_school() -> None:
    assert audit_scope(SCHOOL_ADMIN) == "school-a"
    assert audit_scope(TRUST_ADMIN) is None
