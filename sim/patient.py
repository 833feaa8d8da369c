"""The simulated patient: pelvic-floor muscle activity that follows the device's buzzer.

The output is, at every sample, the RMS amplitude (µV) of the muscle's own
EMG and its conduction-velocity ratio (1 fresh, lower when fatigued: the
spectrum compresses); sim/emg_model.py turns both into a signal. Models and
sources: docs/simulator.md.

- Resting tone: a level (µV) times a slow log-normal wander, so its mean
  square stays at the level squared. Feedback lowers the level towards a
  floor (learning), tension raises it (tense_up, or an anxious profile
  during a session).
- Voluntary activation (0 rest .. 1 maximal) moves towards the cued target
  with first-order rise and fall; what the muscle delivers is that times
  its capacity, which fatigue lowers during a hold and rest restores. A
  second, metabolic fatigue state drives the conduction velocity.
- A hypertonic floor that has contracted keeps guarding (relax_floor) and
  lets go only slowly (guard_s), faster while feedback sounds (letgo_s).
- The two pools add in power: RMS² = rest² + (voluntary · activation)².

The patient hears every change of the buzzer (hear): cue tones act after a
reaction time; a feedback tone means "still above target": the patient
tries to let go, and while she does her resting tone comes down at the
profile's learning rate. Without feedback nothing is learnt.

Slow states (fatigue, tone level) advance in steps of at most STEP_MS and
are interpolated in between; they change over seconds to minutes.
"""

import math
from collections import deque
from typing import TypedDict

import numpy as np

from firmware.patient_io import (
    TONE_ADVICE_HZ,
    TONE_ALARM_HZ,
    TONE_CONTRACT_HZ,
    TONE_DONE_HZ,
    TONE_FEEDBACK_MAX_HZ,
    TONE_FEEDBACK_MIN_HZ,
)
from sim.filters import lfilter_chunk

STEP_MS = 100
_STAGES = 4  # a chain of stages: a hold starts flat, then sags

# Resting tone: rest_uv RMS at the start, rest_wander the log-normal sigma
# of its wander with time constant wander_s; tone_floor_uv the lowest level
# feedback can teach, learn_per_min the rate (1/min of feedback heard) at
# which the level approaches it; tension_pct_min the rise of the level
# during a session (from the first cue to the end tone), in % per minute.
# Contraction: contract_uv RMS at activation 1; rise/fall_tau_ms its time
# constants; effort the target activation drawn per contraction cue;
# reaction_ms the cue-to-movement delay range.
# Guarding: relax_floor the activation kept on relaxing after a
# contraction, decaying with guard_s (letgo_s while feedback sounds).
# Fatigue: holding wears the drive down in stages of time constant
# fatigue_s (at full effort) towards sustain, the fraction of the capacity
# a long hold keeps; rest restores it with recover_s. The metabolic state
# behind the conduction velocity builds with mdf_fatigue_s and clears with
# mdf_recover_s; cv_drop is the velocity lost when it is full.
# motion_per_min: rate of motion artefacts (sim/emg_model.py draws them).
# spectrum_scale: the action potentials' spectrum against the healthy one
# (a dysfunctional floor has a lower median frequency).


class Profile(TypedDict):
    rest_uv: float
    rest_wander: float
    wander_s: float
    tone_floor_uv: float
    learn_per_min: float
    tension_pct_min: float
    contract_uv: float
    rise_tau_ms: float
    fall_tau_ms: float
    effort: tuple[float, float]
    reaction_ms: tuple[float, float]
    relax_floor: float
    guard_s: float
    letgo_s: float
    fatigue_s: float
    recover_s: float
    sustain: float
    mdf_fatigue_s: float
    mdf_recover_s: float
    cv_drop: float
    motion_per_min: float
    spectrum_scale: float


