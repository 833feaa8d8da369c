"""The device's session scores in the clinician's units and words.

The device sends integers (0.1 µV, ms, 1/1000) under SC_* keys
(protocol/messages.py); this module names them, converts them and writes
the lines `tonus session run` prints and the JSON it saves.
"""

from protocol import messages as m

KINDS = ("demonstration", "baseline", "relaxation", "work_rest", "mvc", "glazer", "ets", "stimulation")

# SC_* key -> (JSON name, label, kind of value): uv (0.1 µV), s (ms), pct (1/1000), n (count)
FIELDS = (
    (m.SC_REST_DV, "rest_uv", "rest tone", "uv"),
    (m.SC_REST_CV, "rest_cv_percent", "rest instability (CV)", "pct"),
    (m.SC_TARGET_DV, "target_uv", "target", "uv"),
    (m.SC_BELOW_MS, "below_target_s", "time at or below target", "s"),
    (m.SC_HOLDS, "holds", "holds of the hold time", "n"),
    (m.SC_LONGEST_HOLD_MS, "longest_hold_s", "longest hold", "s"),
    (m.SC_WORK_DV, "contraction_uv", "mean while contracting", "uv"),
    (m.SC_PEAK_DV, "peak_uv", "mean peak", "uv"),
    (m.SC_BEST_PEAK_DV, "best_peak_uv", "best peak", "uv"),
    (m.SC_REPS, "repetitions", "repetitions", "n"),
    (m.SC_REPS_HIT, "repetitions_at_target", "repetitions at target", "n"),
    (m.SC_G_PRE_DV, "pre_baseline_uv", "pre-baseline rest", "uv"),
    (m.SC_G_PRE_CV, "pre_baseline_cv_percent", "pre-baseline CV", "pct"),
    (m.SC_G_TONIC_DV, "tonic_uv", "tonic mean", "uv"),
    (m.SC_G_ENDURANCE_DV, "endurance_uv", "endurance mean", "uv"),
    (m.SC_G_POST_DV, "post_baseline_uv", "post-baseline rest", "uv"),
    (m.SC_G_POST_CV, "post_baseline_cv_percent", "post-baseline CV", "pct"),
)
# the Glazer phase's peaks are the phasic flicks': named as the host's analysis names them (EMG-GLAZER-2)
_GLAZER = {
    m.SC_PEAK_DV: ("phasic_peak_uv", "phasic peak (mean of 5)"),
    m.SC_BEST_PEAK_DV: ("best_phasic_peak_uv", "best phasic peak"),
}
_ADVICE_TEXT = {
    "TONE_RISING": "the rest tone rose beyond the clinician's margin",
    "PAUSED_TWICE": "the patient paused twice",
}


def _fields(kind):
    if kind != "glazer":
        return FIELDS
    return tuple(
        (key,) + _GLAZER[key] + (unit,) if key in _GLAZER else (key, name, label, unit)
        for key, name, label, unit in FIELDS
    )


def _convert(kind, v):
    if kind == "uv":
        return round(v / 10, 1)
    if kind == "s":
        return round(v / 1000, 1)
    if kind == "pct":
        return round(v / 10, 1)
    return v


def phase_scores(p):
    """One phase's scores as a JSON-ready dict."""
    kind = p.get(m.SC_KIND, -1)
    out = {
        "phase": p.get(m.SC_PHASE, 0) + 1,
        "type": KINDS[kind] if 0 <= kind < len(KINDS) else "unknown",
        "planned_s": _convert("s", p.get(m.SC_PLANNED_MS, 0)),
        "practised_s": _convert("s", p.get(m.SC_RUN_MS, 0)),
        "untrusted_s": _convert("s", p.get(m.SC_UNTRUSTED_MS, 0)),
    }
    for key, name, _label, unit in _fields(out["type"]):
        if key in p:
            out[name] = _convert(unit, p[key])
    run = p.get(m.SC_RUN_MS, 0) - p.get(m.SC_UNTRUSTED_MS, 0)
    if m.SC_BELOW_MS in p and run > 0:
        # of the time practised with a trustworthy signal: an early stop is not a penalty
        out["below_target_percent"] = round(100 * p[m.SC_BELOW_MS] / run, 1)
    return out


def to_json(summary):
    return {
        "ended": summary.end_reason,
        "advice": summary.advice,
        "practised_s": round(summary.run_ms / 1000, 1),
        "mvc_uv": round(summary.mvc_dv / 10, 1) if summary.mvc_dv else None,
        "baseline_uv": round(summary.baseline_dv / 10, 1) if summary.baseline_dv else None,
        "ets_triggers": summary.triggers,
        "stim_charge_uc": summary.charge_uc,
        "stim_max_ma": summary.max_ua / 1000,
        "phases": [phase_scores(p) for p in summary.phases],
    }


def lines(summary):
    """The score as a clinician reads it, one line per figure."""
    d = to_json(summary)
    out = ["score: practised {:.1f} s, ended {}".format(d["practised_s"], d["ended"].lower())]
    if d["advice"]:
        out.append("  the device advised ending early: {}".format(_ADVICE_TEXT.get(d["advice"], d["advice"])))
    if d["stim_max_ma"]:
        out.append(
            "  stimulation: up to {:.1f} mA, {:d} µC delivered, {:d} ETS triggers".format(
                d["stim_max_ma"], d["stim_charge_uc"], d["ets_triggers"]
            )
        )
    for ph in d["phases"]:
        head = "  phase {:d}, {}: {:.1f} of {:.1f} s".format(
            ph["phase"], ph["type"], ph["practised_s"], ph["planned_s"]
        )
        if ph["untrusted_s"]:
            head += " ({:.1f} s without a trustworthy signal)".format(ph["untrusted_s"])
        out.append(head)
        for _key, name, label, unit in _fields(ph["type"]):
            if name not in ph:
                continue
            v = ph[name]
            text = {"uv": "%.1f µV", "s": "%.1f s", "pct": "%.1f %%", "n": "%d"}[unit] % v
            if name == "below_target_s" and "below_target_percent" in ph:
                text += " ({:.0f} % of the time practised)".format(ph["below_target_percent"])
            out.append(f"    {label!s:<26} {text}")
    return out
