"""Importing public lists into a platform list file."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.errors import BlocklistError
from monitor.lists.directories import load_lists
from monitor.lists.files import parse_platform_list
from monitor.lists.public import (
    collapse,
    import_public_list,
    read_public_list,
    render_platform_list,
    run_lists_import,
)
from monitor.values import Category, Presence

LISTS = Path(__file__).resolve().parents[2] / "data" / "lists"


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
