"""Read the names a DNS message asks about, and the CNAMEs and addresses a response gives.

This runs once per DNS packet, so it reads only what the monitor needs: the header, the
question names, and for responses the CNAME, A and AAAA records of the answer section. Every
other record is skipped by its RDLENGTH, and the authority and additional sections are never
read (a corrupt EDNS option there cannot cost us the question). A full ``dns.message.from_wire``
measured about twice as slow as tshark per packet, hence the hand-written reader.

Name decoding rules (RFC 1035 section 4.1.4, RFC 6891 section 5 for the extended label types):

* A compression pointer must point strictly before the place where the name (or the part of it
  reached by the previous pointer) started. That one rule rejects forward pointers and makes
  loops impossible; no compressor writes anything else.
* The label types 0x40 and 0x80 are refused: their length is undefined, so nothing after them
  can be read.
* A name is at most 255 bytes on the wire, root byte included, as tshark also counts it.
* Names are lowercased (ASCII only) without the trailing dot; the root is ``.``. Bytes outside
  printable ASCII are written ``\\ooo`` in octal, as tshark writes them, and a ``.`` or ``\\``
  inside a label is escaped with a backslash, so the text maps back to exactly one name
  (``monitor.hostnames.ESCAPED_BYTES``, the rule every name from the network follows).

Damage is handled the way tshark reports such packets: a question whose name cannot be decoded
but whose end is known (a bad pointer, a name too long) is left out and the next question is
read; a question section cut short keeps the names before the cut; answer records are read up
to the first damage. Only a message from which no question name at all can be read, although
its header claims some, raises ``ValueError``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from monitor.decode.addresses import render_ipv6
from monitor.hostnames import ESCAPED_BYTES, normalise_hostname

MDNS_PORT = 5353
LLMNR_PORT = 5355
DNS_PORTS = frozenset({53, MDNS_PORT, LLMNR_PORT})

HEADER_LENGTH = 12
MAX_NAME_LENGTH = 255
"""Octets of a name on the wire, length bytes and the root byte included (RFC 1035 2.3.4)."""
MAX_POINTERS = 127
"""Compression pointers followed for one name: more than a 255-byte name can need."""

_QUESTION_MIN = 5  # the root name (1 byte) + QTYPE + QCLASS
_HEADER = struct.Struct("!2x3H")  # (ID), flags, QDCOUNT, ANCOUNT
_RR_FIXED = struct.Struct("!HH4xH")  # TYPE, CLASS, (TTL), RDLENGTH
_TCP_LENGTH = struct.Struct("!H")

RESPONSE_FLAG = 0x8000
"""QR, the top bit of the header's flags: the message is a response."""
TYPE_A = 1
TYPE_CNAME = 5
TYPE_AAAA = 28
CLASS_IN = 1
MDNS_CACHE_FLUSH = 0x8000
"""mDNS sets the top bit of an answer's class (RFC 6762 10.2): the class is the rest."""


# The escapes of monitor.hostnames (one rule for every name from the network), lowercased, and
# a '.' inside a label escaped too. Public for the compiled scan loop, which reads a name's
# bytes by this table (monitor.fastscan.loop_rules).
NAME_BYTE_TEXT = tuple(
    "\\." if byte == 0x2E else text.lower() for byte, text in enumerate(ESCAPED_BYTES)
)


@dataclass(frozen=True, slots=True)
class DnsMessage:
    """What the monitor keeps of one DNS message."""

    is_response: bool
    opcode: int
    rcode: int
    questions: tuple[str, ...]
    """Question names in wire order, normalised; undecodable names are left out."""
    cnames: tuple[tuple[str, str], ...]
    """(owner, target) of the answer section's CNAME records, in order."""
    addresses: tuple[tuple[str, str], ...]
    """(owner, address text) of the answer section's A and AAAA records, in order."""


# A frozen dataclass's __init__ sets each field through object.__setattr__, which costs about
# as much as decoding a name. Setting the slots through their descriptors builds the same
# object in half the time; DnsMessage(...) stays the public way to make one.
_MESSAGE_SLOTS = tuple(getattr(DnsMessage, field).__set__ for field in DnsMessage.__slots__)


