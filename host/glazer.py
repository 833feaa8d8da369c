"""The Glazer assessment from the recorded stream, against published norms.

The device scores amplitudes as it goes (firmware/biofeedback.py); timing
and spectral measures need the raw signal, so the host computes the full
set here from the streamed samples (high-passed at 20 Hz on the device, not
notched) and the cue events:

- pre- and post-baseline rest: mean envelope and its coefficient of variation;
- 5 phasic (2 s) flicks: each flick's peak envelope during its 2 s cue, time
  from the cue to the peak, recovery (time from the relax cue until the
  envelope is back within the pre-baseline mean + 2 SD for 0.5 s), and the
  mean envelope over the 2 s as extra information;
- 5 tonic (10 s) contractions: mean, peak, CV, rise time (10 to 90 % of the
  way from rest to the contraction's mean after the cue) and fall time (90
  to 10 % after the relax cue);
- the 60 s endurance contraction: mean, CV, amplitude slope and the median
  frequency's slope (Welch spectrum per 1 s, 20-450 Hz, linear fit).

One definition of each amplitude, the one the norms were measured with
(EMG-GLAZER-2, docs/emg.md): rests, tonic and endurance are mean
amplitudes; the phasic value is the mean over the five flicks of each
flick's peak amplitude (Glazer's protocol: phasic contractions are read by
their peak, tonic and endurance by their mean; Oleksy et al. 2021 describe
the phasic measure of the same protocol and group as "average peak
amplitude, the mean value from 5 contractions"). The device reports the
same quantities under the same names (firmware/biofeedback.py,
host/scores.py: `phasic_peak_uv`).

The envelope is the device's: RMS over WINDOW_S (the protocol's default
window, 250 ms) ending at each instant, here every 10 ms (the device
updates every 50 ms, so a peak here can be a few per cent higher), after
the device's own mains notches (firmware/emg_dsp.py NOTCHES_AT,
run forward as the device runs them) at the mains frequency the stream's
hum shows, in float64. Samples are placed in time by their index: the
front end starts with the device, so index / rate is device uptime, as cue
times are.
"""

from dataclasses import dataclass

import numpy as np
from scipy.signal import iirnotch, lfilter, welch

from firmware.emg_dsp import HARMONIC_RATES, NOTCHES_AT

WINDOW_S = 0.25
HOP_S = 0.01
PHASIC_S = 2
TONIC_S = 10
ENDURANCE_S = 60
REST_S = 60
SEGMENTS = 23  # pre-rest, 5 x (phasic, rest), 5 x (tonic, rest), endurance, post-rest

# Oleksy et al. 2020, healthy nulliparous women, endovaginal probe: the
# amplitude of each phase (phasic: peak, the others: mean), mean and SD across women (µV)
NORMS_SOURCE = (
    "Oleksy Ł, Wojciechowska M, Mika A, et al. Normative values for Glazer Protocol in the evaluation of "
    "pelvic floor muscle bioelectrical activity. Medicine (Baltimore). 2020;99(5):e19060."
)
NORMS = {
    "pre_baseline_uv": (6.26, 3.33),
    "phasic_peak_uv": (49.76, 26.44),
    "tonic_mean_uv": (37.05, 25.99),
    "endurance_mean_uv": (16.10, 6.68),
    "post_baseline_uv": (6.93, 3.99),
}
RELIABILITY = (
    "The norms come from 96 healthy, young, nulliparous women measured with one endovaginal probe and "
    "instrument; their standard deviations are wide. In the same group the Glazer protocol showed poor "
    "to moderate reliability: mean and peak amplitudes mainly good between trials and moderate between "
    "days, rise and fall times and median frequency poor (Oleksy et al., Int J Environ Res Public Health "
    "2021;18(2):765). Read the comparison as orientation, not diagnosis, and follow a patient against her "
    "own earlier assessments made with the same probe."
)


class GlazerError(ValueError):
    """The recording does not hold a complete, analysable Glazer assessment."""


@dataclass
class Recording:
    """Streamed samples in µV from absolute index `first_index`, and the cue events."""

    rate_hz: int
    first_index: int
    samples_uv: np.ndarray
    cues: list  # host.client.Cue, in order


