"""The EMG signal at the front end's output: muscle, noise, mains, motion, electrode faults.

Surface EMG is the sum of the action potentials of the motor units firing
near the electrodes. Here each firing is an impulse (random sign, log-normal
size: a few large units dominate a surface recording) at Poisson instants,
shaped by the action potentials' spectrum (Shwedyk et al. 1977: a zero at
DC, a pole at FL_HZ and a double pole at FH_HZ) and seen through the front
end's 20-450 Hz band. The number of firings per second that shape the
signal grows with the drive (recruitment and rate coding), so the amplitude
is non-Gaussian: kurtosis ~5-6 in a contraction, higher at rest, as in
recorded surface EMG (docs/simulator.md). Each patient's spectrum is
scaled by her profile's `spectrum_scale` (a lower median frequency in a
dysfunctional floor: White, Jantos & Glazer 1997). Fatigue slows conduction
and compresses the spectrum towards low frequencies (Lindström & Magnusson
1977). The muscle term mixes two such signals, fresh and compressed by
FATIGUED_SCALE, in power: the weight of the compressed one is chosen,
sample by sample, so that the mix's median frequency is the patient's
conduction-velocity ratio times the fresh one. The mix is scaled to unit
RMS and multiplied by the patient's RMS. The amplifier adds white noise,
the room 50 Hz mains hum, and the patient's movements occasional large
low-frequency transients. Samples are ints in 0.1 µV, clipped to the front
end's input range like an ADC. Sources and figures: docs/simulator.md.

Synthesis runs ahead in chunks (numpy is slow per call, fast per sample).
That stays causal: a chunk (100 ms) is shorter than a patient's reaction
time (300 ms or more), so no cue heard while it plays could have changed it,
and the patient never alters samples already made. Electrode and front-end
faults (lead-off, saturation) and injected motion are applied when samples
are taken, so they start at the instant they are injected.

StimArtefact draws what one stimulation pulse adds at the front end's
input (the front end, sim/frontend.py, adds it and clips): the electrode
voltage coupled in during both phases, the input's recovery after the last
one, and the muscle's evoked M-wave when the pulse is above motor threshold.
"""

import numpy as np
from scipy.signal import bilinear_zpk, butter, sosfilt, sosfreqz, zpk2sos

from firmware import hal as H
from sim.filters import sosfilt_chunk

# ADS1292R-class front end at PGA gain 6, Vref 2.42 V: +-403 mV input range
FULL_SCALE_DV = 4_000_000
BAND_HZ = (20.0, 450.0)
FL_HZ = 60.0  # corners of the action-potential spectrum (fresh muscle)
FH_HZ = 120.0
FATIGUED_SCALE = 0.6  # the compressed spectrum: conduction at 60 %
# firings per second shaping the signal, from rest to a maximal drive: kurtosis ~6 at rest, ~5 at full
# effort after the band (docs/simulator.md); sizes log-normal with this sigma
FIRINGS_REST_HZ = 100.0
FIRINGS_MAX_HZ = 140.0
# resting tone comes from small, slowly conducting units; a contraction recruits larger, faster ones
# (size principle): the spectrum at rest is this share of the contraction's
REST_SPECTRUM = 0.85
UNIT_SIZE_SIGMA = 0.5
CHUNK_MS = 100
MOTION_MS = (200, 800)  # duration of a motion transient
MOTION_UV = (100.0, 1500.0)  # peak of a spontaneous one (log-uniform)
_WARMUP_S = 0.5
_TABLE = 101  # mixing weights tabulated against median frequency

# Stimulation artefact (docs/simulator.md, "Stimulation artefact")
COUPLING = 0.1  # share of the electrode voltage seen between the EMG inputs
RECOVERY_US = 200  # input recovery after a pulse: from the rail to 1 µV in ~2.6 ms
RHEOBASE_UA = 12000  # motor threshold I = rheobase * (1 + chronaxie / phase width)
CHRONAXIE_US = 200
MWAVE_UV = 40.0  # M-wave peak with every motor unit recruited (at twice the threshold)
MWAVE_LATENCY_US = 6000
MWAVE_US = 8000  # one biphasic period: over by 14 ms after the pulse
_QUIET = 0.1  # 0.01 µV: the recovery tail is drawn until it is below this (0.1 µV units)


