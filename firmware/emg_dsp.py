"""The EMG chain in integers: 20 Hz high-pass, mains notches, 20 Hz RMS envelope.

    x (0.1 µV) -> HP: 2nd-order Butterworth, 20 Hz -> streamed samples
               -> notches: mains ± 0.25 Hz (Q 7, a mains frequency off nominal)
                  and 3 x mains (Q 15, at 2 kHz) -> squares -> RMS over window

Both filters are the bilinear designs of scipy.signal (butter, iirnotch),
realised as biquads in "delta" form: with state y1 and dy = y1 - y2,
    y = y1 + dy + num - C1*y1 - C2*dy,  C1 = 1 + a1 + a2,  C2 = 1 - a2
so the recursion multiplies only small coefficients (< 0.17): poles near
z = 1 (a 20 Hz corner at 2 kHz) keep their precision, and every product of
a 15-bit coefficient and a 29-bit state is taken in two halves (firmware/emg_plain.py)
so that nothing leaves MicroPython's small-int range (|v| < 2**30), as the
RP2040 port needs: a bigger int would allocate, and wrap in viper.
tools/make_emg_vectors.py derives the constants; tests/test_emg_accuracy.py
checks them against SciPy and the envelope against a float64 reference.

Q formats (state array _S_*):
- x1, x2: Q0, input clipped to ±X_MAX_DV.
- y1, dy (high-pass), and o1, do of each notch: Q7; y and o saturate at
  ±LIMIT_DV (±52.4 mV), dy and do are then within ±2**27. Each notch
  takes the one before as its input, with the same bounds as the first.
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
FLAG_GAP until a whole window and SETTLE_MS more have passed since the
restart, so filter settling and the aftermath of a rail never reach a
trusted update.
"""

from array import array

from protocol.intmath import isqrt
from protocol.messages import FLAG_ARTEFACT, FLAG_GAP, FLAG_LEAD_OFF, FLAG_SATURATED

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
# after a restart the high-pass is primed flat; a signal that was still sloping (an electrode
# recovering) leaves a transient that is gone in ~50 ms: updates wait this long beyond the window
SETTLE_MS = 100
X_MAX_DV = 4194303  # input clip, just above the front end's ±4,000,000
LIMIT_DV = 524287  # streamed samples and filter outputs saturate here (±52.4 mV)
ENV_CLIP_DV = 131071  # squared samples clip here: 6.5 sigma at the envelope cap
ENVELOPE_MAX_DV = 32767  # 3.3 mV RMS: the envelope's ceiling (its square < 2**30)
# a block above 500 µV RMS is no pelvic-floor muscle (docs/emg.md): flagged, never trusted
ENVELOPE_TRUST_MAX_DV = 5000
UNTRUSTED = FLAG_LEAD_OFF | FLAG_SATURATED | FLAG_GAP

_MS_CAP = const(1073676289)  # ENVELOPE_MAX_DV ** 2
_TRUST_MS = const(25000000)  # ENVELOPE_TRUST_MAX_DV ** 2
_QH_CAP = const(1046528)  # 2**20 - 2**11: below it 1024 * (h // 50) + rest < 2**30

_NONE = (0, 16)  # a zero coefficient: the product rounds to 0
# (f Hz, Q) of the three notches, as multiples of the mains frequency plus an offset (Hz)
NOTCHES_AT = ((1, -0.25, 7), (1, 0.25, 7), (3, 0.0, 15))
HARMONIC_RATES = (2000,)  # rates where the third harmonic's coefficients fit the delta form

# Coefficients (c, s): value c / 2**s. High-pass per rate: C1 = 1 + a1 + a2,
# C2 = 1 - a2, G = 1 - b0 of butter(2, 20, "highpass", fs).
HP = {
    1000: ((30381, 21), (21341, 17), (22290, 18)),
    2000: ((31699, 23), (22289, 18), (22784, 19)),
}
# Notches per (rate, mains), three in a row, each M = 1 - b0, P = 1 + a1 + a2 (= 2*b0 + a1),
# N = 1 - a2 of iirnotch(f, q, fs), numerator b0*(u - 2u1 + u2) + P*u1 (NOTCHES_AT below):
# mains - 0.25 Hz and mains + 0.25 Hz (Q 7): staggered, they hold mains at nominal to 0.5 % and
# anywhere within 0.5 Hz of it to 1.5 %, and keep 96 % of a flat EMG spectrum's power; then the
# third harmonic (Q 15) where the delta form's coefficients fit (2 kHz; at 1 kHz its P is above
# 0.5 and the stage passes the signal unchanged, all zeros).
NOTCH = {
    (1000, 50): (
        (22905, 20),
        (24852, 18),
        (22905, 19),
        (23130, 20),
        (25344, 18),
        (23130, 19),
        _NONE,
        _NONE,
        _NONE,
    ),
    (1000, 60): (
        (27390, 20),
        (17780, 17),
        (27390, 19),
        (27614, 20),
        (18072, 17),
        (27614, 19),
        _NONE,
        _NONE,
        _NONE,
    ),
    (2000, 50): (
        (23155, 21),
        (25280, 20),
        (23155, 20),
        (23385, 21),
        (25787, 20),
        (23385, 20),
        (32435, 21),
        (28130, 17),
        (32435, 20),
    ),
    (2000, 60): (
        (27748, 21),
        (18175, 19),
        (27748, 20),
        (27977, 21),
        (18478, 19),
        (27977, 20),
        (19402, 20),
        (20027, 16),
        (19402, 19),
    ),
}