def _new_message(
    is_response: bool,
    opcode: int,
    rcode: int,
    questions: tuple[str, ...],
    cnames: tuple[tuple[str, str], ...],
    addresses: tuple[tuple[str, str], ...],
) -> DnsMessage:
    message = object.__new__(DnsMessage)
    set_response, set_opcode, set_rcode, set_questions, set_cnames, set_addresses = _MESSAGE_SLOTS
    set_response(message, is_response)
    set_opcode(message, opcode)
    set_rcode(message, rcode)
    set_questions(message, questions)
    set_cnames(message, cnames)
    set_addresses(message, addresses)
    return message


class _UndecodableName(ValueError):
    """A name that cannot be decoded although its end on the wire is known."""

    def __init__(self, message: str, end: int) -> None:
        super().__init__(message)
        self.end = end


def _skip_labels(data: bytes, pos: int, start: int) -> int:
    """The offset after the name whose uncompressed labels continue at ``pos``."""
    size = len(data)
    while pos < size:
        length = data[pos]
        if length == 0:
            return pos + 1
        if length >= 0xC0:
            if pos + 1 >= size:
                break
            return pos + 2
        if length >= 0x40:
            raise ValueError(
                f"name at offset {start}: extended label type 0x{length & 0xC0:02x} at offset {pos}"
            )
        pos += 1 + length
    raise ValueError(f"name at offset {start}: runs past the end of the message ({size} bytes)")


def _read_name(data: bytes, pos: int) -> tuple[str, int]:
    """Decode the name at ``pos``; return it and the offset after it.

    Raises ``_UndecodableName`` (with the end offset) for a bad pointer or a name too long, and
    plain ``ValueError`` when the end of the name cannot be found.

    Names without compression pointers (every question name, most owners) are remembered by
    their wire bytes: such a name is decoded from those bytes alone, so the same bytes always
    give the same text, and a repeated name costs a ``find`` and a dictionary lookup.
    """
    stop = data.find(0, pos) + 1
    if stop:
        text = _cached_name(data[pos:stop])
        if text is not None:
            return text, stop
    return _decode_name(data, pos)


_NAME_CACHE_ENTRIES = 16384
"""Uncompressed names remembered by ``_read_name``; a full cache is emptied, not grown."""

_name_text: dict[bytes, str] = {}
_cached_name = _name_text.get  # bound once: the cache is cleared, never replaced


def _decode_name(data: bytes, pos: int) -> tuple[str, int]:
    """``_read_name`` without the cache; remembers each pointer-free name it decodes."""
    start = limit = pos
    end = -1
    wire_length = 1
    pointers = 0
    labels: list[bytes] = []
    try:
        # A label cut by the end of the data leaves ``pos`` past the end: the next
        # ``data[pos]`` raises IndexError, which saves a bounds check per label.
        while length := data[pos]:
            if length < 0x40:
                wire_length += 1 + length
                if wire_length > MAX_NAME_LENGTH:
                    raise _UndecodableName(
                        f"name at offset {start}: longer than {MAX_NAME_LENGTH} bytes",
                        end if end >= 0 else _skip_labels(data, pos, start),
                    )
                pos += 1 + length
                labels.append(data[pos - length : pos])
            elif length >= 0xC0:
                target = ((length & 0x3F) << 8) | data[pos + 1]
                if end < 0:
                    end = pos + 2
                if target >= limit:
                    raise _UndecodableName(
                        f"name at offset {start}: compression pointer at offset {pos} "
                        f"to {target} does not point before {limit}",
                        end,
                    )
                pointers += 1
                if pointers > MAX_POINTERS:
                    raise _UndecodableName(
                        f"name at offset {start}: more than {MAX_POINTERS} compression pointers",
                        end,
                    )
                pos = limit = target
            else:
                raise ValueError(
                    f"name at offset {start}: extended label type 0x{length & 0xC0:02x} "
                    f"at offset {pos}"
                )
    except IndexError:
        raise ValueError(
            f"name at offset {start}: runs past the end of the message ({len(data)} bytes)"
        ) from None
    if end >= 0:  # compressed: the text depends on bytes elsewhere in the message
        return _name_text_of(labels), end
    end = pos + 1
    text = _name_text_of(labels)
    if len(_name_text) >= _NAME_CACHE_ENTRIES:
        _name_text.clear()
    _name_text[data[start:end]] = text
    return text, end


