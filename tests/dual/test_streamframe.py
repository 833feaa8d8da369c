"""EMG stream frames from the preallocated encoder (firmware/streamframe.py), on every runtime.

The host decodes whatever the protocol's own path produces, so the encoder
must produce exactly those bytes, for every size of every integer field,
with and without stim_ua and target_dv, and for samples with and without zero bytes. On a
MicroPython with native emitters (viper: the RP2040, the unix port) sending
a frame must not allocate.
"""

from dualtest import MICROPYTHON, Lcg, req, skip
from fakehal import booted, greeted, request, run
from firmware import streamframe
from firmware.streamframe import EmgFrames
from protocol import codec, framing
from protocol import messages as m

SEQS = (0, 23, 24, 255, 256, 65535)
INDICES = (0, 23, 24, 255, 256, 65535, 65536, 0xFFFFFFFF, 0x100000000, 0xFFFFFFFFFFFFFFFF)
U32S = (0, 24, 256, 65536, 0x7FFFFFFF)  # the device's envelope and stim_ua stay far below 2**31


def reference(seq, first_index, samples, envelope_dv, state, flags, stim_ua, target_dv):
    fields = {"first_index": first_index, "samples": bytes(samples), "envelope_dv": envelope_dv}
    fields["state"] = state
    fields["flags"] = flags
    if stim_ua >= 0:
        fields["stim_ua"] = stim_ua
    if target_dv:
        fields["target_dv"] = target_dv
    return framing.encode(codec.dumps(m.build(m.STREAM, seq, m.EMG, **fields)))


def samples_of(rnd, zeros_every):
    b = bytearray(200)
    for i in range(200):
        b[i] = 0 if zeros_every and i % zeros_every == 0 else 1 + rnd.below(255)
    return b


@req("LINK-MSG-6", "DEV-PERF-1")
def test_stream_frames_are_byte_identical_to_the_protocols_encoding():
    f = EmgFrames(200)
    rnd = Lcg(5)
    n = 0
    for seq in SEQS:
        for fi in INDICES:
            for zeros in (0, 1, 3, 7):
                s = samples_of(rnd, zeros)
                stim = U32S[n % len(U32S)] if n % 2 else -1
                env = U32S[(n // 2) % len(U32S)]
                flags = (0, 23, 24, 255, 0xFFFF)[n % 5]
                state = n % 7
                target = U32S[(n // 3) % len(U32S)] if n % 3 else 0
                h = f.head
                h[streamframe.SEQ] = seq
                h[streamframe.ENVELOPE] = env
                h[streamframe.STATE] = state
                h[streamframe.FLAGS] = flags
                h[streamframe.STIM] = stim
                h[streamframe.TARGET] = target
                got = bytes(f.encode(fi, s))
                want = reference(seq, fi, s, env, state, flags, stim, target)
                assert got == want, (seq, fi, zeros, stim, target)
                n += 1
    assert n == len(SEQS) * len(INDICES) * 4


@req("LINK-MSG-6")
def test_the_controllers_stream_decodes_as_before():
    hal, ctrl, host = greeted()
    request(hal, ctrl, host, m.STREAM_CONTROL, enable=True)
    run(hal, ctrl, 200)
    frames = host.of_type(m.STREAM, m.EMG)
    assert len(frames) >= 7
    seqs = [f[1] for f in frames]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    body = frames[-1][3]
    assert len(body[1]) == 200 and 5 not in body  # no stim_ua while no stimulation runs


@req("DEV-PERF-1")
def test_sending_a_frame_allocates_nothing_where_viper_runs():
    # heap_lock: not even an allocation freed at once (a call frame MicroPython puts on the
    # heap when a call's state exceeds 11 words) may happen while a block is streamed
    if not MICROPYTHON:
        skip("micropython.heap_lock() is MicroPython's; CPython allocates for every int")
    if not streamframe.FAST:
        skip("no native emitters here: the plain path allocates the CRC's 32-bit integer")
    import micropython

    hal, ctrl = booted()
    ctrl.link.greeted = True
    ctrl.streaming = True
    sent = [0]

    def write(data):
        sent[0] += 1
        return True

    hal.link_write = write
    emit = ctrl._emit
    s = bytearray(200)
    emit(0, s, 0)
    micropython.heap_lock()
    try:
        for i in range(200):
            emit(1000 + 50 * i, s, i & 7)
    finally:
        micropython.heap_unlock()
    assert sent[0] == 201
