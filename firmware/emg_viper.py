"""The EMG filter kernel compiled by viper: the same integers as emg_dsp.run_plain.

firmware/emg_dsp.py imports this when the port has native emitters (the
RP2040 firmware does; the WebAssembly port and CPython do not). viper ints
are wrapping 32-bit words, so bit-identity with the plain path rests on
emg_dsp's bounds: every intermediate stays within ±2**30, so it neither
wraps here nor becomes a big int there. `>>` on a viper int is arithmetic,
as in Python. Any change here must be made in run_plain too; the dual test
tests/dual/test_emg_chain.py compares the two wherever this module imports.

A viper int is a machine word: 32 bits on the RP2040, 64 on a 64-bit port,
where ptr32 loads are zero-extended (-1 reads as 4294967295). Every load of
a value that can be negative is sign-extended explicitly, (w ^ m) - m with
m = 1 << 31, which is the identity on 32-bit words; stores keep the low 32
bits either way.
"""

import micropython
from micropython import const

_X_MAX = const(4194303)
_D_MAX = const(524287)
_Y_MAX = const(67108736)
_E_MAX = const(131071)


# st and co are laid out as emg_dsp's state (_S_*) and coefficients() arrays
@micropython.viper
def run(st: ptr32, co: ptr32, x: ptr32, start: int, end: int, out: ptr8):  # noqa: F821 (viper's types)
    m = 1
    m = m << 31  # the sign bit of a 32-bit word, on any word size (a folded 1 << 31 would be an object)
    c1 = (int(co[0]) ^ m) - m
    k1 = (int(co[1]) ^ m) - m
    r1 = (int(co[2]) ^ m) - m
    c2 = (int(co[3]) ^ m) - m
    k2 = (int(co[4]) ^ m) - m
    r2 = (int(co[5]) ^ m) - m
    cg = (int(co[6]) ^ m) - m
    kg = (int(co[7]) ^ m) - m
    rg = (int(co[8]) ^ m) - m
    cm = (int(co[9]) ^ m) - m
    km = (int(co[10]) ^ m) - m
    rm = (int(co[11]) ^ m) - m
    cp = (int(co[12]) ^ m) - m
    kp = (int(co[13]) ^ m) - m
    rp = (int(co[14]) ^ m) - m
    cn = (int(co[15]) ^ m) - m
    kn = (int(co[16]) ^ m) - m
    rn = (int(co[17]) ^ m) - m
    x1 = (int(st[0]) ^ m) - m
    x2 = (int(st[1]) ^ m) - m
    y1 = (int(st[2]) ^ m) - m
    dy = (int(st[3]) ^ m) - m
    o1 = (int(st[4]) ^ m) - m
    do = (int(st[5]) ^ m) - m
    h = (int(st[6]) ^ m) - m
    lo = (int(st[7]) ^ m) - m
    clips = (int(st[8]) ^ m) - m
    primed = (int(st[9]) ^ m) - m
    for i in range(start, end):
        v = (int(x[i]) ^ m) - m
        if v > _X_MAX:
            v = _X_MAX
        elif v < 0 - _X_MAX:
            v = 0 - _X_MAX
        if primed == 0:
            x1 = v
            x2 = v
            primed = 1
        d = v - 2 * x1 + x2
        x2 = x1
        x1 = v
        if d > _D_MAX:
            d = _D_MAX
            clips += 1
        elif d < 0 - _D_MAX:
            d = 0 - _D_MAX
            clips += 1
        d = d << 7
        y = (
            y1
            + dy
            + d
            - ((cg * (d >> 15) + ((cg * (d & 0x7FFF)) >> 15) + rg) >> kg)
            - ((c1 * (y1 >> 15) + ((c1 * (y1 & 0x7FFF)) >> 15) + r1) >> k1)
            - ((c2 * (dy >> 15) + ((c2 * (dy & 0x7FFF)) >> 15) + r2) >> k2)
        )
        if y > _Y_MAX:
            y = _Y_MAX
            clips += 1
        elif y < 0 - _Y_MAX:
            y = 0 - _Y_MAX
            clips += 1
        s = (y + 64) >> 7
        j = 4 * i
        out[j] = s
        out[j + 1] = s >> 8
        out[j + 2] = s >> 16
        out[j + 3] = s >> 24
        ndy = y - y1
        d = ndy - dy
        e = y1 - o1
        o = (
            o1
            + do
            + d
            - ((cm * (d >> 15) + ((cm * (d & 0x7FFF)) >> 15) + rm) >> km)
            + ((cp * (e >> 15) + ((cp * (e & 0x7FFF)) >> 15) + rp) >> kp)
            - ((cn * (do >> 15) + ((cn * (do & 0x7FFF)) >> 15) + rn) >> kn)
        )
        if o > _Y_MAX:
            o = _Y_MAX
            clips += 1
        elif o < 0 - _Y_MAX:
            o = 0 - _Y_MAX
            clips += 1
        y1 = y
        dy = ndy
        do = o - o1
        o1 = o
        v = (o + 64) >> 7
        if v > _E_MAX:
            v = _E_MAX
        elif v < 0 - _E_MAX:
            v = 0 - _E_MAX
        b = v & 1023
        h += (v >> 10) * (v + b)
        lo += b * b
    st[0] = x1
    st[1] = x2
    st[2] = y1
    st[3] = dy
    st[4] = o1
    st[5] = do
    st[6] = h
    st[7] = lo
    st[8] = clips
    st[9] = primed
