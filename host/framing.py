"""protocol/framing.py's frames, with COBS in C for the host.

The device's framing is portable Python (it runs on MicroPython); on the
host, stream frames are full of zero bytes and Python's COBS loop costs a
block per zero. The `cobs` package does the same standard COBS in C. The
wire format, the limits, the counters and the error codes stay those of
protocol/framing.py (tests/host/test_host_framing.py feeds both decoders the
same streams and expects the same payloads and drops).
"""

import binascii

from cobs import cobs

from protocol.errors import BAD_COBS, BAD_CRC, FRAME_TOO_LONG, ProtocolError
from protocol.framing import MAX_ENCODED, MAX_PAYLOAD
from protocol.framing import Decoder as _PortableDecoder

__all__ = ["MAX_ENCODED", "MAX_PAYLOAD", "Decoder", "encode"]

_CRC_LEN = 4


def encode(payload):
    """One frame for `payload`, ready to write to the port."""
    if len(payload) > MAX_PAYLOAD:
        raise ProtocolError(FRAME_TOO_LONG, "payload of %d bytes exceeds %d" % (len(payload), MAX_PAYLOAD))
    crc = binascii.crc32(payload).to_bytes(_CRC_LEN, "little")
    return cobs.encode(bytes(payload) + crc) + b"\x00"


class Decoder(_PortableDecoder):
    """protocol.framing.Decoder, decoding each complete frame in C."""

    def _finish(self, frames):
        try:
            body = cobs.decode(self._buf[: self._n])
        except cobs.DecodeError:
            self._drop(BAD_COBS)
            return
        m = len(body) - _CRC_LEN
        if m < 0:
            self._drop(BAD_CRC)
            return
        payload = body[:m]
        if int.from_bytes(body[m:], "little") != binascii.crc32(payload):
            self._drop(BAD_CRC)
            return
        if m > self.max_frame:
            self._drop(FRAME_TOO_LONG)
            return
        frames.append(payload)
