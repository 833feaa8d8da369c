"""The EMG signal at the front end's output: muscle, noise, mains, electrode faults.

Surface EMG is close to Gaussian noise band-limited to about 20-450 Hz whose
RMS follows the number of active motor units, so the muscle term is white
noise through a 4th-order Butterworth band-pass, scaled to unit RMS and
multiplied by the patient's RMS. The amplifier adds white noise and the room
adds 50 Hz mains hum. Samples are ints in 0.1 µV, clipped to the front end's
input range like an ADC.

Synthesis runs ahead in chunks (numpy is slow per call, fast per sample).
That stays causal: a chunk (100 ms) is shorter than a patient's reaction
time (300 ms or more), so no cue seen while it plays could have changed it,
and the patient never alters samples already made. Electrode and front-end faults
(lead-off, saturation) are applied when samples are taken, so they start at
the instant they are injected.
"""

import numpy as np
from scipy.signal import butter, sosfilt

from firmware import hal as H

# ADS1292R-class front end at PGA gain 6, Vref 2.42 V: +-403 mV input range
FULL_SCALE_DV = 4_000_000
BAND_HZ = (20.0, 450.0)
CHUNK_MS = 100
_WARMUP_S = 0.5


class EmgModel:
    def __init__(self, patient, seed=0, rate_hz=2000, amp_noise_uv=0.5, mains_uv=0.8, mains_hz=50):
        if not isinstance(mains_hz, int):
            raise TypeError("mains_hz is an integer (50 or 60)")
        self.patient = patient
        self.rate_hz = rate_hz
        self.amp_noise_uv = amp_noise_uv
        self.mains_uv = mains_uv
        self.mains_hz = mains_hz
        self.lead_off = False
        self.saturated = False
        self._rng = np.random.default_rng([seed, 2])
        self._sos = butter(4, BAND_HZ, btype="bandpass", fs=rate_hz, output="sos")
        impulse = np.zeros(4 * rate_hz)
        impulse[0] = 1.0
        # white noise of unit variance comes out with variance sum(h^2)
        self._gain = float(np.sqrt(np.sum(sosfilt(self._sos, impulse) ** 2)))
        # start the filter in its steady state, not at rest
        warmup = self._rng.standard_normal(int(_WARMUP_S * rate_hz))
        _, self._zi = sosfilt(self._sos, warmup, zi=np.zeros((len(self._sos), 2)))
        self._mains_phase = self._rng.uniform(0, 2 * np.pi)
        self._chunk = max(1, CHUNK_MS * rate_hz // 1000)
        self._buf = np.zeros(0, dtype=np.int32)
        self._railed = False  # some sample of _buf reads the rail
        self._pos = 0
        self._generated = 0  # samples synthesised since the start

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

    def _synthesise(self, n):
        rng = self._rng
        y, self._zi = sosfilt(self._sos, rng.standard_normal(n), zi=self._zi)
        muscle = self.patient.rms_uv(n) * (y / self._gain)
        k = self._generated + np.arange(n, dtype=np.int64)
        # integer phase keeps the hum exact however long the run
        phase = 2 * np.pi * ((k * self.mains_hz) % self.rate_hz) / self.rate_hz + self._mains_phase
        uv = muscle + self.amp_noise_uv * rng.standard_normal(n) + self.mains_uv * np.sqrt(2) * np.sin(phase)
        self._generated += n
        return np.clip(np.rint(uv * 10), -FULL_SCALE_DV, FULL_SCALE_DV).astype(np.int32)
