"""tonus view without a browser: the stream it relies on, its fan-out, its door and its recording."""

import asyncio
import json
import threading
import time
import urllib.error
import urllib.request

import pytest
import websockets.sync.client as wsc
from cliutil import ROOT, run_cli, served_sim
from viewutil import RELAX_AT_S, TARGET_DV, running_view, short_protocol

from firmware.emg_artefact import HOLD_MS
from host import recording, simclinic
from host.client import Client, EmgFrame, SessionSummary
from host.view.hub import Hub
from protocol import messages as m

SIM = "sim://?seed=3&patient=hypertonic&speed=0"


def _running_frames(c, seconds):
    """The EMG frames of the first `seconds` of device time the session runs."""
    frames, first = [], None
    while first is None or frames[-1].end_index - first < seconds * c.info().unwrap().limits.emg_rate_hz:
        item = c.poll(0.05)
        if isinstance(item, EmgFrame) and item.state == "RUNNING":
            first = item.first_index if first is None else first
            frames.append(item)
    return frames, first


@pytest.mark.req("EMG-STREAM-1")
def test_the_stream_carries_the_phase_target_and_when_the_feedback_tone_sounds(tmp_path):
    with Client.open(SIM) as c:
        simclinic.approve(c, short_protocol(tmp_path))
        c.stream(True).unwrap()
        c.session_start().unwrap()
        rate = c.info().unwrap().limits.emg_rate_hz
        frames, first = _running_frames(c, RELAX_AT_S + 30)
    baseline = [f for f in frames if f.end_index <= first + (RELAX_AT_S - 1) * rate]
    relax = [f for f in frames if f.first_index >= first + (RELAX_AT_S + 1) * rate]
    assert baseline and relax
    assert all(f.target_dv == 0 and not f.feedback for f in baseline)  # no target while the baseline is taken
    assert all(f.target_dv == TARGET_DV for f in relax)
    sounding = [f for f in relax if f.feedback]
    quiet = [f for f in relax if not f.feedback]
    assert sounding and quiet  # a hypertonic patient is above the target some of the time
    # the tone sounds above the target only: the device's rule (firmware/biofeedback.py)
    assert all(f.envelope_dv > TARGET_DV for f in sounding)
    # quiet above the target only while the envelope is untrusted: a flagged block taints
    # the envelope for its window (250 ms) and the artefact hold after it (firmware/emg_artefact.py)
    untrusted = m.FLAG_LEAD_OFF | m.FLAG_SATURATED | m.FLAG_GAP | m.FLAG_ARTEFACT
    flagged = [f.end_index for f in relax if f.flags & untrusted]
    taint = (250 + HOLD_MS) * rate // 1000
    for f in quiet[5:]:
        if f.envelope_dv > TARGET_DV and not f.flags & untrusted:
            assert any(0 <= f.first_index - t <= taint for t in flagged), (f.first_index - first) / rate


@pytest.mark.req("EMG-STREAM-1")
def test_an_ets_phase_streams_its_trigger_threshold_as_the_target():
    ets = ROOT / "examples" / "protocols" / "ets-trial-short.toml"  # MVC, then ETS at 40 % of it
    with Client.open("sim://?seed=3&patient=weak&speed=0") as c:
        simclinic.approve(c, ets)
        c.stream(True).unwrap()
        c.session_start().unwrap()
        frames, summary = [], None
        while summary is None:
            item = c.poll(0.05)
            if isinstance(item, EmgFrame) and item.state == "RUNNING":
                frames.append(item)
            elif isinstance(item, SessionSummary):
                summary = item
    targets = {f.target_dv for f in frames}
    threshold = summary.mvc_dv * 40 // 100
    assert threshold > 0 and targets == {0, threshold}  # none while the MVC is measured
    assert not any(f.feedback for f in frames)  # the relaxation tone is not ETS's


@pytest.mark.req("UX-VIEW-3")
def test_a_page_that_never_reads_loses_its_oldest_frames_and_holds_up_nothing():
    hub = Hub()
    loop = asyncio.new_event_loop()
    hub.start(loop)
    stalled = hub.add(maxlen=50)
    published = []

    def link_thread():  # as fast as a link thread could ever publish
        for k in range(2000):
            hub.publish(json.dumps({"t": "f", "i": k}), droppable=True)
            if k % 100 == 0:
                hub.publish(json.dumps({"t": "e", "k": k}))
        published.append(True)

    t = threading.Thread(target=link_thread)
    t.start()
    t.join(10)
    assert published  # publishing never waited for the page
    loop.run_until_complete(asyncio.sleep(0))  # the loop delivers what was handed to it
    loop.run_until_complete(asyncio.sleep(0))
    texts = []
    while stalled._queue:
        texts.append(json.loads(loop.run_until_complete(stalled.next())))
    loop.close()
    events = [x["k"] for x in texts if x["t"] == "e"]
    frames = [x["i"] for x in texts if x["t"] == "f"]
    assert events == list(range(0, 2000, 100))  # events are never dropped
    assert (
        frames == list(range(2000 - len(frames), 2000)) and len(frames) <= 50
    )  # the newest frames, in order
    assert stalled.dropped == 2000 - len(frames)


