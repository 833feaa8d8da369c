"""The EMG chain in integers: 20 Hz high-pass, mains notch, 20 Hz RMS envelope.

    x (0.1 µV) -> HP: 2nd-order Butterworth, 20 Hz -> streamed samples
               -> notch 50/60 Hz (iirnotch, Q 10) -> squares -> RMS over window

Both filters are the bilinear designs of scipy.signal (butter, iirnotch),
realised as biquads in "delta" form: with state y1 and dy = y1 - y2,
    y = y1 + dy + num - C1*y1 - C2*dy,  C1 = 1 + a1 + a2,  C2 = 1 - a2
so the recursion multiplies only small coefficients (< 0.17): poles near
z = 1 (a 20 Hz corner at 2 kHz) keep their precision, and every product of
a 15-bit coefficient and a 29-bit state is taken in two halves (_mul below)
so that nothing leaves MicroPython's small-int range (|v| < 2**30), as the
RP2040 port needs: a bigger int would allocate, and wrap in viper.
tools/make_emg_vectors.py derives the constants; tests/test_emg_accuracy.py
checks them against SciPy and the envelope against a float64 reference.

Q formats (state array _S_*):
- x1, x2: Q0, input clipped to ±X_MAX_DV.
- y1, dy (high-pass), o1, do (notch): Q7; y and o saturate at ±LIMIT_DV
  (±52.4 mV), dy and do are then within ±2**27.
- h, l: the block's sum of squares is 1024*h + l (Q0 counts²), exact.
- Coefficients c in Q(s): c * 2**s in [2**14, 2**15); listed as (c, s).

Worst-case magnitudes (railed ±4,000,000 input, steps between rails):
second difference of x ≤ 2**24, clipped to ±LIMIT_DV before use (Q7 ≤ 2**26);
HP sum y1 + dy + num + products ≤ 2**26 + 2**27 + 2**26 + 2**24 < 2**28.1;
notch second difference of y ≤ 2**28, its sum < 2**28.9; _mul halves
c*(s >> 15) < 2**15 * 2**14 and c*(s & 0x7FFF) < 2**30. Squares take the
notch output in Q0 clipped to ±ENV_CLIP_DV: v = 1024a + b, v² = 1024*a*(v+b)
+ b², |a*(v+b)| ≤ 2**24.01 and 50 of them < 2**29.7; b² < 2**20.

A restart (start, gap, lead-off, saturation, clipping) primes the
high-pass on the next sample (x1 = x2 = x: a DC offset gives no transient),
zeroes the notch and empties the envelope window. Envelope updates carry
FLAG_GAP until the window holds a full window of samples since the restart,
so filter settling and the aftermath of a rail never reach a trusted update.
"""

import struct
from array import array

from protocol.intmath import isqrt
from protocol.messages import FLAG_GAP, FLAG_LEAD_OFF, FLAG_SATURATED

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


BLOCK = 50  # samples per block: stream frame and envelope bookkeeping
RATES_HZ = (1000, 2000)
MAINS_HZ = (50, 60)
UPDATE_HZ = 20
WINDOW_MIN_MS = 50
WINDOW_MAX_MS = 1000
WINDOW_STEP_MS = 50  # a window is whole blocks at both rates
HP_HZ = 20
NOTCH_Q = 10  # -3 dB over ±2.5 Hz (50 Hz): tolerates mains drift, settles in ~0.1 s
X_MAX_DV = 4194303  # input clip, just above the front end's ±4,000,000
LIMIT_DV = 524287  # streamed samples and filter outputs saturate here (±52.4 mV)
ENV_CLIP_DV = 131071  # squared samples clip here: 6.5 sigma at the envelope cap
ENVELOPE_MAX_DV = 32767  # 3.3 mV RMS: the envelope's ceiling (its square < 2**30)
UNTRUSTED = FLAG_LEAD_OFF | FLAG_SATURATED | FLAG_GAP

_X_MAX = const(4194303)
_D_MAX = const(524287)  # second difference clip, Q0
_Y_MAX = const(67108736)  # LIMIT_DV << 7
_E_MAX = const(131071)
_MS_CAP = const(1073676289)  # ENVELOPE_MAX_DV ** 2
_QH_CAP = const(1046528)  # 2**20 - 2**11: below it 1024 * (h // 50) + rest < 2**30

