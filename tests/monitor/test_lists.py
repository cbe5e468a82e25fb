"""Platform lists: the file format, the shipped lists, and importing public lists; no
platform list at all is an error."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from hallmonitor.cli import main
from monitor.config import load_settings
from monitor.errors import BlocklistError
from monitor.lists import (
    check_lists,
    collapse,
    default_directory,
    import_public_list,
    list_directories,
    load_lists,
    parse_platform_list,
    read_public_list,
    render_platform_list,
    run_lists_check,
    run_lists_import,
)
from monitor.values import Category, Presence

LISTS = Path(__file__).resolve().parents[1] / "data" / "lists"
SHIPPED = Path(__file__).resolve().parents[2] / "blocklists"

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


# --- errors ----------------------------------------------------------------------------------


def test_blocklist_error_names_file_and_line_and_is_a_value_error() -> None:
    error = BlocklistError("blocklists/x.txt", 12, "'primry' is not a presence")
    assert str(error) == "blocklists/x.txt:12: 'primry' is not a presence"
    assert isinstance(error, ValueError)
    assert (error.path, error.line, error.message) == (
        "blocklists/x.txt",
        12,
        "'primry' is not a presence",
    )
    assert str(BlocklistError("x.txt", 0, "cannot be read")) == "x.txt: cannot be read"


# --- the format --------------------------------------------------------------------------------


def test_parse_platform_list_reads_header_entries_and_sources() -> None:
    text = (
        "# Instagram's own domains\n"
        "# platform: instagram\n"
        "# name: Instagram\n"
        "# category: social\n"
        "\n"
        "instagram.com primary   # the site\n"
        "CDNInstagram.COM. primary\n"
        "platform.instagram.com embedded\n"
        "# a comment between entries\n"
        "bücher.example embedded\n"
    )
    entries, info = parse_platform_list(text, "instagram.txt")
    assert (info.name, info.category) == ("Instagram", Category.SOCIAL)
    assert [(e.suffix, e.presence, e.source) for e in entries] == [
        ("instagram.com", Presence.PRIMARY, "instagram.txt:6"),
        ("cdninstagram.com", Presence.PRIMARY, "instagram.txt:7"),
        ("platform.instagram.com", Presence.EMBEDDED, "instagram.txt:8"),
        ("xn--bcher-kva.example", Presence.EMBEDDED, "instagram.txt:10"),
    ]
    assert {(e.platform, e.category) for e in entries} == {("instagram", Category.SOCIAL)}


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        (HEADER + "x.com primry\n", 4, "'primry' is not a presence; use primary or embedded"),
        (HEADER + "x.com\n", 4, "'x.com' has no presence; add primary or embedded after it"),
        (
            HEADER + "x.com primary extra\n",
            4,
            "expected '<domain suffix> <primary|embedded>', found 3 words",
        ),
        (
            HEADER + "com primary\n",
            4,
            "'com' is a single label; an entry needs at least two (example.com)",
        ),
        (
            HEADER + "face_book.com primary\nbad..com primary\n",
            5,
            "'bad..com' is not a domain name (label '')",
        ),
        (HEADER + "-x.com primary\n", 4, "'-x.com' is not a domain name (label '-x')"),
        (HEADER + "192.0.2.1 primary\n", 4, "'192.0.2.1' is an IP address, not a domain name"),
        (
            HEADER + "example.123 primary\n",
            4,
            "'example.123' is not a domain name (its last label is a number)",
        ),
        (
            HEADER + "*.x.com primary\n",
            4,
            "'*.x.com': write the domain without '*.' or a leading dot",
        ),
        (
            HEADER + ".x.com primary\n",
            4,
            "'.x.com': write the domain without '*.' or a leading dot",
        ),
        (
            HEADER + "x.com primary\nX.COM. embedded\n",
            5,
            "'x.com' is listed twice (first on line 4)",
        ),
        (HEADER + "x.com primary\n# name: Late\n", 5, "second '# name:' header (first on line 2)"),
        (
            "# platform: demo\n# name: Demo\nx.com primary\n# category: social\n",
            4,
            "'# category:' header after the first entry",
        ),
        (
            "# platform: demo\n# name: Demo\nx.com primary\n",
            0,
            "missing header line '# category: ...' before the entries",
        ),
        (
            "# platform: Demo!\n# name: Demo\n# category: social\n",
            1,
            "'Demo!' is not a platform id",
        ),
        (
            "# platform: demo\n# name: Demo\n# category: gaming\n",
            3,
            "'gaming' is not a category; use social, messaging, video",
        ),
        ("# platform: demo\n# name:\n# category: social\n", 2, "empty '# name:' header"),
    ],
)
def test_parse_platform_list_names_the_bad_line(text, line, message) -> None:
    with pytest.raises(BlocklistError) as caught:
        parse_platform_list(text, "demo.txt")
    assert caught.value.line == line
    assert caught.value.path == "demo.txt"
    assert caught.value.message.startswith(message)


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


# --- public lists ------------------------------------------------------------------------------


def test_import_hosts_excerpt() -> None:
    text = (LISTS / "sinfonietta-social-hosts-excerpt.txt").read_text(encoding="utf-8")
    domains, errors = import_public_list(text, "hosts", source="sinfonietta")
    assert errors == []
    assert domains[:3] == [
        "0-act.channel.facebook.com",
        "0-edge-chat.facebook.com",
        "0.beta.facebook.com",
    ]
    assert "threads.net" in domains
    assert "2014.twitter.com" in domains
    assert len(domains) == 15


def test_import_plain_excerpt() -> None:
    text = (LISTS / "blocklistproject-whatsapp-nl-excerpt.txt").read_text(encoding="utf-8")
    domains, errors = import_public_list(text, "plain", source="blp")
    assert errors == []
    assert domains[0] == "account.whatsapp.com"
    assert domains[-1] == "c.whatsapp.net"
    assert len(domains) == 11


def test_import_ut1_excerpt() -> None:
    text = (LISTS / "ut1-social_networks-domains-excerpt.txt").read_text(encoding="utf-8")
    domains, errors = import_public_list(text + "192.0.2.1\n", "ut1", source="ut1")
    assert errors == []
    assert domains[:2] == ["10tune.com", "2threads.com"]
    assert domains[-5:] == [
        "cdninstagram.com",
        "facebook.com",
        "facebook.net",
        "instagram.com",
        "twitter.com",
    ]


def test_import_adblock_reads_domain_rules_and_counts_the_rest() -> None:
    text = (LISTS / "adblock-sample.txt").read_text(encoding="utf-8")
    imported = read_public_list(text, "adblock", source="sample")
    assert imported.domains == ["facebook.com", "instagram.com", "fbcdn.net"]
    assert imported.errors == []
    assert imported.skipped == 5


def test_import_hosts_names_bad_lines_and_skips_localhost() -> None:
    text = (LISTS / "bad-hosts.txt").read_text(encoding="utf-8")
    domains, errors = import_public_list(text, "hosts", source="bad-hosts.txt")
    assert domains == ["www.facebook.com", "m.facebook.com", "static.xx.fbcdn.net"]
    assert [(error.line, error.message) for error in errors] == [
        (4, "'facebook' is a single label; an entry needs at least two (example.com)"),
        (
            4,
            "'.com': write the domain without '*.' or a leading dot (a suffix already matches every name below it)",
        ),
        (5, "expected '<address> <name>...', 'not-an-address' is not an address"),
        (6, "address '0.0.0.0' has no host name"),
        (8, "'-bad-.example.com' is not a domain name (label '-bad-')"),
    ]


@pytest.mark.parametrize(
    ("fmt", "text", "domains", "bad_lines"),
    [
        (
            "plain",
            "a.example\n\n# c\nB.Example.  # trailing\nx y\n",
            ["a.example", "b.example"],
            [5],
        ),
        ("plain", "a.example\na.example\n", ["a.example"], []),
        ("ut1", "a.example\n10.0.0.1\n::1\nnot a domain\n", ["a.example"], [4]),
        (
            "hosts",
            "0.0.0.0 a.example b.example\n:: c.example\n127.0.0.1 localhost.localdomain\n",
            ["a.example", "b.example", "c.example"],
            [],
        ),
        ("adblock", "||a.example^\n||b..example^\n", ["a.example"], [2]),
    ],
)
def test_import_public_list_table(fmt, text, domains, bad_lines) -> None:
    found, errors = import_public_list(text, fmt, source="t")
    assert found == domains
    assert [error.line for error in errors] == bad_lines


def test_import_public_list_rejects_an_unknown_format() -> None:
    with pytest.raises(ValueError, match="'csv' is not a list format"):
        import_public_list("", "csv", source="t")  # type: ignore[arg-type]


def test_collapse_drops_names_under_a_shorter_suffix() -> None:
    assert collapse(
        ["www.facebook.com", "facebook.com", "a.b.fbcdn.net", "b.fbcdn.net", "notfacebook.com"]
    ) == [
        "facebook.com",
        "notfacebook.com",
        "b.fbcdn.net",
    ]


def test_render_platform_list_round_trips_through_the_parser() -> None:
    text = render_platform_list(
        "demo", "Demo", "video", "embedded", ["x.example", "www.x.example", "y.example"], "list.txt"
    )
    entries, info = parse_platform_list(text, "demo.txt")
    assert info == ("Demo", Category.VIDEO)
    assert [(e.suffix, e.presence) for e in entries] == [
        ("x.example", Presence.EMBEDDED),
        ("y.example", Presence.EMBEDDED),
    ]
    with pytest.raises(ValueError, match="not a platform id"):
        render_platform_list("Demo Platform", "Demo", "video", "embedded", [], "list.txt")


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


def test_run_lists_import_writes_a_list_that_loads(tmp_path) -> None:
    summary = run_lists_import(
        LISTS / "bad-hosts.txt", "hosts", "facebook", "Facebook", "social", "embedded", tmp_path
    )
    lines = summary.splitlines()
    assert (
        lines[0]
        == f"{tmp_path}/facebook.txt: 3 entries from 3 domains in {LISTS}/bad-hosts.txt (hosts); 5 bad line(s)"
    )
    assert (
        lines[1]
        == f"{LISTS}/bad-hosts.txt:4: 'facebook' is a single label; an entry needs at least two (example.com)"
    )
    assert len(lines) == 6
    lists = load_lists([tmp_path])
    assert sorted(entry.suffix for entry in lists.entries) == [
        "m.facebook.com",
        "static.xx.fbcdn.net",
        "www.facebook.com",
    ]


def test_run_lists_import_counts_skipped_adblock_rules(tmp_path) -> None:
    summary = run_lists_import(
        LISTS / "adblock-sample.txt", "adblock", "demo", "Demo", "social", "primary", tmp_path
    )
    assert summary.endswith("0 bad line(s); 5 rule(s) other than ||domain^ skipped")


def test_run_lists_import_names_an_unreadable_file(tmp_path) -> None:
    with pytest.raises(BlocklistError, match="missing.txt: cannot be read"):
        run_lists_import(
            tmp_path / "missing.txt", "plain", "demo", "Demo", "social", "primary", tmp_path
        )


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
