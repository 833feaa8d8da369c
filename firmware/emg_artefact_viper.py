"""The artefact guard's scan compiled by viper: the same integers as emg_artefact.scan_plain.

firmware/emg_artefact.py imports this where the port has native emitters.
A viper int is a machine word; ptr32 loads are sign-extended explicitly,
(w ^ m) - m with m = 1 << 31, as in firmware/emg_viper.py. Sums of a block
stay within ±2**28 (50 samples of at most ±4,194,304 after the front end).
"""

import micropython


@micropython.viper
def scan(x: ptr32, n: int, prev: int, res: ptr32):  # noqa: F821 (viper's types)
    m = 1
    m = m << 31
    s = 0
    top = 0
    for i in range(n):
        v = (int(x[i]) ^ m) - m
        s += v
        d = v - prev
        if d < 0:
            d = 0 - d
        if d > top:
            top = d
        prev = v
    res[0] = s
    res[1] = top
    res[2] = prev
