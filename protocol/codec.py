"""Strict, deterministic, bounded CBOR (RFC 8949) for both ends of the link.

Encoding is the core deterministic encoding of RFC 8949 section 4.2.1:
definite lengths, shortest-form heads, map keys sorted bytewise by their
encoded form. Decoding accepts exactly what the encoder can produce and
nothing else, so every value has one byte string and a signature over bytes
means one thing.

Types: integers in [-2**64, 2**64 - 1], bytes, text, lists, dicts (keys:
integers, text or bytes), True, False, None, and `Tag(18, ...)` (COSE_Sign1)
at the outermost level only. No floats, no other tags or simple values, no
tuples (a tuple would come back as a list). Limits on depth and size are
checked before anything is allocated for a declared length.
"""

from protocol.errors import (
    BAD_KEY,
    BAD_UTF8,
    DUPLICATE_KEY,
    INDEFINITE_LENGTH,
    INT_RANGE,
    NOT_MINIMAL,
    TOO_DEEP,
    TOO_LARGE,
    TRAILING_BYTES,
    TRUNCATED,
    UNSORTED_KEYS,
    UNSUPPORTED_TAG,
    UNSUPPORTED_TYPE,
    ProtocolError,
)

MAX_DEPTH = 16
MAX_SIZE = 65536
COSE_SIGN1_TAG = 18

_UINT64_MAX = 0xFFFFFFFFFFFFFFFF
_MT_UINT = 0
_MT_NINT = 1
_MT_BYTES = 2
_MT_TEXT = 3
_MT_ARRAY = 4
_MT_MAP = 5
_MT_TAG = 6
_MT_SIMPLE = 7


class Tag:
    """A tagged value; only tag 18 (COSE_Sign1) exists on the link."""

    # equal by value, which may be a list: unhashable, as CPython makes it implicitly (typeshed writes
    # list.__hash__ the same way, ignoring that it narrows object.__hash__)
    __hash__ = None  # type: ignore[assignment]

    def __init__(self, tag, value):
        self.tag = tag
        self.value = value

    def __eq__(self, other):
        return isinstance(other, Tag) and other.tag == self.tag and other.value == self.value

    def __repr__(self):
        return "Tag(%d, %r)" % (self.tag, self.value)


# -- encoding ---------------------------------------------------------------


def _head(out, major, n):
    mt = major << 5
    if n < 24:
        out.append(mt | n)
    elif n < 0x100:
        out.append(mt | 24)
        out.append(n)
    elif n < 0x10000:
        out.append(mt | 25)
        out.extend(n.to_bytes(2, "big"))
    elif n < 0x100000000:
        out.append(mt | 26)
        out.extend(n.to_bytes(4, "big"))
    else:
        out.append(mt | 27)
        out.extend(n.to_bytes(8, "big"))


def is_int(v):
    """An integer and not a bool: CPython's bool is an int, and True must never pass as 1."""
    return isinstance(v, int) and v is not True and v is not False


def _enc_key(k):
    # bool is tested by identity: MicroPython's isinstance(True, int) is
    # False while CPython's is True, and a key True would collide with 1.
    if k is True or k is False or not isinstance(k, (int, str, bytes)):
        raise ProtocolError(BAD_KEY, "map keys are integers, text or bytes")
    out = bytearray()
    _enc(out, k, 1)
    return bytes(out)


def _enc(out, obj, depth):
    if depth > MAX_DEPTH:
        raise ProtocolError(TOO_DEEP, "nesting deeper than %d" % MAX_DEPTH)
    if obj is None:
        out.append(0xF6)
    elif obj is True:
        out.append(0xF5)
    elif obj is False:
        out.append(0xF4)
    elif isinstance(obj, int):
        if obj >= 0:
            if obj > _UINT64_MAX:
                raise ProtocolError(INT_RANGE, "integer above 2**64-1")
            _head(out, _MT_UINT, obj)
        else:
            n = -1 - obj
            if n > _UINT64_MAX:
                raise ProtocolError(INT_RANGE, "integer below -2**64")
            _head(out, _MT_NINT, n)
    elif isinstance(obj, (bytes, bytearray)):
        _head(out, _MT_BYTES, len(obj))
        out.extend(obj)
    elif isinstance(obj, str):
        b = obj.encode("utf-8")
        _check_utf8(b)  # MicroPython strings can hold lone surrogates
        _head(out, _MT_TEXT, len(b))
        out.extend(b)
    elif isinstance(obj, list):
        _head(out, _MT_ARRAY, len(obj))
        for item in obj:
            _enc(out, item, depth + 1)
    elif isinstance(obj, dict):
        pairs = [(_enc_key(k), v) for k, v in obj.items()]
        pairs.sort(key=_first)
        _head(out, _MT_MAP, len(pairs))
        for kb, v in pairs:
            out.extend(kb)
            _enc(out, v, depth + 1)
    elif isinstance(obj, Tag):
        if obj.tag != COSE_SIGN1_TAG or depth != 1:
            raise ProtocolError(UNSUPPORTED_TAG, "only tag 18 at the outermost level")
        _head(out, _MT_TAG, obj.tag)
        _enc(out, obj.value, depth + 1)
    else:
        # floats, tuples, sets and anything else have no place on the wire
        raise ProtocolError(UNSUPPORTED_TYPE, "cannot encode %s" % type(obj).__name__)
    if len(out) > MAX_SIZE:
        raise ProtocolError(TOO_LARGE, "encoding exceeds %d bytes" % MAX_SIZE)


def _first(pair):
    return pair[0]


def dumps(obj):
    """Encode `obj` deterministically; raise ProtocolError if it cannot be."""
    out = bytearray()
    _enc(out, obj, 1)
    return bytes(out)


