"""CRC-32 and in-place COBS of an EMG stream frame, compiled by viper.

firmware/streamframe.py imports this where the port has native emitters and
otherwise does the same with binascii.crc32 and bytearray.find; the dual test
tests/dual/test_streamframe.py compares both with the protocol's own framing.
Here nothing allocates: binascii.crc32 returns a 32-bit integer, which is a
heap object on a 32-bit port.

viper ints are machine words (32 or 64 bits) and ptr32 loads sign-extend on
the RP2040 but zero-extend on a 64-bit port: the CRC is kept to its low 32
bits by masking each shift, and only its bytes are stored.
"""

from array import array

import micropython


def _table():
    t = array("I", [0] * 256)
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0xEDB88320 if c & 1 else c >> 1
        t[n] = c
    return t


_CRC_TABLE = _table()


@micropython.viper
def finish(buf: ptr8, end: int):  # noqa: F821 (viper's types)
    # CRC-32 (IEEE) of buf[1:end], stored little-endian at buf[end:end + 4]
    t = ptr32(_CRC_TABLE)  # noqa: F821
    c = -1
    for i in range(1, end):
        c = t[(c ^ buf[i]) & 0xFF] ^ ((c >> 8) & 0xFFFFFF)
    c = ~c
    buf[end] = c & 0xFF
    buf[end + 1] = (c >> 8) & 0xFF
    buf[end + 2] = (c >> 16) & 0xFF
    buf[end + 3] = (c >> 24) & 0xFF
    end += 4
    buf[end] = 0
    # COBS in place: each zero becomes the distance to the next (the frame is under 254 bytes)
    last = 0
    for i in range(1, end):
        if buf[i] == 0:
            buf[last] = i - last
            last = i
    buf[last] = end - last
