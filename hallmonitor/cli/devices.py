"""``hallmonitor devices``: what the technician can do about one device from the command line."""

from __future__ import annotations

import click

from hallmonitor.cli.context import run_store_command, settings_for


@click.group()
def devices() -> None:
    """Devices the monitor has records of (the review app's Devices page does more)."""


@devices.command("erase")
@click.argument("mac_or_ip")
@click.option("--reason", required=True, help="Why the records are erased (kept in the audit log).")
@click.option("--site", help="The school whose records of the device go. Default: site.name.")
@click.option("--by", help="Who asked, as audited (cli:NAME). Default: the OS user.")
@click.pass_context
def devices_erase(
    ctx: click.Context, mac_or_ip: str, reason: str, site: str | None, by: str | None
) -> None:
    """Erase every record of a device, named by MAC (aa:bb:cc:dd:ee:ff, AA-BB-..., aabb.ccdd.eeff)
    or IP address, as the review app's erase button does.

    Deletes its incidents (with their reviews), observations, embedded counts and device rows,
    replaces its MAC and addresses in earlier audit rows by a one-way digest, and writes one
    audit row naming the device only by that digest. By MAC, rows with no MAC known at the
    addresses it had go too; by address, every device's rows at that address. A running
    capture forgets the device within seconds and never stores anything of it dated before
    the erasure. Erasing again deletes nothing and is audited again.
    """
    from monitor.store.queries.exports import run_devices_erase

    settings = settings_for(ctx)
    url = settings.database.url.get_secret_value()
    where = site or settings.site.name
    click.echo(run_store_command(lambda: run_devices_erase(url, mac_or_ip, where, reason, by)))
