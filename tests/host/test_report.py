"""The HTML practice journal: what goes in, what is skipped, and that a browser shows every plot."""

import json
import re
import shutil
import subprocess
from datetime import UTC, datetime
from html import escape

import cbor2
import pytest
from cliutil import run_cli

from host import glazer, recording
from host.cli import main
from host.report import build
from qa import synthetic
from tools import chromium as chromium_tool


@pytest.fixture(scope="session")
def chromium(chromium_exe, tmp_path_factory):
    """dump_dom(path): the DOM chromium builds from a local HTML file."""
    exe = chromium_exe
    profile = tmp_path_factory.mktemp("chromium-profile")
    flags = [*chromium_tool.ARGS, "--hide-scrollbars", f"--user-data-dir={profile}"]

    def run(path, *args, width=1280, height=2000):
        done = subprocess.run(
            [exe, *flags, f"--window-size={width:d},{height:d}", *args, path.resolve().as_uri()],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout

    return run


def _check(dom):
    """The render check's verdict in the page the browser built: (images, broken)."""
    tag = re.search(r'<p id="render-check"[^>]*>', dom).group(0)
    return int(re.search(r'data-images="(\d+)"', tag).group(1)), int(
        re.search(r'data-broken="(\d+)"', tag).group(1)
    )


def _glazer_scores():
    """A scores file as `session run --out` writes it for a Glazer assessment (the norms' own rows)."""
    summary = {
        "pre_baseline_uv": 7.0,
        "phasic_peak_uv": 30.0,
        "tonic_mean_uv": 25.0,
        "endurance_mean_uv": 12.0,
        "post_baseline_uv": 14.0,
    }
    phase = {
        "phase": 1,
        "type": "glazer",
        "planned_s": 600.0,
        "practised_s": 600.0,
        "untrusted_s": 0.0,
        "pre_baseline_uv": 7.0,
        "tonic_uv": 25.0,
    }
    return {
        "device": "A9265168D7A5AFA7",
        "protocol": "glazer-assess",
        "scores": {
            "ended": "FINISHED",
            "advice": None,
            "practised_s": 600.0,
            "mvc_uv": None,
            "baseline_uv": None,
            "phases": [phase],
        },
        "glazer": {"normative": glazer.compare(summary)},
    }


@pytest.fixture(scope="module")
def folder(tmp_path_factory, recorded_demo):
    """A clinic folder: a recorded session of protocol relax-a (with its scores file), a Glazer
    assessment's scores, a cut-off recording, and two files that are not what they claim."""
    d = tmp_path_factory.mktemp("journal")
    raw, scores_file = recorded_demo
    shutil.copyfile(scores_file, d / "tonus-session-A926-20261121-090000.json")
    # as a device with an approved protocol would have written it
    rec = recording.read(raw)
    # dated like its scores file (the day before the Glazer assessment), never "today"
    start = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
    head = dict(
        rec.header,
        patient="P-0042",
        protocol_id="relax-a",
        started_unix_s=start.timestamp(),
        started_utc=start.isoformat(timespec="milliseconds"),
    )
    body = raw.read_bytes()[len(cbor2.dumps(rec.header)) :]
    (d / "s1.tonus").write_bytes(cbor2.dumps(head) + body)
    scores = json.loads((d / "tonus-session-A926-20261121-090000.json").read_text())
    scores["protocol"] = "relax-a"
    (d / "tonus-session-A926-20261121-090000.json").write_text(json.dumps(scores))
    (d / "tonus-session-A926-20261122-090000.json").write_text(json.dumps(_glazer_scores()))
    whole = (d / "s1.tonus").read_bytes()
    (d / "s2-cut.tonus").write_bytes(whole[: len(whole) * 2 // 3])
    (d / "notes.tonus").write_text("not a recording\n")
    (d / "broken.json").write_text('{"scores": ')
    return d


@pytest.mark.req("UX-REPORT-1", "UX-CLI-1")
def test_the_report_holds_each_session_groups_protocols_and_lists_what_it_skipped(folder, capsys):
    out = folder / "report.html"
    code, text, err = run_cli(capsys, "--json", "report", str(folder), "--out", str(out))
    assert code == 0, err
    r = json.loads(text)
    # s1.tonus and its scores file are one session; the cut recording is kept in part
    assert r["sessions"] == 3 and r["protocols"] == ["relax-a", "glazer-assess"]
    assert {s["file"] for s in r["skipped"]} == {"notes.tonus", "broken.json"}
    assert [d["files"] for d in r["damaged"]] == ["s2-cut.tonus"]
    html = out.read_text()
    assert "Patient (pseudonym): <b>P-0042</b>" in html
    assert "2 protocols (relax-a, glazer-assess)" in html
    assert "From s1.tonus, tonus-session-A926-20261121-090000.json" in html
    assert "notes.tonus</code>: " in html and "not a tonus recording" in html
    assert "broken.json</code>: not readable JSON" in html
    assert "Read in part: the last" in html
    # self-contained: every image inline, nothing fetched
    assert (
        not re.search(r"""(src|href)=["'](?!data:|#)""", html)
        and "<link" not in html
        and "@import" not in html
    )
    assert html.count("<img ") == r["images"] == 2 + 2 + 1  # trends, session plots (whole, cut), Glazer
    # the Glazer assessment against the norms, with the source named
    assert "Glazer assessment against the norms" in html and "Oleksy" in html
    assert "post baseline</td><td>14.0 µV</td><td>6.9 ± 4.0 µV</td><td>+1.8</td><td>above" in html
    # the trend comes from the scores (no compliance log): no pain score
    assert "no sessions.json" in html and '<td class="n">–</td>' in html


@pytest.mark.req("UX-REPORT-1")
def test_the_trend_reads_the_devices_compliance_log_when_there_is_one(folder, tmp_path, capsys):
    d = tmp_path / "with-log"
    shutil.copytree(folder, d)
    entry = {
        "protocol_id": "relax-a",
        "start_uptime_ms": 10,
        "duration_s": 600.0,
        "phases_completed": 3,
        "mvc_uv": None,
        "ets_triggers": 0,
        "charge_uc": 0,
        "max_ma": 0.0,
        "faults": [],
        "end_reason": "FINISHED",
        "advice": None,
    }
    log = [
        dict(
            entry,
            seq=n,
            host_time_s=1795000000 + 86400 * n,
            rest_uv=rest,
            below_target_s=b,
            below_target_percent=p,
            pain=pain,
        )
        for n, (rest, b, p, pain) in enumerate(
            [(14.2, 120.0, 20.0, 6), (12.5, 240.0, 40.0, 4), (11.1, 300.0, 50.0, None)]
        )
    ]
    (d / "sessions.json").write_text(json.dumps(log))
    code, _text, err = run_cli(capsys, "report", str(d), "--out", str(d / "r.html"))
    assert code == 0, err
    html = (d / "r.html").read_text()
    assert "From the device&#x27;s compliance log (sessions.json)." in html
    rows = re.findall(
        r'<tr><td>(#\d)</td><td class="n">[^<]*</td><td><span[^>]*>finished</span></td>'
        r'<td class="n">([^<]*)</td><td class="n">([^<]*)</td><td class="n">([^<]*)</td><td></td></tr>',
        html,
    )
    assert rows == [
        ("#0", "14.2 µV", "20.0 %", "6/10"),
        ("#1", "12.5 µV", "40.0 %", "4/10"),
        ("#2", "11.1 µV", "50.0 %", "–"),
    ]


@pytest.mark.req("UX-REPORT-1")
def test_a_folder_that_is_not_one_is_refused(tmp_path, capsys):
    code, _, err = run_cli(capsys, "report", str(tmp_path / "nope"), "--out", str(tmp_path / "r.html"))
    assert code == 1 and "is not a folder" in err


@pytest.mark.req("UX-REPORT-1")
def test_a_browser_decodes_every_plot_and_the_page_says_when_one_does_not(folder, chromium, tmp_path):
    out = tmp_path / "report.html"
    assert main(["report", str(folder), "--out", str(out)]) == 0
    html = out.read_text()
    n = html.count("<img ")
    assert n == 5 and _check(chromium(out, "--dump-dom")) == (n, 0)
    # the check can fail: one plot's PNG damaged
    first = html.index("data:image/png;base64,") + len("data:image/png;base64,")
    broken = tmp_path / "broken.html"
    broken.write_text(html[:first] + "AAAA" + html[first + 4 :])
    dom = chromium(broken, "--dump-dom")
    assert _check(dom) == (n, 1) and "1 of 5 plots could not be shown" in dom


@pytest.fixture(scope="module")
def journal(tmp_path_factory):
    """A fortnight of relaxation practice, every way a session can end, two notes, the device's log with
    pain/comfort scores, and a stub from a refused start; the report dated, never "today"."""
    d = synthetic.journal(tmp_path_factory.mktemp("fortnight"), minutes=1.5)
    out = d.parent / "journal.html"
    built = build(d, out, made=datetime(2026, 11, 16, 8, 0, tzinfo=UTC))
    return d, out, built


@pytest.mark.req("UX-REPORT-2")
def test_sessions_are_marked_by_how_they_ended_and_stubs_are_never_counted(journal):
    from host.report import collect, page

    _d, out, built = journal
    html = out.read_text()
    assert built.sessions == 9 and [n for n, _why in built.stubs] == ["2026-11-02-refused.tonus"]
    assert (
        "9 sessions from 2026-11-02 to 2026-11-15: 5 finished, 1 stopped early, 1 advised stop, 1 fault, "
        "1 cut off" in html
    )
    assert "made 2026-11-16" in html
    # the stub is listed apart, under its own heading, and nowhere among the sessions
    stubs = html.index("Not sessions (not counted)")
    assert html.index("2026-11-02-refused.tonus") > stubs and html.count("refused.tonus") == 1
    # the trend: every session on its date with its outcome, the cut-off one from its recording
    table = html[html.index("<h3>Trend</h3>") : html.index("<h3>Sessions</h3>")]
    ended = re.findall(r'<td><span class="badge (\w+)">', table)
    assert ended == [o for _day, o, *_ in synthetic.FORTNIGHT]
    assert "recording only" in table and "tense after a long day at work" in table
    assert re.search(r"2026-11-0\d \d\d:\d\d", table)  # dates, not log numbers, say when
    # a session card per session, each with its outcome badge and its plot against the target
    cards = html[html.index("<h3>Sessions</h3>") :]
    assert cards.count("<article>") == 9
    assert (
        cards.count('alt="EMG envelope over the session against the target of 8.0 µV"') == 8
    )  # not the cut one
    # each figure defined once; every use links to its definition
    for anchor, _title, _text in page.DEFINITIONS:
        assert html.count(f'id="{anchor}"') == 1
    assert 'href="#below-session"' in table and 'href="#below-phase"' in cards
    assert all(escape(o) in html for o in collect.OUTCOMES.values())
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html


@pytest.mark.req("UX-REPORT-2")
def test_the_report_fits_a_phone_a_tablet_and_a_desktop_and_prints_on_a4(journal, browser, tmp_path):
    """Laid out at each width (a real viewport, not a crop of a wider one), and printed."""
    _d, out, _built = journal
    page = browser.new_page()
    for width, media in ((390, "screen"), (768, "screen"), (1280, "screen"), (688, "print")):
        page.set_viewport_size({"width": width, "height": 900})
        page.emulate_media(media=media)  # 688 px: A4 less its 14 mm margins
        page.goto(out.resolve().as_uri())
        page.wait_for_load_state("load")
        fit = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
        assert fit == [width, width], f"the page is {fit[0]:d} px wide at a {width:d} px {media}"
        check = page.locator("#render-check")
        assert (check.get_attribute("data-images"), check.get_attribute("data-broken")) == ("10", "0")
        # every plot shrinks to the column, none is cut
        widest = page.evaluate(
            "Math.max(...Array.from(document.images, i => i.getBoundingClientRect().right))"
        )
        assert widest <= width
        if media == "screen":
            shot = page.screenshot(path=str(tmp_path / f"report-{width}.png"))
            assert int.from_bytes(shot[16:20], "big") == width
    page.emulate_media(media="print")
    pdf = page.pdf(format="A4")
    assert pdf.startswith(b"%PDF-")
    pages = re.findall(rb"/Type\s*/Page[^s]", pdf)
    boxes = [[float(v) for v in b.split()] for b in re.findall(rb"/MediaBox\s*\[([^\]]+)\]", pdf)]
    assert 2 <= len(pages) <= 40 and len(boxes) == len(pages)
    assert all(
        b[:2] == [0, 0] and abs(b[2] - 595.3) < 1.5 and abs(b[3] - 841.9) < 1.5 for b in boxes
    )  # A4, points
