"""``hallmonitor users``: the people who sign in to the review app."""

from __future__ import annotations

import click

from hallmonitor.cli.context import run_store_command, settings_for
from monitor.store.workflow import UserRole


@click.group()
def users() -> None:
    """People who sign in to the review app (admin, reviewer, governor)."""


def _database_url(ctx: click.Context) -> str:
    return settings_for(ctx).database.url.get_secret_value()


@users.command("add")
@click.argument("username")
@click.option(
    "--role", type=click.Choice([role.value for role in UserRole]), required=True, help="Role."
)
@click.option("--name", "display_name", help="The person's name as shown. Default: USERNAME.")
@click.option("--email", help="Where reports go (reviewers and governors).")
@click.option(
    "--site",
    help="Limit the user to one school of a trust (an admin too: their school's users, "
    "tokens, devices and audit log only).",
)
@click.password_option(help="At least 12 characters; asked for when not given.")
@click.pass_context
def users_add(
    ctx: click.Context,
    username: str,
    role: str,
    display_name: str | None,
    email: str | None,
    site: str | None,
    password: str,
) -> None:
    """Create a user."""
    from monitor.store.user_admin import run_users_add

    url = _database_url(ctx)
    click.echo(
        run_store_command(
            lambda: run_users_add(
                url, username, display_name or username, role, email, site, password
            )
        )
    )


@users.command("passwd")
@click.argument("username")
@click.password_option(help="At least 12 characters; asked for when not given.")
@click.pass_context
def users_passwd(ctx: click.Context, username: str, password: str) -> None:
    """Set a new password (clears a lockout and signs the user out everywhere).

    For `admin`, the file holding the one-time password of the first start (under a service)
    is removed too: that password no longer works."""
    from monitor.first_admin import forget_password_file, password_file
    from monitor.store.user_admin import run_users_passwd
    from monitor.store.users import normalise_username

    settings = settings_for(ctx)
    url = settings.database.url.get_secret_value()
    click.echo(run_store_command(lambda: run_users_passwd(url, username, password)))
    data_dir = settings.database.data_dir
    if forget_password_file(data_dir, normalise_username(username)):
        click.echo(f"removed {password_file(data_dir)}: its one-time password no longer works")


@users.command("disable")
@click.argument("username")
@click.option("--enable", is_flag=True, help="Enable the user again instead.")
@click.pass_context
def users_disable(ctx: click.Context, username: str, enable: bool) -> None:
    """Disable a user (or enable with --enable); a disabled user cannot sign in."""
    from monitor.store.user_admin import run_users_disable

    url = _database_url(ctx)
    click.echo(run_store_command(lambda: run_users_disable(url, username, disabled=not enable)))


@users.command("list")
@click.pass_context
def users_list(ctx: click.Context) -> None:
    """List users with their role, site and state."""
    from monitor.store.user_admin import run_users_list

    url = _database_url(ctx)
    for line in run_store_command(lambda: run_users_list(url)):
        click.echo(line)


@users.command("token")
@click.argument("username")
@click.option("--name", "token_name", required=True, help="What the token is for.")
@click.pass_context
def users_token(ctx: click.Context, username: str, token_name: str) -> None:
    """Create an API token acting as USERNAME; it is printed once and never again."""
    from monitor.store.user_admin import run_users_token

    url = _database_url(ctx)
    click.echo(run_store_command(lambda: run_users_token(url, username, token_name)))