PROFILES: dict[str, Profile] = {
    "healthy": {
        "rest_uv": 6.7,
        "rest_wander": 0.08,
        "wander_s": 3.0,
        "tone_floor_uv": 5.0,
        "learn_per_min": 0.5,
        "tension_pct_min": 0.0,
        "contract_uv": 46.0,
        "rise_tau_ms": 40,
        "fall_tau_ms": 80,
        "effort": (0.85, 1.0),
        "reaction_ms": (300, 600),
        "relax_floor": 0.0,
        "guard_s": 1.0,
        "letgo_s": 1.0,
        "fatigue_s": 4.0,
        "recover_s": 3.0,
        "sustain": 0.2,
        "mdf_fatigue_s": 90.0,
        "mdf_recover_s": 30.0,
        "cv_drop": 0.35,
        "motion_per_min": 0.2,
        "spectrum_scale": 1.0,
    },
    "hypertonic": {
        "rest_uv": 15.0,
        "rest_wander": 0.2,
        "wander_s": 1.5,
        "tone_floor_uv": 9.0,
        "learn_per_min": 0.2,
        "tension_pct_min": 0.0,
        "contract_uv": 50.0,
        "rise_tau_ms": 300,
        "fall_tau_ms": 2500,
        "effort": (0.8, 1.0),
        "reaction_ms": (350, 600),
        "relax_floor": 0.35,
        "guard_s": 90.0,
        "letgo_s": 10.0,
        "fatigue_s": 4.0,
        "recover_s": 3.0,
        "sustain": 0.2,
        "mdf_fatigue_s": 80.0,
        "mdf_recover_s": 30.0,
        "cv_drop": 0.35,
        "motion_per_min": 0.5,
        "spectrum_scale": 0.8,
    },
    "weak": {
        "rest_uv": 4.0,
        "rest_wander": 0.08,
        "wander_s": 3.0,
        "tone_floor_uv": 3.5,
        "learn_per_min": 0.5,
        "tension_pct_min": 0.0,
        "contract_uv": 15.0,
        "rise_tau_ms": 400,
        "fall_tau_ms": 300,
        "effort": (0.7, 1.0),
        "reaction_ms": (300, 600),
        "relax_floor": 0.0,
        "guard_s": 1.0,
        "letgo_s": 1.0,
        "fatigue_s": 1.5,
        "recover_s": 6.0,
        "sustain": 0.15,
        "mdf_fatigue_s": 40.0,
        "mdf_recover_s": 40.0,
        "cv_drop": 0.35,
        "motion_per_min": 0.2,
        "spectrum_scale": 0.88,
    },
    # hypertonic and anxious: the tone creeps up while a session runs
    "anxious": {
        "rest_uv": 10.0,
        "rest_wander": 0.25,
        "wander_s": 1.5,
        "tone_floor_uv": 8.0,
        "learn_per_min": 0.05,
        "tension_pct_min": 12.0,
        "contract_uv": 45.0,
        "rise_tau_ms": 250,
        "fall_tau_ms": 1500,
        "effort": (0.75, 1.0),
        "reaction_ms": (300, 700),
        "relax_floor": 0.2,
        "guard_s": 40.0,
        "letgo_s": 15.0,
        "fatigue_s": 4.0,
        "recover_s": 3.0,
        "sustain": 0.2,
        "mdf_fatigue_s": 80.0,
        "mdf_recover_s": 30.0,
        "cv_drop": 0.35,
        "motion_per_min": 1.0,
        "spectrum_scale": 0.85,
    },
}

# what a heard change does, after a reaction time
_CONTRACT = 0
_RELAX = 1
_STOP = 2  # done, alarm, advice: stop and relax; the session is over
_FEEDBACK_ON = 3
_FEEDBACK_OFF = 4
_RISE = 5  # set the tension rise, % per minute


