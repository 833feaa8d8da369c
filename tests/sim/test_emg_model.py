"""The simulated patient and EMG signal, measured the way a clinician would."""

import numpy as np
import pytest
from scipy.signal import welch

from firmware import hal as H
from protocol.messages import CUE_CONTRACT, CUE_RELAX
from sim.emg_model import FULL_SCALE_DV, EmgModel
from sim.patient import Patient

RATE = 2000
BLOCK = 10  # samples per 5 ms tick, as the board takes them


def record(profile, seed, cues, total_ms):
    """µV samples of a patient who sees each (time ms, cue) at its time."""
    patient = Patient(profile, seed, RATE)
    model = EmgModel(patient, seed, RATE)
    pending = sorted(cues)
    out = []
    for k in range(total_ms * RATE // 1000 // BLOCK):
        t_ms = k * BLOCK * 1000 // RATE
        while pending and pending[0][0] <= t_ms:
            at, cue = pending.pop(0)
            patient.observe_cue(cue, at * 1000)
        samples, status = model.take(BLOCK)
        assert status == 0
        out.append(samples.copy())
    return np.concatenate(out) / 10.0


def rms(x, t0_ms, t1_ms):
    seg = x[t0_ms * RATE // 1000 : t1_ms * RATE // 1000]
    return float(np.sqrt(np.mean(seg**2)))


@pytest.mark.req("SIM-EMG-1")
def test_same_seed_same_signal_other_seed_other_signal():
    cues = [(1000, CUE_CONTRACT), (3000, CUE_RELAX)]
    a = record("healthy", 5, cues, 5000)
    b = record("healthy", 5, cues, 5000)
    c = record("healthy", 6, cues, 5000)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    assert np.all(a == np.round(a, 1))  # integer 0.1 µV codes


# stated figures: healthy rest ~6 µV / contraction ~50 µV, hypertonic rest
# ~15 µV, weak rest ~4 µV / contraction ~15 µV (RMS)
@pytest.mark.req("SIM-EMG-2")
@pytest.mark.parametrize(
    "profile, rest_range, contract_range",
    [
        ("healthy", (5.0, 7.5), (38.0, 60.0)),
        ("hypertonic", (11.0, 20.0), (38.0, 62.0)),
        ("weak", (3.0, 5.2), (10.0, 18.0)),
    ],
)
def test_profile_amplitudes(profile, rest_range, contract_range):
    for seed in (1, 2):
        x = record(profile, seed, [(10000, CUE_CONTRACT)], 15000)
        rest = rms(x, 0, 10000)
        contraction = rms(x, 12000, 15000)  # after reaction and rise
        assert rest_range[0] <= rest <= rest_range[1], (profile, seed, rest)
        assert contract_range[0] <= contraction <= contract_range[1], (profile, seed, contraction)


@pytest.mark.req("SIM-EMG-2")
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_hypertonic_relaxes_slowly_and_incompletely(seed):
    # long windows: a hypertonic resting tone wanders on a ~1.5 s time scale
    cues = [(20000, CUE_CONTRACT), (25000, CUE_RELAX)]
    found = {}
    for profile in ("healthy", "hypertonic"):
        x = record(profile, seed, cues, 45000)
        baseline = rms(x, 0, 20000)
        contracted = rms(x, 23000, 25000)
        after = rms(x, 30000, 45000)
        # time after the cue until the 100 ms RMS falls below half way down
        half = (contracted + baseline) / 2
        t = 25000
        while rms(x, t, t + 100) > half:
            t += 50
        found[profile] = (baseline, after, t - 25000)
    h_base, h_after, h_fall = found["healthy"]
    t_base, t_after, t_fall = found["hypertonic"]
    assert h_after < 1.15 * h_base  # a healthy floor lets go
    assert t_after > 1.15 * t_base  # a hypertonic one does not, even 20 s later
    assert t_fall > 2 * h_fall


@pytest.mark.req("SIM-EMG-1")
def test_signal_is_band_limited_with_mains_hum_and_amplifier_noise():
    x = record("healthy", 4, [(1000, CUE_CONTRACT)], 6000)
    seg = x[2 * RATE : 6 * RATE]
    f, p = welch(seg, fs=RATE, nperseg=1024)
    band = (f >= 20) & (f <= 450)
    assert p[band].sum() / p.sum() > 0.9  # a 4th-order band edge leaks a little
    # the hum: project a quiet stretch (weak patient at rest) onto 50 Hz
    quiet = record("weak", 4, [], 4000)
    t = np.arange(len(quiet)) / RATE
    amp = 2 * abs(np.mean(quiet * np.exp(-2j * np.pi * 50 * t)))
    assert 0.8 <= amp <= 1.5  # 0.8 µV RMS = 1.13 µV peak
    # far above the muscle band only the amplifier's white noise is left
    f, p = welch(quiet, fs=RATE, nperseg=1024)
    noise_floor = np.sqrt(np.mean(p[(f > 700) & (f < 950)]) * RATE / 2)
    assert 0.3 <= noise_floor <= 0.8  # 0.5 µV RMS over the full band


@pytest.mark.req("SIM-EMG-3")
def test_reaction_time_after_a_cue():
    for seed in range(6):
        patient = Patient("healthy", seed, RATE)
        patient.observe_cue(CUE_CONTRACT, 1_000_000)
        env = patient.rms_uv(3 * RATE)
        onset = int(np.argmax(env > 2 * patient.profile["rest_uv"]))
        delay_ms = onset * 1000 / RATE - 1000
        assert 300 <= delay_ms <= 700, (seed, delay_ms)
        assert np.all(env[:RATE] < 1.5 * patient.profile["rest_uv"])  # nothing before the cue


@pytest.mark.req("SIM-EMG-4")
def test_lead_off_rails_the_input_and_is_flagged():
    model = EmgModel(Patient("healthy", 1, RATE), 1, RATE)
    samples, status = model.take(100)
    assert status == 0
    assert np.max(np.abs(samples)) < FULL_SCALE_DV // 100
    model.lead_off = True
    samples, status = model.take(100)
    assert np.all(samples == FULL_SCALE_DV)
    assert status == H.EMG_LEAD_OFF | H.EMG_SATURATED
    model.lead_off = False
    model.saturated = True
    samples, status = model.take(100)
    assert np.all(np.abs(samples) == FULL_SCALE_DV)
    assert status == H.EMG_SATURATED
    assert len(set(np.sign(samples).tolist())) == 2  # the signal's sign survives, clipped
    model.saturated = False
    samples, status = model.take(100)
    assert status == 0


@pytest.mark.req("SIM-EMG-2")
def test_unknown_profile_is_refused_with_the_known_ones():
    with pytest.raises(ValueError, match="healthy"):
        Patient("athletic")