# Coefficients (c, s): value c / 2**s. High-pass per rate: C1 = 1 + a1 + a2,
# C2 = 1 - a2, G = 1 - b0 of butter(2, 20, "highpass", fs).
HP = {
    1000: ((30381, 21), (21341, 17), (22290, 18)),
    2000: ((31699, 23), (22289, 18), (22784, 19)),
}
# Notch per (rate, mains): M = 1 - b0, P = 1 + a1 + a2 (= 2*b0 + a1), N = 1 - a2
# of iirnotch(mains, NOTCH_Q, fs); numerator b0*(y - 2y1 + y2) + P*y1.
NOTCH = {
    (1000, 50): ((32435, 21), (25264, 18), (32435, 20)),
    (1000, 60): ((19402, 20), (18068, 17), (19402, 19)),
    (2000, 50): ((32686, 22), (25618, 20), (32686, 21)),
    (2000, 60): ((19581, 21), (18400, 19), (19581, 20)),
}

# state array layout
_S_X1 = const(0)
_S_X2 = const(1)
_S_Y1 = const(2)
_S_DY = const(3)
_S_O1 = const(4)
_S_DO = const(5)
_S_H = const(6)
_S_L = const(7)
_S_CLIPS = const(8)
_S_PRIMED = const(9)
STATE_LEN = 10
COEFF_LEN = 18  # six (c, shift = s - 15, rounding = 1 << (s - 16)) triples


def coefficients(rate_hz, mains_hz):
    """The kernel's coefficient array: (c, s - 15, 2**(s - 16)) for C1, C2, G, M, P, N."""
    out = array("i", [0] * COEFF_LEN)
    i = 0
    for c, s in HP[rate_hz] + NOTCH[(rate_hz, mains_hz)]:
        out[i] = c
        out[i + 1] = s - 15
        out[i + 2] = 1 << (s - 16)
        i += 3
    return out


