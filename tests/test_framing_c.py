"""protocol/framing.py with the C COBS (CPython) against its portable code (MicroPython's).

Same frames, same payloads, same drops and error codes, on streams of
frames, line noise, truncated and corrupted frames.
"""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import framing

pytestmark = pytest.mark.req("SIM-FAST-1")

payloads = st.binary(max_size=framing.MAX_PAYLOAD + 20)
pieces = st.one_of(
    payloads.map(lambda p: framing.encode(p[: framing.MAX_PAYLOAD])),
    payloads.map(lambda p: framing.encode(p[: framing.MAX_PAYLOAD])[:-3] + b"\x00"),
    payloads.map(lambda p: bytes(b ^ 0x20 for b in framing.encode(p[:100])[:-1]) + b"\x00"),
    st.binary(max_size=600),
    st.just(b"\x00\x00"),
    st.just(b"\x05ab\x00"),  # a COBS block that runs past its frame
    st.just(b"\xff" * 500 + b"\x00"),  # longer than the largest frame
)


def portable(fn, *args):
    """fn(*args) with the C COBS out of the way, as on MicroPython."""
    c = framing._c
    framing._c = None
    try:
        return fn(*args)
    finally:
        framing._c = c


def test_the_c_cobs_is_in_use_here():
    assert framing._c is not None  # the `cobs` package is a declared dependency


@settings(max_examples=300, deadline=None)
@given(chunks=st.lists(pieces, max_size=12), step=st.integers(1, 64), max_frame=st.sampled_from([64, 448]))
def test_the_c_decoder_agrees_with_the_portable_one(chunks, step, max_frame):
    stream = b"".join(chunks)

    def feed_all(decoder):
        got = []
        for i in range(0, len(stream), step):
            got += decoder.feed(stream[i : i + step])
        return got, decoder.dropped, decoder.last_error, decoder.last_dropped

    assert feed_all(framing.Decoder(max_frame, keep_dropped=True)) == portable(
        feed_all, framing.Decoder(max_frame, keep_dropped=True)
    )


@settings(deadline=None)
@given(piece=pieces)
def test_one_frame_decodes_alike(piece):
    def decode(frame):
        try:
            return framing.decode(frame)
        except framing.ProtocolError as e:
            return e.code

    assert decode(piece) == portable(decode, piece)


@settings(deadline=None)
@given(payload=payloads.map(lambda p: p[: framing.MAX_PAYLOAD]))
def test_the_c_encoder_writes_the_portable_frames(payload):
    assert framing.encode(payload) == portable(framing.encode, payload)
    assert framing.cobs_encode(payload) == framing._c.encode(payload)
