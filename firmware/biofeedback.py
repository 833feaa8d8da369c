"""EMG phases: the scores a clinician reads and the feedback the patient hears.

Driven by the 20 Hz envelope (firmware/emg.py) while the session runs and by
the session's segments (firmware/timeline.py). Updates flagged lead-off,
saturated or after a gap are not trusted: they count as untrusted time and
nothing else. Scores cover the time actually practised, so a session the
patient ends early (as she is told to when tension rises) is never marked
down for it.

Integers only, as on the board: envelopes are capped at ENV_CAP_DV so a
square stays a small int, and sums are kept in two parts (Acc); the one
division that may need a big integer runs once, when a phase is scored.
"""

from protocol import messages as m
from protocol.intmath import isqrt
from protocol.messages import CUE_CONTRACT

UPDATE_MS = 50  # the envelope's update period (20 Hz)
ENV_CAP_DV = 32767  # 3.3 mV: far above any pelvic-floor envelope; its square fits a small int
_UNTRUSTED = m.FLAG_LEAD_OFF | m.FLAG_SATURATED | m.FLAG_GAP
_LOW = 1 << 24
_LOW_MASK = _LOW - 1

# patient-paced safety: the rest tone, smoothed over about 25 s, must stay
# above the margin this long before the device advises stopping
TREND_SHIFT = 9  # exponential smoothing of 1/512 per update: 25.6 s
TREND_WARMUP = 600  # updates (30 s) before the trend is judged
TREND_HOLD = 200  # updates (10 s) above the margin
REFERENCE_UPDATES = 600  # without a baseline phase: the first 30 s of relaxation
PAUSES_ADVISE = 2  # the patient pausing this often is the same signal
HIT_UPDATES = 20  # work/rest: 1 s at or above target counts the repetition as reached

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
    """Count, mean and spread of non-negative ints up to ENV_CAP_DV without big integers."""

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
        if self.work.n:
            r[m.SC_WORK_DV] = self.work.mean()
        if self.peaks.n:
            r[m.SC_PEAK_DV] = self.peaks.mean()
            r[m.SC_BEST_PEAK_DV] = self.best_peak
        if self.target_dv:
            r[m.SC_TARGET_DV] = self.target_dv
        kind = self.kind
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