def dump_into(out, obj):
    """Append the encoding of `obj` to the bytearray `out` (dumps without its copy)."""
    _enc(out, obj, 1)


# -- decoding ---------------------------------------------------------------


def _check_utf8(b):
    # Strict RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF.
    # MicroPython's own decoder accepts all three.
    i = 0
    n = len(b)
    while i < n:
        c = b[i]
        if c < 0x80:
            i += 1
            continue
        if 0xC2 <= c <= 0xDF:
            need, lo, hi = 1, 0x80, 0xBF
        elif c == 0xE0:
            need, lo, hi = 2, 0xA0, 0xBF
        elif c == 0xED:
            need, lo, hi = 2, 0x80, 0x9F
        elif 0xE1 <= c <= 0xEF:
            need, lo, hi = 2, 0x80, 0xBF
        elif c == 0xF0:
            need, lo, hi = 3, 0x90, 0xBF
        elif 0xF1 <= c <= 0xF3:
            need, lo, hi = 3, 0x80, 0xBF
        elif c == 0xF4:
            need, lo, hi = 3, 0x80, 0x8F
        else:
            raise ProtocolError(BAD_UTF8, "invalid UTF-8 lead byte")
        if i + need >= n:
            raise ProtocolError(BAD_UTF8, "truncated UTF-8 sequence")
        c1 = b[i + 1]
        if c1 < lo or c1 > hi:
            raise ProtocolError(BAD_UTF8, "invalid UTF-8 continuation")
        for j in range(i + 2, i + need + 1):
            if b[j] & 0xC0 != 0x80:
                raise ProtocolError(BAD_UTF8, "invalid UTF-8 continuation")
        i += need + 1


class _Reader:
    def __init__(self, data):
        self.data = data
        self.pos = 0
        self.end = len(data)

    def take(self, n):
        p = self.pos
        if n > self.end - p:
            raise ProtocolError(TRUNCATED, "need %d bytes at offset %d" % (n, p))
        self.pos = p + n
        return self.data[p : p + n]

    def head(self):
        if self.pos >= self.end:
            raise ProtocolError(TRUNCATED, "data ends at offset %d" % self.pos)
        ib = self.data[self.pos]
        self.pos += 1
        major = ib >> 5
        ai = ib & 0x1F
        if ai < 24:
            return major, ai, ai
        if ai == 31:
            raise ProtocolError(INDEFINITE_LENGTH, "indefinite length or break at offset %d" % (self.pos - 1))
        if ai > 27:
            raise ProtocolError(UNSUPPORTED_TYPE, "reserved additional information %d" % ai)
        size = 1 << (ai - 24)
        if major == _MT_SIMPLE:
            return major, ai, 0  # floats and extended simple values: refused by caller
        n = int.from_bytes(self.take(size), "big")
        # shortest form: the value must not fit a smaller head
        if (ai == 24 and n < 24) or (ai > 24 and n < (1 << (4 << (ai - 24)))):
            raise ProtocolError(NOT_MINIMAL, "non-shortest head at offset %d" % (self.pos - size - 1))
        return major, ai, n


def _dec(r, depth, max_depth):
    if depth > max_depth:
        raise ProtocolError(TOO_DEEP, "nesting deeper than %d" % max_depth)
    major, ai, n = r.head()
    if major == _MT_UINT:
        return n
    if major == _MT_NINT:
        return -1 - n
    if major == _MT_BYTES:
        return r.take(n)
    if major == _MT_TEXT:
        b = r.take(n)
        _check_utf8(b)
        return str(b, "utf-8")
    if major == _MT_ARRAY:
        # every element takes at least one byte: refuse impossible counts
        # before allocating anything for them
        if n > r.end - r.pos:
            raise ProtocolError(TRUNCATED, "array of %d cannot fit" % n)
        return [_dec(r, depth + 1, max_depth) for _ in range(n)]
    if major == _MT_MAP:
        if 2 * n > r.end - r.pos:
            raise ProtocolError(TRUNCATED, "map of %d cannot fit" % n)
        d = {}
        prev = None
        for _ in range(n):
            start = r.pos
            k = _dec(r, depth + 1, max_depth)
            kb = r.data[start : r.pos]
            if k is True or k is False or not isinstance(k, (int, str, bytes)):
                raise ProtocolError(BAD_KEY, "map keys are integers, text or bytes")
            if prev is not None:
                if kb == prev:
                    raise ProtocolError(DUPLICATE_KEY, "duplicate map key at offset %d" % start)
                if kb < prev:
                    raise ProtocolError(UNSORTED_KEYS, "map keys out of order at offset %d" % start)
            prev = kb
            d[k] = _dec(r, depth + 1, max_depth)
        return d
    if major == _MT_TAG:
        if n != COSE_SIGN1_TAG or depth != 1:
            raise ProtocolError(UNSUPPORTED_TAG, "tag %d not allowed here" % n)
        return Tag(n, _dec(r, depth + 1, max_depth))
    # major type 7
    if ai == 20:
        return False
    if ai == 21:
        return True
    if ai == 22:
        return None
    raise ProtocolError(UNSUPPORTED_TYPE, "simple value or float (ai %d)" % ai)


def loads(data, max_size=MAX_SIZE, max_depth=MAX_DEPTH):
    """Decode exactly one deterministic CBOR item filling all of `data`."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ProtocolError(UNSUPPORTED_TYPE, "loads() takes bytes")
    if len(data) > max_size:
        raise ProtocolError(TOO_LARGE, "%d bytes exceed the limit of %d" % (len(data), max_size))
    r = _Reader(bytes(data))
    obj = _dec(r, 1, max_depth)
    if r.pos != r.end:
        raise ProtocolError(TRAILING_BYTES, "%d bytes after the item" % (r.end - r.pos))
    return obj
