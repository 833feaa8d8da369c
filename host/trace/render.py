"""The traceability matrix as Markdown, HTML and JUnit XML, from recorded Results.

Every renderer reads only a Results object, so `tonus-trace` renders the
same files from results.json as the pytest plugin writes at the end of a run.
"""

import html
import re
import xml.etree.ElementTree as ET

from host.trace.matrix import ERROR, FAILED, PASSED, SKIPPED, UNTESTED, XFAILED, gate_report

FORMATS = ("md", "html", "junit")
FILES = {"md": "matrix.md", "html": "matrix.html", "junit": "junit.xml"}

_NOT_PASSED = (FAILED, ERROR)
# XML 1.0 cannot carry most control characters, and a traceback may hold any
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def render(results, fmt):
    return {"md": markdown, "html": html_page, "junit": junit}[fmt](results)


def _split_param(nodeid):
    """`a.py::test_x[cpython]` -> (`a.py::test_x`, `cpython`); no brackets -> (nodeid, "")."""
    if nodeid.endswith("]") and "[" in nodeid:
        i = nodeid.index("[")
        return nodeid[:i], nodeid[i + 1 : -1]
    return nodeid, ""


def _grouped(tests):
    """A requirement's tests, their parametrisations (the runtime legs) folded into one entry."""
    groups: dict[str, list[tuple[str, str]]] = {}
    for t in tests:
        base, param = _split_param(t["nodeid"])
        if t.get("target"):
            param = (param + " " if param else "") + "@ " + t["target"]
        groups.setdefault(base, []).append((param, t["outcome"]))
    return sorted(groups.items())


def provenance_facts(run):
    """(label, value) pairs saying where a run's results came from: commit, operator, firmware,
    targets, tools. Runs recorded before these were kept say "not recorded"."""
    git = run.get("git") or {}
    if git.get("commit"):
        commit = "{}{} ({})".format(
            git["commit"],
            " with uncommitted changes (dirty)" if git.get("dirty") else " (clean)",
            git.get("branch") or "?",
        )
    else:
        commit = git.get("error", "not recorded")
    out = [
        ("commit", commit),
        ("operator", run.get("operator", "not recorded")),
        ("date", "{} to {}".format(run["started"], run.get("finished", "?"))),
        ("firmware version (tree)", run.get("firmware_version") or "not recorded"),
    ]
    for k, t in enumerate(run.get("targets") or ()):
        out.append(
            (
                f"target {k + 1:d}" if len(run["targets"]) > 1 else "target",
                "{} {}: serial {}, board {}, firmware {}, image sha256 {} ({})".format(
                    t["kind"],
                    t["url"],
                    t["serial"],
                    t["board"],
                    t["firmware_version"],
                    t["image_sha256"],
                    t["image_from"],
                ),
            )
        )
    tools = run.get("tools")
    out.append(("tools", ", ".join("{} {}".format(*kv) for kv in tools.items()) if tools else "not recorded"))
    return out


def _header_facts(results):
    """(label, value) pairs for the top of a report."""
    facts = []
    for i, run in enumerate(results.runs):
        scope = "whole suite" if run["whole_suite"] else "subset"
        what = "`{}` ({}) at {} on Python {}".format(run["command"], scope, run["started"], run["python"])
        if run.get("target"):
            what += ", HIL target {}".format(run["target"])
        name = f"run {i + 1:d}" if len(results.runs) > 1 else "run"
        facts.append((name, what))
        facts += [(f"{name} {k}", v) for k, v in provenance_facts(run)]
    rows = results.rows()
    safety = [r for r in rows if r.req["safety"]]
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.result] = counts.get(r.result, 0) + 1
    facts.append(
        (
            "requirements",
            f"{len(rows)} ({len(safety)} safety): "
            + ", ".join(f"{counts[k]:d} {k}" for k in (PASSED, FAILED, SKIPPED, UNTESTED) if k in counts),
        )
    )
    facts.append(("tests", f"{len(results.tests)} results"))
    gate = results.gate_failures()
    facts.append(
        ("safety requirements without a passing test", ", ".join(r.req["id"] for r in gate) or "none")
    )
    board = [r for r in rows if r.req.get("board")]
    if board:
        facts.append(
            (
                "requirements needing a board (passed on one)",
                ", ".join("{} ({})".format(r.req["id"], "yes" if r.board_passes else "no") for r in board),
            )
        )
    unknown = results.unknown_ids()
    if unknown:
        facts.append(("no longer listed", ", ".join(unknown)))
    return facts


