"""Lists page: an admin adds or removes a platform-list or allowlist entry with a reason and
an approver; the change is recorded (list_changes + one audit row) and written to the local
list directory, which the capture daemon loads last."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.app import create_app
from api.pages.lists import ListsPage
from monitor.config.settings import Settings
from monitor.lists.directories import list_directories, load_lists, local_list_directory
from monitor.lists.files import ListSet
from monitor.store.models import ListChangeRecord
from monitor.store.workflow import UserRole
from tests.api.conftest import FAST_HASHER, AppHarness


@pytest.fixture
def lists_harness(db_url: str, tmp_path: Path) -> Iterator[AppHarness]:
    """The app with ``database.data_dir`` in a temporary directory and one allowed suffix."""
    settings = Settings.model_validate(
        {
            "database": {"url": db_url, "data_dir": str(tmp_path / "data")},
            "lists": {"allow": ["intranet.school.example"]},
        }
    )
    app = create_app(settings, password_hasher=FAST_HASHER)
    with TestClient(app, client=("testclient", 50000)) as client:
        harness = AppHarness(client, app, settings)
        harness.sign_in(UserRole.ADMIN, "tech")
        yield harness


def change(harness: AppHarness, **fields: str) -> Any:
    data = {"reason": "policy review", "approved_by": "Mrs Head", "presence": "primary", **fields}
    return harness.client.post(
        "/admin/lists/changes",
        data={"csrf_token": harness.session_csrf(), **data},
        follow_redirects=False,
    )


def loaded(harness: AppHarness) -> ListSet:
    return load_lists(list_directories(harness.settings), extra_allow=harness.settings.lists.allow)


def changes(harness: AppHarness) -> list[tuple[str, str, str, str | None, str, str | None]]:
    with harness.db() as db:
        return [
            (r.action, r.list_name, r.suffix, r.presence, r.reason, r.approved_by)
            for r in db.scalars(select(ListChangeRecord).order_by(ListChangeRecord.id))
        ]


def test_local_list_directory_is_under_the_data_dir(lists_harness: AppHarness) -> None:
    settings = lists_harness.settings
    assert local_list_directory(settings) == settings.database.data_dir / "lists"
    assert local_list_directory(settings) not in list_directories(settings)  # not there yet


def test_the_page_shows_platforms_and_the_allowlist(lists_harness: AppHarness) -> None:
    response = lists_harness.client.get("/admin/lists", params={"platform": "instagram"})
    page = response.context["page"]  # type: ignore[attr-defined]
    assert isinstance(page, ListsPage)
    assert "instagram" in {p.id for p in page.platforms}
    assert "instagram.com" in {e.suffix for e in page.entries}
    origins = {a.suffix: a.origin for a in page.allowlist}
    assert (origins["intranet.school.example"], origins["gov.uk"]) == ("config", "lists")
    assert page.problem is None


def test_adding_to_a_platform_list_takes_effect(lists_harness: AppHarness) -> None:
    response = change(
        lists_harness, action="add", list_name="instagram", suffix="InstaClone.Example"
    )
    assert response.status_code == 303
    lists = loaded(lists_harness)
    owner = {e.suffix: e.platform for e in lists.entries}
    assert owner["instaclone.example"] == "instagram"
    assert owner["instagram.com"] == "instagram"  # the shipped entries are kept
    assert changes(lists_harness) == [
        ("add", "instagram", "instaclone.example", "primary", "policy review", "Mrs Head")
    ]
    assert lists_harness.audit_count("change_list") == 1
    page = lists_harness.client.get("/admin/lists").context["page"]  # type: ignore[attr-defined]
    assert [p.local for p in page.platforms if p.id == "instagram"] == [True]


def test_removing_from_a_platform_list_takes_effect(lists_harness: AppHarness) -> None:
    response = change(lists_harness, action="remove", list_name="instagram", suffix="instagram.com")
    assert response.status_code == 303
    lists = loaded(lists_harness)
    assert "instagram.com" not in {e.suffix for e in lists.entries}
    assert changes(lists_harness)[0][:3] == ("remove", "instagram", "instagram.com")


def test_allowlist_add_then_remove(lists_harness: AppHarness) -> None:
    change(lists_harness, action="add", list_name="allowlist", suffix="classroom.example.org")
    assert "classroom.example.org" in loaded(lists_harness).allowlist
    text = (local_list_directory(lists_harness.settings) / "allowlist.txt").read_text()
    assert "classroom.example.org  # policy review (approved by Mrs Head)" in text
    change(lists_harness, action="remove", list_name="allowlist", suffix="classroom.example.org")
    assert "classroom.example.org" not in loaded(lists_harness).allowlist
    assert [c[0] for c in changes(lists_harness)] == ["add", "remove"]
    assert lists_harness.audit_count("change_list") == 2


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"action": "add", "list_name": "tiktok", "suffix": "instagram.com"}, "already on the instagram list"),
        ({"action": "add", "list_name": "nosuch", "suffix": "a.example"}, "no platform list"),
        ({"action": "remove", "list_name": "tiktok", "suffix": "instagram.com"}, "not on the tiktok list"),
        ({"action": "add", "list_name": "allowlist", "suffix": "gov.uk"}, "already on the allowlist"),
        ({"action": "remove", "list_name": "allowlist", "suffix": "gov.uk"}, "remove it there"),
        ({"action": "remove", "list_name": "allowlist", "suffix": "intranet.school.example"}, "lists.allow"),
        ({"action": "add", "list_name": "instagram", "suffix": "localhost"}, "single label"),
        ({"action": "add", "list_name": "instagram", "suffix": "a.example", "reason": "  "}, "reason"),
        ({"action": "add", "list_name": "instagram", "suffix": "a.example", "approved_by": ""}, ""),
    ],
)  # fmt: skip
def test_a_wrong_change_changes_nothing(
    lists_harness: AppHarness, fields: dict[str, str], message: str
) -> None:
    response = change(lists_harness, **fields)
    assert response.status_code == 400
    assert message in response.text
    assert changes(lists_harness) == []
    assert lists_harness.audit_count("change_list") == 0
    assert not local_list_directory(lists_harness.settings).exists()


def test_the_recorded_changes_are_listed(lists_harness: AppHarness) -> None:
    change(lists_harness, action="add", list_name="allowlist", suffix="classroom.example.org")
    page = lists_harness.client.get("/admin/lists").context["page"]  # type: ignore[attr-defined]
    assert [(c.username, c.suffix, c.approved_by) for c in page.changes] == [
        ("tech", "classroom.example.org", "Mrs Head")
    ]
    assert {a.suffix: a.origin for a in page.allowlist}["classroom.example.org"] == "local"


def test_an_unwritable_list_directory_changes_nothing(lists_harness: AppHarness) -> None:
    local = local_list_directory(lists_harness.settings)
    local.parent.mkdir(parents=True)
    local.write_text("a file where the directory should be")
    response = change(lists_harness, action="add", list_name="allowlist", suffix="a.example.org")
    assert response.status_code == 400
    assert "cannot be written" in response.text
    assert changes(lists_harness) == []
