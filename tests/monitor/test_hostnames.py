"""Host names are compared in one normal form everywhere."""

from __future__ import annotations

import pytest

from monitor.hostnames import normalise_hostname


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
