"""Mutation fuzzing on both runtimes: whatever arrives, only ProtocolError.

A deterministic generator mutates the golden vectors and valid frames (bit
flips, truncation, insertion, duplication of spans), so both runtimes see the
same thousands of hostile inputs. The CPython leg adds hypothesis search in
tests/test_fuzz.py.
"""

from dualtest import Lcg, req, unhex, vectors
from protocol import codec, framing, messages
from protocol.errors import ProtocolError

ROUNDS = 1500


def _mutate(rnd, data):
    # bytes only: MicroPython's bytearray has no slice deletion or insertion
    b = bytes(data)
    for _ in range(1 + rnd.below(3)):
        op = rnd.below(5)
        i = rnd.below(len(b) + 1)
        if op == 0 and i < len(b):
            b = b[:i] + bytes([b[i] ^ (1 << rnd.below(8))]) + b[i + 1 :]
        elif op == 1:
            b = b[:i]
        elif op == 2:
            b = b[:i] + bytes([rnd.below(256)]) + b[i:]
        elif op == 3:
            b = b[:i] + b[i : i + 1 + rnd.below(8)] + b[i:]
        else:
            b = b + bytes([rnd.below(256)])
    return b


def _seeds():
    v = vectors("codec.json")
    out = [unhex(h) for h, _ in v["valid"]] + [unhex(h) for h, _ in v["invalid"]]
    out.append(codec.dumps(messages.build(messages.REQUEST, 1, messages.HELLO, min_version=1, max_version=1)))
    out.append(b"\x9b\xff\xff\xff\xff\xff\xff\xff\xff")
    out.append(b"\x81" * 300 + b"\x00")
    return out


@req("LINK-FUZZ-1", "LINK-CBOR-5")
def test_codec_and_catalogue_raise_only_protocol_error():
    rnd = Lcg(2026)
    seeds = _seeds()
    outcomes = 0
    for _ in range(ROUNDS):
        data = _mutate(rnd, seeds[rnd.below(len(seeds))])
        try:
            obj = codec.loads(data)
            # whatever decodes must re-encode to the very same bytes
            assert codec.dumps(obj) == data
            messages.parse(obj)
            outcomes += 1
        except ProtocolError:
            outcomes += 1
    assert outcomes == ROUNDS


@req("LINK-FUZZ-1", "LINK-FRAME-2")
def test_frame_decoder_never_raises_and_keeps_good_frames():
    rnd = Lcg(4711)
    d = framing.Decoder()
    good = framing.encode(b"\xa1\x01\x02")
    delivered = 0
    sent_clean = 0
    for _ in range(ROUNDS // 3):
        noise = _mutate(rnd, good) if rnd.below(2) else bytes([rnd.below(256) for _ in range(rnd.below(40))])
        for p in d.feed(noise):
            assert isinstance(p, bytes)
        d.feed(b"\x00")  # the writer's idle delimiter
        got = d.feed(good)
        sent_clean += 1
        delivered += len(got)
        assert got == [b"\xa1\x01\x02"]
    assert delivered == sent_clean
