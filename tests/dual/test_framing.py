"""protocol.framing on both runtimes."""

import binascii

from dualtest import Lcg, raises, req, unhex
from protocol import errors, framing

# COBS vectors from Cheshire & Baker, as listed on the COBS reference page
COBS = [
    ("00", "0101"),
    ("0000", "010101"),
    ("001100", "01021101"),
    ("11220033", "0311220233"),
    ("11223344", "0511223344"),
    ("11000000", "0211010101"),
]


def _seq(a, b):
    return bytes(range(a, b))


@req("LINK-FRAME-1")
def test_cobs_reference_vectors():
    for raw, enc in COBS:
        assert framing.cobs_encode(unhex(raw)).hex() == enc
        assert framing.cobs_decode(unhex(enc)) == unhex(raw)
    long_cases = [
        (_seq(1, 255), b"\xff" + _seq(1, 255)),
        (b"\x00" + _seq(1, 255), b"\x01\xff" + _seq(1, 255)),
        (_seq(1, 256), b"\xff" + _seq(1, 255) + b"\x02\xff"),
        (_seq(2, 256) + b"\x00", b"\xff" + _seq(2, 256) + b"\x01\x01"),
        (_seq(3, 256) + b"\x00\x01", b"\xfe" + _seq(3, 256) + b"\x02\x01"),
    ]
    for raw, enc in long_cases:
        assert framing.cobs_encode(raw) == enc
        assert framing.cobs_decode(enc) == raw


@req("LINK-CRC-1")
def test_crc_is_ieee_crc32():
    assert binascii.crc32(b"123456789") & 0xFFFFFFFF == 0xCBF43926


@req("LINK-FRAME-1", "LINK-CRC-1", "LINK-RT-1")
def test_frame_layout_golden():
    # COBS("abc" + crc32("abc") LE) + 00; crc32("abc") = 0x352441c2
    assert framing.encode(b"abc").hex() == "08616263c241243500"
    # crc32("") = 0: four zero bytes, five COBS blocks
    assert framing.encode(b"").hex() == "010101010100"
    assert framing.decode(framing.encode(b"abc")) == b"abc"


@req("LINK-FRAME-1")
def test_round_trip_every_length_up_to_the_limit():
    rnd = Lcg(7)
    for n in range(0, framing.MAX_PAYLOAD + 1, 7):
        p = bytes(rnd.below(4) * 85 if rnd.below(3) else 0 for _ in range(n))
        f = framing.encode(p)
        assert f[-1] == 0 and 0 not in f[:-1]
        assert len(f) <= framing.encoded_size(n)
        assert framing.decode(f) == p


@req("LINK-FRAME-3")
def test_largest_frame_fits_the_usb_stdin_ring():
    assert framing.MAX_ENCODED <= 512
    assert len(framing.encode(bytes(framing.MAX_PAYLOAD))) <= framing.MAX_ENCODED
    assert len(framing.encode(b"\x01" * framing.MAX_PAYLOAD)) <= framing.MAX_ENCODED
    raises(errors.FRAME_TOO_LONG, framing.encode, bytes(framing.MAX_PAYLOAD + 1))


@req("LINK-CRC-1")
def test_every_single_bit_flip_is_caught():
    f = framing.encode(b"\x84\x00\x01\x02\xa0")
    for i in range(len(f) - 1):
        for bit in range(8):
            bad = bytearray(f)
            bad[i] ^= 1 << bit
            d = framing.Decoder()
            assert d.feed(bytes(bad)) == [], (i, bit)
            assert d.dropped >= 1


@req("LINK-FRAME-2")
def test_decoder_resynchronises_after_noise_banner_and_truncation():
    d = framing.Decoder()
    a, b, c = framing.encode(b"one"), framing.encode(b"two"), framing.encode(b"three")
    stream = (
        b"\x00MicroPython v1.28.0 on 2026-04-06; Raspberry Pi Pico with RP2040\r\n>>> \x00"
        + a
        + b[:4]  # truncated by a reset
        + b"\x00"
        + b
        + b"\x00\x00\x00"
        + bytes(range(1, 256)) * 3  # a long run with no delimiter
        + b"\x00"
        + c
    )
    got = []
    for i in range(0, len(stream), 5):
        got.extend(d.feed(stream[i : i + 5]))
    assert got == [b"one", b"two", b"three"]
    assert d.dropped == 3


@req("LINK-FRAME-2", "LINK-FRAME-3")
def test_decoder_bounds_memory_with_max_frame():
    d = framing.Decoder(max_frame=8)
    assert d.feed(framing.encode(b"x" * 9)) == []
    assert d.dropped == 1
    assert d.feed(framing.encode(b"x" * 8)) == [b"x" * 8]
    d.feed(b"\x01" * 100000)
    assert d.feed(b"\x00" + framing.encode(b"ok")) == [b"ok"]
    assert d.dropped == 2
    assert d.last_error == errors.FRAME_TOO_LONG


@req("LINK-FRAME-1")
def test_decode_errors():
    raises(errors.BAD_COBS, framing.decode, b"\x05ab\x00")
    raises(errors.BAD_COBS, framing.decode, b"\x03a\x00b\x00")
    raises(errors.BAD_CRC, framing.decode, b"\x02a\x00")
    raises(errors.BAD_COBS, framing.decode, framing.encode(b"abc")[:-2] + b"\x00")
    raises(errors.BAD_CRC, framing.decode, b"\x08abd" + framing.encode(b"abc")[4:])
    raises(errors.FRAME_TOO_LONG, framing.decode, b"\x01" * (framing.MAX_ENCODED + 1))
