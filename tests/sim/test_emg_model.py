"""The simulated patient and EMG signal, measured the way a clinician would."""

import numpy as np
import pytest
from scipy.signal import welch

from firmware import hal as H
from firmware.patient_io import TONE_CONTRACT_HZ as CONTRACT
from firmware.patient_io import TONE_RELAX_HZ as RELAX
from sim.emg_model import FULL_SCALE_DV, EmgModel
from sim.patient import Patient

RATE = 2000
BLOCK = 10  # samples per 5 ms tick, as the board takes them


def record(profile, seed, tones, total_ms, motion_per_min=0, block=BLOCK):
    """µV samples of a patient who hears each (time ms, buzzer Hz) at its time."""
    patient = Patient(profile, seed, RATE)
    model = EmgModel(patient, seed, RATE, motion_per_min=motion_per_min)
    pending = sorted(tones)
    out = []
    for k in range(total_ms * RATE // 1000 // block):
        t_ms = k * block * 1000 // RATE
        while pending and pending[0][0] <= t_ms:
            at, hz = pending.pop(0)
            patient.hear(hz, at * 1000)
        samples, status = model.take(block)
        assert status == 0
        out.append(samples.copy())
    return np.concatenate(out) / 10.0


def rms(x, t0_ms, t1_ms):
    seg = x[t0_ms * RATE // 1000 : t1_ms * RATE // 1000]
    return float(np.sqrt(np.mean(seg**2)))


@pytest.mark.req("SIM-EMG-1")
def test_same_seed_same_signal_other_seed_other_signal():
    tones = [(1000, CONTRACT), (1200, 0), (3000, RELAX), (3200, 300), (3700, 0)]
    a = record("anxious", 5, tones, 5000, motion_per_min=30)
    b = record("anxious", 5, tones, 5000, motion_per_min=30)
    c = record("anxious", 6, tones, 5000, motion_per_min=30)
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
        x = record(profile, seed, [(10000, CONTRACT)], 13000)
        rest = rms(x, 0, 10000)
        contraction = rms(x, 11500, 13000)  # after reaction and rise, before fatigue
        assert rest_range[0] <= rest <= rest_range[1], (profile, seed, rest)
        assert contract_range[0] <= contraction <= contract_range[1], (profile, seed, contraction)


@pytest.mark.req("SIM-EMG-2")
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_hypertonic_relaxes_slowly_and_incompletely(seed):
    # long windows: a hypertonic resting tone wanders on a ~1.5 s time scale
    tones = [(20000, CONTRACT), (25000, RELAX)]
    found = {}
    for profile in ("healthy", "hypertonic"):
        x = record(profile, seed, tones, 45000)
        baseline = rms(x, 0, 20000)
        contracted = rms(x, 23000, 25000)
        after = rms(x, 30000, 45000)
        # time after the cue until the 250 ms RMS falls below half way down (a motor-unit signal
        # is spiky: shorter windows scatter too much to time a fall)
        half = (contracted + baseline) / 2
        t = 25000
        while rms(x, t, t + 250) > half:
            t += 50
        found[profile] = (baseline, after, t - 25000)
    h_base, h_after, h_fall = found["healthy"]
    t_base, t_after, t_fall = found["hypertonic"]
    assert h_after < 1.15 * h_base  # a healthy floor lets go
    assert t_after > 1.15 * t_base  # a hypertonic one does not, even 20 s later
    assert t_fall > 2 * h_fall


@pytest.mark.req("SIM-EMG-1")
def test_signal_is_band_limited_with_mains_hum_and_amplifier_noise():
    x = record("healthy", 4, [(1000, CONTRACT)], 6000)
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
        patient.hear(CONTRACT, 1_000_000)
        env, _cv = patient.muscle(3 * RATE)
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


def median_hz(x):
    """Median frequency of x's Welch spectrum over the front end's band."""
    f, p = welch(x, fs=RATE, nperseg=1024)
    band = (f >= 20) & (f <= 450)
    c = np.cumsum(p[band])
    return float(np.interp(c[-1] / 2, c, f[band]))


@pytest.mark.req("SIM-EMG-5")
def test_spectrum_has_the_action_potential_shape_and_rms_follows_activation():
    patient = Patient("healthy", 8, RATE)
    model = EmgModel(patient, 8, RATE, motion_per_min=0)
    assert 85 <= model.fresh_mdf_hz <= 100  # the designed spectrum: limb muscles 85-116 Hz (Krivickas 1998)
    model.take(RATE)
    patient.hear(CONTRACT, 1_000_000)
    x = []
    expected = []
    p = patient.profile
    voluntary = np.sqrt(p["contract_uv"] ** 2 - p["rest_uv"] ** 2)
    for _ in range(40):  # 4 s in 100 ms blocks: rest, reaction, rise, hold
        x.append(model.take(RATE // 10)[0] / 10.0)
        expected.append(np.hypot(patient.rest_tone_uv, voluntary * patient.activation))
    held = np.concatenate(x[20:])
    assert 80 <= median_hz(held) <= 100  # fresh: the spectrum measured is the one designed
    got = np.array([np.sqrt(np.mean(b**2)) for b in x])
    expected = np.array(expected)
    # each 100 ms estimate scatters (the EMG is ~14 motor-unit firings per 100 ms, a few large
    # ones dominating); on average they agree
    ratio = got[22:] / expected[22:]
    assert 0.9 <= np.mean(ratio) <= 1.1 and np.mean(np.abs(ratio - 1) < 0.4) >= 0.8, np.round(ratio, 2)
    assert np.all(got[:4] < 8) and np.all(got[20:] > 15) and np.mean(got[20:]) > 35


@pytest.mark.req("SIM-EMG-6")
@pytest.mark.parametrize("seed", [1, 2])
def test_a_sustained_hold_fatigues_and_rest_restores(seed):
    # 60 s hold at 2 s, 60 s rest, a second contraction at 124 s
    x = record("healthy", seed, [(2000, CONTRACT), (62000, RELAX), (122000, CONTRACT)], 127000, block=200)
    t = np.arange(0, 60, 5) + 2.5
    hold = x[3 * RATE : 63 * RATE]
    mdf = np.array([median_hz(hold[i * 5 * RATE : (i + 1) * 5 * RATE]) for i in range(12)])
    slope, start = np.polyfit(t, mdf, 1)
    pct_per_s = 100 * slope / start
    # published sustained submaximal contractions: a few tenths of a percent per second
    assert -0.6 <= pct_per_s <= -0.15, (pct_per_s, np.round(mdf, 1))
    first, last = rms(x, 3000, 13000), rms(x, 53000, 63000)
    assert last < 0.5 * first  # the long hold sags to what she can keep up
    assert last > 1.3 * rms(x, 0, 2000)  # still held above rest
    again = x[int(123.5 * RATE) : 127 * RATE]
    assert rms(x, 123500, 127000) > 0.85 * rms(x, 3000, 6500)  # amplitude back after a minute's rest
    # and the spectrum: back near the fresh one, clearly above the hold's end
    assert median_hz(again) > max(0.9 * np.mean(mdf[:3]), 1.05 * np.mean(mdf[-3:]))


@pytest.mark.req("SIM-EMG-7")
def test_motion_artefacts_are_large_low_frequency_transients():
    from scipy.signal import butter, sosfiltfilt

    lowpass = butter(2, 10, fs=RATE, output="sos")
    # injected: starts on the next sample taken, low-frequency, at its peak
    model = EmgModel(Patient("healthy", 3, RATE), 3, RATE, motion_per_min=0)
    model.take(RATE)
    model.motion(peak_uv=3000.0)
    x = model.take(RATE)[0] / 10.0
    assert abs(x[0]) < 50 and 2900 <= np.max(np.abs(x)) <= 3100
    f, p = welch(x, fs=RATE, nperseg=1024)
    assert p[f < 20].sum() / p.sum() > 0.99
    assert np.max(np.abs(model.take(2 * RATE)[0] / 10.0)) < 50  # and it is over
    # spontaneous: a Poisson count near the profile's rate, each far above the EMG
    x = record("healthy", 3, [], 120000, motion_per_min=10, block=200)
    slow = np.abs(sosfiltfilt(lowpass, x)) > 80
    onsets = int(np.count_nonzero(slow[1:] & ~slow[:-1]))
    assert 8 <= onsets <= 35, onsets  # 20 expected