def mains_hz(x_uv, rate_hz):
    """50 or 60: the mains frequency whose hum the stream (not notched on the device) carries."""
    x = np.asarray(x_uv, dtype=np.float64)
    if len(x) < rate_hz:
        return 50
    f, p = welch(x, fs=rate_hz, nperseg=rate_hz)
    power = {hz: float(p[(f >= hz - 1) & (f <= hz + 1)].sum()) for hz in (50, 60)}
    return 60 if power[60] > power[50] else 50


def envelope(x_uv, rate_hz, mains=None):
    """RMS envelope (µV) over WINDOW_S every HOP_S of the notched signal; times in s from the first sample.

    The notches are the device's (firmware/emg_dsp.py) at mains (found in the hum when None);
    each value is stamped at the end of its window, as the device stamps its envelope updates.
    """
    y = np.asarray(x_uv, dtype=np.float64)
    if mains is None:
        mains = mains_hz(y, rate_hz)
    for k, off, q in NOTCHES_AT:
        f0 = k * mains + off
        if (k == 1 or rate_hz in HARMONIC_RATES) and f0 < rate_hz / 2:
            b, a = iirnotch(f0, q, fs=rate_hz)
            y = lfilter(b, a, y)
    win = round(WINDOW_S * rate_hz)
    hop = round(HOP_S * rate_hz)
    if len(y) < win:
        return np.zeros(0), np.zeros(0)
    c = np.concatenate(([0.0], np.cumsum(y * y)))
    starts = np.arange(0, len(y) - win + 1, hop)
    env = np.sqrt((c[starts + win] - c[starts]) / win)
    t = (starts + win) / rate_hz
    return t, env


