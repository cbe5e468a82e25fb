"""Helpers for the JSON API tests: bearer tokens for a role, and a small seeded database.

``bearer(harness, role, site=...)`` creates a user and an API token and returns the headers
that authenticate as them. ``seeded(harness)`` adds incidents and devices at two sites (the
builders of the query tests) and returns their ids.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from monitor.store.api_tokens import create_api_token
from monitor.store.users import create_user
from monitor.store.workflow import UserRole
from tests.api.conftest import FAST_HASHER, PASSWORD, AppHarness
from tests.monitor.store.queries.factories import (
    OTHER_SITE,
    PUPIL_TABLET,
    T0,
    add_device,
    add_incident,
    add_observation,
)


def bearer(
    harness: AppHarness, role: UserRole, *, site: str | None = None, name: str | None = None
) -> dict[str, str]:
    """``Authorization`` headers for a new user of ``role`` (limited to ``site``)."""
    username = name or f"{role.value}-{len(harness.users) + 1}"
    with harness.db() as db:
        user = create_user(
            db, username, username.title(), role, PASSWORD, site=site, hasher=FAST_HASHER
        )
        token = create_api_token(db, user.id, "tests")
        db.commit()
    harness.users[username] = user
    return {"Authorization": f"Bearer {token}"}


@dataclass(frozen=True)
class Seeded:
    """Ids of the seeded rows."""

    staff_incident: int
    """``school``, staff laptop, instagram, new; has an observation."""
    pupil_incident: int
    """``school``, pupil tablet, tiktok, closed (false positive), a day later."""
    annex_incident: int
    """``annex`` (the other site), staff laptop there."""
    staff_device: int
    annex_device: int


def seeded(harness: AppHarness) -> Seeded:
    """Three incidents and two devices across two sites."""
    with harness.db() as db:
        staff = add_incident(db, start=T0)
        add_observation(db, staff, ts=T0 + timedelta(seconds=5))
        pupil = add_incident(
            db,
            start=T0 + timedelta(days=1),
            platform="tiktok",
            device=PUPIL_TABLET,
            host_name=None,
            segment="pupil-wifi",
            role="pupil",
            status="closed",
            outcome="false_positive",
        )
        annex = add_incident(db, start=T0 + timedelta(hours=2), site=OTHER_SITE)
        staff_device = add_device(db)
        annex_device = add_device(db, site=OTHER_SITE)
        result = Seeded(staff.id, pupil.id, annex.id, staff_device.id, annex_device.id)
        db.commit()
    return result
