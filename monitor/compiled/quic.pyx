# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""``QuicInitialTracker`` of ``monitor.extract.quic``, compiled with Cython (in ``monitor.compiled``).

The same connections, rules, counters and errors as the Python tracker, decision for decision;
what changes is the cost of reading a packet. Headers, packet numbers, frames and the common
CRYPTO frame are read from the datagram's bytes with C arithmetic, where the Python tracker
spends most of a connection's 100-odd microseconds slicing bytes and calling small functions.
The cryptography is OpenSSL's libcrypto, called directly (HMAC-SHA256 for the HKDF steps,
AES-128-ECB for header protection, AES-128-GCM for the payload): the Python tracker reaches
the same primitives through hashlib and ``cryptography``, and pays about 40 microseconds a
connection for the Python objects around them. The version table, the rare reassembly of
CRYPTO data out of order (``add_range``) and the result type come from the Python module.

``tests/monitor/extract/test_quic.py`` runs every test on both trackers, and
``tests/monitor/compiled/test_quic.py`` compares them on the golden captures; the extractor
takes this one when it was built (setup.py, when a C compiler is there). The limits and
version rules are the Python module's constants, read when this one is imported.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t
from libc.string cimport memcpy

from monitor.extract import quic
from monitor.extract.quic import CLIENT_IN, GREASE, VERSIONS, QuicClientHello, add_range


cdef extern from "openssl/params.h":
    ctypedef struct OSSL_PARAM:
        pass
    OSSL_PARAM OSSL_PARAM_construct_utf8_string(const char* key, char* buf, size_t size)
    OSSL_PARAM OSSL_PARAM_construct_end()


cdef extern from "openssl/evp.h":
    ctypedef struct OSSL_LIB_CTX
    ctypedef struct EVP_CIPHER
    ctypedef struct EVP_CIPHER_CTX
    ctypedef struct EVP_MAC
    ctypedef struct EVP_MAC_CTX
    ctypedef struct ENGINE
    int EVP_CTRL_GCM_SET_TAG
    EVP_CIPHER* EVP_CIPHER_fetch(OSSL_LIB_CTX* ctx, const char* algorithm, const char* properties)
    EVP_MAC* EVP_MAC_fetch(OSSL_LIB_CTX* ctx, const char* algorithm, const char* properties)
    EVP_MAC_CTX* EVP_MAC_CTX_new(EVP_MAC* mac)
    int EVP_MAC_init(
        EVP_MAC_CTX* ctx, const unsigned char* key, size_t key_length, const OSSL_PARAM* params
    )
    int EVP_MAC_CTX_set_params(EVP_MAC_CTX* ctx, const OSSL_PARAM* params)
    int EVP_MAC_update(EVP_MAC_CTX* ctx, const unsigned char* data, size_t length)
    int EVP_MAC_final(EVP_MAC_CTX* ctx, unsigned char* out, size_t* written, size_t size)
    EVP_CIPHER_CTX* EVP_CIPHER_CTX_new()
    void EVP_CIPHER_CTX_free(EVP_CIPHER_CTX* ctx)
    int EVP_CIPHER_CTX_set_padding(EVP_CIPHER_CTX* ctx, int padding)
    int EVP_CIPHER_CTX_ctrl(EVP_CIPHER_CTX* ctx, int type, int arg, void* ptr)
    int EVP_EncryptInit_ex(
        EVP_CIPHER_CTX* ctx, const EVP_CIPHER* cipher, ENGINE* impl,
        const unsigned char* key, const unsigned char* iv,
    )
    int EVP_EncryptUpdate(
        EVP_CIPHER_CTX* ctx, unsigned char* out, int* outl, const unsigned char* data, int inl
    )
    int EVP_DecryptInit_ex(
        EVP_CIPHER_CTX* ctx, const EVP_CIPHER* cipher, ENGINE* impl,
        const unsigned char* key, const unsigned char* iv,
    )
    int EVP_DecryptUpdate(
        EVP_CIPHER_CTX* ctx, unsigned char* out, int* outl, const unsigned char* data, int inl
    )
    int EVP_DecryptFinal_ex(EVP_CIPHER_CTX* ctx, unsigned char* out, int* outl)


