"""Small persistent records: CBOR with a CRC-32, replaced atomically.

The HAL replaces a blob atomically (old or new after a power cut); the CRC
catches what atomicity cannot, such as a worn or half-erased flash page.
Writing is refused while the output is enabled: on an RP2040 a flash write
stops every interrupt, the e-stop's included.
"""

import binascii

from protocol import codec
from protocol.errors import BUSY, ProtocolError

FAULT_RECORD = "fault"


class Store:
    def __init__(self, hal, safety):
        self._hal = hal
        self._safety = safety
        self.corrupt = 0  # records found damaged since boot

    def load(self, name):
        """The record, or None if absent or damaged (damage is counted)."""
        blob = self._hal.fs_read(name)
        if blob is None:
            return None
        if len(blob) < 5:
            self.corrupt += 1
            return None
        body = blob[:-4]
        if int.from_bytes(blob[-4:], "little") != binascii.crc32(body) & 0xFFFFFFFF:
            self.corrupt += 1
            return None
        try:
            return codec.loads(body)
        except ProtocolError:
            self.corrupt += 1
            return None

    def save(self, name, obj):
        if self._safety.output_on():
            raise ProtocolError(BUSY, "no storage writes while the output is on")
        body = codec.dumps(obj)
        self._hal.fs_write(name, body + (binascii.crc32(body) & 0xFFFFFFFF).to_bytes(4, "little"))

    def remove(self, name):
        if self._safety.output_on():
            raise ProtocolError(BUSY, "no storage writes while the output is on")
        self._hal.fs_remove(name)