def _name_text_of(labels: list[bytes]) -> str:
    """The text of a name's labels: lowercase ASCII, odd bytes escaped (module docstring)."""
    if not labels:
        return "."
    raw = b".".join(labels)
    if raw.isascii():
        text = raw.decode("ascii")
        # Printable (space included), no backslash, and no dot inside a label.
        if text.isprintable() and "\\" not in text and text.count(".") == len(labels) - 1:
            return text.lower()
    escaped = NAME_BYTE_TEXT
    return ".".join("".join([escaped[byte] for byte in label]) for label in labels)


_MESSAGE_CACHE_ENTRIES = 8192
"""Parsed messages remembered by their bytes after the ID; a full cache is emptied."""
_MESSAGE_CACHE_MAX_BYTES = 512
"""Longer messages (rare, mostly zone transfers and DNSSEC answers) are not remembered."""

_messages: dict[bytes, DnsMessage] = {}
_cached_message = _messages.get  # bound once: the cache is cleared, never replaced


def parse_dns_message(data: bytes) -> DnsMessage:
    """Parse a DNS message (UDP payload, or one message of a TCP stream without its length).

    Raises ``ValueError`` when the bytes are not DNS: shorter than a header, a header claiming
    more questions than the bytes can hold, or no readable question name although some are
    claimed. Damage after the first readable question is tolerated (see the module docstring).

    The result depends on every byte but the 2-byte ID, and the same query (and often the same
    answer) crosses a network many times a minute, so parsed messages are remembered by those
    bytes (``DnsMessage`` is immutable; malformed messages are not remembered).
    """
    if len(data) > _MESSAGE_CACHE_MAX_BYTES:
        return _parse_dns_message(data)
    key = data[2:]
    message = _cached_message(key)
    if message is None:
        message = _parse_dns_message(data)
        if len(_messages) >= _MESSAGE_CACHE_ENTRIES:
            _messages.clear()
        _messages[key] = message
    return message


def _parse_dns_message(data: bytes) -> DnsMessage:
    """``parse_dns_message`` without the cache."""
    size = len(data)
    if size < HEADER_LENGTH:
        raise ValueError(f"header: {size} bytes < {HEADER_LENGTH}")
    flags, qdcount, ancount = _HEADER.unpack_from(data)
    if qdcount * _QUESTION_MIN > size - HEADER_LENGTH:
        raise ValueError(
            f"header: {qdcount} questions cannot fit in the {size - HEADER_LENGTH} bytes "
            "after the header"
        )
    is_response = flags & RESPONSE_FLAG != 0
    want_answers = is_response and ancount > 0
    # Where each decoded name started, so that answer owners, nearly always a bare pointer to
    # the question or to the previous CNAME target, are not decoded again.
    names_at: dict[int, str] = {}
    questions: list[str] = []
    first_error = ""
    pos = HEADER_LENGTH
    name: str | None
    for index in range(qdcount):
        try:
            name, end = _read_name(data, pos)
        except _UndecodableName as e:
            first_error = first_error or f"question #{index + 1}: {e}"
            name, end = None, e.end
        except ValueError as e:
            first_error = first_error or f"question #{index + 1}: {e}"
            want_answers = False  # the question section is cut: no answers can follow
            break
        if end + 4 > size:  # QTYPE and QCLASS cut off: tshark drops such a question too
            first_error = first_error or f"question #{index + 1}: QTYPE/QCLASS cut at {size}"
            want_answers = False
            break
        if name is not None:
            questions.append(name)
            if want_answers:
                names_at[pos] = name
        pos = end + 4
    if qdcount and not questions:
        raise ValueError(first_error or "question section: no readable name")

    if want_answers:
        cnames, addresses = _read_answers(data, pos, ancount, names_at)
    else:
        cnames = addresses = ()
    return _new_message(
        is_response, (flags >> 11) & 0xF, flags & 0xF, tuple(questions), cnames, addresses
    )


