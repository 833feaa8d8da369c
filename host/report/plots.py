"""The report's plots, drawn by matplotlib's Agg renderer into PNG data URIs.

Figures are made with matplotlib.figure.Figure, not pyplot: no GUI
backend, no global figure list to leak between plots.
"""

import base64
import io

import numpy as np

CUE_COLOURS = {"REST": "#d9e6f2", "CONTRACT": "#f6d7b0", "RELAX": "#d4ecd2"}
_DPI = 96


def _figure(w, h):
    from matplotlib.figure import Figure

    return Figure(figsize=(w, h), dpi=_DPI, layout="constrained")


def data_uri(fig):
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def session(rec, sig):
    """Envelope over the session with the cues shaded, phases marked, the current overlaid; a data URI."""
    from matplotlib.patches import Patch

    rate = sig.rate_hz
    k = max(1, rate // 40)  # about the device's frame rate
    t0 = sig.first_index / rate
    env = sig.envelope_uv[::k]
    t = (sig.time_s[::k] - t0) / 60
    fig = _figure(10, 3.4)
    ax = fig.add_subplot()
    notes = rec.annotations()
    for a in notes:
        x0, x1 = (a.onset_s - t0) / 60, (a.onset_s + a.duration_s - t0) / 60
        if a.kind == "cue":
            ax.axvspan(x0, x1, color=CUE_COLOURS.get(a.text.split()[-1], "#eeeeee"), lw=0)
        elif a.kind == "phase":
            ax.axvline(x0, color="#555555", ls="--", lw=0.8)
            ax.annotate(a.text.removeprefix("phase "), (x0, 1), xycoords=("data", "axes fraction"), xytext=(3, -12),
                        textcoords="offset points", fontsize=8, color="#333333")
        elif a.kind in ("gap", "lead_off"):
            ax.axvspan(x0, max(x1, x0 + 1 / 600), color="#cc3333", alpha=0.25, hatch="//", lw=0)
        elif a.kind == "fault":
            ax.axvline(x0, color="#cc0000", lw=1.5)
        elif a.kind == "advice":
            ax.axvline(x0, color="#8a2be2", lw=1.5, ls=":")
    ax.plot(t, env, color="#1f4e79", lw=0.8)
    ax.set_xlabel("minutes from the start of the recording")
    ax.set_ylabel("EMG envelope (µV)")
    ax.set_xlim(0, max(t[-1], 1 / 60) if len(t) else 1)
    ax.set_ylim(bottom=0)
    handles = [Patch(color=c, label=n.lower()) for n, c in CUE_COLOURS.items()]
    triggers = [(a.onset_s - t0) / 60 for a in notes if a.kind == "trigger"]
    if triggers:
        handles += ax.plot(triggers, np.zeros(len(triggers)), "^", color="#d62728", ms=5, clip_on=False,
                           label="ETS trigger")
    stim = sig.stim_ma[::k]
    if np.nanmax(np.nan_to_num(stim), initial=0) > 0:
        ax2 = ax.twinx()
        ax2.plot(t, stim, color="#d62728", lw=0.9, label="stimulation")
        ax2.set_ylabel("stimulation (mA)", color="#d62728")
        ax2.set_ylim(bottom=0)
        handles.append(Patch(color="#d62728", label="stimulation (mA)"))
    if any(a.kind in ("gap", "lead_off") for a in notes):
        handles.append(Patch(color="#cc3333", alpha=0.25, label="no trustworthy signal"))
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.22), fontsize=8, ncol=len(handles),
              frameon=False)
    return data_uri(fig)


def glazer(rows):
    """The Glazer summary measures against the norms' mean ± SD; a data URI."""
    fig = _figure(7, 0.55 * len(rows) + 1.0)
    ax = fig.add_subplot()
    y = np.arange(len(rows))[::-1]
    for yi, r in zip(y, rows):
        mean, sd = r["norm_mean_uv"], r["norm_sd_uv"]
        ax.barh(yi, 2 * sd, left=mean - sd, height=0.5, color="#cfe2f3", edgecolor="#6fa8dc")
        ax.plot([mean, mean], [yi - 0.25, yi + 0.25], color="#3d85c6", lw=1.5)
        colour = "#38761d" if r["verdict"] == "within 1 SD" else "#cc0000"
        ax.plot(r["value_uv"], yi, "o", color=colour, ms=7)
    ax.set_yticks(y, [r["measure"].removesuffix("_uv").replace("_", " ") for r in rows])
    ax.set_xlabel("µV (band: normative mean ± 1 SD; dot: this patient)")
    ax.set_xlim(left=0)
    return data_uri(fig)


def trend(points):
    """Rest tone, time below target and pain/comfort across sessions; a data URI."""
    # evenly spaced, labelled by date or log number: a journal, not a time axis
    x = np.arange(len(points))
    fig = _figure(10, 5.2)
    axes = fig.subplots(3, 1, sharex=True)
    series = (
        ("rest_uv", "rest tone (µV)", None),
        ("below_target_percent", "time below target\n(% of the session)", (0, 100)),
        ("pain", "pain/comfort (0-10)", (0, 10)),
    )
    for ax, (name, label, lim) in zip(axes, series):
        v = np.array([np.nan if getattr(p, name) is None else getattr(p, name) for p in points], dtype=float)
        ax.plot(x, v, "o-", color="#1f4e79", ms=4)
        ax.set_ylabel(label, fontsize=8)
        ax.grid(alpha=0.3)
        if lim:
            ax.set_ylim(*lim)
        if np.isnan(v).all():
            ax.text(0.5, 0.5, "not recorded", transform=ax.transAxes, ha="center", va="center", color="#888888")
    axes[-1].set_xticks(x, [p.label for p in points], rotation=30 if len(points) > 8 else 0, fontsize=8)
    axes[-1].set_xlim(-0.5, len(points) - 0.5)
    axes[-1].set_xlabel("session")
    return data_uri(fig)