def run_plain(st, co, x, start, end, out):
    """Filter x[start:end] (ints, 0.1 µV); stream samples to out as int32 LE at 4*i.

    A coefficient (c, q) times a state s is rounded c*s / 2**q, computed as
    (c*(s >> 15) + ((c*(s & 0x7FFF)) >> 15) + r) >> k with k = q - 15 and
    r = 2**(q - 16): equal to floor((c*s + 2**(q-1)) / 2**q) (nested floors)
    with both halves inside small ints. Inlined: a call costs ~10 µs on an RP2040.
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
    cm = co[9]
    km = co[10]
    rm = co[11]
    cp = co[12]
    kp = co[13]
    rp = co[14]
    cn = co[15]
    kn = co[16]
    rn = co[17]
    x1 = st[_S_X1]
    x2 = st[_S_X2]
    y1 = st[_S_Y1]
    dy = st[_S_DY]
    o1 = st[_S_O1]
    do = st[_S_DO]
    h = st[_S_H]
    lo = st[_S_L]
    clips = st[_S_CLIPS]
    primed = st[_S_PRIMED]
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
        # notch on y: o = o1 + do + d2 - M*d2 + P*(y1 - o1) - N*do
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
        elif o < -_Y_MAX:
            o = -_Y_MAX
            clips += 1
        y1 = y
        dy = ndy
        do = o - o1
        o1 = o
        # square in two exact parts: v*v = 1024*a*(v + b) + b*b
        v = (o + 64) >> 7
        if v > _E_MAX:
            v = _E_MAX
        elif v < -_E_MAX:
            v = -_E_MAX
        b = v & 1023
        h += (v >> 10) * (v + b)
        lo += b * b
    st[_S_X1] = x1
    st[_S_X2] = x2
    st[_S_Y1] = y1
    st[_S_DY] = dy
    st[_S_O1] = o1
    st[_S_DO] = do
    st[_S_H] = h
    st[_S_L] = lo
    st[_S_CLIPS] = clips
    st[_S_PRIMED] = primed


try:
    from firmware.emg_viper import run as _run

    FAST = True
except Exception:  # noqa: BLE001 - CPython has no micropython module; ports without native emitters refuse viper
    _run = run_plain
    FAST = False


def check_config(rate_hz, window_ms, mains_hz):
    """Raise ValueError unless the chain supports this configuration."""
    if rate_hz not in RATES_HZ:
        raise ValueError("EMG rate %r samples/s is not supported (1000 or 2000)" % (rate_hz,))
    if mains_hz not in MAINS_HZ:
        raise ValueError("mains %r Hz is not supported (50 or 60)" % (mains_hz,))
    if (
        not isinstance(window_ms, int)
        or window_ms < WINDOW_MIN_MS
        or window_ms > WINDOW_MAX_MS
        or window_ms % WINDOW_STEP_MS
    ):
        raise ValueError(
            "envelope window %r ms: a multiple of %d in %d..%d"
            % (window_ms, WINDOW_STEP_MS, WINDOW_MIN_MS, WINDOW_MAX_MS)
        )


class Chain:
    """HP + notch + RMS envelope over blocks of BLOCK samples, allocation-free once built.

    process() may be given any number of samples; the envelope is kept per
    block and updated every rate/20 samples: on_envelope(envelope_dv, flags)
    is then called, and envelope_dv, envelope_flags and updates are set.
    kernel replaces the filter kernel (a board's compiled one: hal.Hal.emg_kernel).
    """

    def __init__(self, rate_hz, window_ms=250, mains_hz=50, on_envelope=None, kernel=None):
        check_config(rate_hz, window_ms, mains_hz)
        self.rate_hz = rate_hz
        self._kernel = kernel or _run
        self.on_envelope = on_envelope
        self._st = array("i", [0] * STATE_LEN)
        self._ring = array("i", [0] * (WINDOW_MAX_MS * max(RATES_HZ) // 1000 // BLOCK))
        self._per_update = rate_hz // UPDATE_HZ // BLOCK
        self.blocks = 0  # blocks completed since construction: keeps the 20 Hz cadence
        self.updates = 0
        self.envelope_dv = 0
        self.envelope_flags = 0
        self.block_flags = 0  # flags of the last completed block, with FLAG_SATURATED if the chain clipped
        self._uflags = 0  # flags of the blocks since the last update: a restart keeps them for it
        self.configure(window_ms, mains_hz)

    def configure(self, window_ms, mains_hz):
        """New window or mains frequency (between sessions); restarts the chain."""
        check_config(self.rate_hz, window_ms, mains_hz)
        self.window_ms = window_ms
        self.mains_hz = mains_hz
        self._co = coefficients(self.rate_hz, mains_hz)
        self._nb = window_ms * self.rate_hz // 1000 // BLOCK
        self.restart()

    def restart(self):
        """Forget the signal: prime the filters on the next sample, empty the window."""
        st = self._st
        for i in range(STATE_LEN):
            st[i] = 0
        self._fill = 0
        self._head = 0
        self._count = 0  # blocks in the window since the restart
        self._bflags = 0

    def process(self, x, n, out, flags=0):
        """Filter x[0:n]; high-passed samples to out (bytearray, int32 LE); returns envelope updates.

        flags (FLAG_*) apply to the blocks these samples belong to.
        """
        done = 0
        updates = 0
        while done < n:
            k = min(BLOCK - self._fill, n - done)
            self._bflags |= flags
            self._kernel(self._st, self._co, x, done, done + k, out)
            self._fill += k
            done += k
            if self._fill == BLOCK:
                updates += self._block_done()
        return updates

    def _block_done(self):
        st = self._st
        h = st[_S_H]
        lo = st[_S_L]
        st[_S_H] = 0
        st[_S_L] = 0
        bf = self._bflags
        if st[_S_CLIPS]:
            bf |= FLAG_SATURATED
            st[_S_CLIPS] = 0
        self._bflags = 0
        self._fill = 0
        self.block_flags = bf
        # block mean square, rounded: (1024*h + lo) / BLOCK without leaving small ints
        qh = h // BLOCK
        if qh >= _QH_CAP:
            ms = _MS_CAP
        else:
            ms = min(qh * 1024 + ((h - qh * BLOCK) * 1024 + lo + BLOCK // 2) // BLOCK, _MS_CAP)
        nb = self._nb
        self._ring[self._head] = ms
        self._head = (self._head + 1) % nb
        if self._count < nb:
            self._count += 1
        self._uflags |= bf
        self.blocks += 1
        updated = 0
        if self.blocks % self._per_update == 0:
            self._update()
            updated = 1
        if bf & UNTRUSTED:
            self.restart()
        return updated

    def _update(self):
        nb = self._nb
        c = self._count
        ring = self._ring
        i = self._head
        hi = 0
        lo = 0
        for _ in range(c):
            i = i - 1 if i else nb - 1
            ms = ring[i]
            hi += ms >> 15
            lo += ms & 0x7FFF
        q = hi // c
        mean = q * 32768 + ((hi - q * c) * 32768 + lo + c // 2) // c
        env = isqrt(mean)
        if mean - env * env > env:  # round to nearest
            env += 1
        env = min(env, ENVELOPE_MAX_DV)
        flags = self._uflags
        if c < nb:
            flags |= FLAG_GAP
        self._uflags = 0
        self.envelope_dv = env
        self.envelope_flags = flags
        self.updates += 1
        if self.on_envelope is not None:
            self.on_envelope(env, flags)