def _read_answers(
    data: bytes, pos: int, count: int, names_at: dict[int, str]
) -> tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]:
    """The CNAME and A/AAAA records of the answer section, up to the first damage."""
    cnames: list[tuple[str, str]] = []
    addresses: list[tuple[str, str]] = []
    size = len(data)
    for _ in range(count):
        owner: str | None = None
        if pos + 1 < size and data[pos] >= 0xC0:
            owner = names_at.get(((data[pos] & 0x3F) << 8) | data[pos + 1])
        if owner is not None:
            pos += 2
        else:
            try:
                owner, pos = _read_name(data, pos)
            except _UndecodableName as e:
                pos = e.end  # the record can still be skipped
            except ValueError:
                break
        if pos + 10 > size:
            break
        rtype, rclass, rdlength = _RR_FIXED.unpack_from(data, pos)
        pos += 10
        rdata_end = pos + rdlength
        if rdata_end > size:
            break
        if owner is not None:
            if rtype == TYPE_A:
                if rdlength == 4 and rclass & ~MDNS_CACHE_FLUSH == CLASS_IN:
                    packed = data[pos:rdata_end]
                    addresses.append((owner, _cached_address(packed) or _address_text(packed)))
            elif rtype == TYPE_AAAA:
                if rdlength == 16 and rclass & ~MDNS_CACHE_FLUSH == CLASS_IN:
                    packed = data[pos:rdata_end]
                    addresses.append((owner, _cached_address(packed) or _address_text(packed)))
            elif rtype == TYPE_CNAME:
                try:
                    target, target_end = _read_name(data, pos)
                except ValueError:
                    pass
                else:
                    if target_end == rdata_end:  # the name fills the RDATA exactly
                        cnames.append((owner, target))
                        names_at[pos] = target
        pos = rdata_end
    return tuple(cnames), tuple(addresses)


_ADDRESS_CACHE_ENTRIES = 16384
"""Answer addresses remembered as text; a full cache is emptied, not grown."""

_address_texts: dict[bytes, str] = {}
_cached_address = _address_texts.get  # bound once: the cache is cleared, never replaced


def _address_text(packed: bytes) -> str:
    """The text of a 4- or 16-byte address, remembered for the next answer that carries it."""
    text = ".".join(map(str, packed)) if len(packed) == 4 else render_ipv6(packed)
    if len(_address_texts) >= _ADDRESS_CACHE_ENTRIES:
        _address_texts.clear()
    _address_texts[packed] = text
    return text


def split_tcp_dns_stream(stream: bytes) -> tuple[list[bytes], int]:
    """Split DNS-over-TCP bytes into messages (each behind a 2-byte length, RFC 1035 4.2.2).

    Returns the complete messages and the number of bytes they used; the caller keeps the rest
    for the next segment. A length too short for a DNS header raises ``ValueError`` when it comes
    first; after good messages, those are returned and the next call raises.
    """
    messages: list[bytes] = []
    pos = 0
    size = len(stream)
    while pos + 2 <= size:
        (length,) = _TCP_LENGTH.unpack_from(stream, pos)
        if length < HEADER_LENGTH:
            if messages:
                break
            raise ValueError(
                f"TCP DNS message at offset {pos}: length {length} < {HEADER_LENGTH}-byte header"
            )
        end = pos + 2 + length
        if end > size:
            break
        messages.append(stream[pos + 2 : end])
        pos = end
    return messages, pos


def cname_chain(message: DnsMessage, name: str) -> tuple[str, ...]:
    """The CNAME targets reached from ``name``, in order (``name`` itself not included).

    Follows the first CNAME of each owner and stops at a name already seen, so a loop in the
    answer ends the chain instead of the monitor.
    """
    if not message.cnames:
        return ()
    targets: dict[str, str] = {}
    for owner, target in message.cnames:
        targets.setdefault(owner, target)
    current = normalise_hostname(name)
    seen = {current}
    chain: list[str] = []
    while (following := targets.get(current)) is not None and following not in seen:
        chain.append(following)
        seen.add(following)
        current = following
    return tuple(chain)


def is_local_resolution(port: int) -> bool:
    """Whether a DNS port is multicast DNS or LLMNR: names of the local network."""
    return port in (MDNS_PORT, LLMNR_PORT)
