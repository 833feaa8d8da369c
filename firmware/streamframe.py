"""EMG stream frames written without allocating: one buffer, a fixed layout, COBS in place.

Byte for byte what framing.encode(codec.dumps(messages.build(STREAM, seq,
EMG, ...))) produces (tests/dual/test_streamframe.py checks it), so the host
cannot tell; but where that path builds a dict, a bytes copy of the samples,
a CBOR bytearray and a COBS copy (5 KB and 6 ms per frame on an RP2040),
this one fills a preallocated buffer:

    [COBS code][CBOR payload][CRC-32 LE][0x00]

The payload is [4, seq, 96, {0: first_index, 1: h'samples', 2: envelope_dv,
3: state, 4: flags, (5: stim_ua), (6: target_dv)}] in the codec's deterministic form
(shortest integers, keys in order). A frame is under 254 bytes, so COBS
never needs an extra block byte: each zero becomes the distance to the next
one, in place, and the leading spare byte takes the first distance.

Where the port has native emitters a frame is two native calls: one writes
every CBOR head around the samples' place (firmware/frame_viper.py), one
copies the samples in and adds CRC and COBS (on the RP2040 in Thumb
assembly, firmware/frame_thumb.py; elsewhere viper): on the RP2040 each
bytecode call and attribute lookup costs microseconds, and a call whose
state exceeds 11 words puts its frame on the heap. Elsewhere the plain code
below builds it (finish_plain for CRC and COBS), allocating a view and the
CRC's integer (32 bits do not fit a small int on a 32-bit port).

Each frame takes its seq from head and advances it (mod 2**16).
"""

import binascii
import struct
from array import array

from protocol import messages as m

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


_HEAD = 1 + 1 + 3 + 2 + 1  # array(4), kind, seq (at most 3 bytes), type 96, map header
_CRC_LEN = 4


def _uint(buf, o, major, v):
    """CBOR head of major type `major` (shifted) for v >= 0 at buf[o]; the offset after it."""
    if v < 24:
        buf[o] = major | v
        return o + 1
    if v < 0x100:
        buf[o] = major | 24
        buf[o + 1] = v
        return o + 2
    if v < 0x10000:
        buf[o] = major | 25
        buf[o + 1] = v >> 8
        buf[o + 2] = v & 0xFF
        return o + 3
    if v < 0x100000000:
        buf[o] = major | 26
        struct.pack_into(">I", buf, o + 1, v)
        return o + 5
    buf[o] = major | 27
    struct.pack_into(">Q", buf, o + 1, v)
    return o + 9


# The frame's other fields, in EmgFrames.head, set by the caller before encode():
# a call with many arguments would put its frame on the heap on MicroPython
# (more than 11 words of arguments, locals and stack).
SEQ = const(0)  # advanced by every frame encoded
ENVELOPE = const(1)
STATE = const(2)
FLAGS = const(3)
STIM = const(4)  # stim_ua; < 0: absent
TARGET = const(5)  # target_dv; 0: absent
# the native encoder's own words (frame_viper.py and frame_thumb.py read them by these numbers)
_FIRST_LO = const(6)  # first_index, low and high 32 bits
_FIRST_HI = const(7)
_SAMPLES_LEN = const(8)
_HEAD_WORDS = const(12)  # then where the samples go, where the payload ends, the shortest frame


class EmgFrames:
    """Encodes EMG stream frames of `samples_len` bytes of samples into one reused buffer."""

    def __init__(self, samples_len):
        if not 24 <= samples_len < 256:
            raise ValueError("EMG frames carry 24..255 bytes of samples")
        self.samples_len = samples_len
        # the longest payload and CRC: first_index U64, envelope, stim_ua and target U32,
        # flags U16, state < 24
        most = _HEAD + (1 + 9) + (1 + 2 + samples_len) + (1 + 5) + (1 + 1) + (1 + 3) + 2 * (1 + 5) + _CRC_LEN
        if most > 253:
            raise ValueError("an EMG frame must stay under 254 bytes for COBS in place")
        self.buf = bytearray(most + 2)  # the code byte in front, the delimiter at the end
        self.head = array("i", [0] * _HEAD_WORDS)
        self.head[_SAMPLES_LEN] = samples_len
        whole = memoryview(self.buf)
        # one view per frame length, made once: a slice in the loop would allocate
        self._least = _HEAD - 2 + 4 * 2 + 3 + samples_len + _CRC_LEN + 2
        self.head[_HEAD_WORDS - 1] = self._least
        self._frames = [whole[:n] for n in range(self._least, len(self.buf) + 1)]

    def encode(self, first_index, samples):
        """The frame of first_index, samples and the fields in head (a view into the buffer, valid
        until the next call). Kept to 11 words of state: no frame on MicroPython's heap."""
        if not FAST:
            return self._plain(first_index, samples)
        h = self.head
        if first_index > 0x3FFFFFFF:  # not a small int: only after days of streaming
            h[_FIRST_HI] = first_index >> 32
            first_index &= 0xFFFFFFFF
        else:
            h[_FIRST_HI] = 0
        h[_FIRST_LO] = first_index
        buf = self.buf
        _heads(buf, h)
        return self._frames[_seal(buf, h, samples, _CRC_TABLE)]

    def _plain(self, first_index, samples):
        h = self.head
        buf = self.buf
        buf[1] = 0x84
        buf[2] = m.STREAM
        o = _uint(buf, 3, 0, h[SEQ])
        h[SEQ] = (h[SEQ] + 1) & 0xFFFF
        buf[o] = 0x18
        buf[o + 1] = m.EMG
        buf[o + 2] = 0xA5 if h[STIM] < 0 else 0xA6
        if h[TARGET] > 0:
            buf[o + 2] += 1
        buf[o + 3] = 0
        o = _uint(buf, o + 4, 0, first_index)
        buf[o] = 1
        o = _uint(buf, o + 1, 0x40, self.samples_len)
        buf[o : o + self.samples_len] = samples
        o += self.samples_len
        buf[o] = 2
        o = _uint(buf, o + 1, 0, h[ENVELOPE])
        buf[o] = 3
        o = _uint(buf, o + 1, 0, h[STATE])
        buf[o] = 4
        o = _uint(buf, o + 1, 0, h[FLAGS])
        if h[STIM] >= 0:
            buf[o] = 5
            o = _uint(buf, o + 1, 0, h[STIM])
        if h[TARGET] > 0:
            buf[o] = 6
            o = _uint(buf, o + 1, 0, h[TARGET])
        finish_plain(buf, o)
        return self._frames[o + _CRC_LEN + 1 - self._least]


def finish_plain(buf, end):
    """CRC-32 of buf[1:end] after it, then COBS over buf[1:end + 4] in place, and the delimiter."""
    struct.pack_into("<I", buf, end, binascii.crc32(memoryview(buf)[1:end]) & 0xFFFFFFFF)
    end += _CRC_LEN
    buf[end] = 0
    last = 0
    i = buf.find(b"\x00", 1, end)
    while i >= 0:
        buf[last] = i - last
        last = i
        i = buf.find(b"\x00", i + 1, end)
    buf[last] = end - last


try:
    from firmware.frame_viper import CRC_TABLE as _CRC_TABLE
    from firmware.frame_viper import heads as _heads
    from firmware.frame_viper import seal as _seal

    FAST = True
except Exception:  # noqa: BLE001 - CPython has no micropython module; ports without native emitters refuse viper
    FAST = False
if FAST:
    try:
        from firmware.frame_thumb import seal as _seal
    except Exception:  # noqa: BLE001 - only a Thumb port (the RP2040) has the inline assembler
        pass
