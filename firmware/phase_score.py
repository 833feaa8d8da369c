"""What one protocol phase measured: its scores, kept as running integer statistics.

Integers only, as on the board: sums are kept in two parts (Acc), so no
sum becomes a big integer; the one division that may need one runs once,
when a phase is scored (PhaseScore.result). firmware/biofeedback.py feeds
them from the 20 Hz envelope.
"""

from protocol import messages as m
from protocol.intmath import isqrt

UPDATE_MS = 50  # the envelope's update period (20 Hz)
_LOW = 1 << 24
_LOW_MASK = _LOW - 1

KIND_CODES = {
    "baseline": 1,
    "relaxation": 2,
    "work_rest": 3,
    "mvc": 4,
    "glazer": 5,
    "ets": 6,
    "stimulation": 7,
}
KIND_DEMO = 0


class Acc:
    """Count, mean and spread of non-negative ints up to biofeedback.ENV_CAP_DV without big integers."""

    def __init__(self):
        self.reset()

    def reset(self):
        self.n = 0
        self._s_hi = 0
        self._s_lo = 0
        self._q_hi = 0
        self._q_lo = 0

    def add(self, v):
        self.n += 1
        lo = self._s_lo + v
        if lo >= _LOW:
            self._s_hi += lo >> 24
            lo &= _LOW_MASK
        self._s_lo = lo
        sq = v * v
        self._q_hi += sq >> 24
        lo = self._q_lo + (sq & _LOW_MASK)
        if lo >= _LOW:
            self._q_hi += 1
            lo -= _LOW
        self._q_lo = lo

    def mean(self):
        if not self.n:
            return 0
        return (self._s_hi * _LOW + self._s_lo + self.n // 2) // self.n

    def cv_permille(self):
        """Coefficient of variation (SD / mean) in 1/1000; 0 without data."""
        n = self.n
        if n < 2:
            return 0
        s = self._s_hi * _LOW + self._s_lo
        q = self._q_hi * _LOW + self._q_lo
        var_n2 = n * q - s * s  # n² · variance, exact
        if s <= 0 or var_n2 <= 0:
            return 0
        return (1000 * isqrt(var_n2) + s // 2) // s


class PhaseScore:
    """What one protocol phase measured."""

    def __init__(self, index, kind):
        self.index = index
        self.kind = kind
        self.planned_ms = 0
        self.run_ms = 0  # trusted + untrusted time practised
        self.untrusted_ms = 0
        self.rest = Acc()  # rest/relax cues
        self.work = Acc()  # contraction cues
        self.peaks = Acc()  # one peak per contraction
        self.best_peak = 0
        self.target_dv = 0
        self.below = 0  # updates below target
        self.holds = 0
        self.longest_hold = 0
        self.reps = 0
        self.reps_hit = 0
        # Glazer: pre-rest, phasic peaks, tonic, endurance, post-rest
        self.g_pre = Acc()
        self.g_tonic = Acc()
        self.g_endurance = Acc()
        self.g_post = Acc()

    def result(self):
        r = {
            m.SC_PHASE: self.index,
            m.SC_KIND: self.kind,
            m.SC_PLANNED_MS: self.planned_ms,
            m.SC_RUN_MS: self.run_ms,
        }
        r[m.SC_UNTRUSTED_MS] = self.untrusted_ms
        if self.rest.n:
            r[m.SC_REST_DV] = self.rest.mean()
            r[m.SC_REST_CV] = self.rest.cv_permille()
        kind = self.kind
        # a Glazer phase mixes flicks, tonic holds and the endurance hold: one mean of them all
        # would sit beside the host's measures as if it were one of them (EMG-GLAZER-2)
        if self.work.n and kind != KIND_CODES["glazer"]:
            r[m.SC_WORK_DV] = self.work.mean()
        if self.peaks.n:
            r[m.SC_PEAK_DV] = self.peaks.mean()
            r[m.SC_BEST_PEAK_DV] = self.best_peak
        if self.target_dv:
            r[m.SC_TARGET_DV] = self.target_dv
        if kind == KIND_CODES["relaxation"]:
            r[m.SC_BELOW_MS] = self.below * UPDATE_MS
            r[m.SC_HOLDS] = self.holds
            r[m.SC_LONGEST_HOLD_MS] = self.longest_hold * UPDATE_MS
        if kind == KIND_CODES["work_rest"]:
            r[m.SC_REPS] = self.reps
            r[m.SC_REPS_HIT] = self.reps_hit
        if kind == KIND_CODES["glazer"]:
            for key, acc in ((m.SC_G_PRE_DV, self.g_pre), (m.SC_G_TONIC_DV, self.g_tonic)):
                if acc.n:
                    r[key] = acc.mean()
            if self.g_pre.n:
                r[m.SC_G_PRE_CV] = self.g_pre.cv_permille()
            if self.g_endurance.n:
                r[m.SC_G_ENDURANCE_DV] = self.g_endurance.mean()
            if self.g_post.n:
                r[m.SC_G_POST_DV] = self.g_post.mean()
                r[m.SC_G_POST_CV] = self.g_post.cv_permille()
        return r
