"""The list file format: headers, entries and the line of each problem."""

from __future__ import annotations

import pytest

from monitor.errors import BlocklistError
from monitor.lists.files import parse_platform_list
from monitor.values import Category, Presence

HEADER = "# platform: demo\n# name: Demo\n# category: social\n"


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
