"""One place where host names are normalised, so every stage compares like with like.

Names read from the network (DNS questions and answers, TLS and QUIC server names, DHCP host
names) are chosen by whoever sends the packet. ``ESCAPED_BYTES`` is the one rule that turns
their bytes into text that is safe everywhere the name goes (a terminal, a log, a page, a CSV
cell, an email, a PostgreSQL text column): printable ASCII as it is, the backslash doubled, any
other byte (NUL, CR, LF, ESC, the UTF-8 of a bidi control...) written ``\\ooo`` in octal, as
tshark writes DNS names. ``monitor.extract.dns`` writes each label with it (a ``.`` inside a
label escaped too); ``hostname_from_wire`` writes the other names with it.
"""

from __future__ import annotations


def _escape_byte(byte: int) -> str:
    if byte == 0x5C:  # the escape character itself
        return "\\\\"
    if 0x20 <= byte < 0x7F:
        return chr(byte)
    return f"\\{byte:03o}"


ESCAPED_BYTES: tuple[str, ...] = tuple(_escape_byte(byte) for byte in range(256))
"""The text of each byte of a name read from the network (module docstring)."""


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


def hostname_from_wire(raw: bytes) -> str:
    """The normal text of a name sent as bytes (a TLS or QUIC server name, a DHCP host name).

    Printable ASCII without a backslash is normalised as it is; valid UTF-8 of printable
    characters becomes IDNA when IDNA takes it. Anything else (a control or format character,
    bytes that are not UTF-8, a backslash, Unicode that IDNA refuses) is written byte by byte
    with ``ESCAPED_BYTES``. The result is always printable ASCII.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = ""
    if text and text.isprintable() and "\\" not in text:
        name = normalise_hostname(text)
        if name.isascii():
            return name
    return normalise_hostname("".join([ESCAPED_BYTES[byte] for byte in raw]))
