"""The report's HTML: every value escaped, every plot inline, no external resource.

The page is made for three widths: a phone (one column, tables scroll
inside their box, never cut), a tablet, and a desktop or A4 print (session
cards two abreast on screen, one per block in print). Each figure is
defined once, in "How to read this report", and every label says what it
covers (the whole session or one phase).
"""

from html import escape

from host import scores
from host.report import plots
from host.report.collect import OUTCOMES

_CSS = """
*{box-sizing:border-box}
body{font:15px/1.45 system-ui,sans-serif;margin:0 auto;max-width:76em;padding:0 .8em 2em;color:#222}
h1{margin:.6em 0 .2em}h2{border-bottom:2px solid #1f4e79;padding-bottom:.2em;margin-top:1.6em}
h3{margin:1.2em 0 .4em}h4{margin:.2em 0 .4em}
article{border:1px solid #ccc;border-radius:6px;padding:.6em .8em;margin:0;min-width:0}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(100%,32em),1fr));gap:1em}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;margin:.4em 0;font-size:14px}
td,th{border:1px solid #ddd;padding:.25em .5em;text-align:left;vertical-align:top}
th{background:#f2f5f9}
img{display:block;width:100%;max-width:42em;height:auto}
dl{margin:.4em 0}dt{font-weight:600;margin-top:.4em}dd{margin:0 0 0 1em}
.note{color:#555;font-size:13px}.warning{background:#fff3cd;border:1px solid #e0c36b;padding:.5em 1em}
.n,.badge{white-space:nowrap}
.badge{display:inline-block;padding:0 .5em;border-radius:3px;font-size:13px;font-weight:600;color:#fff}
.finished{background:#1f4e79}.stopped{background:#7f7f7f}.advised{background:#b86e00}
.faulted{background:#c62828}.aborted{background:#6a1b9a}
@media (max-width:600px){body{font-size:14px}table{font-size:12.5px}td,th{padding:.2em .35em}}
@media print{
  @page{size:A4;margin:14mm}
  body{max-width:none;padding:0;font-size:11pt}
  .cards{display:block}article{break-inside:avoid;margin:0 0 1em}
  .scroll{overflow:visible}img{max-width:100%}h2{break-after:avoid}
}
"""

# On opening: did every plot decode, and does the page fit the width? (tests read the attributes)
_CHECK = """
window.addEventListener("load", function () {
  var imgs = document.images, broken = 0;
  for (var i = 0; i < imgs.length; i++) {
    if (!(imgs[i].complete && imgs[i].naturalWidth > 0)) broken++;
  }
  var s = document.getElementById("render-check");
  s.setAttribute("data-images", imgs.length);
  s.setAttribute("data-broken", broken);
  s.setAttribute("data-page-width", document.documentElement.scrollWidth);
  s.setAttribute("data-view-width", document.documentElement.clientWidth);
  if (broken) {
    s.textContent = broken + " of " + imgs.length + " plots could not be shown: build the report again";
    s.hidden = false;
  }
});
"""

# each figure defined once; labels elsewhere link here
DEFINITIONS = (
    (
        "rest-tone",
        "Rest tone",
        (
            "The mean EMG envelope (µV) while the patient rests or relaxes; in the trend, the relaxation "
            "phase's, else the first phase that measured one. Lower is more relaxed."
        ),
    ),
    (
        "target",
        "Target",
        (
            "The relaxation target of the approved protocol (µV), drawn as a dashed green line on every plot "
            "that has one. The device sounds its feedback tone while the envelope is above it."
        ),
    ),
    (
        "below-session",
        "At or below target, % of the session",
        (
            "Time the envelope was at or below the target, as a share of the whole session practised (all "
            "phases). The trend uses this figure, as the device's log does."
        ),
    ),
    (
        "below-phase",
        "At or below target, % of the phase",
        (
            "The same time as a share of the relaxation phase alone, counting only time with a trustworthy "
            "signal. The session cards use this figure; it is higher than the session's share when other "
            "phases ran."
        ),
    ),
    (
        "pain",
        "Pain/comfort",
        (
            "The patient's own score after the session, 0 no pain ... 10 worst (tonus session rate); from the"
            " device's log."
        ),
    ),
    (
        "outcome",
        "How a session ended",
        "; ".join(f"{plots.OUTCOME_STYLE[k][2]}: {v}" for k, v in OUTCOMES.items())
        + (
            ". Only finished sessions ran their whole plan; the others are marked in the trend and on their "
            "card."
        ),
    ),
)


def _when(dt):
    return dt.astimezone().strftime("%Y-%m-%d %H:%M") if dt else "time unknown"


def _fmt(v, unit=""):
    if v is None:
        return "–"
    return (f"{v:.1f}" if isinstance(v, float) else str(v)) + unit