def median_frequency(x_uv, rate_hz, band=(20.0, 450.0)):
    f, p = welch(x_uv, fs=rate_hz, nperseg=min(len(x_uv), rate_hz // 4))
    keep = (f >= band[0]) & (f <= band[1])
    f, p = f[keep], p[keep]
    c = np.cumsum(p)
    if not len(c) or c[-1] <= 0:
        return float("nan")
    return float(f[np.searchsorted(c, c[-1] / 2)])


def _segments(rec):
    glazer = [c for c in rec.cues if c.protocol_phase is not None]
    # the Glazer phase's cues: 23 in a row from one protocol phase, in the fixed pattern
    by_phase: dict[int | None, list] = {}
    for c in glazer:
        by_phase.setdefault(c.protocol_phase, []).append(c)
    for cues in by_phase.values():
        if len(cues) == SEGMENTS and _is_glazer(cues):
            return cues
    raise GlazerError("the recording holds no complete Glazer assessment (23 cues in the Glazer pattern)")


def _is_glazer(cues):
    pattern = ["REST"] + ["CONTRACT", "REST"] * 10 + ["CONTRACT", "REST"]
    if [c.cue for c in cues] != pattern:
        return False
    durations = [c.duration_ms for c in cues]
    want = {0: REST_S, 21: ENDURANCE_S, 22: REST_S}
    for k in range(1, 11, 2):
        want[k] = PHASIC_S
    for k in range(11, 21):
        want[k] = TONIC_S
    return all(abs(durations[k] - s * 1000) <= 200 for k, s in want.items())


def analyse(rec):
    """The Glazer measures of a recording, with the normative comparison."""
    cues = _segments(rec)
    rate = rec.rate_hz
    t, env = envelope(rec.samples_uv, rate)
    t0 = rec.first_index / rate  # device time of the first sample, s

    def span(k, start_off=0.0, length=None):
        c = cues[k]
        a = c.time_ms / 1000 + start_off
        b = a + (length if length is not None else c.duration_ms / 1000 - start_off)
        sel = (t + t0 >= a) & (t + t0 < b)
        if sel.sum() < 10:
            raise GlazerError(f"the recording does not cover segment {k + 1:d} of the assessment (a gap?)")
        return t[sel] + t0 - c.time_ms / 1000, env[sel]

    def raw(k):
        c = cues[k]
        i = round((c.time_ms / 1000) * rate) - rec.first_index
        n = int(c.duration_ms * rate // 1000)
        if i < 0 or i + n > len(rec.samples_uv):
            raise GlazerError(f"the recording does not cover segment {k + 1:d} of the assessment")
        return rec.samples_uv[i : i + n]

    def rest(k):
        _tt, e = span(k)
        return float(e.mean()), float(100 * e.std() / e.mean()) if e.mean() > 0 else 0.0

    pre_mean, pre_cv = rest(0)
    _tt, pre_env = span(0)
    recovered_level = pre_mean + 2 * float(pre_env.std())

    phasic = []
    for k in range(1, 11, 2):
        tt, e = span(k)  # the 2 s cue, as the device scores it
        i = int(np.argmax(e))
        rt, re_ = span(k + 1)
        below = re_ <= recovered_level
        recovery = _first_sustained(rt, below, 0.5)
        phasic.append(
            {
                "peak_uv": float(e[i]),
                "mean_uv": float(e.mean()),
                "time_to_peak_s": float(tt[i]),
                "recovery_s": recovery,
            }
        )

    tonic = []
    for k in range(11, 21, 2):
        tt, e = span(k)
        level = float(e.mean())
        lo = pre_mean + 0.1 * (level - pre_mean)
        hi = pre_mean + 0.9 * (level - pre_mean)
        rise = _between(tt, e, lo, hi, rising=True)
        rt, re_ = span(k + 1)
        ft = np.concatenate((tt[-5:] - TONIC_S, rt))
        fe = np.concatenate((e[-5:], re_))
        fall = _between(ft, fe, hi, lo, rising=False)
        tonic.append(
            {
                "mean_uv": level,
                "peak_uv": float(e.max()),
                "cv_percent": float(100 * e.std() / level) if level > 0 else 0.0,
                "rise_time_s": rise,
                "fall_time_s": fall,
            }
        )

    tt, e = span(21)
    amp_slope = float(np.polyfit(tt, e, 1)[0])
    x = raw(21)
    mdf_t, mdf = [], []
    for j in range(ENDURANCE_S):
        seg = x[j * rate : (j + 1) * rate]
        if len(seg) == rate:
            mdf_t.append(j + 0.5)
            mdf.append(median_frequency(seg, rate))
    fit = np.polyfit(mdf_t, mdf, 1)
    mdf_start = float(fit[1])
    endurance = {
        "mean_uv": float(e.mean()),
        "cv_percent": float(100 * e.std() / e.mean()) if e.mean() > 0 else 0.0,
        "amplitude_slope_uv_per_s": amp_slope,
        "median_frequency_start_hz": mdf_start,
        "median_frequency_slope_hz_per_s": float(fit[0]),
        "median_frequency_slope_percent_per_s": float(100 * fit[0] / mdf_start) if mdf_start > 0 else 0.0,
    }
    post_mean, post_cv = rest(22)

    summary = {
        "pre_baseline_uv": pre_mean,
        "phasic_peak_uv": _mean(p["peak_uv"] for p in phasic),
        "tonic_mean_uv": _mean(p["mean_uv"] for p in tonic),
        "endurance_mean_uv": endurance["mean_uv"],
        "post_baseline_uv": post_mean,
    }
    return {
        "pre_baseline": {"mean_uv": pre_mean, "cv_percent": pre_cv},
        "phasic": {
            "contractions": phasic,
            "peak_uv": summary["phasic_peak_uv"],
            "mean_uv": _mean(p["mean_uv"] for p in phasic),
            "time_to_peak_s": _mean(p["time_to_peak_s"] for p in phasic),
            "recovery_s": _mean(p["recovery_s"] for p in phasic if p["recovery_s"] is not None),
        },
        "tonic": {
            "contractions": tonic,
            "mean_uv": summary["tonic_mean_uv"],
            "peak_uv": _mean(p["peak_uv"] for p in tonic),
            "rise_time_s": _mean(p["rise_time_s"] for p in tonic if p["rise_time_s"] is not None),
            "fall_time_s": _mean(p["fall_time_s"] for p in tonic if p["fall_time_s"] is not None),
        },
        "endurance": endurance,
        "post_baseline": {"mean_uv": post_mean, "cv_percent": post_cv},
        "normative": compare(summary),
    }


def compare(summary):
    """Each summary measure against the norm: z-score and where it lies."""
    rows = []
    for key, (mean, sd) in NORMS.items():
        v = summary[key]
        z = (v - mean) / sd
        where = "within 1 SD" if abs(z) <= 1 else ("above" if z > 0 else "below")
        rows.append(
            {"measure": key, "value_uv": v, "norm_mean_uv": mean, "norm_sd_uv": sd, "z": z, "verdict": where}
        )
    return {"source": NORMS_SOURCE, "reliability": RELIABILITY, "rows": rows}


def _mean(values):
    v = list(values)
    return float(np.mean(v)) if v else None


def _first_sustained(t, cond, hold_s):
    """First time cond holds for hold_s in a row; None if never."""
    run_start = None
    for ti, c in zip(t, cond, strict=True):
        if c:
            if run_start is None:
                run_start = ti
            if ti - run_start >= hold_s:
                return float(run_start)
        else:
            run_start = None
    return None


def _between(t, e, a, b, rising):
    """Time from the first crossing of a to the next crossing of b; None if either is missing."""
    past_a = e >= a if rising else e <= a
    past_b = e >= b if rising else e <= b
    ia = np.argmax(past_a) if past_a.any() else None
    if ia is None:
        return None
    rest_b = past_b[ia:]
    if not rest_b.any():
        return None
    ib = ia + int(np.argmax(rest_b))
    return float(t[ib] - t[ia])


_LABELS = {
    "pre_baseline_uv": "pre-baseline rest",
    "phasic_peak_uv": "phasic peak",
    "tonic_mean_uv": "tonic mean",
    "endurance_mean_uv": "endurance mean",
    "post_baseline_uv": "post-baseline rest",
}


def lines(result):
    """The assessment as a clinician reads it."""
    r = result
    out = ["Glazer assessment"]
    out.append(
        "  pre-baseline rest   {:6.1f} µV  CV {:.0f} %".format(
            r["pre_baseline"]["mean_uv"], r["pre_baseline"]["cv_percent"]
        )
    )
    ph = r["phasic"]
    rec = "{:.1f} s".format(ph["recovery_s"]) if ph["recovery_s"] is not None else "not reached"
    out.append(
        (
            "  phasic peak         {:6.1f} µV  (mean of the 5 flicks' peaks) mean {:.1f} µV, time to "
            "peak {:.2f} s, recovery {}"
        ).format(ph["peak_uv"], ph["mean_uv"], ph["time_to_peak_s"], rec)
    )
    to = r["tonic"]
    rise = "{:.2f} s".format(to["rise_time_s"]) if to["rise_time_s"] is not None else "-"
    fall = "{:.2f} s".format(to["fall_time_s"]) if to["fall_time_s"] is not None else "-"
    out.append(
        "  tonic mean          {:6.1f} µV  peak {:.1f} µV, rise {}, fall {}".format(
            to["mean_uv"], to["peak_uv"], rise, fall
        )
    )
    en = r["endurance"]
    out.append(
        (
            "  endurance mean      {:6.1f} µV  median frequency {:.0f} Hz, slope {:+.2f} Hz/s ({:+.2f} %/s)"
        ).format(
            en["mean_uv"],
            en["median_frequency_start_hz"],
            en["median_frequency_slope_hz_per_s"],
            en["median_frequency_slope_percent_per_s"],
        )
    )
    out.append(
        "  post-baseline rest  {:6.1f} µV  CV {:.0f} %".format(
            r["post_baseline"]["mean_uv"], r["post_baseline"]["cv_percent"]
        )
    )
    out.append(
        "  against norms (phasic peak, other mean amplitudes; mean ± SD of healthy nulliparous women):"
    )
    out += [
        "    {!s:<20} {:6.1f} µV  norm {:5.2f} ± {:5.2f}  z {:+5.2f}  {}".format(
            _LABELS[row["measure"]],
            row["value_uv"],
            row["norm_mean_uv"],
            row["norm_sd_uv"],
            row["z"],
            row["verdict"],
        )
        for row in r["normative"]["rows"]
    ]
    out.append("  source: " + r["normative"]["source"])
    out.append("  note: " + r["normative"]["reliability"])
    return out
