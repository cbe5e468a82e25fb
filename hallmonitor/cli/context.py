"""What every command gets from the root group: the settings, the log level of the long-running
commands, and the errors a user can fix as one line instead of a traceback."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import click

from monitor.errors import BlocklistError, ConfigError, SchemaNotCurrent
from monitor.logconfig import configure_logging

if TYPE_CHECKING:
    from monitor.config.settings import Settings

T = TypeVar("T")


def log_at_configured_level(ctx: click.Context, settings: Settings) -> None:
    """Long-running commands log at ``logging.level`` (for the journal), unless --log-level
    was given on the command line."""
    root = ctx.find_root()
    if root.get_parameter_source("log_level") is click.core.ParameterSource.DEFAULT:
        configure_logging(settings.logging.level)


def settings_for(ctx: click.Context) -> Settings:
    """The configuration, or one human line per problem and exit status 1."""
    from monitor.config.loading import load_settings

    try:
        return load_settings(ctx.find_root().obj)
    except ConfigError as e:
        raise click.ClickException(f"configuration: {e}") from e


def fail_on_setup_errors(action: Callable[[], T]) -> T:
    """Run ``action``; turn the errors a user can fix into one line instead of a traceback."""
    from sqlalchemy.exc import OperationalError

    from monitor.sources.live import CaptureSetupError

    try:
        return action()
    except (SchemaNotCurrent, BlocklistError, ConfigError, CaptureSetupError) as e:
        raise click.ClickException(str(e)) from e
    except OperationalError as e:
        first_line = str(e.orig or e).splitlines()[0]
        raise click.ClickException(
            f"the database cannot be reached: {first_line}; check database.url in the configuration"
        ) from e


def run_store_command(action: Callable[[], T]) -> T:
    """Run a command's store call; a refusal (bad name, unknown user or device) is one line."""
    try:
        return fail_on_setup_errors(action)
    except (ValueError, LookupError) as e:
        raise click.ClickException(str(e).strip("'\"")) from e
