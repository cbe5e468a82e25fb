"""Platform display names (``monitor.platforms``)."""

from __future__ import annotations

from monitor.platforms import platform_name


def test_a_platform_is_called_by_its_display_name() -> None:
    assert platform_name("tiktok") == "TikTok"
    assert platform_name("x") == "X (Twitter)"


def test_an_unknown_platform_is_its_id_in_title_case() -> None:
    assert platform_name("new_platform") == "New Platform"
