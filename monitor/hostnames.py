"""One place where host names are normalised, so every stage compares like with like."""

from __future__ import annotations


def normalise_hostname(name: str) -> str:
    """Lowercase, drop one trailing dot, and turn Unicode labels into IDNA ASCII.

    The root is ``.``. Names that IDNA refuses (underscores, escaped bytes, over-long labels)
    are kept lowercased as they are: a monitor must still report what was asked.
    """
    if name in ("", "."):
        return "."
    if name.endswith("."):
        name = name[:-1]
    if name.isascii():
        return name.lower()
    try:
        return name.encode("idna").decode("ascii").lower()
    except UnicodeError:
        return name.lower()
