"""An EMG stream frame in viper: its CBOR heads, then the samples, CRC-32 and COBS in place.

firmware/streamframe.py uses this where the port has native emitters and
otherwise builds the same bytes in plain code; tests/dual/test_streamframe.py
compares both with the protocol's own framing. Two calls per frame (the
heads, the seal): on the RP2040 every bytecode call costs tens of µs, so
the first writes every CBOR head, not a helper per field. On the RP2040
seal() is replaced by firmware/frame_thumb.py (the same in Thumb assembly,
several times faster than viper's code for these byte loops). Nothing
allocates: binascii.crc32 would return a 32-bit integer, a heap object on a
32-bit port.

viper ints are machine words (32 or 64 bits) and ptr32 loads sign-extend on
the RP2040 but zero-extend on a 64-bit port: every field is read as two
16-bit halves, the CRC is kept to its low 32 bits by masking each shift,
and only bytes are stored.
"""

from array import array

import micropython
from micropython import const

# the fields in EmgFrames.head (streamframe.py names them)
_SEQ = const(0)
_ENVELOPE = const(1)
_STATE = const(2)
_FLAGS = const(3)
_STIM = const(4)  # bit 31 set: absent
_TARGET = const(5)  # 0: absent
_FIRST_LO = const(6)  # first_index, low and high 32 bits
_FIRST_HI = const(7)
_SAMPLES_LEN = const(8)
_AT = const(9)  # written by heads(): where the samples go
_END = const(10)  # written by heads(): where the payload ends
_LEAST = const(11)  # the shortest frame's length
_STREAM = const(4)  # protocol.messages.STREAM
_EMG = const(96)  # protocol.messages.EMG


def _table():
    t = array("I", [0] * 256)
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0xEDB88320 if c & 1 else c >> 1
        t[n] = c
    return t


CRC_TABLE = _table()


@micropython.viper
def heads(buf: ptr8, h: ptr32):  # noqa: F821 (viper's types)
    """Every CBOR head of the payload from h into buf, leaving room for the samples: where they
    go in h[_AT], where the payload ends in h[_END]; h[_SEQ] advances."""
    buf[1] = 0x84
    buf[2] = _STREAM
    o = 3
    j = 0
    has_stim = (h[_STIM] >> 31) & 1 == 0
    has_target = h[_TARGET] != 0
    # fields in CBOR order; each a key byte (< 0: none), a major type and a 32-bit value
    while j < 8:
        key = j - 1
        major = 0
        if j == 0:
            w = h[_SEQ]
        elif j == 1:
            w = h[_FIRST_LO]
            hi = h[_FIRST_HI]
            if hi != 0:  # first_index of 2**32 or more: the 64-bit head
                buf[o] = 0x1B
                buf[o + 1] = (hi >> 24) & 0xFF
                buf[o + 2] = (hi >> 16) & 0xFF
                buf[o + 3] = (hi >> 8) & 0xFF
                buf[o + 4] = hi & 0xFF
                buf[o + 5] = (w >> 24) & 0xFF
                buf[o + 6] = (w >> 16) & 0xFF
                buf[o + 7] = (w >> 8) & 0xFF
                buf[o + 8] = w & 0xFF
                o += 9
                j += 1
                continue
        elif j == 2:
            major = 0x40
            w = h[_SAMPLES_LEN]
        elif j == 3:
            w = h[_ENVELOPE]
        elif j == 4:
            w = h[_STATE]
        elif j == 5:
            w = h[_FLAGS]
        elif j == 6:
            if not has_stim:
                j += 1
                continue
            w = h[_STIM]
        else:
            if not has_target:
                j += 1
                continue
            w = h[_TARGET]
        if key > 0:
            buf[o] = key
            o += 1
        hw = (w >> 16) & 0xFFFF
        lw = w & 0xFFFF
        if hw != 0:
            buf[o] = major | 26
            buf[o + 1] = hw >> 8
            buf[o + 2] = hw & 0xFF
            buf[o + 3] = lw >> 8
            buf[o + 4] = lw & 0xFF
            o += 5
        elif lw >= 0x100:
            buf[o] = major | 25
            buf[o + 1] = lw >> 8
            buf[o + 2] = lw & 0xFF
            o += 3
        elif lw >= 24:
            buf[o] = major | 24
            buf[o + 1] = lw
            o += 2
        else:
            buf[o] = major | lw
            o += 1
        if j == 0:  # after seq: the message type, then the map's head and its first key
            buf[o] = 0x18
            buf[o + 1] = _EMG
            buf[o + 2] = 0xA5 + int(has_stim) + int(has_target)
            buf[o + 3] = 0
            o += 4
        elif j == 2:  # after the samples' byte string head: their place
            h[_AT] = o
            o += h[_SAMPLES_LEN]
        j += 1
    h[_END] = o
    h[_SEQ] = (h[_SEQ] + 1) & 0xFFFF


@micropython.viper
def seal(buf: ptr8, h: ptr32, samples: ptr8, table: ptr32) -> int:  # noqa: F821
    """After heads(): the samples copied to h[_AT], the CRC-32 (IEEE) of buf[1:end] stored
    little-endian after it, COBS over buf[1:end + 4] in place with its code in buf[0], and the
    delimiter at buf[end + 4]; returns the frame's length less the shortest frame's."""
    at = h[_AT]
    for i in range(h[_SAMPLES_LEN]):
        buf[at + i] = samples[i]
    end = h[_END]
    c = -1
    for i in range(1, end):
        c = table[(c ^ buf[i]) & 0xFF] ^ ((c >> 8) & 0xFFFFFF)
    c = ~c
    buf[end] = c & 0xFF
    buf[end + 1] = (c >> 8) & 0xFF
    buf[end + 2] = (c >> 16) & 0xFF
    buf[end + 3] = (c >> 24) & 0xFF
    end += 4
    buf[end] = 0
    # each zero becomes the distance to the next (the frame is under 254 bytes)
    last = 0
    for i in range(1, end):
        if buf[i] == 0:
            buf[last] = i - last
            last = i
    buf[last] = end - last
    return end + 1 - h[_LEAST]
