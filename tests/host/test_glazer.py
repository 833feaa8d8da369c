"""The host's Glazer analysis on signals whose answers are known by construction."""

import numpy as np
import pytest
from scipy.signal import butter, sosfilt

from host import glazer
from host.client import Cue

RATE = 2000
pytestmark = pytest.mark.req("EMG-GLAZER-1")


def _cues(phasic_rest_s=10, t0_ms=5000, phase=0):
    plan = [("REST", 60)]
    plan += [("CONTRACT", 2), ("REST", phasic_rest_s)] * 5
    plan += [("CONTRACT", 10), ("REST", 10)] * 5
    plan += [("CONTRACT", 60), ("REST", 60)]
    cues, t = [], t0_ms
    for i, (cue, s) in enumerate(plan):
        cues.append(Cue(i, i, cue, t, s * 1000, phase))
        t += s * 1000
    return cues, t


def _noise(rng, n, lo=20.0, hi=450.0):
    x = sosfilt(butter(4, (lo, hi), btype="bandpass", fs=RATE, output="sos"), rng.standard_normal(n + RATE))[
        RATE:
    ]
    return x / np.sqrt(np.mean(x * x))


def _synth(amplitude_at, cues, end_ms, seed=0, slowing=False):
    """Unit-RMS EMG times amplitude_at(t_s) (µV); with slowing, the endurance spectrum drifts down."""
    rng = np.random.default_rng(seed)
    n = end_ms * RATE // 1000
    t = np.arange(n) / RATE
    x = _noise(rng, n) * amplitude_at(t)
    if slowing:
        end = cues[21]
        a, b = end.time_ms * RATE // 1000, (end.time_ms + end.duration_ms) * RATE // 1000
        # the endurance hold: a fast component fades into a slow one over 60 s
        w = np.linspace(0, 1, b - a)
        fast, slow = _noise(rng, b - a, 150, 450), _noise(rng, b - a, 20, 80)
        mix = np.sqrt(1 - w) * fast + np.sqrt(w) * slow
        x[a:b] = mix * amplitude_at(t[a:b])
    return x


def _levels(cues, rest=6.0, phasic=50.0, tonic=37.0, endurance=16.0, post=7.0, rise_s=0.3):
    spans = [(c.time_ms / 1000, (c.time_ms + c.duration_ms) / 1000, c.cue) for c in cues]

    def amp(t):
        a = np.full_like(t, rest)
        for k, (s, e, cue) in enumerate(spans):
            if cue != "CONTRACT":
                continue
            level = phasic if k <= 10 else tonic if k <= 20 else endurance
            on = np.clip((t - s) / rise_s, 0, 1) * (t < e)
            off = np.exp(-np.clip(t - e, 0, None) / 0.2) * (t >= e)
            a = np.maximum(a, rest + (level - rest) * (on + off))
        a[t >= spans[22][0]] = np.maximum(a[t >= spans[22][0]], post)
        return a

    return amp


def _recording(x, cues, t0_ms=5000):
    first = 0
    return glazer.Recording(RATE, first, x, cues)


def test_amplitudes_come_out_as_built():
    cues, end = _cues()
    x = _synth(_levels(cues), cues, end + 1000)
    r = glazer.analyse(_recording(x, cues))
    assert r["pre_baseline"]["mean_uv"] == pytest.approx(6.0, rel=0.08)
    assert r["post_baseline"]["mean_uv"] == pytest.approx(7.0, rel=0.1)
    assert r["phasic"]["peak_uv"] == pytest.approx(
        50.0, rel=0.15
    )  # the peak of a noisy envelope sits above its mean
    # the 2 s mean: the 0.3 s ramp and the window's edges take a little off
    assert 40 < r["phasic"]["mean_uv"] < 50
    assert r["tonic"]["mean_uv"] == pytest.approx(37.0 * 0.98, rel=0.06)  # 0.3 s ramp inside 10 s
    assert r["endurance"]["mean_uv"] == pytest.approx(16.0, rel=0.06)
    # a contraction reaches its peak after the 0.3 s ramp and the window's half-width
    assert 0.2 < r["phasic"]["time_to_peak_s"] < 1.9
    assert 0.05 < r["tonic"]["rise_time_s"] < 0.6
    assert 0.05 < r["tonic"]["fall_time_s"] < 1.0
    assert r["phasic"]["recovery_s"] is not None and r["phasic"]["recovery_s"] < 2.0


def test_normative_comparison_uses_oleksy_2020_and_states_its_limits():
    rows = glazer.compare(
        {
            "pre_baseline_uv": 6.26 + 2 * 3.33,
            "phasic_peak_uv": 49.76,
            "tonic_mean_uv": 37.05 - 25.99 * 0.5,
            "endurance_mean_uv": 16.10 - 6.68 * 1.5,
            "post_baseline_uv": 6.93,
        }
    )
    by = {r["measure"]: r for r in rows["rows"]}
    assert by["pre_baseline_uv"]["z"] == pytest.approx(2.0) and by["pre_baseline_uv"]["verdict"] == "above"
    assert by["phasic_peak_uv"]["verdict"] == "within 1 SD"
    assert by["tonic_mean_uv"]["z"] == pytest.approx(-0.5)
    assert by["endurance_mean_uv"]["verdict"] == "below"
    assert "Oleksy" in rows["source"] and "2020" in rows["source"]
    assert "reliability" in rows["reliability"] and "2021" in rows["reliability"]


def test_median_frequency_falls_in_a_fatiguing_hold_and_stays_in_a_steady_one():
    cues, end = _cues()
    tired = glazer.analyse(_recording(_synth(_levels(cues), cues, end + 1000, seed=1, slowing=True), cues))
    steady = glazer.analyse(_recording(_synth(_levels(cues), cues, end + 1000, seed=1), cues))
    assert tired["endurance"]["median_frequency_slope_hz_per_s"] < -1.0
    assert abs(steady["endurance"]["median_frequency_slope_hz_per_s"]) < 0.3
    assert tired["endurance"]["median_frequency_slope_percent_per_s"] < -0.5


def test_a_recording_without_the_glazer_pattern_or_with_a_hole_is_refused_clearly():
    cues, end = _cues()
    x = _synth(_levels(cues), cues, end + 1000)
    with pytest.raises(glazer.GlazerError, match="no complete Glazer"):
        glazer.analyse(_recording(x, cues[:-1]))
    wrong = [c if i != 3 else Cue(c.seq, c.phase, c.cue, c.time_ms, 5000, 0) for i, c in enumerate(cues)]
    with pytest.raises(glazer.GlazerError, match="no complete Glazer"):
        glazer.analyse(_recording(x, wrong))
    with pytest.raises(glazer.GlazerError, match="does not cover"):
        glazer.analyse(_recording(x[: len(x) // 2], cues))


def test_lines_name_every_measure_and_the_norms():
    cues, end = _cues()
    r = glazer.analyse(_recording(_synth(_levels(cues), cues, end + 1000), cues))
    text = "\n".join(glazer.lines(r))
    for word in (
        "pre-baseline",
        "phasic peak",
        "tonic mean",
        "endurance mean",
        "post-baseline",
        "median frequency",
    ):
        assert word in text
    assert "49.76" in text and "Oleksy" in text