def _img(uri, alt):
    return f'<img src="{uri}" alt="{escape(alt)}">'


def _badge(outcome):
    return f'<span class="badge {outcome}">{escape(plots.OUTCOME_STYLE[outcome][2])}</span>'


def _ref(anchor, text):
    return f'<a href="#{anchor}">{escape(text)}</a>'


def render(folder, found, made):
    """(HTML text, number of plots) of the collected folder; `made` is the report's date (aware)."""
    images = 0
    who = ", ".join(found.pseudonyms) or "not recorded"
    n = len(found.sessions)
    counts: dict[str, int] = {}
    for s in found.sessions:
        counts[s.outcome] = counts.get(s.outcome, 0) + 1
    dated = [s.when for s in found.sessions if s.when]
    span = f" from {_when(min(dated))[:10]} to {_when(max(dated))[:10]}" if dated else ""
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>tonus practice journal: {escape(who)}</title>",
        f"<style>{_CSS}</style></head><body>",
        "<header><h1>Practice journal</h1>",
        f"<p>Patient (pseudonym): <b>{escape(who)}</b></p>",
        "<p>{:d} session{}{}: {}. From the folder <code>{}</code>; made {}.</p>".format(
            n,
            "" if n == 1 else "s",
            span,
            ", ".join(f"{counts[k]:d} {plots.OUTCOME_STYLE[k][2]}" for k in OUTCOMES if k in counts)
            or "none",
            escape(folder.name),
            made.astimezone().strftime("%Y-%m-%d %H:%M"),
        ),
        '<p class="note">The report holds the pseudonym only. Times are this computer\'s local time.</p>',
        "</header>",
        '<p id="render-check" class="warning" hidden></p>',
    ]
    if len(found.pseudonyms) > 1:
        out.append(
            f'<p class="warning">This folder holds sessions of {len(found.pseudonyms)} pseudonyms: '
            "check that they belong to one patient.</p>"
        )
    groups = found.groups()
    if len(groups) > 1:
        out.append(
            (
                '<p class="warning">This folder holds sessions of {:d} protocols ({}): each is shown on its '
                "own, with its own trend.</p>"
            ).format(len(groups), escape(", ".join(_protocol(p) for p in groups)))
        )
    glazer_source = None
    for pid, (sessions, trend) in groups.items():
        out.append(f"<section><h2>Protocol {escape(_protocol(pid))}</h2>")
        out.append(f'<h3>Trend</h3><p class="note">From {escape(found.trend_from)}.</p>')
        if trend:
            out.append(
                _img(
                    plots.trend(trend),
                    "trend over the session dates: rest tone against the target, "
                    "time at or below target, pain/comfort, each session marked by how it ended",
                )
            )
            images += 1
            out.append(_trend_table(trend))
        else:
            out.append("<p>No session.</p>")
        out.append('<h3>Sessions</h3><div class="cards">')
        for s in sessions:
            try:
                html, k = _session(s)
            except (KeyError, TypeError, ValueError, AttributeError) as e:
                # a scores file edited by hand or from another version: say so, keep the rest
                html, k = (
                    '<article><p class="warning">{} could not be shown: {} {}</p></article>'.format(
                        escape(", ".join(s.files)), type(e).__name__, escape(str(e))
                    ),
                    0,
                )
            out.append(html)
            images += k
            if s.glazer:
                glazer_source = s.glazer.get("normative", {})
        out.append("</div></section>")
    if found.stubs:
        out.append("<h2>Not sessions (not counted)</h2><ul>")
        out += [f"<li><code>{escape(n)}</code>: {escape(r)}</li>" for n, r in found.stubs]
        out.append("</ul>")
    if found.skipped:
        out.append("<h2>Files that could not be read (not counted)</h2><ul>")
        out += [f"<li><code>{escape(n)}</code>: {escape(r)}</li>" for n, r in found.skipped]
        out.append("</ul>")
    out.append('<h2 id="how-to-read">How to read this report</h2><dl>')
    out += [f'<dt id="{a}">{escape(t)}</dt><dd>{escape(d)}</dd>' for a, t, d in DEFINITIONS]
    out.append("</dl>")
    if glazer_source:
        out.append(
            '<footer class="note"><p>Glazer norms: {}</p><p>{}</p></footer>'.format(
                escape(glazer_source.get("source", "")), escape(glazer_source.get("reliability", ""))
            )
        )
    out.append(f"<script>{_CHECK}</script></body></html>")
    return "\n".join(out) + "\n", images


def _protocol(pid):
    return pid or "none (demonstration sessions)"