# OpenSSL 3 looks an algorithm up by name each time a one-shot call (``HMAC()``) or a context
# set up with ``EVP_aes_128_gcm()`` needs it; fetched once here, they cost a few microseconds
# less per connection.
cdef const EVP_CIPHER* _AES_128_ECB = EVP_CIPHER_fetch(NULL, b"AES-128-ECB", NULL)
cdef const EVP_CIPHER* _AES_128_GCM = EVP_CIPHER_fetch(NULL, b"AES-128-GCM", NULL)
cdef EVP_MAC_CTX* _HMAC = EVP_MAC_CTX_new(EVP_MAC_fetch(NULL, b"HMAC", NULL))
cdef OSSL_PARAM _SHA256[2]
_SHA256[0] = OSSL_PARAM_construct_utf8_string(b"digest", <char*>b"SHA256", 0)
_SHA256[1] = OSSL_PARAM_construct_end()
if (
    _AES_128_ECB == NULL
    or _AES_128_GCM == NULL
    or _HMAC == NULL
    or not EVP_MAC_CTX_set_params(_HMAC, _SHA256)  # the digest, once: each init keeps it
):
    raise ImportError("libcrypto has no AES-128 or HMAC-SHA256")

# The Python module's constants, as C values (read when this module is imported).
cdef int64_t _PN_LIMIT = quic.PN_LIMIT
cdef Py_ssize_t _KEY_CACHE_SIZE = quic.KEY_CACHE_SIZE
cdef uint32_t GREASE_MASK = quic.GREASE_MASK
cdef uint32_t GREASE_PATTERN = quic.GREASE_PATTERN
cdef uint8_t LONG_HEADER_BITS = quic.LONG_HEADER_BITS


cdef inline uint32_t _be32(const uint8_t* p) noexcept nogil:
    return (<uint32_t>p[0] << 24) | (<uint32_t>p[1] << 16) | (<uint32_t>p[2] << 8) | p[3]


cdef object _params_for(uint32_t version):
    """``quic._version_params``: the version's parameters, or None."""
    params = VERSIONS.get(version)
    if params is None and version & GREASE_MASK == GREASE_PATTERN:
        return GREASE
    return params


cdef Py_ssize_t _varint(
    const uint8_t* data, Py_ssize_t pos, Py_ssize_t end, str what, int64_t* value
) except -1:
    """``quic._varint``: the value into ``value``; returns the position after it."""
    cdef int size, i
    cdef uint64_t result
    if pos >= end:
        raise ValueError(quic.VARINT_MISSING.format(what=what, pos=pos))
    size = 1 << (data[pos] >> 6)
    if pos + size > end:
        raise ValueError(quic.VARINT_PAST_END.format(what=what, size=size, pos=pos, end=end))
    result = data[pos] & 0x3F
    for i in range(1, size):
        result = (result << 8) | data[pos + i]
    value[0] = <int64_t>result
    return pos + size


cdef int64_t _decode_pn(int64_t truncated, int pn_len, int64_t largest) noexcept:
    # RFC 9000 appendix A.3, as ``quic._decode_pn``.
    cdef int64_t expected = largest + 1
    cdef int64_t win = (<int64_t>1) << (8 * pn_len)
    cdef int64_t half = win // 2
    cdef int64_t candidate = (expected & ~(win - 1)) | truncated
    if candidate <= expected - half and candidate < _PN_LIMIT - win:
        return candidate + win
    if candidate > expected + half and candidate >= win:
        return candidate - win
    return candidate


cdef enum:
    SHA256_BYTES = 32
    AEAD_TAG_BYTES = 16