# state array layout: x1 x2 y1 dy, then (o1, do) of each notch, then the sums
_S_H = const(10)
_S_L = const(11)
_S_CLIPS = const(12)
STATE_LEN = 14
COEFF_LEN = 36  # twelve (c, shift = s - 15, rounding = 1 << (s - 16)) triples: HP, then three notches


def coefficients(rate_hz, mains_hz):
    """The kernel's coefficient array: (c, s - 15, 2**(s - 16)) for C1, C2, G, then M, P, N of each notch."""
    out = array("i", [0] * COEFF_LEN)
    i = 0
    for c, s in HP[rate_hz] + NOTCH[(rate_hz, mains_hz)]:
        out[i] = c
        out[i + 1] = s - 15
        out[i + 2] = 1 << (s - 16)
        i += 3
    return out


def run_plain(st, co, x, start, end, out):
    """firmware/emg_plain.py's kernel, loaded at its first use: where viper runs it is only the
    reference, and its bytecode (1.6 KB on the RP2040) would sit in the heap for nothing."""
    from firmware.emg_plain import run_plain as run

    return run(st, co, x, start, end, out)


try:
    from firmware.emg_viper import run as _run

    FAST = True
except Exception:  # noqa: BLE001 - CPython has no micropython module; ports without native emitters refuse viper
    from firmware.emg_plain import run_plain as _run

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
        self._sums = array("i", [0, 0])  # what _window_sums() hands to _update()
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
        self._settle = SETTLE_MS * self.rate_hz // 1000 // BLOCK
        self.restart()

    def restart(self):
        """Forget the signal: prime the filters on the next sample, empty the window."""
        st = self._st
        for i in range(STATE_LEN):
            st[i] = 0
        self._fill = 0
        self._head = 0
        self._count = 0  # blocks in the window since the restart
        self._since = 0  # blocks since the restart, up to the window plus the settling time
        self._bflags = 0
        self._taint = 0  # blocks until the window is clear of the last artefact

    def process(self, x, n, out, flags=0):
        """Filter x[0:n]; high-passed samples to out (bytearray, int32 LE); returns envelope updates.

        flags (FLAG_*) apply to the blocks these samples belong to.
        """
        if n == BLOCK and not self._fill:  # the firmware's case: one whole block
            self._bflags |= flags
            self._whole(x, out)
            return self._block_done()
        return self._process(x, n, out, flags)

    # The calls of every block (process, _whole, _block_done, _update) are kept to 11 words of
    # state (arguments, locals, stack): MicroPython puts a larger call's frame on the heap and
    # searches the heap for it. The kernel's six arguments leave its caller three words.

    def _whole(self, x, out):
        self._kernel(self._st, self._co, x, 0, BLOCK, out)

    def _process(self, x, n, out, flags):
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

    def _mean_square(self):
        """The block's mean square, rounded and capped; the kernel's sums start again."""
        st = self._st
        h = st[_S_H]
        lo = st[_S_L]
        st[_S_H] = 0
        st[_S_L] = 0
        # (1024*h + lo) / BLOCK without leaving small ints
        qh = h // BLOCK
        if qh >= _QH_CAP:
            return _MS_CAP
        return min(qh * 1024 + ((h - qh * BLOCK) * 1024 + lo + BLOCK // 2) // BLOCK, _MS_CAP)

    def _block_done(self):
        ms = self._mean_square()
        st = self._st
        bf = self._bflags
        if st[_S_CLIPS]:
            bf |= FLAG_SATURATED
            st[_S_CLIPS] = 0
        self._bflags = 0
        self._fill = 0
        nb = self._nb
        # a step or slope (flagged before the chain) restarts it like a rail: the filters would ring
        restart = bf & (UNTRUSTED | FLAG_ARTEFACT)
        # too large to be muscle: every update whose window holds the block is untrusted, but the
        # arithmetic goes on undisturbed, so the envelope stays exact and only its trust is withdrawn
        if ms > _TRUST_MS:
            bf |= FLAG_ARTEFACT
        if bf & FLAG_ARTEFACT:
            self._taint = nb
        elif self._taint:
            self._taint -= 1
            if self._taint:
                bf |= FLAG_ARTEFACT
        self.block_flags = bf
        self._ring[self._head] = ms
        self._head = (self._head + 1) % nb
        if self._count < nb:
            self._count += 1
        if self._since < nb + self._settle:
            self._since += 1
        self._uflags |= bf
        self.blocks += 1
        updated = 0
        if self.blocks % self._per_update == 0:
            self._update()
            updated = 1
        if restart:
            self.restart()
        return updated

    def _window_sums(self):
        """The window's block mean squares summed in two parts (>> 15, & 0x7FFF): into _sums."""
        i = self._head
        hi = 0
        lo = 0
        for _ in range(self._count):
            i = i - 1 if i else self._nb - 1
            hi += self._ring[i] >> 15
            lo += self._ring[i] & 0x7FFF
        self._sums[0] = hi
        self._sums[1] = lo

    def _update(self):
        self._window_sums()
        c = self._count
        hi = self._sums[0]
        q = hi // c
        mean = q * 32768 + ((hi - q * c) * 32768 + self._sums[1] + c // 2) // c
        env = isqrt(mean)
        if mean - env * env > env:  # round to nearest
            env += 1
        env = min(env, ENVELOPE_MAX_DV)
        flags = self._uflags
        if self._since < self._nb + self._settle:
            flags |= FLAG_GAP
        self._uflags = 0
        self.envelope_dv = env
        self.envelope_flags = flags
        self.updates += 1
        if self.on_envelope is not None:
            self.on_envelope(env, flags)
