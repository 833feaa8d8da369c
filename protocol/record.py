"""Persistent records: deterministic CBOR followed by its CRC-32 (LE).

Shared so the host writes provisioning records (trusted keys, device policy)
byte-identical to what the device writes and reads.
"""

import binascii

from protocol import codec
from protocol.errors import BAD_CRC, ProtocolError


def pack(obj):
    """The record as one bytearray: a device's fragmented heap must find one free run for it, not three."""
    out = bytearray()
    codec.dump_into(out, obj)
    out.extend((binascii.crc32(out) & 0xFFFFFFFF).to_bytes(4, "little"))
    return out


def unpack(blob):
    """The record's value; ProtocolError if damaged."""
    if len(blob) < 5:
        raise ProtocolError(BAD_CRC, "record too short")
    body = blob[:-4]
    if int.from_bytes(blob[-4:], "little") != binascii.crc32(body) & 0xFFFFFFFF:
        raise ProtocolError(BAD_CRC, "record CRC mismatch")
    return codec.loads(body)
