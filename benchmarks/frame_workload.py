"""The typical stream frame the link benchmarks work on.

A frame holds 50 EMG samples (25 ms at 2 kHz) packed as int32, the envelope
and the device state.
"""

import struct

from protocol import messages


def stream_frame(seq=1):
    samples = bytearray(200)
    for i in range(50):
        struct.pack_into("<i", samples, 4 * i, ((i * 7919) % 2001 - 1000) * 37)
    return messages.build(
        messages.STREAM,
        seq,
        messages.EMG,
        first_index=123456,
        samples=bytes(samples),
        envelope_dv=61,
        state=2,
        flags=0,
    )
