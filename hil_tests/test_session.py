"""Sessions: they run on the device's clock, pause, resume, end, and need the host only when host-driven."""

from itertools import pairwise

import pytest

from firmware.hal import BTN_START
from hil_tests.watch import Watch
from host.client import Cue, FaultEvent, StateChanged

pytestmark = pytest.mark.req("HIL-TARGET-1")

DEMO_S = 12  # a baseline rest (10 s) and the first contraction


@pytest.mark.req("SES-RUN-1", "LINK-MSG-6")
def test_a_demo_session_runs_pauses_resumes_and_ends_on_time(target, client):
    w = Watch(client)
    assert client.stream(True).ok
    r = client.session_start(demo_s=DEMO_S)
    assert r.ok and r.state == "ARMED"
    run = w.state("RUNNING", reason="CHECKS_PASSED")
    w.stream_for(2000)
    assert client.session_pause().state == "PAUSED"
    paused = w.state("PAUSED", reason="REQUEST")
    w.stream_for(1000)
    assert client.session_resume().state == "RUNNING"
    resumed = w.state("RUNNING", reason="REQUEST")
    done = w.state("DONE", DEMO_S * 1000, reason="FINISHED")

    ran_ms = (paused.time_ms - run.time_ms) + (done.time_ms - resumed.time_ms)
    assert DEMO_S * 1000 <= ran_ms <= DEMO_S * 1000 + target.tick_ms
    # the cues follow running time: the pause does not count
    cues = w.of(Cue)
    assert [(c.phase, c.cue) for c in cues] == [(0, "REST"), (1, "CONTRACT")]
    contract_at = resumed.time_ms + 10000 - (paused.time_ms - run.time_ms)
    assert contract_at <= cues[1].time_ms <= contract_at + target.tick_ms

    frames = w.frames
    assert all(f.count == 50 and not f.gap for f in frames)
    assert all(b.first_index == a.end_index for a, b in pairwise(frames))
    assert client.missed == {3: 0, 4: 0}
    assert {f.state for f in frames} >= {"RUNNING", "PAUSED"}

    info = client.info()
    assert info.state == "DONE"
    assert info.session.elapsed_ms == ran_ms and info.session.duration_ms == DEMO_S * 1000
    assert info.session.paused_ms == resumed.time_ms - paused.time_ms
    assert not info.session.host_driven


@pytest.mark.needs("fast_time")
@pytest.mark.req("SES-RUN-1")
def test_a_session_paused_too_long_ends(client):
    w = Watch(client)
    assert client.session_start(demo_s=60).ok
    w.state("RUNNING")
    assert client.session_pause().ok
    paused = w.state("PAUSED")
    done = w.state("DONE", 330_000, reason="PAUSE_TIMEOUT")
    assert 300_000 <= done.time_ms - paused.time_ms <= 301_000


@pytest.mark.needs("rig")
@pytest.mark.req("SES-BUTTON-1")
def test_the_patients_button_starts_pauses_and_resumes(target, client):
    w = Watch(client)
    target.rig.press_button(BTN_START)
    w.state("ARMED", reason="BUTTON")
    w.state("RUNNING", reason="CHECKS_PASSED")
    target.rig.press_button(BTN_START)
    w.state("PAUSED", reason="BUTTON")
    target.rig.press_button(BTN_START)
    w.state("RUNNING", reason="BUTTON")
    info = client.info()
    assert info.state == "RUNNING" and not info.session.host_driven
    assert client.session_stop().state == "DONE"


@pytest.mark.needs("rig", "fast_time")
@pytest.mark.req("SES-RUN-1")
def test_a_loose_electrode_keeps_the_session_from_running(target, client):
    w = Watch(client)
    target.rig.set_lead_off(True)
    assert client.session_start(demo_s=60).state == "ARMED"
    armed = w.state("ARMED")
    idle = w.state("IDLE", 12_000, reason="CHECKS_FAILED")
    assert 10_000 <= idle.time_ms - armed.time_ms <= 10_000 + target.tick_ms
    assert not [e for e in w.of(StateChanged) if e.to_state == "RUNNING"]
    assert not target.rig.output_ever_enabled()


@pytest.mark.req("SAF-HEARTBEAT-1", "LINK-CLIENT-1")
@pytest.mark.parametrize("stream", [True, False], ids=["streaming", "silent"])
def test_the_client_keeps_a_host_driven_session_alive(client, stream):
    w = Watch(client)
    assert client.stream(stream).ok
    r = client.session_start(demo_s=10, heartbeat_ms=1000)
    assert r.ok and client.heartbeat_ms == 1000
    w.state("RUNNING")
    w.state("DONE", 10_000, reason="FINISHED")
    assert not w.of(FaultEvent)
    assert client.heartbeat_ms == 0


@pytest.mark.req("SAF-HEARTBEAT-1")
def test_a_silent_host_loses_its_host_driven_session(target, client):
    w = Watch(client)
    assert client.session_start(demo_s=60, heartbeat_ms=500, keep_alive=False).ok
    armed = w.state("ARMED")  # the device heard the host last at this instant
    done = w.state("DONE", 1000, reason="HEARTBEAT_LOST")
    assert 500 < done.time_ms - armed.time_ms <= 500 + target.tick_ms
    fault = w.event(FaultEvent, name="HEARTBEAT_LOST")
    assert not fault.latched
    info = client.info()
    assert info.state == "DONE" and info.fault is None
    assert client.session_start(demo_s=10).ok  # nothing to clear: a new session may start
    assert client.session_stop().ok


@pytest.mark.req("SAF-HEARTBEAT-1")
def test_a_standalone_session_does_not_need_the_host(client):
    w = Watch(client)
    assert client.stream(True).ok
    assert client.session_start(demo_s=60).ok  # no heartbeat asked for
    w.state("RUNNING")
    seen = len(w.events)
    w.stream_for(3000)  # three seconds without a word from the host
    assert not [e for e in w.events[seen:] if isinstance(e, StateChanged)]
    info = client.info()
    assert info.state == "RUNNING" and not info.session.host_driven
    assert client.session_stop().ok


@pytest.mark.needs("rig")
@pytest.mark.req("SAF-NOSTIM-1")
def test_a_demo_session_never_enables_the_output(target, client):
    w = Watch(client)
    assert client.session_start(demo_s=DEMO_S).ok
    w.state("DONE", DEMO_S * 1000 + 100, reason="FINISHED")
    assert not target.rig.output_ever_enabled()