def _get(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, b""


@pytest.mark.req("SEC-VIEW-1")
def test_without_its_token_the_view_serves_nothing_and_refuses_other_sites(tmp_path):
    with running_view(SIM, tmp_path, approve=False) as (_feed, server, _c, _path):
        url = server.url
        assert url.startswith("http://127.0.0.1:")
        root = url[: url.index("/", len("http://"))]
        token = url.rstrip("/").rsplit("/", 1)[1]
        assert len(token) >= 22  # 128 random bits
        assert _get(url)[0] == 200 and b"EMERGENCY STOP" in _get(url)[1]
        assert _get(url + "uplot/uPlot.iife.js")[0] == 200  # the chart library, from the installed package
        for path in (
            "/",
            "/patient",
            "/static/live.js",
            "/ws",
            "/" + token[:-1] + "x/",
            "/" + token[:-1] + "/",
        ):
            assert _get(root + path)[0] == 404, path
        ws_url = "ws" + url[4:] + "ws"
        with (
            pytest.raises(Exception, match=r"403|rejected|1008"),
            wsc.connect(ws_url, origin="http://evil.example", open_timeout=10, close_timeout=1) as ws,
        ):
            ws.recv(timeout=10)
        with wsc.connect(ws_url, open_timeout=10, close_timeout=1) as ws:
            hello = json.loads(ws.recv(timeout=10))
        assert hello["t"] == "h" and hello["tone"] == {"min_hz": 200, "max_hz": 400}


def _wait(cond, seconds=60):
    end = time.monotonic() + seconds
    while not cond():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.02)


@pytest.mark.req("UX-VIEW-3", "UX-VIEW-4")
def test_a_stalled_page_never_costs_the_recording_a_sample_or_the_session_its_heartbeat(tmp_path):
    with running_view(SIM, tmp_path, heartbeat_ms=300) as (feed, server, _c, path):
        ws_url = "ws" + server.url[4:] + "ws"
        with wsc.connect(ws_url, open_timeout=10, close_timeout=1) as _stalled:  # connects and never reads
            _run_with_markers(feed)
    rec = recording.read(path)
    assert rec.complete, rec.problems
    sig = rec.signals()
    assert sig.gaps() == []  # every sample the device sent is in the recording
    assert sum(f.count for f in rec.frames) == len(sig.emg_uv) > 30 * rec.rate_hz
    marks = [a for a in rec.annotations() if a.kind == "marker"]
    assert [a.text for a in marks] == ["marker: patient reports a cramp"]
    ends = [it for it in rec.events if type(it).__name__ == "StateChanged" and it.from_state == "RUNNING"]
    # the heartbeat kept it alive: it ran to its end, or leaving the view stopped it
    assert [(e.to_state, e.reason in ("FINISHED", "REQUEST")) for e in ends] == [("DONE", True)]
    assert rec.summary is not None  # and the device's scores are in the recording


def _run_with_markers(feed):
    rate = feed.view.rate_hz
    feed.submit({"cmd": "start"})
    _wait(lambda: feed.view.tracker.state == "RUNNING")
    start = feed.view.last_index
    feed.submit({"cmd": "marker", "text": "  patient   reports a cramp  "})
    feed.submit({"cmd": "marker", "text": "   "})
    _wait(lambda: feed.view.last_index > start + 30 * rate)
    assert feed.view.markers == 1


@pytest.mark.req("UX-VIEW-1")
def test_tonus_view_on_a_simulator_over_tcp_prints_its_two_screens_and_records(tmp_path, capsys):
    out = tmp_path / "v.tonus"
    with served_sim(tmp_path / "sim.log", "--speed", "1") as url:  # socket://, as a board's serial port
        code, stdout, _err = run_cli(
            capsys, "--port", url, "--json", "view", "--record", str(out), "--duration", "1"
        )
    assert code == 0
    lines = [json.loads(x) for x in stdout.splitlines()]
    assert lines[0]["clinician"].startswith("http://127.0.0.1:") and lines[0]["patient"].endswith("/patient")
    assert lines[-1]["recording"] == str(out) and lines[-1]["frames"] > 0
    assert recording.read(out).complete
    code, _out, err = run_cli(capsys, "--port", SIM, "view", "--bind", "nowhere")
    assert code == 2 and "HOST:PORT" in err


@pytest.mark.req("UX-VIEW-3")
def test_a_link_that_breaks_ends_the_view_with_the_reason_and_a_closed_recording(tmp_path):
    with running_view(SIM, tmp_path, approve=False) as (feed, _server, c, path):
        _wait(lambda: feed.view.last_index is not None)
        c.port.serial.close()  # as a cable pulled out
        _wait(lambda: not feed.alive)
        assert "LinkError" in type(feed.error).__name__
    rec = recording.read(path)
    assert rec.end is not None and rec.end["reason"].startswith("link failed")
    assert rec.frames
