"""Emergency stops latch, refusals are typed, and a reset keeps the latched fault."""

import pytest

from hil_tests.watch import Watch
from host.client import FaultEvent, Refusal

pytestmark = pytest.mark.req("HIL-TARGET-1")


def _running(client, w):
    assert client.session_start(demo_s=60).ok
    w.state("RUNNING")


@pytest.mark.req("SAF-ESTOP-1", "SAF-STATE-1")
def test_a_host_estop_latches_and_blocks_starts_until_cleared(client):
    w = Watch(client)
    _running(client, w)
    r = client.estop()
    assert r.ok and r.state == "FAULT"
    w.state("FAULT", reason="FAULT")
    assert w.event(FaultEvent, name="HOST_ESTOP").latched
    info = client.info()
    assert info.state == "FAULT" and info.fault.name == "HOST_ESTOP" and info.fault.latched
    refused = client.session_start(demo_s=10)
    assert isinstance(refused, Refusal) and refused.name == "FAULT_LATCHED"
    assert client.info().state == "FAULT"
    assert client.fault_clear().state == "IDLE"
    w.state("IDLE", reason="CLEARED")
    assert client.info().fault is None
    assert client.session_start(demo_s=10).state == "ARMED"
    assert client.session_stop().ok


@pytest.mark.needs("rig")
@pytest.mark.req("SAF-ESTOP-1")
def test_the_estop_button_latches_and_clear_waits_for_its_release(target, client):
    w = Watch(client)
    _running(client, w)
    target.rig.press_estop()
    w.state("FAULT", reason="FAULT")
    assert w.event(FaultEvent, name="ESTOP").latched
    assert not target.rig.output_on()
    info = client.info()
    assert info.estop_open and info.fault.name == "ESTOP" and info.fault.latched
    r = client.fault_clear()
    assert isinstance(r, Refusal) and r.name == "ESTOP_ACTIVE"
    assert client.session_start(demo_s=10).name == "FAULT_LATCHED"
    target.rig.release_estop()
    assert client.fault_clear().state == "IDLE"
    info = client.info()
    assert not info.estop_open and info.fault is None and info.state == "IDLE"


@pytest.mark.needs("rig")
@pytest.mark.req("SAF-BOOT-1", "SAF-ESTOP-1", "LINK-CLIENT-1")
def test_a_latched_fault_survives_a_power_cycle(target, client):
    assert client.estop().state == "FAULT"
    before = client.info().uptime_ms
    target.rig.power_cycle()
    info = client.info()  # the device asks for HELLO again; the client greets it and asks once more
    assert info.ok and info.uptime_ms < max(1000, before)  # a new boot (a Pico's takes over 1 s)
    assert info.state == "FAULT" and info.fault.name == "HOST_ESTOP" and info.fault.latched
    assert not target.rig.output_on()
    assert client.session_start(demo_s=10).name == "FAULT_LATCHED"
    assert client.fault_clear().state == "IDLE"


@pytest.mark.req("SAF-STATE-1", "LINK-ROBUST-1")
def test_requests_illegal_in_the_current_state_are_refused_and_nothing_changes(client):
    w = Watch(client)

    def refused(method, name, state):
        r = getattr(client, method)()
        assert isinstance(r, Refusal) and r.name == name, (method, r)
        info = client.info()
        assert info.state == state, method
        assert client.ping().ok

    state = client.info().state  # IDLE, or DONE on a shared target
    for method in ("session_pause", "session_resume", "session_stop", "fault_clear"):
        refused(method, "ILLEGAL_STATE", state)
    _running(client, w)
    refused("fault_clear", "ILLEGAL_STATE", "RUNNING")
    refused("session_resume", "ILLEGAL_STATE", "RUNNING")
    refused("session_start", "ILLEGAL_STATE", "RUNNING")
    assert client.estop().state == "FAULT"
    refused("session_start", "FAULT_LATCHED", "FAULT")
    refused("session_pause", "ILLEGAL_STATE", "FAULT")
    refused("session_stop", "ILLEGAL_STATE", "FAULT")
    assert client.fault_clear().state == "IDLE"