cdef int _hmac_sha256(
    const unsigned char* key,
    Py_ssize_t key_length,
    const unsigned char* data,
    Py_ssize_t length,
    const unsigned char* suffix,
    Py_ssize_t suffix_length,
    unsigned char* out,
) except -1:
    """HMAC-SHA256(key, data || suffix) into ``out`` (32 bytes)."""
    cdef size_t written = 0
    if not (
        EVP_MAC_init(_HMAC, key, key_length, NULL)
        and EVP_MAC_update(_HMAC, data, length)
        and EVP_MAC_update(_HMAC, suffix, suffix_length)
        and EVP_MAC_final(_HMAC, out, &written, SHA256_BYTES)
    ):
        raise MemoryError("HMAC-SHA256 failed")
    return 0


cdef int _expand(
    const unsigned char* secret, bytes info, unsigned char* out, Py_ssize_t length
) except -1:
    # HKDF-Expand (RFC 5869) for one SHA-256 block: HMAC(secret, info || 0x01), cut to length.
    cdef unsigned char block[SHA256_BYTES]
    _hmac_sha256(secret, SHA256_BYTES, info, len(info), b"\x01", 1, block)
    memcpy(out, block, length)
    return 0


cdef class _Keys:
    """Client Initial keys for one DCID (``quic._Keys``): the AEAD key and IV, and the
    header-protection and AEAD contexts, ready to use."""

    cdef unsigned char key[16]
    cdef unsigned char iv[12]
    cdef EVP_CIPHER_CTX* hp
    cdef EVP_CIPHER_CTX* aead

    def __cinit__(self):
        self.hp = EVP_CIPHER_CTX_new()
        self.aead = EVP_CIPHER_CTX_new()
        if self.hp == NULL or self.aead == NULL:
            raise MemoryError("EVP_CIPHER_CTX_new failed")

    def __dealloc__(self):
        EVP_CIPHER_CTX_free(self.hp)
        EVP_CIPHER_CTX_free(self.aead)

    cdef derive(self, params, bytes dcid):
        """HKDF-Extract(salt, DCID), then "client in", then key, IV and HP key (RFC 9001
        section 5.2; RFC 9369 section 3.3 for v2's labels)."""
        cdef bytes salt = params.salt
        cdef unsigned char initial[SHA256_BYTES]
        cdef unsigned char secret[SHA256_BYTES]
        cdef unsigned char hp_key[16]
        key_info, iv_info, hp_info = params.labels
        _hmac_sha256(salt, len(salt), dcid, len(dcid), b"", 0, initial)
        _expand(initial, CLIENT_IN, secret, SHA256_BYTES)
        _expand(secret, key_info, self.key, 16)
        _expand(secret, iv_info, self.iv, 12)
        _expand(secret, hp_info, hp_key, 16)
        if (
            not EVP_EncryptInit_ex(self.hp, _AES_128_ECB, NULL, hp_key, NULL)
            or not EVP_CIPHER_CTX_set_padding(self.hp, 0)
            or not EVP_DecryptInit_ex(self.aead, _AES_128_GCM, NULL, self.key, NULL)
        ):
            raise MemoryError("could not set up AES contexts")

    cdef bint mask(self, const unsigned char* sample, unsigned char* out) noexcept:
        """The header-protection mask of a 16-byte sample (AES-ECB)."""
        cdef int written = 0
        return EVP_EncryptUpdate(self.hp, out, &written, sample, 16) and written == 16

    cdef open(
        self,
        const unsigned char* nonce,
        const unsigned char* header,
        int header_length,
        const unsigned char* sealed,
        Py_ssize_t sealed_length,
    ):
        """The plaintext of ``sealed`` (ciphertext, then the 16-byte tag) with ``header`` as
        associated data; None when the tag does not verify."""
        cdef Py_ssize_t length = sealed_length - AEAD_TAG_BYTES
        cdef int written = 0, last = 0
        cdef unsigned char* out
        if length < 0:
            return None
        plain = PyBytes_FromStringAndSize(NULL, length)
        out = <unsigned char*>PyBytes_AS_STRING(plain)
        if (
            EVP_DecryptInit_ex(self.aead, NULL, NULL, NULL, nonce)
            and EVP_DecryptUpdate(self.aead, NULL, &written, header, header_length)
            and EVP_DecryptUpdate(self.aead, out, &written, sealed, <int>length)
            and EVP_CIPHER_CTX_ctrl(
                self.aead, EVP_CTRL_GCM_SET_TAG, AEAD_TAG_BYTES, <void*>(sealed + length)
            )
            and EVP_DecryptFinal_ex(self.aead, out + written, &last) > 0
        ):
            return plain
        return None


