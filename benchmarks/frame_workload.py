"""The typical stream frame, timed the same way on CPython and MicroPython.

A frame holds 50 EMG samples (25 ms at 2 kHz) packed as int32, the envelope
and the device state. One "frame" of work is encode + decode.
"""

import struct
import sys

from protocol import codec, framing, messages

MICROPYTHON = sys.implementation.name == "micropython"


def stream_frame(seq=1):
    samples = bytearray(200)
    for i in range(50):
        struct.pack_into("<i", samples, 4 * i, ((i * 7919) % 2001 - 1000) * 37)
    return messages.build(
        messages.STREAM, seq, messages.EMG, first_index=123456, samples=bytes(samples), envelope_dv=61, state=2, flags=0
    )


def codec_round(msg):
    return codec.loads(codec.dumps(msg))


def link_round(msg, decoder):
    # everything a frame goes through: catalogue check, CBOR, COBS+CRC, back
    out = decoder.feed(framing.encode(codec.dumps(msg)))
    return messages.parse(codec.loads(out[0]))


def _clock():
    if MICROPYTHON:
        import time

        return time.ticks_ms, time.ticks_diff, 1000
    import time

    return (lambda: time.perf_counter_ns() // 1000), (lambda a, b: a - b), 1000000


def rate(fn, arg, seconds=1.0):
    """Calls per second of fn(*arg) over about `seconds` of wall time."""
    now, diff, per_s = _clock()
    n = 0
    t0 = now()
    budget = int(seconds * per_s)
    while True:
        for _ in range(20):
            fn(*arg)
        n += 20
        dt = diff(now(), t0)
        if dt >= budget:
            return n * per_s / dt


def run(seconds=1.0):
    msg = stream_frame()
    return {
        "codec": rate(codec_round, (msg,), seconds),
        "link": rate(link_round, (msg, framing.Decoder()), seconds),
        "payload_bytes": len(codec.dumps(msg)),
        "frame_bytes": len(framing.encode(codec.dumps(msg))),
    }
