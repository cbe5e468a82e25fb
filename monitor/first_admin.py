"""The first administrator's one-time password, handed to the technician without a log.

``hallmonitor up`` creates the user ``admin`` on its first start. Where a person is watching
(standard output is a terminal: ``scripts/run``; and always with ``up --demo``, whose data is a
throwaway) the password is printed once. Anywhere else (a service: systemd sends standard
output to the journal, which many people can read and which is kept; a pipe; a log file) it is
written to ``<database.data_dir>/first-admin-password``, readable only by its owner (the user
the service runs as), and only where that file is gets printed. The file goes once ``admin``
chooses a password of their own (the review app's password page, or ``hallmonitor users
passwd admin``): the one in it no longer works then.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

logger = logging.getLogger(__name__)

FIRST_ADMIN = "admin"
PASSWORD_FILE = "first-admin-password"
"""The file under ``database.data_dir`` that holds the one-time password under a service."""


def password_file(data_dir: Path) -> Path:
    """Where the first administrator's one-time password is kept until it is changed."""
    return data_dir / PASSWORD_FILE


def write_password_file(path: Path, password: str) -> None:
    """Write the password to a new file that only its owner may read or write (mode 0600,
    whatever the umask; a file already there, or a link in its place, is replaced)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, f"{password}\n".encode())
    finally:
        os.close(fd)


def forget_password_file(data_dir: Path, username: str) -> bool:
    """Remove the one-time password's file when ``username`` (the first administrator) has
    just set a password of their own; whether there was one."""
    if username != FIRST_ADMIN:
        return False
    path = password_file(data_dir)
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    except OSError as e:  # the password was changed all the same: say what is left behind
        logger.warning("cannot remove %s (%s): delete it by hand", path, e.strerror or e)
        return False
    return True


def on_screen_notice(password: str) -> str:
    """What ``up`` prints once on a terminal, when it created the first administrator."""
    return (
        "First start: created the administrator account.\n"
        f"    username: {FIRST_ADMIN}\n"
        f"    password: {password}\n"
        "This password is shown only now. Sign in with it and choose your own; other people "
        "get accounts on the Users page or with `hallmonitor users add`."
    )


def file_notice(path: Path) -> str:
    """What ``up`` prints (to the journal, under a service) instead of the password."""
    return (
        f"First start: created the administrator account {FIRST_ADMIN!r}. Its one-time "
        f"password is in {path}, readable only by the user Hall Monitor runs as: "
        f"`sudo cat {path}`. Sign in with it and choose your own; the file is removed then."
    )
