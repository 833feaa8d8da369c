"""EMG phases: the scores a clinician reads and the feedback the patient hears.

Driven by the 20 Hz envelope (firmware/emg.py) while the session runs and by
the session's segments (firmware/timeline.py). Updates flagged lead-off,
saturated or after a gap are not trusted: they count as untrusted time and
nothing else. Scores cover the time actually practised, so a session the
patient ends early (as she is told to when tension rises) is never marked
down for it.

Integers only, as on the board: envelopes are capped at ENV_CAP_DV so a
square stays a small int; each phase's scores are firmware/phase_score.py.
"""

from firmware.phase_score import KIND_CODES, KIND_DEMO, UPDATE_MS, PhaseScore
from firmware.timeline import Timeline
from firmware.tone_trend import ToneTrend
from protocol import messages as m
from protocol.messages import CUE_CONTRACT

ENV_CAP_DV = 32767  # 3.3 mV: far above any pelvic-floor envelope; its square fits a small int
_UNTRUSTED = m.FLAG_LEAD_OFF | m.FLAG_SATURATED | m.FLAG_GAP | m.FLAG_ARTEFACT

# patient-paced safety: the rest tone (a running median, firmware/tone_trend.py)
# must stay above the margin this long before the device advises stopping
TREND_HOLD_S = 3
REFERENCE_S = 30  # without a baseline phase: the first 30 s of relaxation
HOLD_GRACE_MS = 1000  # a relaxation hold survives excursions above target this long (protocol default)
PAUSES_ADVISE = 2  # the patient pausing this often is the same signal
HIT_UPDATES = 20  # work/rest: 1 s at or above target counts the repetition as reached


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
        self._timeline = Timeline()  # the session's, from start()
        self._score = None
        self._phase = None  # the protocol phase's settings
        self._phase_index = -1
        self._seg_in_phase = 0
        self._cue = m.CUE_REST
        self._seg_peak = 0
        self._seg_above = 0
        self._run = 0  # updates in the hold under way (excursions it survived included)
        self._over = 0  # updates of the excursion above target (or untrusted) under way
        self._grace = 0  # updates an excursion may last without ending the hold
        self._tone = ToneTrend()
        self._trend_above = 0
        self._reference_dv = 0
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
        phases = [s.result() for s in self.scores if s.run_ms or s.index <= self._phase_index]
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
            if s.kind == KIND_CODES["relaxation"]:
                self._excursion(s)
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
        elif kind == KIND_CODES["baseline"]:
            self._tone.add(dv)

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
        self._over = 0
        self._trend_above = 0
        self._tone.reset()
        self._reference_dv = 0
        if ph is None:
            return
        kind = ph["type"]
        if kind == "relaxation":
            self._grace = ph.get("hold_grace_ms", HOLD_GRACE_MS) // UPDATE_MS
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
            # the median tone, so a cough or a squeeze during the baseline does not lift every target
            self.baseline_dv = self._tone.value if self._tone.seconds else s.rest.mean()
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
        if s.target_dv and dv <= s.target_dv:
            s.below += 1
            self._run += 1 + self._over  # a brief excursion within the grace belongs to the hold
            self._over = 0
        else:
            self._excursion(s)
        tone = self._tone
        if not tone.add(dv):
            return
        if not self._reference_dv:
            # no baseline phase before: the first 30 s of this one are the reference
            if tone.seconds == REFERENCE_S:
                self._reference_dv = max(1, tone.value)
                if not s.target_dv and ph is not None and "target_percent" in ph:
                    s.target_dv = max(1, self._reference_dv * ph["target_percent"] // 100)
        elif ph is not None and tone.full():
            self._judge_tone(tone.value, ph["tone_margin_percent"])

    def _excursion(self, s):
        """An update above target or untrusted: a hold survives it for the grace time only."""
        if not self._run:
            return
        self._over += 1
        if self._over > self._grace:
            self._end_hold(s)

    def _end_hold(self, s):
        run = self._run
        if run > s.longest_hold:
            s.longest_hold = run
        if self._phase is not None and run * UPDATE_MS >= self._phase.get("hold_s", 0) * 1000 > 0:
            s.holds += 1
        self._run = 0
        self._over = 0

    def _judge_tone(self, tone_dv, margin_percent):
        """Once a second, with a full window: advise stopping when the tone stays above the margin."""
        if tone_dv * 100 > self._reference_dv * (100 + margin_percent):
            self._trend_above += 1
            if self._trend_above >= TREND_HOLD_S:
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
        return self._tone.value

    def reference_dv(self):
        return self._reference_dv
