"""The report's plots, drawn by matplotlib's Agg renderer into PNG data URIs.

Figures are made with matplotlib.figure.Figure, not pyplot: no GUI
backend, no global figure list to leak between plots. They are drawn
narrow (WIDTH_IN) with large type, so that a phone shows them readable at
its width and a desktop puts two side by side; every plot that has a
target draws it.
"""

import base64
import io
import warnings

import numpy as np

CUE_COLOURS = {"REST": "#d9e6f2", "CONTRACT": "#f6d7b0", "RELAX": "#d4ecd2"}
TARGET_COLOUR = "#2e7d32"
# how each outcome is drawn in the trend: marker, colour, label (host/report/collect.OUTCOMES)
OUTCOME_STYLE = {
    "finished": ("o", "#1f4e79", "finished"),
    "stopped": ("s", "#7f7f7f", "stopped early"),
    "advised": ("^", "#e08a00", "advised stop"),
    "faulted": ("X", "#c62828", "fault"),
    "aborted": ("x", "#6a1b9a", "cut off"),
}
WIDTH_IN = 5.6
_DPI = 110
_FONT = 9.5


def _figure(w, h):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(w, h), dpi=_DPI, layout="constrained")
    return fig


def _style(ax):
    ax.tick_params(labelsize=_FONT - 1)
    ax.grid(alpha=0.3)


def data_uri(fig):
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def session(trace, target_uv=None):
    """Envelope over the session (binned: range shaded, mean drawn), cues shaded, phases, faults,
    advice, markers and the target; the current overlaid when there was stimulation. A data URI."""
    from matplotlib.artist import Artist
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    fig = _figure(WIDTH_IN, 3.3)
    ax = fig.add_subplot()
    _style(ax)
    notes = trace.annotations
    for name, colour in CUE_COLOURS.items():  # one collection per cue kind, not one patch per cue
        spans = [(a.onset_s, a.duration_s) for a in notes if a.kind == "cue" and a.text.endswith(name)]
        if spans:
            ax.broken_barh(spans, (0, 1), transform=ax.get_xaxis_transform(), color=colour, lw=0, zorder=0)
    bad = [
        (a.onset_s, max(a.duration_s, trace.minutes / 600)) for a in notes if a.kind in ("gap", "lead_off")
    ]
    if bad:
        ax.broken_barh(bad, (0, 1), transform=ax.get_xaxis_transform(), color="#cc3333", alpha=0.25, lw=0)
    ax.fill_between(trace.t_min, trace.env_lo, trace.env_hi, color="#1f4e79", alpha=0.25, lw=0, step="post")
    ax.plot(trace.t_min, trace.env_mean, color="#1f4e79", lw=0.9, drawstyle="steps-post")
    handles: list[Artist] = [Line2D([], [], color="#1f4e79", lw=1.2, label="envelope (µV)")]
    handles += [
        Patch(color=c, label=n.lower())
        for n, c in CUE_COLOURS.items()
        if any(a.kind == "cue" and a.text.endswith(n) for a in notes)
    ]
    if target_uv is not None:
        relax = [a for a in notes if a.kind == "phase" and "relaxation" in a.text]
        spans = [(a.onset_s, a.onset_s + a.duration_s) for a in relax] or [(0, trace.minutes)]
        for x0, x1 in spans:
            ax.hlines(target_uv, x0, x1, color=TARGET_COLOUR, lw=1.6, ls="--", zorder=3)
        handles.append(
            Line2D([], [], color=TARGET_COLOUR, lw=1.6, ls="--", label=f"target {target_uv:.1f} µV")
        )
    for k, a in enumerate(a for a in notes if a.kind == "phase"):
        ax.axvline(a.onset_s, color="#555555", ls="--", lw=0.7)
        # staggered: a short phase's label does not run into the next one's
        ax.annotate(
            a.text.removeprefix("phase "),
            (a.onset_s, 1),
            xycoords=("data", "axes fraction"),
            xytext=(2, -11 - 10 * (k % 2)),
            textcoords="offset points",
            fontsize=_FONT - 2,
            color="#333333",
        )
    for kind, colour, ls, label in (
        ("fault", "#c62828", "-", "fault"),
        ("advice", "#e08a00", ":", "advice"),
        ("marker", "#6a1b9a", "-.", "clinician's note"),
    ):
        xs = [a.onset_s for a in notes if a.kind == kind]
        for x in xs:
            ax.axvline(x, color=colour, lw=1.6, ls=ls)
        if xs:
            handles.append(Line2D([], [], color=colour, lw=1.6, ls=ls, label=label))
    triggers = [a.onset_s for a in notes if a.kind == "trigger"]
    if triggers:
        handles += ax.plot(
            triggers, np.zeros(len(triggers)), "^", color="#d62728", ms=5, clip_on=False, label="ETS trigger"
        )
    if trace.stim_ma.max(initial=0) > 0:
        ax2 = ax.twinx()
        ax2.plot(trace.t_min, trace.stim_ma, color="#d62728", lw=0.9, drawstyle="steps-post")
        ax2.set_ylabel("stimulation (mA)", color="#d62728", fontsize=_FONT)
        ax2.set_ylim(bottom=0)
        ax2.tick_params(labelsize=_FONT - 1)
        handles.append(Line2D([], [], color="#d62728", lw=1.2, label="stimulation (mA)"))
    if bad:
        handles.append(Patch(color="#cc3333", alpha=0.25, label="no trustworthy signal"))
    ax.set_xlabel("minutes from the start of the recording", fontsize=_FONT)
    ax.set_ylabel("EMG envelope (µV)", fontsize=_FONT)
    ax.set_xlim(0, max(trace.minutes, 1 / 60))
    top = max(float(np.nanmax(trace.env_hi, initial=0)), target_uv or 0) * 1.1
    ax.set_ylim(0, top or 1)
    fig.legend(handles=handles, loc="outside lower center", fontsize=_FONT - 1.5, ncol=3, frameon=False)
    return data_uri(fig)


