"""The demo's built-in settings: a school whose staff segment holds the sample's laptops.

They sit under the configuration file (a ``--config`` still applies, key by key) and the
``HALLMONITOR_*`` environment. Only a file named explicitly (``--config`` or
``$HALLMONITOR_CONFIG``) is read: a demo on a school's gateway must not write into the
production database named by ``/etc/hallmonitor/config.toml``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from monitor.config.loading import load_settings
from monitor.config.settings import Settings

DEMO_SITE = "demo-school"
DEMO_STAFF_NETWORKS = ("10.20.0.0/16", "2001:db8:20::/48")
"""Where the sample's laptops are (``tests/bench/make_mix.py``'s clients)."""
DEFAULT_DATA_DIR = Path("var")
"""Relative to the directory ``up --demo`` is started in."""


def demo_base(data_dir: Path) -> dict[str, Any]:
    """The built-in settings, as the config file's tables would give them."""
    return {
        "site": {"name": DEMO_SITE},
        "segments": [{"name": "staff", "cidrs": list(DEMO_STAFF_NETWORKS), "role": "staff"}],
        "calendar": {"timezone": "Europe/London"},
        "database": {"data_dir": str(data_dir.resolve())},
    }


def load_demo_settings(
    config_path: Path | None,
    data_dir: Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """The demo settings, overridden by ``config_path`` (if any) and the environment."""
    base = demo_base(data_dir if data_dir is not None else DEFAULT_DATA_DIR)
    return load_settings(config_path, environ=environ, base=base)
