"""How tshark prints DNS names, so our names can be compared with the peer's output.

Our parser writes names in DNS presentation form with octal escapes (``\\ooo``) for bytes that
are not printable ASCII, which loses nothing. tshark 4.0's ``-T fields`` output loses
information in three ways, so we do not copy it; these helpers map our form onto tshark's.
"""

from __future__ import annotations


def label_bytes(name: str) -> list[bytes]:
    """Invert our presentation form: the raw label bytes a parsed name stands for."""
    if name == ".":
        return []
    result: list[bytes] = []
    current = bytearray()
    index = 0
    while index < len(name):
        char = name[index]
        if char == "\\" and name[index + 1].isdigit():
            current.append(int(name[index + 1 : index + 4], 8))
            index += 4
        elif char == "\\":
            current.append(ord(name[index + 1]))
            index += 2
        elif char == ".":
            result.append(bytes(current))
            current = bytearray()
            index += 1
        else:
            current.append(ord(char))
            index += 1
    result.append(bytes(current))
    return result


_TSHARK_C_ESCAPES = {7: "\\a", 8: "\\b", 9: "\\t", 10: "\\n", 11: "\\v", 12: "\\f", 13: "\\r"}


def as_tshark_prints(name: str) -> str:
    """How tshark 4.0 -T fields prints the same name (lowercased for comparison).

    It differs from ours in three ways, each losing information, so we do not copy it:
    C escapes for \\a..\\r instead of octal; '.' and '\\' inside a label printed bare (so
    ``a\\.b`` and ``a.b`` look alike); bytes >= 0x80 decoded as UTF-8, invalid ones as U+FFFD.
    """
    text = b".".join(label_bytes(name)).decode("utf-8", "replace") if name != "." else "."
    return "".join(
        _TSHARK_C_ESCAPES.get(ord(char), f"\\{ord(char):03o}")
        if ord(char) < 0x20 or ord(char) == 0x7F
        else char
        for char in text
    ).lower()