class EmgModel:
    def __init__(
        self, patient, seed=0, rate_hz=2000, amp_noise_uv=0.5, mains_uv=0.8, mains_hz=50, motion_per_min=None
    ):
        """motion_per_min: spontaneous motion artefacts; None takes the patient profile's rate."""
        if not isinstance(mains_hz, int):
            raise TypeError("mains_hz is an integer (50 or 60)")
        self.patient = patient
        self.rate_hz = rate_hz
        self.amp_noise_uv = amp_noise_uv
        self.mains_uv = mains_uv
        self.mains_hz = mains_hz
        if motion_per_min is None:
            motion_per_min = patient.profile["motion_per_min"]
        self.motion_per_min = motion_per_min
        self.lead_off = False
        self.saturated = False
        self._rng = np.random.default_rng([seed, 2])
        self._band = butter(4, BAND_HZ, btype="bandpass", fs=rate_hz, output="sos")
        scale = patient.profile["spectrum_scale"]
        self._shapes = (_shape(scale, rate_hz), _shape(scale * FATIGUED_SCALE, rate_hz))
        self._gains, self._mdf_ratio, self._weight, self.fresh_mdf_hz = _mixing(
            self._shapes, self._band, rate_hz
        )
        # start every filter in its steady state, not at rest
        warmup = int(_WARMUP_S * rate_hz)
        self._zi = []
        for sos in (*self._shapes, self._band):
            _, zi = sosfilt(sos, self._rng.standard_normal(warmup), zi=np.zeros((len(sos), 2)))
            self._zi.append(zi)
        self._mains_phase = self._rng.uniform(0, 2 * np.pi)
        self._chunk = max(1, CHUNK_MS * rate_hz // 1000)
        self._buf = np.zeros(0, dtype=np.int32)
        self._railed = False  # some sample of _buf reads the rail
        self._pos = 0
        self._generated = 0  # samples synthesised since the start
        self._taken = 0  # samples taken since the start
        self._overlay = np.zeros(0)  # motion (µV) still to add, from sample _overlay_at
        self._overlay_at = 0

    def motion(self, peak_uv=2000.0):
        """A movement now: a low-frequency transient of peak_uv on the next samples taken."""
        self._add_motion(self._taken, peak_uv * self._rng.choice((-1.0, 1.0)))

    def take(self, n):
        """The next n samples (int32, 0.1 µV; valid until the next call) and their EMG_* conditions."""
        pos = self._pos
        if pos + n <= len(self._buf):
            out = self._buf[pos : pos + n]  # the usual case: a view, no copy
            self._pos = pos + n
            railed = self._railed
        else:
            out = np.empty(n, dtype=np.int32)
            filled = 0
            railed = False
            while filled < n:
                if self._pos == len(self._buf):
                    self._buf = self._synthesise(max(self._chunk, n - filled))
                    self._railed = bool(np.any(np.abs(self._buf) >= FULL_SCALE_DV))
                    self._pos = 0
                k = min(n - filled, len(self._buf) - self._pos)
                out[filled : filled + k] = self._buf[self._pos : self._pos + k]
                self._pos += k
                filled += k
                railed = railed or self._railed
        start = self._taken
        self._taken = start + n
        if self._overlay_at < self._taken and len(self._overlay):
            out, railed = self._with_motion(out, start)
        status = 0
        if self.lead_off:
            # the lead-off current sources pull the open input to the rail
            out = np.full(n, FULL_SCALE_DV, dtype=np.int32)
            status = H.EMG_LEAD_OFF | H.EMG_SATURATED
        elif self.saturated:
            # an input far beyond range (motion or stimulation artefact)
            out = np.where(out >= 0, FULL_SCALE_DV, -FULL_SCALE_DV).astype(np.int32)
            status = H.EMG_SATURATED
        elif railed and n and int(np.max(np.abs(out))) >= FULL_SCALE_DV:
            status = H.EMG_SATURATED
        return out, status

    def _with_motion(self, out, start):
        n = len(out)
        lo = self._overlay_at - start  # where the overlay starts in out (may be < 0: consumed earlier)
        a = max(lo, 0)
        b = min(n, lo + len(self._overlay))
        added = out.astype(np.int64)
        added[a:b] += np.rint(self._overlay[a - lo : b - lo] * 10).astype(np.int64)
        np.clip(added, -FULL_SCALE_DV, FULL_SCALE_DV, out=added)
        keep = self._overlay_at + len(self._overlay) - self._taken
        if keep > 0:
            self._overlay = self._overlay[len(self._overlay) - keep :]
            self._overlay_at = self._taken
        else:
            self._overlay = np.zeros(0)
        out = added.astype(np.int32)
        return out, bool(np.any(np.abs(out) >= FULL_SCALE_DV))

    def _add_motion(self, at, peak_uv):
        """Add a transient starting at absolute sample index at (>= the next one taken)."""
        rng = self._rng
        m = int(rng.uniform(*MOTION_MS) * self.rate_hz / 1000)
        # a raised-cosine bump: the electrode shifts and settles (energy below ~1/duration Hz)
        wave = peak_uv * np.sin(np.pi * np.arange(m) / m) ** 2
        begin, end = at, at + m
        old = len(self._overlay)
        if old:
            begin = min(begin, self._overlay_at)
            end = max(end, self._overlay_at + old)
        merged = np.zeros(end - begin)
        if old:
            merged[self._overlay_at - begin : self._overlay_at - begin + old] = self._overlay
        merged[at - begin : at - begin + m] += wave
        self._overlay = merged
        self._overlay_at = begin

    def _synthesise(self, n):
        rng = self._rng
        rms_uv, cv = self.patient.muscle(n)
        drive = np.clip(rms_uv / self.patient.profile["contract_uv"], 0.0, 1.0)
        cv = cv * (REST_SPECTRUM + (1.0 - REST_SPECTRUM) * drive)
        w = np.interp(cv, self._mdf_ratio, self._weight)  # power of the compressed spectrum
        rate_hz = FIRINGS_REST_HZ + (FIRINGS_MAX_HZ - FIRINGS_REST_HZ) * drive
        zi = self._zi
        fresh, zi[0] = sosfilt_chunk(self._shapes[0], self._firings(rate_hz), zi[0])
        tired, zi[1] = sosfilt_chunk(self._shapes[1], self._firings(rate_hz), zi[1])
        mix = np.sqrt(1.0 - w) * (fresh / self._gains[0]) + np.sqrt(w) * (tired / self._gains[1])
        y, zi[2] = sosfilt_chunk(self._band, mix, zi[2])
        muscle = rms_uv * y
        k = self._generated + np.arange(n, dtype=np.int64)
        # integer phase keeps the hum exact however long the run
        phase = 2 * np.pi * ((k * self.mains_hz) % self.rate_hz) / self.rate_hz + self._mains_phase
        uv = muscle + self.amp_noise_uv * rng.standard_normal(n) + self.mains_uv * np.sqrt(2) * np.sin(phase)
        for _ in range(rng.poisson(self.motion_per_min * n / (60.0 * self.rate_hz))):
            lo, hi = np.log(MOTION_UV)
            peak = np.exp(rng.uniform(lo, hi)) * rng.choice((-1.0, 1.0))
            self._add_motion(self._generated + int(rng.integers(n)), peak)
        self._generated += n
        return np.clip(np.rint(uv * 10), -FULL_SCALE_DV, FULL_SCALE_DV).astype(np.int32)

    def _firings(self, rate_hz):
        """Motor-unit firings per sample (rate_hz: firings/s at each sample), unit variance."""
        rng = self._rng
        p = rate_hz / self.rate_hz
        counts = rng.poisson(p)
        at = np.repeat(np.arange(len(p)), counts)
        sizes = np.exp(UNIT_SIZE_SIGMA * rng.standard_normal(len(at))) * rng.choice((-1.0, 1.0), len(at))
        x = np.zeros(len(p))
        np.add.at(x, at, sizes)
        return x / np.sqrt(p * np.exp(2 * UNIT_SIZE_SIGMA**2))


def _shape(scale, rate_hz):
    """The action potentials' spectrum, |H|² = f² fh⁴ / ((f² + fl²)(f² + fh²)²), compressed by scale."""
    wl = 2 * np.pi * FL_HZ * scale
    wh = 2 * np.pi * FH_HZ * scale
    z, p, k = bilinear_zpk([0.0], [-wl, -wh, -wh], wh * wh, rate_hz)
    return zpk2sos(z, p, k)


def _mixing(shapes, band, rate_hz):
    """The two spectra's unit-RMS gains, the compressed one's weight against the mix's median ratio,
    and the fresh median."""
    psd = []
    gains = []
    for sos in shapes:
        f, h = sosfreqz(np.vstack([sos, band]), worN=8192, fs=rate_hz)
        p = np.abs(h) ** 2
        gains.append(float(np.sqrt(np.mean(p))))  # RMS out for unit white noise in
        psd.append(p / np.sum(p))
    weight = np.linspace(0.0, 1.0, _TABLE)
    mdf = np.empty(_TABLE)
    for i, w in enumerate(weight):
        mdf[i] = np.interp(0.5, np.cumsum((1 - w) * psd[0] + w * psd[1]), f)
    return gains, mdf[::-1] / mdf[0], weight[::-1], float(mdf[0])  # ratio increasing, for np.interp


class StimArtefact:
    """What a stimulation pulse adds at the front end's input, sample by sample (0.1 µV).

    The EMG electrodes share the patient with the stimulator: during each
    phase a share `coupling` of the electrode voltage appears between them
    (+ in the first phase, - in the second). After the pulse the input
    filter and amplifier return to baseline from the last phase's level,
    clamped at the input range, with time constant recovery_us. A sample
    is the mean of its interval (the converter's decimation filter as a
    boxcar); a sample during which the input went beyond full scale reads
    the rail (the delta-sigma modulator overloads). Above the motor
    threshold (strength-duration: rheobase * (1 + chronaxie / phase)) the
    muscle answers with an M-wave, MWAVE_LATENCY_US after the pulse, whose
    peak grows linearly from 0 at threshold to mwave_uv at twice it.
    """

    def __init__(
        self,
        rate_hz,
        coupling=COUPLING,
        recovery_us=RECOVERY_US,
        mwave_uv=MWAVE_UV,
        rheobase_ua=RHEOBASE_UA,
        chronaxie_us=CHRONAXIE_US,
    ):
        self.rate_hz = rate_hz
        self.coupling = coupling
        self.recovery_us = recovery_us
        self.mwave_uv = mwave_uv
        self.rheobase_ua = rheobase_ua
        self.chronaxie_us = chronaxie_us

    def threshold_ua(self, phase_us):
        """Motor threshold of a pulse of this phase width (µA)."""
        return self.rheobase_ua * (1.0 + self.chronaxie_us / phase_us)

    def wave(self, pulse):
        """(first sample, added values, overloaded) for pulse (a sim.output.Pulse).

        Sample k covers [k, k + 1) / rate_hz s of simulated time. Values are
        float 0.1 µV; overloaded[i] marks samples that read the rail (with
        the sign of their value).
        """
        rate = self.rate_hz
        t0, ph, gap, end = pulse.t_us, pulse.phase_us, pulse.gap_us, pulse.end_us
        a = self.coupling * pulse.mv * 10_000  # mV -> 0.1 µV
        e1 = min(t0 + ph, end)
        s2 = t0 + ph + gap
        level = -a if end > s2 else a  # where the input stands when the pulse ends
        level = float(np.clip(level, -FULL_SCALE_DV, FULL_SCALE_DV))
        tau = float(self.recovery_us)
        stop = end + tau * np.log(max(abs(level), _QUIET) / _QUIET)
        mwave = 0.0
        if self.mwave_uv and pulse.ua1 > 0:
            th = self.threshold_ua(ph)
            mwave = self.mwave_uv * 10 * float(np.clip(pulse.ua1 / th - 1.0, 0.0, 1.0))
        if mwave:
            stop = max(stop, t0 + MWAVE_LATENCY_US + MWAVE_US)
        k0 = t0 * rate // 1_000_000
        k1 = int(np.ceil(stop * rate / 1e6)) + 1
        lo = np.arange(k0, k1, dtype=np.float64) * 1e6 / rate  # each sample's interval, µs
        hi = lo + 1e6 / rate
        area = a * (_overlap(lo, hi, t0, e1) - _overlap(lo, hi, s2, end))
        # the recovery: level * exp(-(t - end) / tau) from end on, integrated over each interval
        x0 = np.maximum(lo, end)
        after = hi > end
        area[after] += level * tau * (np.exp(-(x0[after] - end) / tau) - np.exp(-(hi[after] - end) / tau))
        values = area * rate / 1e6
        peak = np.where(after, abs(level) * np.exp(-(x0 - end) / tau), 0.0)
        during = (_overlap(lo, hi, t0, e1) + _overlap(lo, hi, s2, end)) > 0
        peak[during] = a
        overloaded = (peak > FULL_SCALE_DV) & (values != 0)
        if mwave:
            mid = (lo + hi) / 2 - t0 - MWAVE_LATENCY_US
            inside = (mid >= 0) & (mid < MWAVE_US)
            values[inside] += mwave * np.sin(2 * np.pi * mid[inside] / MWAVE_US)
        return k0, values, overloaded


def _overlap(lo, hi, a, b):
    """Length (µs) of [lo, hi) within [a, b), element-wise."""
    return np.clip(np.minimum(hi, b) - np.maximum(lo, a), 0.0, None)
