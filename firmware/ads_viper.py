"""ADS1292R ring words to calibrated samples, compiled by viper: the same integers as ads1292.convert_plain.

firmware/ads1292.py uses this where the port has native emitters (the RP2040
firmware, the unix port); tests/dual/test_ads1292.py compares the two. A
ring word is LOFF_STAT << 24 | a 24-bit two's-complement code, so the bits
that matter are masked out of every load, on a 32- or 64-bit word alike.
Every product stays under 2**30 (ads1292's calibration limits): no wrap.
"""

import micropython
from micropython import const

_WORD_LOFF = const(0x13000000)  # ads1292._WORD_LOFF: EMG_LOFF << WORD_LOFF_SHIFT
_CODE_MASK = const(0xFFFFFF)
_CODE_SIGN = const(0x800000)
_CODE_WRAP = const(0x1000000)
_SAT_CODE = const(0x7C0000)
_LEAD_OFF = const(1)  # hal.EMG_LEAD_OFF
_SATURATED = const(2)  # hal.EMG_SATURATED


@micropython.viper
def convert(
    ring: ptr32,  # noqa: F821 (viper's types)
    base: int,
    mask: int,
    start: int,
    n: int,
    out: ptr32,  # noqa: F821
    at: int,
    k: int,
    off: int,
    sh: int,
) -> int:
    half = 1
    half = half << (sh - 1)
    flags = 0
    for i in range(n):
        w = int(ring[base + ((start + i) & mask)])
        if w & _WORD_LOFF:
            flags |= _LEAD_OFF
        c = w & _CODE_MASK
        if c & _CODE_SIGN:
            c -= _CODE_WRAP
        if c >= _SAT_CODE or c <= 0 - _SAT_CODE:
            flags |= _SATURATED
        c -= off
        # floor(c * k / 2**18) from 6-bit slices of c, each product < 2**30
        t = ((c & 63) * k) >> 6
        t = (((c >> 6) & 63) * k + t) >> 6
        t = (((c >> 12) & 63) * k + t) >> 6
        t += (c >> 18) * k
        out[at + i] = (t + half) >> sh
    return flags


@micropython.native
def convert_cal(ring, base, mask, start, n, out, at, cal):
    """ads1292.convert(): convert() with cal's calibration. Native code keeps its call's frame on
    the C stack, where a bytecode call this wide puts it on the heap (a search of it every read)."""
    return convert(ring, base, mask, start, n, out, at, cal.k, cal.offset, cal.shift - 18)