def _trend_table(points):
    rows = [
        '<div class="scroll"><table><tr><th>session</th><th>date</th><th>ended</th>'
        "<th>{}</th><th>{}</th><th>{}</th><th>notes</th></tr>".format(
            _ref("rest-tone", "rest tone"),
            _ref("below-session", "at or below target, % of session"),
            _ref("pain", "pain / comfort"),
        )
    ]
    rows += [
        '<tr><td>{}</td><td class="n">{}</td><td>{}</td><td class="n">{}</td><td class="n">{}</td>'
        '<td class="n">{}</td><td>{}</td></tr>'.format(
            escape(p.label),
            _when(p.when),
            _badge(p.outcome),
            _fmt(p.rest_uv, " µV"),
            _fmt(p.below_target_percent, " %"),
            _fmt(p.pain, "/10"),
            escape("; ".join(p.notes)),
        )
        for p in points
    ]
    rows.append("</table></div>")
    return "".join(rows)


def _session(s):
    out = [
        "<article><h4>{} · {} · device {}</h4>".format(
            _when(s.when), _badge(s.outcome), escape(s.serial or "?")
        )
    ]
    out.append(
        '<p class="note">From {} (time from the {}).</p>'.format(escape(", ".join(s.files)), s.when_from)
    )
    out += [f'<p class="warning">Read in part: {escape(p)}</p>' for p in s.problems]
    n = 0
    if s.trace is not None:
        target = s.target_uv
        out.append(
            _img(
                plots.session(s.trace, target),
                "EMG envelope over the session%s"
                % (f" against the target of {target:.1f} µV" if target is not None else ""),
            )
        )
        n += 1
    elif s.files and s.files[0].endswith(".tonus"):
        out.append("<p>The recording holds no EMG.</p>")
    if s.notes:
        out.append(
            "<p>Notes: {}</p>".format(
                "; ".join("{} {}".format(w.astimezone().strftime("%H:%M"), escape(t)) for w, t in s.notes)
            )
        )
    out.append(_scores(s.scores) if s.scores else "<p>No scores: the session did not end while recorded.</p>")
    if s.glazer:
        rows = s.glazer.get("normative", {}).get("rows", [])
        if rows:
            out.append("<h4>Glazer assessment against the norms</h4>")
            out.append(_img(plots.glazer(rows), "Glazer measures against normative ranges"))
            n += 1
            out.append(_glazer_table(rows))
    elif s.glazer_error:
        out.append(f"<p>Glazer assessment not computed: {escape(s.glazer_error)}</p>")
    out.append("</article>")
    return "\n".join(out), n


_UNITS = {"uv": " µV", "s": " s", "pct": " %", "n": ""}


def _scores(d):
    head = "practised {} s, ended {}".format(
        _fmt(d.get("practised_s")), escape(str(d.get("ended", "?")).lower())
    )
    if d.get("advice"):
        head += "; the device advised ending early ({})".format(escape(d["advice"]))
    for key, label in (("baseline_uv", "baseline"), ("mvc_uv", "MVC")):
        if d.get(key) is not None:
            head += f"; {label} {_fmt(d[key])} µV"
    rows = [
        f"<p>Device scores: {head}.</p>",
        (
            '<div class="scroll"><table><tr><th>phase</th><th>practised / planned</th><th>figures of '
            "this phase</th>"
            "</tr>"
        ),
    ]
    for ph in d.get("phases", []):
        figures = []
        for _key, name, label, unit in scores.FIELDS:
            if name in ph:
                figures.append(f"{escape(label)} {_fmt(ph[name], _UNITS[unit])}")
        if "below_target_percent" in ph:
            figures.append(
                "{}: {}".format(
                    _ref("below-phase", "at or below target, % of the phase"),
                    _fmt(ph["below_target_percent"], " %"),
                )
            )
        rows.append(
            "<tr><td>{} {}</td><td>{} / {} s</td><td>{}</td></tr>".format(
                escape(str(ph.get("phase", "?"))),
                escape(str(ph.get("type", "?"))),
                _fmt(ph.get("practised_s")),
                _fmt(ph.get("planned_s")),
                "; ".join(figures),
            )
        )
    rows.append("</table></div>")
    return "".join(rows)


def _glazer_table(rows):
    out = [
        (
            '<div class="scroll"><table><tr><th>measure</th><th>value</th><th>norm (mean ± SD)</th><th>z</th>'
            "<th></th></tr>"
        )
    ]
    out += [
        "<tr><td>{}</td><td>{:.1f} µV</td><td>{:.1f} ± {:.1f} µV</td><td>{:+.1f}</td><td>{}</td></tr>".format(
            escape(r["measure"].removesuffix("_uv").replace("_", " ")),
            r["value_uv"],
            r["norm_mean_uv"],
            r["norm_sd_uv"],
            r["z"],
            escape(r["verdict"]),
        )
        for r in rows
    ]
    out.append("</table></div>")
    return "".join(out)