class Patient:
    """Muscle activity sample by sample; what the patient hears changes it after a reaction time."""

    def __init__(self, profile="healthy", seed=0, rate_hz=2000):
        if profile not in PROFILES:
            raise ValueError(f"unknown patient profile {profile!r} (known: {', '.join(sorted(PROFILES))})")
        self.name = profile
        p = PROFILES[profile]
        self.profile = p
        self.rate_hz = rate_hz
        self._rng = np.random.default_rng([seed, 1])
        self._step = max(1, STEP_MS * rate_hz // 1000)
        self._phi = math.exp(-1.0 / (p["wander_s"] * rate_hz))  # AR(1) pole of the wander
        self._wander_b = np.array([math.sqrt(1 - self._phi**2)])
        self._wander_a = np.array([1.0, -self._phi])
        self._wander_zi = np.zeros(1)
        self._changes: deque[tuple[int, int, float | None]] = (
            deque()
        )  # (sample index, kind, value), in time order
        self._next = 0  # index of the next sample to compute
        self._in_session = False
        # states at sample _next
        self._cmd = 0.0  # commanded activation
        self._target = 0.0
        self._effort = 1.0  # of the last contraction
        self._contracted = False
        self._guard = 0.0
        self._feedback = False
        self._rise_pct = 0.0
        self._tone = p["rest_uv"]
        self._wear = [0.0] * _STAGES  # fatigue of the drive, stage by stage; the last is the capacity lost
        self._metabolic = 0.0  # 0..1, drives the conduction velocity
        self._activation = 0.0

    # -- what can be observed -------------------------------------------------

    @property
    def activation(self):
        """Activation the muscle delivers (0 rest .. 1 maximal) at the last synthesised sample."""
        return self._activation

    @property
    def rest_tone_uv(self):
        """The resting tone's level (µV RMS, without its wander) now: learnt down or tensed up."""
        return self._tone

    @property
    def capacity(self):
        """Fraction of the commanded activation the muscle can deliver now (1 fresh)."""
        return 1.0 - (1.0 - self.profile["sustain"]) * self._wear[-1]

    @property
    def conduction(self):
        """Conduction-velocity ratio now (1 fresh); the EMG spectrum scales with it."""
        return 1.0 - self.profile["cv_drop"] * self._metabolic

    # -- what the patient hears and does --------------------------------------

    def hear(self, hz, t_us):
        """The buzzer changed to hz (0: silence) at simulated time t_us."""
        if hz == TONE_CONTRACT_HZ:
            kind = _CONTRACT
        elif TONE_FEEDBACK_MIN_HZ <= hz <= TONE_FEEDBACK_MAX_HZ:
            kind = _FEEDBACK_ON
        elif hz == 0:
            kind = _FEEDBACK_OFF
        elif hz in (TONE_DONE_HZ, TONE_ALARM_HZ, TONE_ADVICE_HZ):
            kind = _STOP
        else:
            kind = _RELAX  # the relax tone, or one she was not taught: let go
        at = self._after_reaction(t_us)
        if kind in (_CONTRACT, _RELAX):
            if not self._in_session:
                self._in_session = True
                self._schedule(at, _RISE, self.profile["tension_pct_min"])
        elif kind == _STOP:
            self._in_session = False
        value = self._rng.uniform(*self.profile["effort"]) if kind == _CONTRACT else None
        self._schedule(at, kind, value)

    def tense_up(self, percent_per_minute, t_us=None):
        """From t_us (default: the next sample) the resting tone rises this % per minute to a stop tone."""
        at = self._next if t_us is None else -(-int(t_us * self.rate_hz) // 1_000_000)
        self._schedule(at, _RISE, float(percent_per_minute))

    def _after_reaction(self, t_us):
        react_us = self._rng.uniform(*self.profile["reaction_ms"]) * 1000
        return -(-int((t_us + react_us) * self.rate_hz) // 1_000_000)

    def _schedule(self, at, kind, value):
        # samples already synthesised cannot change (a guard: reactions are
        # far longer than the synthesis look-ahead)
        at = max(at, self._next)
        if self._changes and at < self._changes[-1][0]:
            at = self._changes[-1][0]  # a later change never overtakes an earlier one
        self._changes.append((at, kind, value))

    def _apply(self, kind, value):
        p = self.profile
        if kind == _CONTRACT:
            self._target = value
            self._effort = value
            self._contracted = True
        elif kind in (_RELAX, _STOP):
            if self._contracted and self._target > 0:
                # guarding shrinks as she learns to let go
                learnt = (self._tone - p["tone_floor_uv"]) / (p["rest_uv"] - p["tone_floor_uv"])
                self._guard = p["relax_floor"] * min(max(learnt, 0.0), 1.0)
            self._target = 0.0
            if kind == _STOP:
                self._rise_pct = 0.0
                self._feedback = False
        elif kind == _FEEDBACK_ON:
            self._feedback = True
        elif kind == _FEEDBACK_OFF:
            self._feedback = False
        else:
            self._rise_pct = value

    # -- synthesis --------------------------------------------------------------

    def muscle(self, n):
        """(RMS µV, conduction-velocity ratio) of the muscle's EMG for the next n samples."""
        act = np.empty(n)
        cv = np.empty(n)
        tone = np.empty(n)
        start = self._next
        pos = 0
        while pos < n:
            if self._changes and self._changes[0][0] <= start + pos:
                _at, kind, value = self._changes.popleft()
                self._apply(kind, value)
                continue
            end = min(n, pos + self._step)
            if self._changes:
                end = min(end, self._changes[0][0] - start)
            self._segment(pos, end, act, cv, tone)
            pos = end
        self._next = start + n
        p = self.profile
        sigma = p["rest_wander"]
        w = self._rng.standard_normal(n)
        x, self._wander_zi = lfilter_chunk(self._wander_b, self._wander_a, w, self._wander_zi)
        rest = tone * np.exp(sigma * x - sigma * sigma)  # E[rest²] = tone²
        vol = math.sqrt(p["contract_uv"] ** 2 - p["rest_uv"] ** 2) * act
        return np.sqrt(rest * rest + vol * vol), cv

    def _segment(self, pos, end, act_out, cv_out, tone_out):
        """Samples pos..end with constant target, feedback and tension: fills activation, cv and tone."""
        p = self.profile
        rate = self.rate_hz
        m = end - pos
        dt = m / rate
        k = np.arange(1, m + 1)
        # commanded activation: first order towards the target
        a0 = self._cmd
        target = self._target
        tau = (p["rise_tau_ms"] if target > a0 else p["fall_tau_ms"]) * rate / 1000.0
        cmd = target + (a0 - target) * np.exp(-k / tau)
        self._cmd = float(cmd[-1])
        # guarding lets go slowly, faster while feedback asks her to
        relaxing = target == 0.0
        guard_tau = (p["letgo_s"] if self._feedback and relaxing else p["guard_s"]) * rate
        guard = self._guard * np.exp(-k / guard_tau)
        self._guard = float(guard[-1])
        # slow states over the segment: from their start to their end, linearly.
        # Holding wears the drive down through two stages (a flat start, then
        # a fall); the metabolic state follows the activation delivered.
        frac = k / m
        cap0 = self.capacity
        cv0 = self.conduction
        held = min(float(np.mean(cmd)) / self._effort, 1.0)  # holding at all wears, whatever the effort
        goal = 1.0
        wear = self._wear
        for i in range(_STAGES):
            before = wear[i]
            wear[i] = _toward(before, goal, held, p["fatigue_s"], p["recover_s"], dt)
            goal = (before + wear[i]) / 2  # the next stage follows this one's mean over the step
        self._metabolic = _toward(self._metabolic, 1.0, held, p["mdf_fatigue_s"], p["mdf_recover_s"], dt)
        act = np.maximum(cmd * (cap0 + (self.capacity - cap0) * frac), guard)
        cv_out[pos:end] = cv0 + (self.conduction - cv0) * frac
        tone0 = self._tone
        tone1 = tone0
        if self._feedback and relaxing:
            floor = p["tone_floor_uv"]
            if tone1 > floor:
                tone1 = floor + (tone1 - floor) * math.exp(-p["learn_per_min"] * dt / 60.0)
        if self._rise_pct:
            tone1 = min(tone1 * (1.0 + self._rise_pct / 100.0) ** (dt / 60.0), p["contract_uv"] / 2)
        self._tone = tone1
        tone_out[pos:end] = tone0 + (tone1 - tone0) * frac
        act_out[pos:end] = act
        self._activation = float(act[-1])


def _toward(state, goal, act, build_s, clear_s, dt):
    """A state that moves to goal in proportion to activation and back to 0 at rest, over dt seconds.

    Exact for constant act and goal: d/dt = act (goal - state) / build_s - (1 - act) state / clear_s.
    """
    up = act / build_s
    k = up + (1.0 - act) / clear_s
    eq = up * goal / k
    return eq + (state - eq) * math.exp(-k * dt)
