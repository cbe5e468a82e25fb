"""Host names are compared in one normal form everywhere."""

from __future__ import annotations

import pytest

from monitor.hostnames import ESCAPED_BYTES, hostname_from_wire, normalise_hostname


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("WWW.Instagram.COM", "www.instagram.com"),
        ("www.instagram.com.", "www.instagram.com"),
        ("", "."),
        (".", "."),
        ("bücher.example", "xn--bcher-kva.example"),
        ("BÜCHER.example.", "xn--bcher-kva.example"),
        ("_dmarc.example.com", "_dmarc.example.com"),
        ("a" * 70 + ".ü", ("a" * 70 + ".ü")),  # IDNA refuses a 70-byte label: kept as it is
    ],
)
def test_normalise_hostname(raw: str, normal: str) -> None:
    assert normalise_hostname(raw) == normal


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        (b"WWW.Instagram.COM.", "www.instagram.com"),
        ("bücher.example".encode(), "xn--bcher-kva.example"),  # printable UTF-8: IDNA
        (b"sam's macbook pro", "sam's macbook pro"),  # printable ASCII as it is
        (b"nul\x00.example", "nul\\000.example"),
        (b"esc\x1b[2J.example", "esc\\033[2j.example"),
        (b"cr\r\nlf", "cr\\015\\012lf"),
        (b"del\x7f", "del\\177"),
        ("\u202e\u2066bidi\u2069".encode(), "\\342\\200\\256\\342\\201\\246bidi\\342\\201\\251"),
        ("zero\u200bwidth".encode(), "zero\\342\\200\\213width"),
        (b"caf\xe9", "caf\\351"),  # not UTF-8
        (b"back\\slash", "back\\\\slash"),  # the escape character doubled
        (("ü" * 70).encode(), "\\303\\274" * 70),  # Unicode that IDNA refuses
        (b"", "."),
    ],
)
def test_hostname_from_wire_escapes_every_byte_outside_printable_ascii(
    raw: bytes, text: str
) -> None:
    assert hostname_from_wire(raw) == text


def test_a_name_from_the_wire_is_always_printable_ascii() -> None:
    every_byte = bytes(range(256))
    assert all(" " <= char <= "~" for char in hostname_from_wire(every_byte))
    assert all(" " <= char <= "~" for char in "".join(ESCAPED_BYTES))
