"""`hallmonitor devices erase`: the technician erases a device as the review app does."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from tests.hallmonitor.cli.invoke import invoke, write_config


def test_devices_erase_takes_every_record_of_the_device_in_any_notation(tmp_path: Path) -> None:
    from sqlalchemy.orm import Session

    from monitor.config.loading import load_settings
    from monitor.store.db import make_engine
    from tests.monitor.store.queries.factories import (
        SITE,
        STAFF_LAPTOP,
        add_device,
        add_incident,
        add_observation,
        rows_naming,
    )

    config = write_config(tmp_path)
    config.write_text(config.read_text() + f'[site]\nname = "{SITE}"\n')
    invoke(config, "db", "upgrade")
    engine = make_engine(load_settings(config).database.url.get_secret_value())
    with Session(engine) as db:
        add_observation(db, add_incident(db))
        add_device(db)
        db.commit()
    ip, mac = STAFF_LAPTOP
    status, out, err = invoke(
        config, "devices", "erase", "AABB.CC00.0001", "--reason", "owner's request", "--by", "it"
    )
    assert status == 0, err
    assert out.startswith(f"erased {mac} at site 'school': 1 incidents, 0 incident reviews, 1 observations")  # fmt: skip
    with engine.connect() as connection:
        assert rows_naming(connection, mac, ip) == []
        (who, detail) = connection.execute(
            text("SELECT username, detail FROM audit_events WHERE action = 'erase_device'")
        ).one()
    engine.dispose()
    assert who == "cli:it" and "owner's request" in detail


def test_devices_erase_refuses_what_is_not_a_device_and_needs_a_reason(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    invoke(config, "db", "upgrade")
    status, _, err = invoke(config, "devices", "erase", "staff-laptop", "--reason", "asked")
    assert status == 1
    assert "neither a MAC address nor an IP address" in err and "Traceback" not in err
    status, _, err = invoke(config, "devices", "erase", "10.1.4.23")
    assert status == 2 and "--reason" in err
