"""The simulated patient: pelvic-floor muscle activity that follows the device's cues.

The output is the RMS amplitude (µV) of the muscle's own EMG at every
sample; sim/emg_model.py turns it into a signal. Two independent motor-unit
pools add in power: a resting tone that wanders slowly (log-normal, so its
mean-square stays at rest_uv²) and voluntary activation between 0 and 1
that moves towards a target with first-order rise and fall time constants.
The patient reacts to a cue after a random reaction time; a hypertonic
floor that has contracted does not let go completely (relax_floor).

Profiles are data. Figures are typical of intravaginal surface EMG in the
literature (resting tone a few µV RMS, maximal voluntary contraction tens of
µV); a later issue refines them (fatigue, motion artefact).
"""

import math
from collections import deque

import numpy as np
from scipy.signal import lfilter

from protocol.messages import CUE_CONTRACT, CUE_RELAX, CUE_REST

# rest_uv: resting-tone RMS; rest_wander: log-normal sigma of its slow
# wander, with time constant wander_s; contract_uv: RMS at a full
# contraction (activation 1); rise/fall_tau_ms: time constants of the
# activation; relax_floor: activation kept after relaxing from a
# contraction; reaction_ms: cue-to-movement delay range; effort: activation
# reached on a contraction cue, drawn per cue.
PROFILES = {
    "healthy": {
        "rest_uv": 6.0,
        "rest_wander": 0.08,
        "wander_s": 3.0,
        "contract_uv": 50.0,
        "rise_tau_ms": 150,
        "fall_tau_ms": 250,
        "relax_floor": 0.0,
        "reaction_ms": (300, 600),
        "effort": (0.85, 1.0),
    },
    "hypertonic": {
        "rest_uv": 15.0,
        "rest_wander": 0.2,
        "wander_s": 1.5,
        "contract_uv": 50.0,
        "rise_tau_ms": 300,
        "fall_tau_ms": 2500,
        "relax_floor": 0.3,
        "reaction_ms": (350, 600),
        "effort": (0.8, 1.0),
    },
    "weak": {
        "rest_uv": 4.0,
        "rest_wander": 0.08,
        "wander_s": 3.0,
        "contract_uv": 15.0,
        "rise_tau_ms": 400,
        "fall_tau_ms": 300,
        "relax_floor": 0.0,
        "reaction_ms": (300, 600),
        "effort": (0.7, 1.0),
    },
}


class Patient:
    """Muscle activity sample by sample; cues change it after a reaction time."""

    def __init__(self, profile="healthy", seed=0, rate_hz=2000):
        if profile not in PROFILES:
            raise ValueError(f"unknown patient profile {profile!r} (known: {', '.join(sorted(PROFILES))})")
        self.name = profile
        p = PROFILES[profile]
        self.profile = p
        self.rate_hz = rate_hz
        self._rng = np.random.default_rng([seed, 1])
        self._voluntary_uv = math.sqrt(p["contract_uv"] ** 2 - p["rest_uv"] ** 2)
        self._rise = p["rise_tau_ms"] * rate_hz / 1000.0  # time constants in samples
        self._fall = p["fall_tau_ms"] * rate_hz / 1000.0
        self._phi = math.exp(-1.0 / (p["wander_s"] * rate_hz))  # AR(1) pole of the wander
        self._wander_zi = np.zeros(1)
        self._changes = deque()  # (sample index, target activation), in time order
        self._activation = 0.0
        self._target = 0.0
        self._contracted = False
        self._next = 0  # index of the next sample to compute

    @property
    def activation(self):
        """Voluntary activation (0 rest .. 1 maximal) at the last synthesised sample."""
        return self._activation

    def observe_cue(self, cue, t_us):
        """The patient sees cue at simulated time t_us and responds after a reaction time."""
        p = self.profile
        if cue == CUE_CONTRACT:
            target = self._rng.uniform(*p["effort"])
            self._contracted = True
        elif cue == CUE_REST or cue == CUE_RELAX:
            target = p["relax_floor"] if self._contracted else 0.0
        else:
            return  # a cue this patient was not taught: keep doing what they do
        react_us = self._rng.uniform(*p["reaction_ms"]) * 1000
        at = -(-int((t_us + react_us) * self.rate_hz) // 1_000_000)
        # samples already synthesised cannot change (a guard: reactions are
        # far longer than the synthesis look-ahead)
        at = max(at, self._next)
        if self._changes and at < self._changes[-1][0]:
            at = self._changes[-1][0]  # a later cue never overtakes an earlier one
        self._changes.append((at, target))

    def rms_uv(self, n):
        """Muscle EMG RMS in µV for the next n samples."""
        act = self._activation_block(n)
        p = self.profile
        sigma = p["rest_wander"]
        w = self._rng.standard_normal(n)
        x, self._wander_zi = lfilter([math.sqrt(1 - self._phi**2)], [1.0, -self._phi], w, zi=self._wander_zi)
        rest = p["rest_uv"] * np.exp(sigma * x - sigma * sigma)  # E[rest²] = rest_uv²
        vol = self._voluntary_uv * act
        return np.sqrt(rest * rest + vol * vol)

    def _activation_block(self, n):
        out = np.empty(n)
        start = self._next
        pos = 0
        a = self._activation
        while pos < n:
            if self._changes and self._changes[0][0] <= start + pos:
                self._target = self._changes.popleft()[1]
                continue
            end = n
            if self._changes:
                end = min(n, self._changes[0][0] - start)
            target = self._target
            tau = self._rise if target > a else self._fall
            k = np.arange(1, end - pos + 1)
            seg = target + (a - target) * np.exp(-k / tau)
            out[pos:end] = seg
            a = float(seg[-1])
            pos = end
        self._activation = a
        self._next = start + n
        return out