cdef class _Conn:
    """One QUIC connection's Initial state, from the client's side (``quic._Conn``)."""

    cdef object client, params, dcid
    cdef _Keys keys
    cdef uint32_t version
    cdef int64_t largest_pn
    cdef double last_ts
    cdef bint done
    cdef bytearray stream
    cdef list ranges

    def __cinit__(self, client, uint32_t version, params, bytes dcid, _Keys keys):
        self.client = client
        self.version = version
        self.params = params
        self.largest_pn = -1
        self.last_ts = 0.0
        self.done = False
        self.restart(dcid, keys)

    cdef restart(self, bytes dcid, _Keys keys):
        self.dcid = dcid
        self.keys = keys
        self.largest_pn = -1
        self.stream = bytearray()
        self.ranges = []


cdef class QuicInitialTracker:
    """Follows QUIC connections until each client's ClientHello is complete: see
    ``monitor.extract.quic.QuicInitialTracker``, whose every rule this one keeps."""

    cdef public Py_ssize_t max_connections, max_crypto_bytes
    cdef public double timeout_s
    cdef public Py_ssize_t decrypt_failures, retries, crypto_overflows, evictions
    cdef dict _conns, _keys

    def __init__(
        self,
        *,
        Py_ssize_t max_connections=quic.DEFAULT_MAX_CONNECTIONS,
        Py_ssize_t max_crypto_bytes=quic.DEFAULT_MAX_CRYPTO_BYTES,
        double timeout_s=quic.DEFAULT_TIMEOUT_S,
    ):
        self.max_connections = max_connections
        self.max_crypto_bytes = max_crypto_bytes
        self.timeout_s = timeout_s
        self._conns = {}
        self._keys = {}
        self.decrypt_failures = 0
        self.retries = 0
        self.crypto_overflows = 0
        self.evictions = 0

    def __len__(self):
        return len(self._conns)

    def feed(self, flow, double ts, bytes datagram):
        """Read one UDP datagram of ``flow``: the ClientHello once complete, else None;
        ValueError for a malformed QUIC packet."""
        cdef const uint8_t* data = datagram
        cdef Py_ssize_t end = len(datagram), pos = 0
        cdef int number = 0
        cdef _Conn conn
        if end < 7 or data[0] & LONG_HEADER_BITS != LONG_HEADER_BITS:
            return None
        if _params_for(_be32(data + 1)) is None:
            return None
        src = (flow[0], flow[1])
        dst = (flow[2], flow[3])
        key = (src, dst) if src <= dst else (dst, src)
        found = self._conns.get(key)
        if found is not None:
            conn = <_Conn>found
            conn.last_ts = ts
            if conn.done:
                return None
        hello = []
        while pos < end and data[pos] & 0xC0 == 0xC0:
            number += 1
            try:
                pos = self._packet(datagram, data, end, pos, key, src, dst, ts, hello)
            except ValueError as e:
                raise ValueError(quic.PACKET_ERROR.format(number=number, e=e)) from None
            if hello or pos < 0:
                return hello[0] if hello else None
        return None

    cdef Py_ssize_t _packet(
        self,
        bytes datagram,
        const uint8_t* data,
        Py_ssize_t end,
        Py_ssize_t pos,
        key,
        src,
        dst,
        double ts,
        list hello,
    ) except? -2:
        """The long-header packet at ``pos``: where the next one starts (-1: stop); a finished
        ClientHello is appended to ``hello``."""
        cdef uint8_t first
        cdef uint32_t version
        cdef int dcid_len, scid_len, ptype
        cdef Py_ssize_t at, pn_offset, packet_end
        cdef int64_t token_len, length
        if pos + 7 > end:
            raise ValueError(quic.LONG_HEADER_SHORT.format(left=end - pos))
        first = data[pos]
        version = _be32(data + pos + 1)
        params = _params_for(version)
        if params is None:
            return -1
        dcid_len = data[pos + 5]
        if dcid_len > 20:
            raise ValueError(quic.DCID_TOO_LONG.format(dcid_len=dcid_len))
        at = pos + 6 + dcid_len
        if at >= end:
            raise ValueError(quic.DCID_PAST_DATAGRAM.format(left=end - pos))
        dcid = datagram[pos + 6 : at]
        scid_len = data[at]
        if scid_len > 20:
            raise ValueError(quic.SCID_TOO_LONG.format(scid_len=scid_len))
        at += 1 + scid_len
        if at > end:
            raise ValueError(quic.SCID_PAST_DATAGRAM.format(left=end - pos))
        ptype = (first >> 4) & 3
        if ptype == params.retry_type:
            self._retry(key, dst, version, params, datagram[at - scid_len : at], ts)
            return -1
        if ptype == params.initial_type:
            at = _varint(data, at, end, "token length", &token_len)
            at += token_len
        pn_offset = _varint(data, at, end, "Length", &length)
        packet_end = pn_offset + length
        if packet_end > end:
            raise ValueError(quic.LENGTH_TOO_LONG.format(length=length, left=end - pn_offset))
        if length < 20:
            raise ValueError(quic.LENGTH_TOO_SHORT.format(length=length))
        if ptype != params.initial_type:
            return packet_end
        found = self._initial(datagram, data, pos, pn_offset, packet_end, version, params, dcid, key, src, ts)
        if found is not None:
            hello.append(found)
        return packet_end

    cdef _retry(self, key, client, uint32_t version, params, bytes new_dcid, double ts):
        cdef _Conn conn
        if not new_dcid:
            raise ValueError(quic.RETRY_WITHOUT_SCID)
        found = self._conns.get(key)
        if found is not None:
            conn = <_Conn>found
            if conn.client != client or conn.done or conn.version != version or conn.dcid == new_dcid:
                return
        keys = self._keys_for(params, new_dcid)
        if found is None:
            self._add(key, _Conn(client, version, params, new_dcid, keys), ts)
        else:
            conn.restart(new_dcid, keys)
        self.retries += 1

    cdef _initial(
        self,
        bytes datagram,
        const uint8_t* data,
        Py_ssize_t start,
        Py_ssize_t pn_offset,
        Py_ssize_t packet_end,
        uint32_t version,
        params,
        bytes dcid,
        key,
        src,
        double ts,
    ):
        cdef _Conn conn = None
        cdef int64_t pn = -1
        found = self._conns.get(key)
        if found is not None:
            conn = <_Conn>found
            if conn.client != src:
                return None  # the server's Initial: server keys, and no ClientHello
        plain = None
        if conn is not None and conn.version == version:
            plain = _decrypt(conn.keys, data, start, pn_offset, packet_end, conn.largest_pn, &pn)
        if plain is None and (conn is None or conn.dcid != dcid or conn.version != version):
            keys = self._keys_for(params, dcid)
            plain = _decrypt(keys, data, start, pn_offset, packet_end, -1, &pn)
            if plain is not None:
                if conn is None:
                    conn = _Conn(src, version, params, dcid, keys)
                    self._add(key, conn, ts)
                else:  # keys from a Retry we did not see, or a new version after negotiation
                    conn.version = version
                    conn.params = params
                    conn.restart(dcid, keys)
        if plain is None or conn is None:
            self.decrypt_failures += 1
            return None
        if pn > conn.largest_pn:
            conn.largest_pn = pn
        return self._frames(conn, plain)

    cdef _frames(self, _Conn conn, bytes payload):
        """Walk the frames of a decrypted Initial, feeding CRYPTO data to the connection."""
        cdef const uint8_t* data = payload
        cdef Py_ssize_t end = len(payload), pos = 0, at
        cdef int number = 0
        cdef int crypto_frame = conn.params.crypto_frame
        hello = []
        while pos < end:
            if data[pos] == 0x00:  # PADDING, usually up to the end of the packet
                at = pos
                while at < end and data[at] == 0:
                    at += 1
                if at == end:
                    break
                pos = at
            number += 1
            try:
                pos = self._frame(conn, payload, data, pos, end, crypto_frame, hello)
            except ValueError as e:
                raise ValueError(f"frame #{number} (type {data[pos]:#x}): {e}") from None
            if hello or pos < 0:
                return hello[0] if hello else None
        return None

    cdef Py_ssize_t _frame(
        self,
        _Conn conn,
        bytes payload,
        const uint8_t* data,
        Py_ssize_t pos,
        Py_ssize_t end,
        int crypto_frame,
        list hello,
    ) except? -2:
        """The frame at ``pos``: where the next starts (-1: stop); a finished hello goes to
        ``hello``."""
        cdef int ftype = data[pos]
        cdef int64_t offset, length, ignored
        pos += 1
        if ftype == crypto_frame:
            pos = _varint(data, pos, end, "CRYPTO offset", &offset)
            pos = _varint(data, pos, end, "CRYPTO length", &length)
            if pos + length > end:
                raise ValueError(quic.CRYPTO_TOO_LONG.format(length=length, left=end - pos))
            found = self._crypto(conn, offset, payload, data, pos, pos + length)
            if found is not None:
                hello.append(found)
            return -1 if conn.done else pos + length
        if ftype == 0x01:  # PING
            return pos
        if ftype == 0x02 or ftype == 0x03:  # ACK, ACK with ECN counts
            return _skip_ack(data, pos, end, ftype == 0x03)
        if ftype == 0x1C or ftype == 0x1D:  # CONNECTION_CLOSE
            pos = _varint(data, pos, end, "error code", &ignored)
            if ftype == 0x1C:
                pos = _varint(data, pos, end, "frame type", &ignored)
            pos = _varint(data, pos, end, "reason length", &length)
            return pos + length
        return -1  # a frame an Initial should not carry: nothing more we can read

    cdef _crypto(
        self,
        _Conn conn,
        int64_t offset,
        bytes payload,
        const uint8_t* data,
        Py_ssize_t first,
        Py_ssize_t last,
    ):
        """Add CRYPTO data ``payload[first:last]`` at ``offset``; the ClientHello once bytes
        0 .. 4+length are in."""
        cdef Py_ssize_t size = last - first, need
        cdef int64_t stop = offset + size
        cdef bytearray stream
        if size == 0:
            return None
        if stop > self.max_crypto_bytes:
            self._overflow(conn)
            return None
        if offset == 0 and not conn.ranges and size >= 4:  # the common single-frame case
            if data[first] != 0x01:
                conn.done = True
                raise ValueError(f"CRYPTO data starts with handshake type {data[first]}")
            need = 4 + ((<Py_ssize_t>data[first + 1] << 16) | (data[first + 2] << 8) | data[first + 3])
            if need <= size:
                conn.done = True
                return QuicClientHello(conn.version, conn.dcid, payload[first : first + need])
        stream = conn.stream
        if stop > len(stream):
            stream.extend(bytes(stop - len(stream)))
        stream[offset:stop] = payload[first:last]
        add_range(conn.ranges, offset, stop)
        head = conn.ranges[0]
        if head[0] != 0 or head[1] < 4:
            return None
        if stream[0] != 0x01:
            conn.done = True
            raise ValueError(quic.CRYPTO_NOT_CLIENT_HELLO.format(handshake_type=stream[0]))
        need = 4 + ((<Py_ssize_t>stream[1] << 16) | (stream[2] << 8) | stream[3])
        if need > self.max_crypto_bytes:
            self._overflow(conn)
            return None
        if head[1] < need:
            return None
        conn.done = True
        hello = bytes(stream[:need])
        conn.stream = bytearray()
        conn.ranges = []
        return QuicClientHello(conn.version, conn.dcid, hello)

    cdef _overflow(self, _Conn conn):
        conn.done = True
        conn.stream = bytearray()
        conn.ranges = []
        self.crypto_overflows += 1

    cdef _Keys _keys_for(self, params, bytes dcid):
        cdef _Keys keys
        cache_key = (params.salt, dcid)
        found = self._keys.get(cache_key)
        if found is not None:
            return <_Keys>found
        if len(self._keys) >= _KEY_CACHE_SIZE:
            del self._keys[next(iter(self._keys))]
        keys = _Keys()
        keys.derive(params, dcid)
        self._keys[cache_key] = keys
        return keys

    cdef _add(self, key, _Conn conn, double ts):
        conn.last_ts = ts
        if len(self._conns) >= self.max_connections:
            del self._conns[next(iter(self._conns))]
            self.evictions += 1
        self._conns[key] = conn

    def expire(self, double now):
        """Forget connections idle for more than ``timeout_s``; return how many were dropped."""
        cdef double cutoff = now - self.timeout_s
        stale = [key for key, conn in self._conns.items() if (<_Conn>conn).last_ts < cutoff]
        for key in stale:
            del self._conns[key]
        return len(stale)


