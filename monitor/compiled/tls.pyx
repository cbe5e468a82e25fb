# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""The ClientHello readers of ``monitor.extract.tls``, compiled with Cython (in ``monitor.compiled``).

``parse_client_hello_message``, ``parse_client_hello_records`` and ``find_client_hello_record``
with the same rules, results and errors as the Python module, reading lengths and extensions
with C arithmetic instead of slices and ``struct`` calls. What is rare stays in the Python
module and is called from here: a ClientHello spread over several records, the SSLv2 form, and
the normalisation and escaping of the server name (``monitor.hostnames.hostname_from_wire``).

``tests/monitor/extract/test_tls.py`` runs its parser tests on both, and
``tests/monitor/compiled/test_tls.py`` compares them on the golden captures; the extractor takes
these when they were built (setup.py, when a C compiler is there). The constants are the
Python module's, read when this one is imported: no rule is written twice.
"""

from cpython.unicode cimport PyUnicode_DecodeASCII
from libc.stdint cimport uint8_t
from libc.string cimport memchr

from monitor.extract import tls
from monitor.extract.tls import (
    ClientHello,
    looks_like_sslv2_client_hello,
    parse_records_slow,
    parse_sslv2_client_hello,
)
from monitor.hostnames import hostname_from_wire

cdef int CONTENT_TYPE_HANDSHAKE = tls.CONTENT_TYPE_HANDSHAKE
cdef int HANDSHAKE_CLIENT_HELLO = tls.HANDSHAKE_CLIENT_HELLO
cdef int EXT_SERVER_NAME = tls.EXT_SERVER_NAME
cdef int EXT_ALPN = tls.EXT_ALPN
cdef int EXT_ENCRYPTED_CLIENT_HELLO = tls.EXT_ENCRYPTED_CLIENT_HELLO
cdef int SERVER_NAME_HOST_NAME = tls.SERVER_NAME_HOST_NAME
cdef Py_ssize_t RECORD_HEADER_LEN = tls.RECORD_HEADER_LEN
cdef Py_ssize_t _MAX_MESSAGE = tls.MAX_CLIENT_HELLO_BYTES
cdef Py_ssize_t _MAX_RECORD = tls.MAX_RECORD_LEN
cdef uint8_t RECORD_START_0 = tls.HANDSHAKE_RECORD_START[0]
cdef uint8_t RECORD_START_1 = tls.HANDSHAKE_RECORD_START[1]
cdef int MAX_MINOR_VERSION = tls.MAX_MINOR_VERSION
_NO_ALPN = ()


cdef inline int _u16(const uint8_t* p) noexcept nogil:
    return (p[0] << 8) | p[1]


def parse_client_hello_message(bytes msg):
    """``tls.parse_client_hello_message``: the ClientHello of a handshake message, None
    when ``msg`` is shorter than the message."""
    cdef const uint8_t* data = msg
    cdef Py_ssize_t n = len(msg), length
    if n == 0:
        return None
    if data[0] != HANDSHAKE_CLIENT_HELLO:
        raise ValueError(f"handshake type {data[0]}, expected ClientHello (1)")
    if n < 4:
        return None
    length = (<Py_ssize_t>data[1] << 16) | (data[2] << 8) | data[3]
    if length > _MAX_MESSAGE - 4:
        raise ValueError(f"ClientHello length {length} > limit {_MAX_MESSAGE - 4}")
    if n < 4 + length:
        return None
    return _parse_body(msg, data, 4, 4 + length)


def find_client_hello_record(bytes stream, Py_ssize_t start=0):
    """``tls.find_client_hello_record``: the offset (>= start) of the first bytes that look
    like a TLS record carrying a ClientHello, or -1."""
    cdef const uint8_t* data = stream
    cdef Py_ssize_t n = len(stream), i, length
    cdef const uint8_t* hit
    if start < 0:
        start = 0
    if start < n and data[start] & 0x80 and looks_like_sslv2_client_hello(stream, start):
        return start
    i = start
    while i + 1 < n:
        hit = <const uint8_t*>memchr(data + i, RECORD_START_0, n - 1 - i)
        if hit == NULL:
            break
        i = hit - data
        if data[i + 1] != RECORD_START_1:
            i += 1
            continue
        if i + 2 >= n:
            return i
        if data[i + 2] <= MAX_MINOR_VERSION:
            if i + RECORD_HEADER_LEN > n:
                return i
            length = _u16(data + i + 3)
            if 1 <= length <= _MAX_RECORD and (
                i + RECORD_HEADER_LEN == n or data[i + RECORD_HEADER_LEN] == HANDSHAKE_CLIENT_HELLO
            ):
                return i
        i += 1
    if n > start and data[n - 1] == CONTENT_TYPE_HANDSHAKE:
        return n - 1
    return -1


def parse_client_hello_records(bytes stream):
    """``tls.parse_client_hello_records``: the ClientHello carried by the TLS handshake
    records at the start of ``stream``; None when more bytes are needed."""
    cdef const uint8_t* data = stream
    cdef Py_ssize_t n = len(stream), record_len, msg_len
    if n == 0:
        return None
    if data[0] != CONTENT_TYPE_HANDSHAKE:
        if data[0] & 0x80:
            return parse_sslv2_client_hello(stream)
        raise ValueError(f"record #0: content type {data[0]}, expected handshake (22)")
    if n >= RECORD_HEADER_LEN + 4:  # the whole ClientHello in the first record, as usual
        record_len = _u16(data + 3)
        msg_len = (<Py_ssize_t>data[6] << 16) | (data[7] << 8) | data[8]
        if (
            data[1] == RECORD_START_1
            and data[5] == HANDSHAKE_CLIENT_HELLO
            and 4 + msg_len <= record_len <= _MAX_RECORD
            and RECORD_HEADER_LEN + 4 + msg_len <= n
            and msg_len <= _MAX_MESSAGE - 4
        ):
            return _parse_body(stream, data, RECORD_HEADER_LEN + 4, RECORD_HEADER_LEN + 4 + msg_len)
    return parse_records_slow(stream)


cdef _parse_body(bytes source, const uint8_t* buf, Py_ssize_t pos, Py_ssize_t end):
    """``tls._parse_body``: the ClientHello body in ``buf[pos:end]``."""
    cdef int version, ext_type, length, index = 0
    cdef Py_ssize_t p, ext_len, ext_end
    cdef bint sni_seen = False, alpn_seen = False, has_ech = False
    if end - pos < 35:
        raise ValueError(tls.CLIENT_HELLO_BODY_SHORT.format(left=end - pos))
    version = _u16(buf + pos)
    p = pos + 34  # legacy_version (2) + random (32)
    p += 1 + buf[p]  # session id
    if p + 2 > end:
        raise ValueError(tls.SESSION_ID_TOO_LONG.format(length=buf[pos + 34]))
    p += 2 + _u16(buf + p)  # cipher suites
    if p + 1 > end:
        raise ValueError(tls.CIPHER_SUITES_PAST_END)
    p += 1 + buf[p]  # compression methods
    if p > end:
        raise ValueError(tls.COMPRESSION_METHODS_PAST_END)
    if p == end:
        return ClientHello(None, False, _NO_ALPN, version)  # no extensions (SSLv3, early TLS)
    if p + 2 > end:
        raise ValueError(tls.EXTENSIONS_LENGTH_CUT)
    ext_len = _u16(buf + p)
    p += 2
    ext_end = p + ext_len
    error = None
    if ext_end > end:
        error = tls.EXTENSIONS_TOO_LONG.format(ext_len=ext_len, left=end - p)
        ext_end = end
    sni = None
    alpn = _NO_ALPN
    while p < ext_end:
        if p + 4 > ext_end:
            error = tls.EXTENSION_HEADER_SHORT.format(index=index, left=ext_end - p)
            break
        ext_type = _u16(buf + p)
        length = _u16(buf + p + 2)
        p += 4
        if p + length > ext_end:
            error = (
                tls.EXTENSION_TOO_LONG.format(index=index, ext_type=ext_type, length=length, left=ext_end - p)
            )
            break
        if ext_type == EXT_SERVER_NAME and not sni_seen:
            sni_seen = True
            try:
                sni = _server_name(source, buf, p, p + length)
            except ValueError as e:
                error = tls.BAD_SERVER_NAME_EXTENSION.format(index=index, e=e)
                break
        elif ext_type == EXT_ALPN and not alpn_seen:
            alpn_seen = True
            try:
                alpn = _alpn(source, buf, p, p + length)
            except ValueError as e:
                error = tls.BAD_ALPN_EXTENSION.format(index=index, e=e)
                break
        elif ext_type == EXT_ENCRYPTED_CLIENT_HELLO:
            has_ech = True
        p += length
        index += 1
    if error is not None and sni is None:
        raise ValueError(error)
    return ClientHello(sni, has_ech, alpn, version)


cdef bint _already_normal(const uint8_t* name, Py_ssize_t length) noexcept:
    """Whether ``hostname_from_wire`` would return the name as it is: lowercase letters,
    digits, "-", "_" and "." (not last), as almost every server name is."""
    cdef Py_ssize_t i
    cdef uint8_t c
    if name[length - 1] == 46:  # "."
        return False
    for i in range(length):
        c = name[i]
        if not (97 <= c <= 122 or 48 <= c <= 57 or c == 45 or c == 46 or c == 95):
            return False
    return True


cdef _server_name(bytes source, const uint8_t* buf, Py_ssize_t p, Py_ssize_t end):
    """``tls._server_name``: the first host_name of a server_name extension."""
    cdef Py_ssize_t list_len, list_end, name_len
    cdef int entry = 0, name_type
    if end - p < 2:
        raise ValueError(tls.LIST_LENGTH_SHORT.format(left=end - p))
    list_len = _u16(buf + p)
    p += 2
    if list_len > end - p:
        raise ValueError(tls.LIST_TOO_LONG.format(list_len=list_len, left=end - p))
    list_end = p + list_len
    while p < list_end:
        if p + 3 > list_end:
            raise ValueError(tls.ENTRY_HEADER_SHORT.format(entry=entry, left=list_end - p))
        name_type = buf[p]
        name_len = _u16(buf + p + 1)
        p += 3
        if name_len > list_end - p:
            raise ValueError(tls.ENTRY_TOO_LONG.format(entry=entry, name_len=name_len, left=list_end - p))
        if name_type == SERVER_NAME_HOST_NAME:
            if name_len == 0:
                raise ValueError(tls.ENTRY_EMPTY_HOST_NAME.format(entry=entry))
            if _already_normal(buf + p, name_len):
                return PyUnicode_DecodeASCII(<const char*>(buf + p), name_len, NULL)
            return hostname_from_wire(source[p : p + name_len])
        p += name_len
        entry += 1
    return None


cdef tuple _alpn(bytes source, const uint8_t* buf, Py_ssize_t p, Py_ssize_t end):
    """``tls._alpn``: the protocol names of an ALPN extension."""
    cdef Py_ssize_t list_len, list_end, name_len
    if end - p < 2:
        raise ValueError(tls.LIST_LENGTH_SHORT.format(left=end - p))
    list_len = _u16(buf + p)
    p += 2
    if list_len > end - p:
        raise ValueError(tls.LIST_TOO_LONG.format(list_len=list_len, left=end - p))
    list_end = p + list_len
    names = []
    while p < list_end:
        name_len = buf[p]
        p += 1
        if name_len == 0 or name_len > list_end - p:
            raise ValueError(tls.PROTOCOL_LENGTH_OUT_OF_RANGE.format(index=len(names), name_len=name_len, left=list_end - p))
        names.append(source[p : p + name_len].decode("ascii", "backslashreplace"))
        p += name_len
    return tuple(names)
