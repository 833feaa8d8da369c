"""Signals no pelvic-floor muscle makes, caught on the raw block before the chain.

A clipped or railed input is flagged by the front end and the chain; what
stays below the clip is trusted unless something says otherwise. This guard
looks at each raw block (0.1 µV, electrode offset included, before any
filtering or clipping) and flags FLAG_ARTEFACT when:

- its mean moves faster than MEAN_SLOPE_UV_S from the last block's: muscle
  adds no DC, so a shift of the block mean is an electrode or the probe
  moving (an electrode step, a motion bump);
- two neighbouring samples differ by more than SLEW_UV_MS: faster than any
  surface motor-unit potential slopes (an electrode pop, a connector).

A flagged block, and HOLD_MS after the last one, reach the chain flagged:
the chain restarts on each (the high-pass and the notch would ring for
hundreds of ms after a step) and its envelope stays untrusted until a whole
window of clean samples has passed (firmware/emg_dsp.py), so neither edge
of a contaminated stretch leaks a trusted value. The amplitude ceiling
(emg_dsp.ENVELOPE_TRUST_MAX_DV) is checked on the filtered block by the
chain. docs/emg.md gives the reasons for each figure.
"""

from array import array

from protocol.messages import FLAG_ARTEFACT

MEAN_SLOPE_UV_S = 10000  # 10 mV/s drift of the block mean
SLEW_UV_MS = 5000  # 5 mV/ms between neighbouring samples
HOLD_MS = 150  # flagged after the last artefact: the high-pass settling after a step, a bump's tail


def scan_plain(x, n, prev, res):
    """res[0] = sum of x[0:n], res[1] = largest |x[i] - x[i-1]| (x[-1] = prev), res[2] = x[n-1]."""
    s = 0
    top = 0
    for i in range(n):
        v = x[i]
        s += v
        d = v - prev
        if d < 0:
            d = -d
        if d > top:
            top = d
        prev = v
    res[0] = s
    res[1] = top
    res[2] = prev


try:
    from firmware.emg_artefact_viper import scan as _scan
except Exception:  # noqa: BLE001 - CPython has no micropython module; ports without native emitters refuse viper
    _scan = scan_plain


class ArtefactGuard:
    def __init__(self, rate_hz, block):
        self.block = block
        # per block, in the sum of its samples (block * mean), 0.1 µV
        self._step = MEAN_SLOPE_UV_S * 10 * block * block // rate_hz
        self._slew = SLEW_UV_MS * 10000 // rate_hz  # per sample, 0.1 µV
        self._hold_blocks = (HOLD_MS * rate_hz + 1000 * block - 1) // (1000 * block)
        self.steps = 0  # blocks flagged by a step or slope since construction
        self._res = array("i", [0, 0, 0])
        self.restart()

    def restart(self):
        """Forget the signal (a gap): the next block is compared with nothing before it."""
        self._primed = False
        self._sum = 0
        self._last = 0
        self._hold = 0

    def _scan_block(self, x, n):
        # apart from check(): a call whose state exceeds 11 words puts its frame on the heap
        _scan(x, n, self._last if self._primed else x[0], self._res)

    def check(self, x, n):
        """FLAG_ARTEFACT if x[0:n] (n == block) or the HOLD_MS before it held an artefact, else 0."""
        self._scan_block(x, n)
        res = self._res
        self._last = res[2]
        shift = res[0] - self._sum
        if shift < 0:
            shift = -shift
        bad = res[1] > self._slew or (self._primed and shift > self._step)
        self._sum = res[0]
        self._primed = True
        if bad:
            self.steps += 1
            self._hold = self._hold_blocks
            return FLAG_ARTEFACT
        if self._hold:
            self._hold -= 1
            return FLAG_ARTEFACT
        return 0
