"""Frames on the byte stream: COBS(payload + CRC-32 LE) followed by 0x00.

0x00 never occurs inside a frame, so a receiver finds the next frame after
any amount of line noise, a truncated frame or a REPL banner. The CRC is
`binascii.crc32` (IEEE 802.3), which is C code on the board.

Sizes: the Pico's USB stdin ring holds 512 bytes and the host keeps one
request outstanding, so a whole frame of the largest payload must fit in it:
MAX_PAYLOAD 448 encodes to at most MAX_ENCODED 455 bytes with delimiter.

Where the `cobs` package imports (CPython: the host and the simulator), the
same standard COBS runs in C; MicroPython runs the portable code below.
Stream frames hold a zero every few bytes, so the portable loop costs a
block per zero. Both give the same bytes (tests/test_framing_c.py).
"""

import binascii

from protocol.errors import BAD_COBS, BAD_CRC, FRAME_TOO_LONG, ProtocolError

try:
    from cobs import cobs as _c
except ImportError:  # MicroPython
    _c = None

MAX_PAYLOAD = 448
_CRC_LEN = 4


def encoded_size(payload_len):
    """Worst-case bytes on the wire for a payload, delimiter included."""
    n = payload_len + _CRC_LEN
    return n + n // 254 + 1 + 1


MAX_ENCODED = encoded_size(MAX_PAYLOAD)


def cobs_encode(data):
    """Consistent Overhead Byte Stuffing: the result holds no 0x00.

    The data is cut at its zero bytes by bytes.split (C code on the board)
    and each run copied whole, so the cost per byte stays out of the
    bytecode loop: stream frames hold a zero every few bytes.
    """
    out = bytearray()
    parts = bytes(data).split(b"\x00")
    last = len(parts) - 1
    for k in range(last + 1):
        part = parts[k]
        n = len(part)
        i = 0
        while n - i >= 254:
            out.append(0xFF)
            out.extend(part[i : i + 254])
            i += 254
        if i and i == n and k == last:
            break  # a full block ending the data needs no empty block
        out.append(n - i + 1)
        out.extend(part[i:] if i else part)
    return bytes(out)


def cobs_decode(data):
    """Inverse of cobs_encode; raise ProtocolError on malformed input."""
    out = bytearray(len(data))
    return bytes(out[: _cobs_decode_into(data, len(data), out)])


def _cobs_decode_into(data, n, out):
    """Decode the first n bytes of data into out; return the decoded length."""
    i = 0
    o = 0
    while i < n:
        code = data[i]
        if code == 0:
            raise ProtocolError(BAD_COBS, "zero byte inside a frame")
        i += 1
        k = code - 1
        if i + k > n:
            raise ProtocolError(BAD_COBS, "COBS block runs past the frame")
        out[o : o + k] = data[i : i + k]
        o += k
        i += k
        if code != 0xFF and i < n:
            out[o] = 0
            o += 1
    return o


def encode(payload):
    """One frame for `payload`, ready to write to the port."""
    if len(payload) > MAX_PAYLOAD:
        raise ProtocolError(FRAME_TOO_LONG, "payload of %d bytes exceeds %d" % (len(payload), MAX_PAYLOAD))
    body = bytearray(payload)
    body.extend((binascii.crc32(payload) & 0xFFFFFFFF).to_bytes(4, "little"))
    if _c is not None:
        return _c.encode(body) + b"\x00"
    return cobs_encode(body) + b"\x00"


def decode(frame):
    """The payload of one frame (delimiter optional); raise ProtocolError."""
    n = len(frame)
    if n and frame[n - 1] == 0:
        n -= 1
    if n > MAX_ENCODED - 1:
        raise ProtocolError(FRAME_TOO_LONG, "frame of %d bytes" % n)
    return _check(*_unstuff(frame, n, bytearray(n)))


def _unstuff(src, n, out):
    """(buffer, length) of the COBS-decoded first n bytes of src; out is used when decoding here."""
    if _c is None:
        return out, _cobs_decode_into(src, n, out)
    try:
        body = _c.decode(bytes(src[:n]))
    except _c.DecodeError:
        body = None
    if body is None:
        raise ProtocolError(BAD_COBS, "malformed COBS block")
    return body, len(body)


def _check(out, m):
    if m < _CRC_LEN:
        raise ProtocolError(BAD_CRC, "frame too short for a CRC")
    payload = bytes(out[: m - _CRC_LEN])
    crc = int.from_bytes(out[m - _CRC_LEN : m], "little")
    if crc != binascii.crc32(payload) & 0xFFFFFFFF:
        raise ProtocolError(BAD_CRC, "CRC mismatch")
    return payload


class Decoder:
    """Turns a byte stream into payloads; never raises on line noise.

    Memory is bounded by `max_frame` (largest payload accepted): bytes of an
    over-long frame are discarded up to the next delimiter. `dropped` counts
    frames discarded for any reason (bad COBS, bad CRC, too long); runs of
    0x00 between frames are not frames and are not counted.
    """

    def __init__(self, max_frame=MAX_PAYLOAD, keep_dropped=False):
        self.max_frame = max_frame
        self._keep = keep_dropped  # hosts keep the bytes for a hexdump; the device does not
        self.last_dropped = b""
        self._limit = encoded_size(max_frame) - 1
        self._buf = bytearray(self._limit)
        self._out = bytearray(self._limit)
        self._n = 0
        self._overflow = False
        self.dropped = 0
        self.last_error = 0

    def feed(self, data):
        """Payloads of the frames completed by `data`, oldest first."""
        data = bytes(data)
        frames = []  # type: list[bytes]
        n = len(data)
        i = 0
        while i < n:
            j = data.find(b"\x00", i)
            end = n if j < 0 else j
            if not self._overflow:
                k = end - i
                if self._n + k <= self._limit:
                    self._buf[self._n : self._n + k] = data[i:end]
                    self._n += k
                else:
                    self._overflow = True
            if j < 0:
                break
            if self._overflow:
                self._drop(FRAME_TOO_LONG)
            elif self._n:
                self._finish(frames)
            self._n = 0
            self._overflow = False
            i = j + 1
        return frames

    def _finish(self, frames):
        try:
            payload = _check(*_unstuff(self._buf, self._n, self._out))
        except ProtocolError as e:
            self._drop(e.code)
            return
        if len(payload) > self.max_frame:
            self._drop(FRAME_TOO_LONG)
            return
        frames.append(payload)

    def _drop(self, code):
        self.dropped += 1
        self.last_error = code
        if self._keep:
            self.last_dropped = bytes(self._buf[: self._n])
