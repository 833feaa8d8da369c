"""The report's HTML: every value escaped, every plot inline, no external resource."""

from datetime import datetime
from html import escape

from host import scores
from host.report import plots

_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:72em;padding:0 1em;color:#222}
h1{margin-bottom:.2em}h2{border-bottom:2px solid #1f4e79;padding-bottom:.2em;margin-top:2em}
article{border:1px solid #ccc;border-radius:6px;padding:.6em 1em;margin:1em 0}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:.2em .6em;text-align:left;
vertical-align:top}th{background:#f2f5f9}img{max-width:100%;display:block}
.note{color:#555;font-size:12px}.warning{background:#fff3cd;border:1px solid #e0c36b;padding:.5em 1em}
"""

# On opening: did every plot decode? The page says so if one did not (tests read the attributes).
_CHECK = """
window.addEventListener("load", function () {
  var imgs = document.images, broken = 0;
  for (var i = 0; i < imgs.length; i++) {
    if (!(imgs[i].complete && imgs[i].naturalWidth > 0)) broken++;
  }
  var s = document.getElementById("render-check");
  s.setAttribute("data-images", imgs.length);
  s.setAttribute("data-broken", broken);
  if (broken) {
    s.textContent = broken + " of " + imgs.length + " plots could not be shown: build the report again";
    s.hidden = false;
  }
});
"""


def _when(dt):
    return dt.astimezone().strftime("%Y-%m-%d %H:%M") if dt else "time unknown"


def _fmt(v, unit=""):
    if v is None:
        return "–"
    return ("%.1f" % v if isinstance(v, float) else str(v)) + unit


def _img(uri, alt):
    return '<img src="%s" alt="%s">' % (uri, escape(alt))


def render(folder, found):
    """(HTML text, number of plots) of the collected folder."""
    images = 0
    who = ", ".join(found.pseudonyms) or "not recorded"
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>tonus practice journal: %s</title>" % escape(who),
        "<style>%s</style></head><body>" % _CSS,
        "<header><h1>Practice journal</h1>",
        "<p>Patient (pseudonym): <b>%s</b></p>" % escape(who),
        "<p>%d session%s from the folder <code>%s</code>; made %s.</p>"
        % (len(found.sessions), "" if len(found.sessions) == 1 else "s", escape(folder.name),
           datetime.now().astimezone().strftime("%Y-%m-%d %H:%M")),
        '<p class="note">The report holds the pseudonym only. Times are this computer\'s local time.</p>',
        "</header>",
        '<p id="render-check" class="warning" hidden></p>',
    ]
    if len(found.pseudonyms) > 1:
        out.append('<p class="warning">This folder holds sessions of %d pseudonyms: check that they belong '
                   "to one patient.</p>" % len(found.pseudonyms))
    groups = found.groups()
    if len(groups) > 1:
        out.append('<p class="warning">This folder holds sessions of %d protocols (%s): each is shown on its '
                   "own, with its own trend.</p>" % (len(groups), escape(", ".join(_protocol(p) for p in groups))))
    if found.skipped:
        out.append("<h2>Files skipped</h2><ul>")
        out += ["<li><code>%s</code>: %s</li>" % (escape(n), escape(r)) for n, r in found.skipped]
        out.append("</ul>")
    glazer_source = None
    for pid, (sessions, trend) in groups.items():
        out.append("<section><h2>Protocol %s</h2>" % escape(_protocol(pid)))
        out.append("<h3>Trend</h3><p class=\"note\">From %s.</p>" % escape(found.trend_from))
        if trend:
            out.append(_img(plots.trend(trend), "trend of rest tone, time below target and pain"))
            images += 1
            out.append(_trend_table(trend))
        else:
            out.append("<p>No scored session.</p>")
        out.append("<h3>Sessions</h3>")
        for s in sessions:
            try:
                html, n = _session(s)
            except (KeyError, TypeError, ValueError, AttributeError) as e:
                # a scores file edited by hand or from another version: say so, keep the rest
                html, n = '<p class="warning">%s could not be shown: %s %s</p>' % (
                    escape(", ".join(s.files)), type(e).__name__, escape(str(e))), 0
            out.append(html)
            images += n
            if s.glazer:
                glazer_source = s.glazer.get("normative", {})
        out.append("</section>")
    if glazer_source:
        out.append('<footer class="note"><p>Glazer norms: %s</p><p>%s</p></footer>'
                   % (escape(glazer_source.get("source", "")), escape(glazer_source.get("reliability", ""))))
    out.append("<script>%s</script></body></html>" % _CHECK)
    return "\n".join(out) + "\n", images


def _protocol(pid):
    return pid if pid else "none (demonstration sessions)"


def _trend_table(points):
    rows = ["<table><tr><th>session</th><th>date</th><th>rest tone</th><th>time below target</th>"
            "<th>pain/comfort</th></tr>"]
    for p in points:
        rows.append("<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>" % (
            escape(p.label), _when(p.when), _fmt(p.rest_uv, " µV"), _fmt(p.below_target_percent, " %"),
            _fmt(p.pain, "/10")))
    rows.append("</table>")
    return "".join(rows)


def _session(s):
    out = ['<article><h4>%s · device %s</h4>' % (_when(s.when), escape(s.serial or "?"))]
    out.append('<p class="note">From %s (time from the %s).</p>' % (escape(", ".join(s.files)), s.when_from))
    for p in s.problems:
        out.append('<p class="warning">Read in part: %s</p>' % escape(p))
    n = 0
    sig = s.recording.signals() if s.recording is not None else None
    if sig is not None:
        out.append(_img(plots.session(s.recording, sig), "EMG envelope over the session"))
        n += 1
    elif s.recording is not None:
        out.append("<p>The recording holds no EMG.</p>")
    out.append(_scores(s.scores) if s.scores else "<p>No scores: the session did not end while recorded.</p>")
    if s.glazer:
        rows = s.glazer.get("normative", {}).get("rows", [])
        if rows:
            out.append("<h4>Glazer assessment against the norms</h4>")
            out.append(_img(plots.glazer(rows), "Glazer measures against normative ranges"))
            n += 1
            out.append(_glazer_table(rows))
    elif s.glazer_error:
        out.append("<p>Glazer assessment not computed: %s</p>" % escape(s.glazer_error))
    out.append("</article>")
    return "\n".join(out), n


def _scores(d):
    head = "practised %s s, ended %s" % (_fmt(d.get("practised_s")), escape(str(d.get("ended", "?")).lower()))
    if d.get("advice"):
        head += "; the device advised ending early (%s)" % escape(d["advice"])
    for key, label in (("baseline_uv", "baseline"), ("mvc_uv", "MVC")):
        if d.get(key) is not None:
            head += "; %s %s µV" % (label, _fmt(d[key]))
    rows = [
        "<p>Device scores: %s.</p>" % head,
        "<table><tr><th>phase</th><th>type</th><th>practised / planned</th><th>figures</th></tr>",
    ]
    for ph in d.get("phases", []):
        figures = []
        for _key, name, label, unit in scores.FIELDS:
            if name in ph:
                figures.append("%s %s" % (label, _fmt(ph[name], {"uv": " µV", "s": " s", "pct": " %", "n": ""}[unit])))
        if "below_target_percent" in ph:
            figures.append("below target %s of the time" % _fmt(ph["below_target_percent"], " %"))
        rows.append("<tr><td>%s</td><td>%s</td><td>%s / %s s</td><td>%s</td></tr>" % (
            escape(str(ph.get("phase", "?"))), escape(str(ph.get("type", "?"))), _fmt(ph.get("practised_s")),
            _fmt(ph.get("planned_s")), escape("; ".join(figures))))
    rows.append("</table>")
    return "".join(rows)


def _glazer_table(rows):
    out = ["<table><tr><th>measure</th><th>value</th><th>norm (mean ± SD)</th><th>z</th><th></th></tr>"]
    for r in rows:
        out.append("<tr><td>%s</td><td>%.1f µV</td><td>%.1f ± %.1f µV</td><td>%+.1f</td><td>%s</td></tr>" % (
            escape(r["measure"].removesuffix("_uv").replace("_", " ")), r["value_uv"], r["norm_mean_uv"],
            r["norm_sd_uv"], r["z"], escape(r["verdict"])))
    out.append("</table>")
    return "".join(out)
