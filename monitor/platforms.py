"""What to call a platform in a sentence (``tiktok`` -> "TikTok").

Pure: shared by the reports, the incident explanations and the exports.
"""

from __future__ import annotations

PLATFORM_NAMES = {
    "facebook": "Facebook",
    "instagram": "Instagram",
    "tiktok": "TikTok",
    "snapchat": "Snapchat",
    "x": "X (Twitter)",
    "youtube": "YouTube",
    "whatsapp": "WhatsApp",
    "linkedin": "LinkedIn",
    "reddit": "Reddit",
    "discord": "Discord",
    "pinterest": "Pinterest",
    "telegram": "Telegram",
    "twitch": "Twitch",
    "bereal": "BeReal",
    "threads": "Threads",
    "bluesky": "Bluesky",
    "mastodon": "Mastodon",
    "tumblr": "Tumblr",
}
"""Display names where capitalising the platform id is not enough."""


def platform_name(platform: str) -> str:
    """The display name of a platform id; an unknown id in title case."""
    return PLATFORM_NAMES.get(platform, platform.replace("_", " ").title())
