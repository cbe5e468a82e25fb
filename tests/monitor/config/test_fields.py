"""Value types with their own messages: domain suffixes, networks, time ranges."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.monitor.config.conftest import problems_of


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            "[lists]\nallow = ['*.example.org']",
            "lists.allow[0]: '*.example.org' is not a domain suffix; write e.g. example.org "
            "(a suffix matches the name and every name under it, no wildcards)",
        ),
        (
            "[[segments]]\nname = 'a'\ncidrs = ['10.0.0.1/8']\nrole = 'staff'",
            "segments[0].cidrs[0]: '10.0.0.1/8' has host bits set; use 10.0.0.0/8",
        ),
        (
            "[[segments]]\nname = 'a'\ncidrs = ['2001:db8::1/32']\nrole = 'staff'",
            "segments[0].cidrs[0]: '2001:db8::1/32' has host bits set; use 2001:db8::/32",
        ),
        (
            "[[segments]]\nname = 'a'\ncidrs = ['10.0/33']\nrole = 'staff'",
            "segments[0].cidrs[0]: '10.0/33' is not an IPv4 or IPv6 network; use "
            "ADDRESS/PREFIX, e.g. 10.20.0.0/16",
        ),
        (
            "[calendar.hours]\nmonday = ['08:00-12:15', '13:00-12:00']",
            "calendar.hours.monday[1]: '13:00-12:00' ends before it starts; use HH:MM-HH:MM",
        ),
        (
            "[calendar.hours]\ntuesday = ['08:00-08:00']",
            "calendar.hours.tuesday[0]: '08:00-08:00' ends before it starts; use HH:MM-HH:MM",
        ),
        (
            "[calendar.hours]\nmonday = ['8am-4pm']",
            "calendar.hours.monday[0]: '8am-4pm' is not a time range; use HH:MM-HH:MM",
        ),
        (
            "[calendar.hours]\nmonday = ['08:00']",
            "calendar.hours.monday[0]: '08:00' is not a time range; use HH:MM-HH:MM",
        ),
        (
            "[calendar.hours]\nmonday = ['08:00-25:00']",
            "calendar.hours.monday[0]: '08:00-25:00': 25:00 is not a time of day; use HH:MM-HH:MM",
        ),
        (
            "[calendar.hours]\nmonday = ['24:00-24:00']",
            "calendar.hours.monday[0]: '24:00-24:00': 24:00 is not a time of day; use HH:MM-HH:MM",
        ),
    ],
)
def test_wrong_field_value_says_what_to_write(tmp_path: Path, text: str, problem: str) -> None:
    assert problems_of(tmp_path, text) == [problem]
