"""List directories: the shipped lists, a school's own, loading in order; no platform list at all
is an error."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from hallmonitor.cli.root import main
from monitor.config.loading import load_settings
from monitor.errors import BlocklistError
from monitor.lists.directories import (
    check_lists,
    default_directory,
    list_directories,
    load_lists,
    run_lists_check,
)
from monitor.values import Category, Presence

SHIPPED = Path(__file__).resolve().parents[3] / "blocklists"

REQUIRED_PLATFORMS = {
    "facebook": Category.SOCIAL,
    "instagram": Category.SOCIAL,
    "threads": Category.SOCIAL,
    "whatsapp": Category.MESSAGING,
    "messenger": Category.MESSAGING,
    "tiktok": Category.VIDEO,
    "snapchat": Category.SOCIAL,
    "x": Category.SOCIAL,
    "youtube": Category.VIDEO,
    "linkedin": Category.SOCIAL,
    "reddit": Category.SOCIAL,
    "pinterest": Category.SOCIAL,
    "tumblr": Category.SOCIAL,
    "discord": Category.MESSAGING,
    "bluesky": Category.SOCIAL,
    "mastodon": Category.SOCIAL,
    "bereal": Category.SOCIAL,
    "telegram": Category.MESSAGING,
    "vk": Category.SOCIAL,
    "weibo": Category.SOCIAL,
}

HEADER = "# platform: demo\n# name: Demo\n# category: social\n"


def write(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


# --- directories and the shipped lists ---------------------------------------------------------


def test_shipped_lists_pass_check() -> None:
    assert check_lists([SHIPPED]) == []


def test_shipped_lists_are_the_default_directory() -> None:
    assert default_directory().resolve() == SHIPPED.resolve()
    assert load_lists() == load_lists([SHIPPED])


def test_shipped_lists_cover_every_required_platform_with_its_category() -> None:
    lists = load_lists()
    assert {
        platform: info.category for platform, info in lists.platforms.items()
    } == REQUIRED_PLATFORMS
    platforms_with_primary = {e.platform for e in lists.entries if e.presence is Presence.PRIMARY}
    assert platforms_with_primary == set(REQUIRED_PLATFORMS)


@pytest.mark.parametrize("path", sorted(SHIPPED.glob("*.txt")), ids=lambda path: path.name)
def test_every_shipped_entry_names_its_source(path: Path) -> None:
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip() and not line.startswith("#"):
            _, _, comment = line.partition("#")
            assert comment.strip(), f"{path.name}:{number} has no comment"
            if path.name != "allowlist.txt":
                assert "[" in comment, f"{path.name}:{number} names no source"


@pytest.mark.parametrize(
    ("suffix", "presence"),
    [
        ("instagram.com", Presence.PRIMARY),
        ("cdninstagram.com", Presence.PRIMARY),
        ("facebook.com", Presence.PRIMARY),
        ("facebook.net", Presence.EMBEDDED),
        ("fbcdn.net", Presence.EMBEDDED),
        ("platform.twitter.com", Presence.EMBEDDED),
        ("youtube-nocookie.com", Presence.EMBEDDED),
        ("joinmastodon.org", Presence.PRIMARY),
        ("mastodon.social", Presence.PRIMARY),
    ],
)
def test_shipped_lists_decisions(suffix, presence) -> None:
    entries = {entry.suffix: entry.presence for entry in load_lists().entries}
    assert entries[suffix] is presence


def test_shipped_allowlist_has_education_gov_uk() -> None:
    assert "education.gov.uk" in load_lists().allowlist


def test_check_lists_reports_every_problem_with_file_and_line(tmp_path) -> None:
    write(tmp_path, "demo.txt", HEADER + "a.example primry\nb.example\n")
    write(
        tmp_path,
        "other.txt",
        "# platform: wrong\n# name: Other\n# category: video\nc.example primary\n",
    )
    write(
        tmp_path,
        "third.txt",
        "# platform: third\n# name: Third\n# category: video\na.example embedded\nd.example primary\n",
    )
    write(
        tmp_path,
        "fourth.txt",
        "# platform: fourth\n# name: Fourth\n# category: video\nd.example primary\n",
    )
    write(tmp_path, "allowlist.txt", "gov.uk  # government\nnhs.uk\n")
    found = [str(error).replace(str(tmp_path) + "/", "") for error in check_lists([tmp_path])]
    assert found == [
        "demo.txt:4: 'primry' is not a presence; use primary or embedded",
        "demo.txt:5: 'b.example' has no presence; add primary or embedded after it",
        "other.txt: the '# platform: wrong' header does not match the file name; rename the file to wrong.txt",
        "third.txt:5: 'd.example' is already listed at fourth.txt:4",
        "allowlist.txt:2: 'nhs.uk' needs a reason in a comment: 'nhs.uk  # why'",
    ]
    with pytest.raises(BlocklistError, match="demo.txt:4: 'primry' is not a presence"):
        load_lists([tmp_path])


def test_load_lists_later_directory_replaces_a_file_of_the_same_name(tmp_path) -> None:
    write(
        tmp_path / "local",
        "facebook.txt",
        "# platform: facebook\n# name: FB\n# category: video\nfacebook.com embedded  # [site]\n",
    )
    lists = load_lists([SHIPPED, tmp_path / "local"])
    facebook = [entry for entry in lists.entries if entry.platform == "facebook"]
    assert [(e.suffix, e.presence) for e in facebook] == [("facebook.com", Presence.EMBEDDED)]
    assert lists.platforms["facebook"].category is Category.VIDEO
    assert "instagram" in lists.platforms


def test_load_lists_allowlists_add_up_with_extra_allow(tmp_path) -> None:
    write(tmp_path, "allowlist.txt", "ourschool.example  # the school's own site\n")
    lists = load_lists([SHIPPED, tmp_path], extra_allow=["Trust.Example."])
    assert {"education.gov.uk", "ourschool.example", "trust.example"} <= lists.allowlist
    with pytest.raises(BlocklistError, match="extra allowlist:1: 'trust' is a single label"):
        load_lists([SHIPPED, tmp_path], extra_allow=["trust"])


def test_load_lists_rejects_a_missing_directory(tmp_path) -> None:
    with pytest.raises(BlocklistError, match="is not a directory"):
        load_lists([tmp_path / "missing"])


# --- the CLI functions -------------------------------------------------------------------------


def test_run_lists_check_passes_on_the_shipped_lists() -> None:
    status, lines = run_lists_check([SHIPPED])
    assert status == 0
    assert lines == ["20 platform lists, 166 entries, 14 allowlist entries: no problems"]


def test_run_lists_check_prints_file_and_line_of_each_problem(tmp_path) -> None:
    write(tmp_path, "x.txt", "# platform: x\n# name: X\n# category: social\n\nx.com primry\n")
    status, lines = run_lists_check([tmp_path])
    assert status == 1
    assert lines == [
        f"{tmp_path}/x.txt:5: 'primry' is not a presence; use primary or embedded",
        "1 problem(s) found",
    ]


# --- no platform list at all -------------------------------------------------------------------
# A package installed without its list files passed `lists check` and `doctor` with 0 platforms,
# and nothing was ever flagged. Here the shipped lists are switched off with `lists.shipped =
# false` (the setting a trust keeping its own whole set uses) and `lists.directories` names an
# empty directory: the commands then see what a package without its list files gave them.

NO_PLATFORM = "no platform list (a *.txt file with a '# platform:' header) loaded from here"


@pytest.fixture
def empty(tmp_path: Path) -> Path:
    """An empty list directory but for an allowlist (which is not a platform list)."""
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "allowlist.txt").write_text("school.example  # the school's own site\n")
    return lists


@pytest.fixture
def config(tmp_path: Path, empty: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f'[lists]\nshipped = false\ndirectories = ["{empty}"]\n'
        f'[capture]\ninterfaces = ["lo"]\n'
        f'[database]\ndata_dir = "{tmp_path / "data"}"\n'
    )
    return path


def test_an_empty_list_directory_is_an_error_naming_it(empty: Path) -> None:
    [problem] = check_lists([empty])
    assert str(problem) == f"{empty}: {NO_PLATFORM}, so nothing would ever be flagged: " + (
        "reinstall Hall Monitor if its shipped lists are missing, or check lists.directories "
        "and lists.shipped in the configuration"
    )
    with pytest.raises(BlocklistError, match="no platform list"):
        load_lists([empty])


def test_no_directory_at_all_is_an_error_too() -> None:
    with pytest.raises(BlocklistError, match=r"^no directory: no platform list"):
        load_lists([])


def test_the_shipped_lists_come_first_unless_switched_off(config: Path, empty: Path) -> None:
    settings = load_settings(config)
    assert list_directories(settings) == [empty]
    settings.lists.shipped = True
    assert list_directories(settings) == [default_directory(), empty]


def test_lists_check_fails(config: Path, empty: Path) -> None:
    result = CliRunner().invoke(main, ["--config", str(config), "lists", "check"])
    assert result.exit_code == 1
    [problem, summary] = result.stderr.splitlines()
    assert problem.startswith(f"{empty}: {NO_PLATFORM}")
    assert summary == "1 problem(s) found"


def test_doctor_fails_the_lists_check(config: Path, empty: Path) -> None:
    result = CliRunner().invoke(main, ["--config", str(config), "doctor", "--check", "lists"])
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"FAIL lists        {empty}: {NO_PLATFORM}")
    assert lines[2] == "1 of 1 checks failed"


@pytest.mark.parametrize("command", [["capture"], ["up", "--port", "0"]], ids=lambda c: c[0])
def test_capture_and_up_refuse_to_start(command: list[str], config: Path, empty: Path) -> None:
    """Before anything else: no capture, no database, no first administrator."""
    result = CliRunner().invoke(main, ["--config", str(config), *command])
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1].startswith(f"Error: {empty}: {NO_PLATFORM}")
    assert not (config.parent / "data").exists()