def glazer(rows):
    """The Glazer summary measures against the norms' mean ± SD; a data URI."""
    fig = _figure(WIDTH_IN, 0.5 * len(rows) + 1.1)
    ax = fig.add_subplot()
    _style(ax)
    y = np.arange(len(rows))[::-1]
    for yi, r in zip(y, rows, strict=True):
        mean, sd = r["norm_mean_uv"], r["norm_sd_uv"]
        ax.barh(yi, 2 * sd, left=mean - sd, height=0.5, color="#cfe2f3", edgecolor="#6fa8dc")
        ax.plot([mean, mean], [yi - 0.25, yi + 0.25], color="#3d85c6", lw=1.5)
        colour = "#38761d" if r["verdict"] == "within 1 SD" else "#cc0000"
        ax.plot(r["value_uv"], yi, "o", color=colour, ms=7)
    ax.set_yticks(y, [r["measure"].removesuffix("_uv").replace("_", " ") for r in rows], fontsize=_FONT)
    ax.set_xlabel("µV (band: normative mean ± 1 SD; dot: this patient)", fontsize=_FONT)
    ax.set_xlim(left=0)
    return data_uri(fig)


def trend(points):
    """Rest tone (with the target), time at or below target and pain/comfort over the session dates,
    each session marked by how it ended, notes marked on the pain/comfort axis; a data URI."""
    from matplotlib import dates
    from matplotlib.lines import Line2D

    dated = [p for p in points if p.when is not None]
    # this computer's local time, as the page's tables show it
    x = np.array([p.when.astimezone().replace(tzinfo=None) for p in dated], dtype="datetime64[s]")
    fig = _figure(WIDTH_IN, 5.2)
    axes = fig.subplots(3, 1, sharex=True)
    series = (
        ("rest_uv", "rest tone\n(µV)", None),
        ("below_target_percent", "at or below\ntarget (% of\nsession)", (0, 100)),
        ("pain", "pain/comfort\n(0-10)", (0, 10)),
    )
    for ax, (name, label, lim) in zip(axes, series, strict=True):
        _style(ax)
        v = np.array([np.nan if getattr(p, name) is None else getattr(p, name) for p in dated], dtype=float)
        if len(x):
            ax.plot(x, v, "-", color="#9fb7cc", lw=1)
        for o, (marker, colour, _label) in OUTCOME_STYLE.items():
            k = [i for i, p in enumerate(dated) if p.outcome == o]
            if k:
                ax.plot(x[k], v[k], marker, color=colour, ms=6, ls="none")
            # a session without figures (cut off) still shows, on the axis's floor
            k = [i for i in k if np.isnan(v[i]) and o == "aborted"]
            if k:
                ax.plot(
                    x[k],
                    [0.05] * len(k),
                    marker,
                    color=colour,
                    ms=7,
                    ls="none",
                    clip_on=False,
                    transform=ax.get_xaxis_transform(),
                )
        ax.set_ylabel(label, fontsize=_FONT - 0.5)
        if lim:
            ax.set_ylim(lim[0], lim[1] * 1.05)
        if np.isnan(v).all():
            ax.text(
                0.5, 0.5, "not recorded", transform=ax.transAxes, ha="center", va="center", color="#888888"
            )
    targets = sorted({p.target_uv for p in dated if p.target_uv is not None})
    handles = [
        Line2D([], [], marker=mk, color=c, ls="none", label=lab)
        for o, (mk, c, lab) in OUTCOME_STYLE.items()
        if any(p.outcome == o for p in dated)
    ]
    if targets:
        for t in targets:
            axes[0].axhline(t, color=TARGET_COLOUR, ls="--", lw=1.4)
        handles.append(
            Line2D(
                [],
                [],
                color=TARGET_COLOUR,
                ls="--",
                label="target {} µV".format("/".join(f"{t:.1f}" for t in targets)),
            )
        )
    noted = [x[k] for k, p in enumerate(dated) if p.notes]
    for when in noted:
        axes[2].axvline(when, color="#6a1b9a", lw=1, ls="-.")
        axes[2].annotate(
            "note",
            (when, 1),
            xycoords=("data", "axes fraction"),
            xytext=(2, -10),
            textcoords="offset points",
            fontsize=_FONT - 2,
            color="#6a1b9a",
        )
    if noted:
        handles.append(Line2D([], [], color="#6a1b9a", ls="-.", label="note (see the table)"))
    locator = dates.AutoDateLocator(minticks=3, maxticks=8)
    axes[-1].xaxis.set_major_locator(locator)
    axes[-1].xaxis.set_major_formatter(dates.ConciseDateFormatter(locator))
    if len(x) and x.max() - x.min() < np.timedelta64(1, "D"):  # one day: show it with a day each side
        axes[-1].set_xlim(x.min() - np.timedelta64(1, "D"), x.max() + np.timedelta64(1, "D"))
    axes[-1].set_xlabel("session date", fontsize=_FONT)
    fig.legend(handles=handles, loc="outside lower center", fontsize=_FONT - 1.5, ncol=3, frameon=False)
    with warnings.catch_warnings():  # a span of a few days: the locator says it falls back, and does well
        warnings.filterwarnings("ignore", "AutoDateLocator was unable", UserWarning)
        return data_uri(fig)
