"""The EMG chain's filter kernel in plain bytecode: what CPython and ports without native code run.

run_plain(st, co, x, start, end, out) takes emg_dsp's state and coefficients()
arrays; firmware/emg_viper.py is the same kernel for viper, bit for bit
(tests/dual/test_emg_chain.py compares them wherever viper runs). The Q
formats and bounds that keep every intermediate a small int are in
firmware/emg_dsp.py's docstring.
"""

import struct

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


_X_MAX = const(4194303)  # emg_dsp.X_MAX_DV
_D_MAX = const(524287)  # second difference clip, Q0
_Y_MAX = const(67108736)  # LIMIT_DV << 7
_E_MAX = const(131071)  # emg_dsp.ENV_CLIP_DV


def run_plain(st, co, x, start, end, out):
    """Filter x[start:end] (ints, 0.1 µV); stream samples to out as int32 LE at 4*i.

    A coefficient (c, q) times a state s is rounded c*s / 2**q, computed as
    (c*(s >> 15) + ((c*(s & 0x7FFF)) >> 15) + r) >> k with k = q - 15 and
    r = 2**(q - 16): equal to floor((c*s + 2**(q-1)) / 2**q) (nested floors)
    with both halves inside small ints. Inlined: a call costs ~10 µs on an RP2040.
    The three notches are the same biquad on successive inputs (y, then na, then nb).
    """
    c1 = co[0]
    k1 = co[1]
    r1 = co[2]
    c2 = co[3]
    k2 = co[4]
    r2 = co[5]
    cg = co[6]
    kg = co[7]
    rg = co[8]
    nacm = co[9]
    nakm = co[10]
    narm = co[11]
    nacp = co[12]
    nakp = co[13]
    narp = co[14]
    nacn = co[15]
    nakn = co[16]
    narn = co[17]
    nbcm = co[18]
    nbkm = co[19]
    nbrm = co[20]
    nbcp = co[21]
    nbkp = co[22]
    nbrp = co[23]
    nbcn = co[24]
    nbkn = co[25]
    nbrn = co[26]
    nccm = co[27]
    nckm = co[28]
    ncrm = co[29]
    nccp = co[30]
    nckp = co[31]
    ncrp = co[32]
    nccn = co[33]
    nckn = co[34]
    ncrn = co[35]
    x1 = st[0]
    x2 = st[1]
    y1 = st[2]
    dy = st[3]
    na1 = st[4]
    nad = st[5]
    nb1 = st[6]
    nbd = st[7]
    nc1 = st[8]
    ncd = st[9]
    h = st[10]
    lo = st[11]
    clips = st[12]
    primed = st[13]
    pack = struct.pack_into
    for i in range(start, end):
        v = x[i]
        if v > _X_MAX:
            v = _X_MAX
        elif v < -_X_MAX:
            v = -_X_MAX
        if not primed:
            x1 = v
            x2 = v
            primed = 1
        d = v - 2 * x1 + x2
        x2 = x1
        x1 = v
        if d > _D_MAX:
            d = _D_MAX
            clips += 1
        elif d < -_D_MAX:
            d = -_D_MAX
            clips += 1
        d <<= 7
        # high-pass: y = y1 + dy + d - G*d - C1*y1 - C2*dy
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
        elif y < -_Y_MAX:
            y = -_Y_MAX
            clips += 1
        pack("<i", out, 4 * i, (y + 64) >> 7)
        # notch na: o = o1 + do + d2 - M*d2 + P*(u1 - o1) - N*do on its input u
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
        elif na < -_Y_MAX:
            na = -_Y_MAX
            clips += 1
        # notch nb: o = o1 + do + d2 - M*d2 + P*(u1 - o1) - N*do on its input u
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
        elif nb < -_Y_MAX:
            nb = -_Y_MAX
            clips += 1
        # notch nc: o = o1 + do + d2 - M*d2 + P*(u1 - o1) - N*do on its input u
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
        elif nc < -_Y_MAX:
            nc = -_Y_MAX
            clips += 1
        dy = y - y1
        y1 = y
        nad = na - na1
        na1 = na
        nbd = nb - nb1
        nb1 = nb
        ncd = nc - nc1
        nc1 = nc
        # square in two exact parts: v*v = 1024*a*(v + b) + b*b
        v = (nc + 64) >> 7
        if v > _E_MAX:
            v = _E_MAX
        elif v < -_E_MAX:
            v = -_E_MAX
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
