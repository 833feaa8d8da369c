"""protocol.codec on both runtimes, driven by the golden vectors."""

from dualtest import raises, req, unhex, vectors
from protocol import codec, errors
from protocol.codec import Tag


def from_json(v):
    if isinstance(v, dict):
        if "$bytes" in v:
            return unhex(v["$bytes"])
        if "$map" in v:
            out = {}
            for k, x in v["$map"]:
                out[from_json(k)] = from_json(x)
            return out
        if "$tag" in v:
            return Tag(v["$tag"][0], from_json(v["$tag"][1]))
    if isinstance(v, list):
        return [from_json(x) for x in v]
    return v


def same(a, b):
    # == alone would equate True with 1 on CPython and not on MicroPython
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return len(a) == len(b) and all(k in b and same(a[k], b[k]) for k in a)
    if isinstance(a, Tag):
        return a.tag == b.tag and same(a.value, b.value)
    return a == b


@req("LINK-CBOR-1", "LINK-RT-1")
def test_valid_vectors_decode_to_their_values():
    for h, v in vectors("codec.json")["valid"]:
        got = codec.loads(unhex(h))
        assert same(got, from_json(v)), h


@req("LINK-CBOR-1", "LINK-RT-1")
def test_encoding_is_deterministic_and_matches_vectors():
    for h, v in vectors("codec.json")["valid"]:
        assert codec.dumps(from_json(v)).hex() == h, h


@req("LINK-CBOR-1")
def test_map_keys_sorted_bytewise_whatever_the_insertion_order():
    a = {"a": 1, 256: 2, -1: 3, b"\x00": 4, 0: 5}
    b = {}
    for k in (0, b"\x00", -1, 256, "a"):
        b[k] = a[k]
    assert codec.dumps(a) == codec.dumps(b)
    # 00 < 190100 < 20 < 4100 < 6161: bytewise, not by length or sign
    assert codec.dumps(a).hex() == "a50005190100022003410004616101"


@req("LINK-CBOR-2", "LINK-CBOR-5", "LINK-RT-1")
def test_invalid_vectors_raise_their_error_code():
    for h, name in vectors("codec.json")["invalid"]:
        code = getattr(errors, name)
        raises(code, codec.loads, unhex(h))


@req("LINK-CBOR-1")
def test_issue_examples():
    assert codec.dumps({1: [2, b"x", "y"]}).hex() == "a101830241786179"
    raises(errors.DUPLICATE_KEY, codec.loads, unhex("a201010102"))


@req("LINK-CBOR-2")
def test_encoder_refuses_what_the_wire_does_not_carry():
    raises(errors.UNSUPPORTED_TYPE, codec.dumps, 1.5)
    raises(errors.UNSUPPORTED_TYPE, codec.dumps, (1, 2))
    raises(errors.UNSUPPORTED_TYPE, codec.dumps, [set()])
    raises(errors.INT_RANGE, codec.dumps, 1 << 64)
    raises(errors.INT_RANGE, codec.dumps, -(1 << 64) - 1)
    raises(errors.BAD_KEY, codec.dumps, {True: 1})
    raises(errors.BAD_KEY, codec.dumps, {None: 1})
    raises(errors.UNSUPPORTED_TAG, codec.dumps, Tag(2, b"\x01"))
    raises(errors.UNSUPPORTED_TAG, codec.dumps, [Tag(18, [])])


@req("LINK-CBOR-3")
def test_depth_limit_on_decode_and_encode():
    deep = b"\x81" * 1000 + b"\x00"
    raises(errors.TOO_DEEP, codec.loads, deep)
    ok = b"\x81" * (codec.MAX_DEPTH - 1) + b"\x00"
    assert codec.loads(ok) is not None
    raises(errors.TOO_DEEP, codec.loads, b"\x81" * codec.MAX_DEPTH + b"\x00")
    v = 0
    for _ in range(codec.MAX_DEPTH):
        v = [v]
    raises(errors.TOO_DEEP, codec.dumps, v)
    raises(errors.TOO_DEEP, codec.loads, ok, 65536, 4)


@req("LINK-CBOR-3")
def test_size_limit_on_decode_and_encode():
    raises(errors.TOO_LARGE, codec.loads, bytes(codec.MAX_SIZE + 1))
    raises(errors.TOO_LARGE, codec.loads, b"\x42ab", 2)
    raises(errors.TOO_LARGE, codec.dumps, bytes(codec.MAX_SIZE))
    assert codec.loads(b"\x42ab", 3) == b"ab"


@req("LINK-CBOR-2")
def test_loads_takes_only_bytes():
    raises(errors.UNSUPPORTED_TYPE, codec.loads, "00")
    raises(errors.UNSUPPORTED_TYPE, codec.loads, None)
    assert codec.loads(bytearray(b"\x01")) == 1
    assert codec.loads(memoryview(b"\x02")) == 2


@req("LINK-CBOR-5")
def test_error_carries_integer_code_and_name():
    e = raises(errors.TRAILING_BYTES, codec.loads, b"\x00\x00")
    assert isinstance(e.code, int)
    assert e.name == "TRAILING_BYTES"
    assert errors.name(9999) == "UNKNOWN_ERROR"
    for code in errors.NAMES:
        assert getattr(errors, errors.NAMES[code]) == code