cdef _decrypt(
    _Keys keys,
    const uint8_t* data,
    Py_ssize_t start,
    Py_ssize_t pn_offset,
    Py_ssize_t packet_end,
    int64_t largest_pn,
    int64_t* pn_out,
):
    """Remove header protection and decrypt (``QuicInitialTracker._decrypt``): the payload,
    its packet number into ``pn_out``; None when the AEAD tag does not verify."""
    cdef unsigned char m[16]
    cdef unsigned char nonce[12]
    cdef unsigned char header[64]
    cdef unsigned char* aad
    cdef uint8_t first
    cdef int pn_len, i
    cdef Py_ssize_t header_length
    cdef int64_t truncated = 0, pn
    if not keys.mask(data + pn_offset + 4, m):
        return None
    first = data[start] ^ (m[0] & 0x0F)
    pn_len = (first & 3) + 1
    for i in range(pn_len):
        truncated = (truncated << 8) | (data[pn_offset + i] ^ m[1 + i])
    pn = _decode_pn(truncated, pn_len, largest_pn)
    header_length = pn_offset - start + pn_len
    # A long header: 7 bytes, two CIDs of at most 20, a varint token length (at most 8) and
    # Length (at most 8): the token itself can make it longer than the buffer.
    if header_length <= 64:
        memcpy(header, data + start, header_length)
        header_bytes = None
        aad = header
    else:
        header_bytes = PyBytes_FromStringAndSize(<const char*>(data + start), header_length)
        aad = <unsigned char*>PyBytes_AS_STRING(header_bytes)
    aad[0] = first
    for i in range(pn_len):
        aad[pn_offset - start + i] = (truncated >> (8 * (pn_len - 1 - i))) & 0xFF
    memcpy(nonce, keys.iv, 12)
    for i in range(8):
        nonce[11 - i] ^= (<uint64_t>pn >> (8 * i)) & 0xFF
    plain = keys.open(
        nonce, aad, <int>header_length, data + pn_offset + pn_len, packet_end - pn_offset - pn_len
    )
    if plain is not None:
        pn_out[0] = pn
    return plain


cdef Py_ssize_t _skip_ack(const uint8_t* data, Py_ssize_t pos, Py_ssize_t end, bint ecn) except -1:
    # ACK frame (RFC 9000 section 19.3): largest, delay, range count, first range, ranges, ECN.
    cdef int64_t value, count, i
    pos = _varint(data, pos, end, "ACK largest acknowledged", &value)
    pos = _varint(data, pos, end, "ACK delay", &value)
    pos = _varint(data, pos, end, "ACK range count", &count)
    pos = _varint(data, pos, end, "ACK first range", &value)
    if count > end - pos:
        raise ValueError(quic.ACK_RANGES_TOO_MANY.format(count=count, left=end - pos))
    for i in range(2 * count + (3 if ecn else 0)):
        pos = _varint(data, pos, end, "ACK range", &value)
    return pos
