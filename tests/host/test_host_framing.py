"""host/framing.py (COBS in C) against protocol/framing.py: same frames, same payloads, same drops."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from host import framing as fast
from protocol import framing as portable

payloads = st.binary(max_size=portable.MAX_PAYLOAD + 20)
# frames, line noise, truncated and corrupted frames, runs of delimiters
pieces = st.one_of(
    payloads.map(lambda p: portable.encode(p[: portable.MAX_PAYLOAD])),
    payloads.map(lambda p: portable.encode(p[: portable.MAX_PAYLOAD])[:-3] + b"\x00"),
    payloads.map(lambda p: bytes(b ^ 0x20 for b in portable.encode(p[:100])[:-1]) + b"\x00"),
    st.binary(max_size=600),
    st.just(b"\x00\x00"),
    st.just(b"\x05ab\x00"),  # a COBS block that runs past its frame
    st.just(b"\xff" * 500 + b"\x00"),  # longer than the largest frame
)


@pytest.mark.req("SIM-FAST-1")
@settings(max_examples=300, deadline=None)
@given(st.lists(pieces, max_size=12), st.integers(1, 64), st.sampled_from([64, portable.MAX_PAYLOAD]))
def test_the_c_decoder_agrees_with_the_portable_one(chunks, step, max_frame):
    stream = b"".join(chunks)
    a = portable.Decoder(max_frame, keep_dropped=True)
    b = fast.Decoder(max_frame, keep_dropped=True)
    got_a = []
    got_b = []
    for i in range(0, len(stream), step):
        got_a += a.feed(stream[i : i + step])
        got_b += b.feed(stream[i : i + step])
    assert got_b == got_a
    assert (b.dropped, b.last_error, b.last_dropped) == (a.dropped, a.last_error, a.last_dropped)


@pytest.mark.req("SIM-FAST-1")
@given(payloads.map(lambda p: p[: portable.MAX_PAYLOAD]))
def test_the_c_encoder_writes_the_portable_frames(payload):
    assert fast.encode(payload) == portable.encode(payload)