class Biofeedback:
    def __init__(self):
        self.running = False
        self.scores = []
        self.advice = 0  # ADVICE_* given this session, 0 if none
        self.advice_pending = 0  # given, not yet announced by the controller
        self.mvc_dv = 0
        self.baseline_dv = 0
        self.last_dv = 0
        self.last_trusted = False
        self._doc = None
        self._timeline = None
        self._score = None
        self._phase = None  # the protocol phase's settings
        self._phase_index = -1
        self._seg_in_phase = 0
        self._cue = m.CUE_REST
        self._seg_peak = 0
        self._seg_above = 0
        self._run = 0  # consecutive updates below target
        self._trend_q8 = 0
        self._trend_n = 0
        self._trend_above = 0
        self._reference_dv = 0
        self._ref = Acc()
        self._pauses = 0

    # -- session boundaries ---------------------------------------------

    def start(self, doc, timeline):
        self._doc = doc
        self._timeline = timeline
        self.scores = []
        if doc is None:
            s = PhaseScore(0, KIND_DEMO)
            s.planned_ms = timeline.total_ms()
            self.scores.append(s)
        else:
            phases = doc["phases"]
            for i in range(len(phases)):
                self.scores.append(PhaseScore(i, KIND_CODES[phases[i]["type"]]))
            start = 0
            for seg in range(len(timeline.ends_ms)):
                end = timeline.ends_ms[seg]
                self.scores[timeline.phase_of[seg]].planned_ms += end - start
                start = end
        self.advice = 0
        self.advice_pending = 0
        self.mvc_dv = 0
        self.baseline_dv = 0
        self.last_dv = 0
        self.last_trusted = False
        self._phase_index = -1
        self._score = None
        self._pauses = 0
        self.running = True

    def segment(self, seg, cue):
        """The session entered timeline segment seg, cueing cue."""
        self._close_segment()
        p = self._timeline.phase_of[seg] if self._doc is not None else 0
        if p != self._phase_index:
            self._close_phase()
            self._open_phase(p)
        else:
            self._seg_in_phase += 1
        self._cue = cue
        self._seg_peak = 0
        self._seg_above = 0

    def cue(self, cue):
        """A cue within the segment (ETS asks for each contraction itself)."""
        self._close_segment()
        self._cue = cue
        self._seg_peak = 0
        self._seg_above = 0

    def patient_paused(self):
        self._pauses += 1
        if self._pauses >= PAUSES_ADVISE:
            self._advise(m.ADVICE_PAUSED_TWICE)

    def finish(self, end_reason, run_ms, time_ms):
        """The session is over: the summary to announce and keep."""
        self._close_segment()
        self._close_phase()
        self.running = False
        phases = []
        for s in self.scores:
            if s.run_ms or s.index <= self._phase_index:
                phases.append(s.result())
        return {
            m.SUM_TIME_MS: time_ms,
            m.SUM_END_REASON: end_reason,
            m.SUM_ADVICE: self.advice,
            m.SUM_RUN_MS: run_ms,
            m.SUM_MVC_DV: self.mvc_dv,
            m.SUM_BASELINE_DV: self.baseline_dv,
            m.SUM_PHASES: phases,
            m.SUM_TRIGGERS: 0,  # stimulation figures: the controller fills them in
            m.SUM_CHARGE_UC: 0,
            m.SUM_MAX_UA: 0,
        }

    # -- the 20 Hz envelope -----------------------------------------------

    def envelope(self, dv, flags):
        """One envelope update while the session runs."""
        s = self._score
        if s is None:
            return
        s.run_ms += UPDATE_MS
        if flags & _UNTRUSTED:
            s.untrusted_ms += UPDATE_MS
            self.last_trusted = False
            self._run = 0
            return
        if dv > ENV_CAP_DV:
            dv = ENV_CAP_DV
        self.last_dv = dv
        self.last_trusted = True
        contracting = self._cue == CUE_CONTRACT
        if contracting:
            s.work.add(dv)
            if dv > self._seg_peak:
                self._seg_peak = dv
            if s.target_dv and dv >= s.target_dv:
                self._seg_above += 1
        else:
            s.rest.add(dv)
        kind = s.kind
        if kind == KIND_CODES["relaxation"]:
            self._relaxation(s, dv)
        elif kind == KIND_CODES["glazer"]:
            self._glazer(s, dv)

    def feedback_hz(self, lo_hz, hi_hz):
        """Buzzer pitch for the envelope against the relaxation target: 0 at or below it."""
        s = self._score
        if s is None or s.kind != KIND_CODES["relaxation"] or not s.target_dv or not self.last_trusted:
            return 0
        over = self.last_dv - s.target_dv
        if over <= 0:
            return 0
        if over > s.target_dv:
            over = s.target_dv
        return lo_hz + (hi_hz - lo_hz) * over // s.target_dv

    def target_dv(self):
        """The running phase's envelope target (0.1 µV), 0 when it has none."""
        s = self._score
        return s.target_dv if s is not None else 0

    def below_target(self):
        s = self._score
        return s is not None and s.target_dv > 0 and self.last_trusted and self.last_dv <= s.target_dv

    # -- phases -----------------------------------------------------------

    def _open_phase(self, p):
        self._phase_index = p
        self._seg_in_phase = 0
        s = self.scores[p]
        self._score = s
        self._phase = self._doc["phases"][p] if self._doc is not None else None
        ph = self._phase
        self._run = 0
        self._trend_n = 0
        self._trend_above = 0
        self._ref.reset()
        self._reference_dv = 0
        if ph is None:
            return
        kind = ph["type"]
        if kind == "relaxation":
            if "target_dv" in ph:
                s.target_dv = ph["target_dv"]
            elif self.baseline_dv:
                s.target_dv = max(1, self.baseline_dv * ph["target_percent"] // 100)
            self._reference_dv = self.baseline_dv
        elif kind == "work_rest" and self.mvc_dv:
            s.target_dv = max(1, self.mvc_dv * ph["target_percent_mvc"] // 100)

    def _close_phase(self):
        s = self._score
        if s is None:
            return
        kind = s.kind
        if kind == KIND_CODES["baseline"] and s.rest.n:
            self.baseline_dv = s.rest.mean()
        elif kind == KIND_CODES["mvc"] and s.best_peak > self.mvc_dv:
            self.mvc_dv = s.best_peak
        elif kind == KIND_CODES["relaxation"]:
            self._end_hold(s)
        self._score = None

    def _close_segment(self):
        s = self._score
        if s is None or self._cue != CUE_CONTRACT:
            return
        peak = self._seg_peak
        if s.kind == KIND_CODES["glazer"] and not 1 <= self._seg_in_phase <= 10:
            peak = 0  # the device reports phasic peaks; the host analyses the rest from the stream
        if peak:
            s.peaks.add(peak)
            if peak > s.best_peak:
                s.best_peak = peak
        if s.kind == KIND_CODES["work_rest"]:
            s.reps += 1
            if s.target_dv and self._seg_above >= HIT_UPDATES:
                s.reps_hit += 1
        self._seg_peak = 0

    def _relaxation(self, s, dv):
        ph = self._phase
        if not self._reference_dv:
            # no baseline phase before: the first 30 s of this one are the reference
            self._ref.add(dv)
            if self._ref.n == REFERENCE_UPDATES:
                self._reference_dv = max(1, self._ref.mean())
                if not s.target_dv and ph is not None and "target_percent" in ph:
                    s.target_dv = max(1, self._reference_dv * ph["target_percent"] // 100)
        if s.target_dv and dv <= s.target_dv:
            s.below += 1
            self._run += 1
        else:
            self._end_hold(s)
        if ph is not None:
            self._watch_trend(dv, ph["tone_margin_percent"])

    def _end_hold(self, s):
        run = self._run
        if run > s.longest_hold:
            s.longest_hold = run
        if self._phase is not None and run * UPDATE_MS >= self._phase.get("hold_s", 0) * 1000 > 0:
            s.holds += 1
        self._run = 0

    def _watch_trend(self, dv, margin_percent):
        if self._trend_n == 0:
            self._trend_q8 = dv << 8
        else:
            self._trend_q8 += ((dv << 8) - self._trend_q8) >> TREND_SHIFT
        self._trend_n += 1
        ref = self._reference_dv
        if self._trend_n < TREND_WARMUP or not ref:
            return
        if (self._trend_q8 >> 8) * 100 > ref * (100 + margin_percent):
            self._trend_above += 1
            if self._trend_above >= TREND_HOLD:
                self._advise(m.ADVICE_TONE_RISING)
        else:
            self._trend_above = 0

    def _glazer(self, s, dv):
        # segments: 0 pre-rest; 1-10 phasic on/rest; 11-20 tonic on/off; 21 endurance; 22 post-rest
        k = self._seg_in_phase
        if k == 0:
            s.g_pre.add(dv)
        elif 11 <= k <= 20 and self._cue == CUE_CONTRACT:
            s.g_tonic.add(dv)
        elif k == 21:
            s.g_endurance.add(dv)
        elif k == 22:
            s.g_post.add(dv)

    def _advise(self, reason):
        if not self.advice:
            self.advice = reason
            self.advice_pending = reason

    def trend_dv(self):
        return self._trend_q8 >> 8

    def reference_dv(self):
        return self._reference_dv
