"""Hostile bytes against the codec and the frame decoder (hypothesis).

Besides "only ProtocolError", this checks that work and memory stay bounded
by the input: peak allocation is measured with tracemalloc (deterministic,
not a timing) for inputs that declare huge sizes.
"""

import contextlib
import tracemalloc

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from protocol import codec, framing, messages
from protocol.errors import ProtocolError

HOSTILE = [
    b"\x9b\xff\xff\xff\xff\xff\xff\xff\xff",  # array of 2**64-1
    b"\x9a\xff\xff\xff\xff",  # array of 2**32-1
    b"\xbb\xff\xff\xff\xff\xff\xff\xff\xff",  # map of 2**64-1
    b"\x5b\xff\xff\xff\xff\xff\xff\xff\xff",  # byte string of 2**64-1
    b"\x7a\xff\xff\xff\xff",  # text of 2**32-1
    b"\x81" * 5000 + b"\x00",  # thousands of nested arrays
    b"\xa1" * 5000 + b"\x00",
    b"\x9f\x01\x02\xff",  # indefinite array
    b"\x5f\x41\x00\xff",
    b"\xa2\x01\x01\x01\x02",  # duplicate keys
    b"\x18\x00",  # non-minimal
    b"\x1b\x00\x00\x00\x00\x00\x00\x00\x01",
    b"\xfb\x3f\xf0\x00\x00\x00\x00\x00\x00",  # float
    b"\xf9\x7e\x00",
    b"\xc2\x41\x01",  # bignum tag
    b"\xd9\xd9\xf7\x00",  # self-describe tag
    b"\x00\x00",  # trailing bytes
]


def _only_protocol_errors(data):
    try:
        obj = codec.loads(data)
    except ProtocolError:
        return
    assert codec.dumps(obj) == data
    with contextlib.suppress(ProtocolError):
        messages.parse(obj)


@pytest.mark.req("LINK-FUZZ-1", "LINK-CBOR-5")
@settings(max_examples=2000, deadline=None)
@given(st.binary(max_size=300))
def test_codec_random_bytes(data):
    _only_protocol_errors(data)


@pytest.mark.req("LINK-FUZZ-1")
@settings(max_examples=1000, deadline=None)
@given(st.sampled_from(HOSTILE), st.binary(max_size=16), st.integers(0, 64))
def test_codec_hostile_seeds_with_tails_and_cuts(seed, tail, cut):
    _only_protocol_errors(seed[: len(seed) - cut] + tail)


@pytest.mark.req("LINK-FUZZ-1", "LINK-CBOR-3")
@pytest.mark.parametrize("data", HOSTILE, ids=lambda d: d[:6].hex())
def test_declared_sizes_do_not_allocate(data):
    tracemalloc.start()
    try:
        with pytest.raises(ProtocolError):
            codec.loads(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024 + 64 * len(data)


@pytest.mark.req("LINK-FUZZ-1", "LINK-FRAME-2")
@settings(max_examples=500, deadline=None)
@given(st.lists(st.one_of(st.binary(max_size=600), st.sampled_from(HOSTILE)), max_size=8))
def test_frame_decoder_random_streams(chunks):
    d = framing.Decoder()
    for chunk in chunks:
        for payload in d.feed(chunk):
            assert isinstance(payload, bytes) and len(payload) <= framing.MAX_PAYLOAD
            _only_protocol_errors(payload)
    # whatever came before, a clean frame after a delimiter gets through
    assert d.feed(b"\x00" + framing.encode(b"\xf6")) == [b"\xf6"]


@pytest.mark.req("LINK-FUZZ-1", "LINK-FRAME-2")
@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=1, max_size=framing.MAX_PAYLOAD), st.binary(max_size=50))
@example(b"\x00" * 10, b"")
def test_frames_survive_arbitrary_noise_before_a_delimiter(payload, noise):
    d = framing.Decoder()
    got = d.feed(noise + b"\x00" + framing.encode(payload))
    assert got[-1:] == [payload]


@pytest.mark.req("LINK-FUZZ-1", "LINK-FRAME-2")
def test_decoder_memory_is_bounded_by_max_frame():
    d = framing.Decoder()
    tracemalloc.start()
    try:
        for _ in range(200):
            d.feed(b"\x01" * 4096)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 32 * 1024
    assert d.feed(b"\x00" + framing.encode(b"ok")) == [b"ok"]
