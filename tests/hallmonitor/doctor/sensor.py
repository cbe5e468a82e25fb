"""A sensor's settings, stored check runs and traffic on a veth pair, for the doctor's tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor.config.settings import Settings
from monitor.store.db import make_engine
from monitor.store.models import CheckRecord


def settings(tmp_path: Path, **groups: Any) -> Settings:
    values: dict[str, Any] = {
        "site": {"name": "Hill School"},
        "database": {"data_dir": str(tmp_path / "data")},
    }
    values.update(groups)
    return Settings.model_validate(values)


def stored_checks(url: str) -> list[CheckRecord]:
    engine = make_engine(url)
    try:
        with Session(engine) as db:
            return list(db.scalars(select(CheckRecord).order_by(CheckRecord.id)))
    finally:
        engine.dispose()
