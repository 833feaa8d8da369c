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


# st and co are laid out as emg_dsp's state and coefficients() arrays
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
    nacm = (int(co[9]) ^ m) - m
    nakm = (int(co[10]) ^ m) - m
    narm = (int(co[11]) ^ m) - m
    nacp = (int(co[12]) ^ m) - m
    nakp = (int(co[13]) ^ m) - m
    narp = (int(co[14]) ^ m) - m
    nacn = (int(co[15]) ^ m) - m
    nakn = (int(co[16]) ^ m) - m
    narn = (int(co[17]) ^ m) - m
    nbcm = (int(co[18]) ^ m) - m
    nbkm = (int(co[19]) ^ m) - m
    nbrm = (int(co[20]) ^ m) - m
    nbcp = (int(co[21]) ^ m) - m
    nbkp = (int(co[22]) ^ m) - m
    nbrp = (int(co[23]) ^ m) - m
    nbcn = (int(co[24]) ^ m) - m
    nbkn = (int(co[25]) ^ m) - m
    nbrn = (int(co[26]) ^ m) - m
    nccm = (int(co[27]) ^ m) - m
    nckm = (int(co[28]) ^ m) - m
    ncrm = (int(co[29]) ^ m) - m
    nccp = (int(co[30]) ^ m) - m
    nckp = (int(co[31]) ^ m) - m
    ncrp = (int(co[32]) ^ m) - m
    nccn = (int(co[33]) ^ m) - m
    nckn = (int(co[34]) ^ m) - m
    ncrn = (int(co[35]) ^ m) - m
    x1 = (int(st[0]) ^ m) - m
    x2 = (int(st[1]) ^ m) - m
    y1 = (int(st[2]) ^ m) - m
    dy = (int(st[3]) ^ m) - m
    na1 = (int(st[4]) ^ m) - m
    nad = (int(st[5]) ^ m) - m
    nb1 = (int(st[6]) ^ m) - m
    nbd = (int(st[7]) ^ m) - m
    nc1 = (int(st[8]) ^ m) - m
    ncd = (int(st[9]) ^ m) - m
    h = (int(st[10]) ^ m) - m
    lo = (int(st[11]) ^ m) - m
    clips = (int(st[12]) ^ m) - m
    primed = (int(st[13]) ^ m) - m
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
        d = (y - y1) - dy
        e = y1 - na1
        na = (
            na1
            + nad
            + d
            - ((nacm * (d >> 15) + ((nacm * (d & 0x7FFF)) >> 15) + narm) >> nakm)
            + ((nacp * (e >> 15) + ((nacp * (e & 0x7FFF)) >> 15) + narp) >> nakp)
            - ((nacn * (nad >> 15) + ((nacn * (nad & 0x7FFF)) >> 15) + narn) >> nakn)
        )
        if na > _Y_MAX:
            na = _Y_MAX
            clips += 1
        elif na < 0 - _Y_MAX:
            na = 0 - _Y_MAX
            clips += 1
        d = (na - na1) - nad
        e = na1 - nb1
        nb = (
            nb1
            + nbd
            + d
            - ((nbcm * (d >> 15) + ((nbcm * (d & 0x7FFF)) >> 15) + nbrm) >> nbkm)
            + ((nbcp * (e >> 15) + ((nbcp * (e & 0x7FFF)) >> 15) + nbrp) >> nbkp)
            - ((nbcn * (nbd >> 15) + ((nbcn * (nbd & 0x7FFF)) >> 15) + nbrn) >> nbkn)
        )
        if nb > _Y_MAX:
            nb = _Y_MAX
            clips += 1
        elif nb < 0 - _Y_MAX:
            nb = 0 - _Y_MAX
            clips += 1
        d = (nb - nb1) - nbd
        e = nb1 - nc1
        nc = (
            nc1
            + ncd
            + d
            - ((nccm * (d >> 15) + ((nccm * (d & 0x7FFF)) >> 15) + ncrm) >> nckm)
            + ((nccp * (e >> 15) + ((nccp * (e & 0x7FFF)) >> 15) + ncrp) >> nckp)
            - ((nccn * (ncd >> 15) + ((nccn * (ncd & 0x7FFF)) >> 15) + ncrn) >> nckn)
        )
        if nc > _Y_MAX:
            nc = _Y_MAX
            clips += 1
        elif nc < 0 - _Y_MAX:
            nc = 0 - _Y_MAX
            clips += 1
        dy = y - y1
        y1 = y
        nad = na - na1
        na1 = na
        nbd = nb - nb1
        nb1 = nb
        ncd = nc - nc1
        nc1 = nc
        v = (nc + 64) >> 7
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
    st[4] = na1
    st[5] = nad
    st[6] = nb1
    st[7] = nbd
    st[8] = nc1
    st[9] = ncd
    st[10] = h
    st[11] = lo
    st[12] = clips
    st[13] = primed