# -- Markdown


def _md(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown(results):
    out = ["# Traceability matrix", ""]
    out += [f"- **{k}**: {v}" for k, v in _header_facts(results)]
    out += [
        "",
        "| requirement | title | safety | result | tests |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row in results.rows():
        result = f"**{row.result.upper()}**" if row.result != PASSED else row.result
        if row.tests:
            result += f" ({row.summary()})"
        tests = "<br>".join(
            "`{}` {}".format(_md(base), ", ".join(_md((f"{p}: {o}") if p else o) for p, o in legs))
            for base, legs in _grouped(row.tests)
        )
        out.append(
            "| {} | {} | {} | {} | {} |".format(
                row.req["id"], _md(row.req["title"]), "yes" if row.req["safety"] else "", result, tests or ""
            )
        )
    bad = [t for t in results.tests if t["outcome"] in _NOT_PASSED]
    if bad:
        out += [
            "",
            "## Tests that failed",
            "",
            "| test | outcome | requirements | message |",
            "| --- | --- | --- | --- |",
        ]
        for t in sorted(bad, key=lambda t: t["nodeid"]):
            out.append(
                "| `{}` | {} | {} | {} |".format(
                    _md(t["nodeid"]), t["outcome"], ", ".join(t["reqs"]), _md(t["message"])
                )
            )
    verdict = gate_report(results)
    if verdict:
        out += ["", "## Safety requirements without a passing test", "", "```", verdict, "```"]
    return "\n".join(out) + "\n"


# -- HTML

_CSS = """
*{box-sizing:border-box}
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em auto;padding:0 1em;max-width:100%;color:#222}
table{border-collapse:collapse;width:100%;table-layout:fixed}
col.id{width:11em}col.title{width:22%}col.safety{width:4.5em}col.result{width:10em}
th,td{border:1px solid #ccc;padding:4px 6px;text-align:left;vertical-align:top;overflow-wrap:anywhere}
th{background:#f2f2f2;position:sticky;top:0}
code{font-size:12px;overflow-wrap:anywhere;word-break:break-word}
.r{display:inline-block;padding:0 6px;border-radius:3px;font-weight:600}
.passed{background:#d8f0d8}.failed,.error{background:#f6caca}
.skipped,.xfailed,.xpassed{background:#f3e9c0}.untested{background:#e4e4e4}
tr.safety td:first-child{border-left:4px solid #c33}
.gate{padding:8px;border-radius:4px;margin:1em 0}
.gate.ok{background:#d8f0d8}.gate.bad{background:#f6caca}
pre{white-space:pre-wrap;overflow-wrap:anywhere}
dl{display:grid;grid-template-columns:max-content minmax(0,1fr);gap:2px 12px}dt{font-weight:600}
dd{margin:0;overflow-wrap:anywhere;min-width:0}
"""


def _badge(outcome, text=None):
    return f'<span class="r {outcome}">{html.escape(text or outcome)}</span>'


def html_page(results):
    e = html.escape
    out = [
        "<!DOCTYPE html>",
        (
            '<html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            "<title>tonus traceability matrix</title>"
        ),
        f"<style>{_CSS}</style></head><body>",
        "<h1>Traceability matrix</h1>",
        "<dl>",
    ]
    out += [f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in _header_facts(results)]
    out.append("</dl>")
    verdict = gate_report(results)
    if verdict:
        out.append(f'<div class="gate bad"><pre>{e(verdict)}</pre></div>')
    else:
        out.append('<div class="gate ok">Every safety requirement has a passing test.</div>')
    out.append(
        '<table><colgroup><col class="id"><col class="title"><col class="safety"><col class="result"><col>'
        "</colgroup><thead><tr><th>requirement</th><th>title</th><th>safety</th><th>result</th>"
        "<th>tests</th></tr></thead><tbody>"
    )
    for row in results.rows():
        r = row.req
        tests = "<br>".join(
            "<code>{}</code> {}".format(
                e(base), " ".join(_badge(o, f"{p}: {o}" if p else o) for p, o in legs)
            )
            for base, legs in _grouped(row.tests)
        )
        out.append(
            '<tr class="{}"><td><strong>{}</strong></td><td title="{}">{}<br><small>{}</small></td>'
            "<td>{}</td><td>{}<br><small>{}</small></td><td>{}</td></tr>".format(
                "safety" if r["safety"] else "",
                e(r["id"]),
                e(r["text"]),
                e(r["title"]),
                e(r["source"]),
                "yes" if r["safety"] else "",
                _badge(row.result),
                e(row.summary()) if row.tests else "",
                tests,
            )
        )
    out.append("</tbody></table>")
    bad = [t for t in results.tests if t["outcome"] in _NOT_PASSED]
    if bad:
        out.append("<h2>Tests that failed</h2>")
        for t in sorted(bad, key=lambda t: t["nodeid"]):
            out.append(
                "<details><summary><code>{}</code> {} {}</summary><pre>{}</pre></details>".format(
                    e(t["nodeid"]),
                    _badge(t["outcome"]),
                    e(", ".join(t["reqs"])),
                    e(t.get("details") or t["message"]),
                )
            )
    out.append("</body></html>")
    return "\n".join(out) + "\n"


# -- JUnit XML


def _x(text):
    return _XML_ILLEGAL.sub("?", str(text))


def _classname_and_name(nodeid):
    """As pytest's junitxml names them: `tests/a.py::TestB::test_c[x]` -> (`tests.a.TestB`, `test_c[x]`)."""
    base, param = _split_param(nodeid)
    parts = base.split("::")
    path = parts[0].removesuffix(".py")
    classname = ".".join([path.replace("/", "."), *parts[1:-1]])
    return classname, parts[-1] + (f"[{param}]" if param else "")


def _suite_name(test):
    return "hil {}".format(test["target"]) if test.get("target") else test["leg"]


def junit(results):
    """JUnit XML (the layout pytest writes with junit_family=xunit1): one testsuite per runtime leg
    or HIL target, each testcase with a `requirement` property per ID it names."""
    suites: dict[str, list[dict]] = {}
    for t in sorted(results.tests, key=lambda t: t["nodeid"]):
        suites.setdefault(_suite_name(t), []).append(t)
    root = ET.Element("testsuites", name="tonus")
    totals = dict.fromkeys(("tests", "failures", "errors", "skipped"), 0)
    total_time = 0.0
    for name in sorted(suites):
        tests = suites[name]
        counts = {
            "tests": len(tests),
            "failures": sum(t["outcome"] == FAILED for t in tests),
            "errors": sum(t["outcome"] == ERROR for t in tests),
            "skipped": sum(t["outcome"] in (SKIPPED, XFAILED) for t in tests),
        }
        time = sum(t["duration"] for t in tests)
        suite = ET.SubElement(
            root, "testsuite", {"name": name, "time": f"{time:.3f}"} | {k: str(v) for k, v in counts.items()}
        )
        # where these results came from (the last run that produced one of them)
        run = results.runs[max(t.get("run", 0) for t in tests)] if results.runs else {}
        props = ET.SubElement(suite, "properties")
        for label, value in provenance_facts(run):
            ET.SubElement(props, "property", name=label, value=_x(value))
        for k in totals:
            totals[k] += counts[k]
        total_time += time
        for t in tests:
            classname, tname = _classname_and_name(t["nodeid"])
            case = ET.SubElement(
                suite, "testcase", classname=classname, name=tname, time="{:.3f}".format(t["duration"])
            )
            props = ET.SubElement(case, "properties")
            for rid in t["reqs"]:
                ET.SubElement(props, "property", name="requirement", value=rid)
            ET.SubElement(props, "property", name="leg", value=t["leg"])
            if t.get("target"):
                ET.SubElement(props, "property", name="target", value=_x(t["target"]))
            if t.get("target_kind"):
                ET.SubElement(props, "property", name="target_kind", value=t["target_kind"])
            message = _x(t.get("message") or "")
            if t["outcome"] == FAILED:
                ET.SubElement(case, "failure", message=message).text = _x(t.get("details") or message)
            elif t["outcome"] == ERROR:
                ET.SubElement(case, "error", message=message).text = _x(t.get("details") or message)
            elif t["outcome"] in (SKIPPED, XFAILED):
                ET.SubElement(case, "skipped", type="pytest.{}".format(t["outcome"]), message=message)
    for k, v in totals.items():
        root.set(k, str(v))
    root.set("time", f"{total_time:.3f}")
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
