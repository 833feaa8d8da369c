"""Stimulation interlocks through the rig, on whatever target the suite runs against.

Each test stimulates under the approved trial protocol
(examples/protocols/stimulation-trial-1min.toml), injects one fault with the
rig and checks what the patient would get: the output off (rig.output_on),
no pulse after the trip (rig.pulses), the fault reported and latched, a
start refused until a clear, and the record kept over a power cycle.
Timing to the microsecond is the simulator's job (tests/sim/test_interlocks.py,
qa/campaign/); here the device's own reports must agree with the bench.

On the in-process simulator the fixture provisions a device policy and
approves the protocol, as a clinician and `tonus provision` would; a board
must come with it approved, or these tests are skipped.
"""

import time
from pathlib import Path

import pytest

from hil_tests.watch import MARGIN_S, Watch
from host.client import FaultEvent, Refusal, StateChanged, StimEvent
from protocol import faults
from protocol import messages as m

pytestmark = pytest.mark.req("HIL-TARGET-1")

PROTOCOL = Path(__file__).resolve().parent.parent / "examples" / "protocols" / "stimulation-trial-1min.toml"
PROTOCOL_ID = "stim-trial-1min"
POLICY_UA = 40000
LEVEL_UA = 8000


@pytest.fixture
def stim_client(target, client):
    """A client on a target whose approved protocol is the stimulation trial."""
    if target.emulated is not None:
        return target.provision_stimulation(PROTOCOL, POLICY_UA)
    sim = getattr(client.port.serial, "simulator", None)
    if sim is None:
        shown = client.protocol_show().unwrap()
        if shown.protocol is None or shown.protocol.id != PROTOCOL_ID:
            pytest.skip(f"approve {PROTOCOL.name} on this board first (tonus protocol upload)")
        return client
    from host import simclinic
    from host.provisioning import POLICY, policy
    from protocol import record

    sim.board.flash.write(POLICY, record.pack(policy(POLICY_UA)))
    simclinic.approve(client, PROTOCOL)  # power-cycles: the policy is read at that boot
    return client


def _stimulating(target, client, heartbeat_ms=None):
    """Start a session and raise the level until the output carries it; the Watch used."""
    w = Watch(client)
    assert client.session_start(heartbeat_ms=heartbeat_ms).ok
    w.event(StimEvent, device_ms=2000, state="READY")
    assert client.stim_level(LEVEL_UA).level_ua == LEVEL_UA
    _until(
        client, lambda: target.rig.pulses() and target.rig.pulses()[-1].set_ua == LEVEL_UA, 3000, "the level"
    )
    return w


def _until(client, condition, device_ms, what):
    """Let device time pass (reading the link) until condition() holds."""
    deadline = time.monotonic() + (device_ms / 1000 + MARGIN_S) * Watch.slowdown
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen"
        client.poll(0.02)


def _trip(target, client, inject, name):
    """Inject with the rig while stimulating; the fault must latch and no pulse follow it."""
    w = _stimulating(target, client)
    inject(target.rig)
    fault = w.event(FaultEvent, device_ms=2000, name=name)
    assert fault.latched
    assert [e for e in w.of(StateChanged) if e.to_state == "FAULT" and e.reason == "FAULT"]
    assert not target.rig.output_on()
    n = len(target.rig.pulses())
    client.ping()  # some device time passes
    assert len(target.rig.pulses()) == n
    info = client.info()
    assert info.state == "FAULT" and info.fault.name == name
    refused = client.session_start()
    assert isinstance(refused, Refusal) and refused.name == "FAULT_LATCHED"
    return w


@pytest.mark.needs("rig")
@pytest.mark.req("SAF-ESTOP-1", "SAF-AMPLITUDE-1")
def test_the_estop_stops_stimulation_and_a_restart_after_the_clear_ramps_from_zero(target, stim_client):
    client = stim_client
    _trip(target, client, lambda rig: rig.press_estop(), "ESTOP")
    assert client.fault_clear().name == "ESTOP_ACTIVE"
    target.rig.release_estop()
    assert client.fault_clear().state == "IDLE"
    before = len(target.rig.pulses())
    _stimulating(target, client)
    again = [p.set_ua for p in target.rig.pulses()[before:]]
    assert again[0] <= 1000 and 0 in again  # the 1 mA electrode check, then from zero
    assert again[-1] == LEVEL_UA
    assert client.session_stop().ok


@pytest.mark.needs("rig")
@pytest.mark.req("SAF-IMPEDANCE-1", "SAF-CURRENT-1", "SAF-PULSE-1")
@pytest.mark.parametrize(
    "inject, name",
    [
        (lambda rig: rig.open_load(), "OPEN_ELECTRODE"),
        (lambda rig: rig.short_load(), "ELECTRODE_SHORT"),
        (lambda rig: rig.over_current(50), "OVERCURRENT"),
        (lambda rig: rig.stall_pulses(True), "PULSE_STALLED"),
    ],
    ids=["open", "short", "overcurrent", "stall"],
)
def test_an_output_stage_fault_trips_latches_and_clears(target, stim_client, inject, name):
    _trip(target, stim_client, inject, name)
    target.rig.set_electrode()  # the probe back in place, the source healed
    target.rig.over_current(0)
    target.rig.stall_pulses(False)
    assert stim_client.fault_clear().state == "IDLE"


@pytest.mark.needs("rig")
@pytest.mark.req("SAF-HEARTBEAT-1", "SAF-LOG-1")
def test_link_loss_ends_a_host_driven_session_and_its_log_says_so(target, stim_client):
    client = stim_client
    _stimulating(target, client, heartbeat_ms=500)
    target.rig.disconnect_host()  # the client's heartbeats are lost from now on
    _until(client, lambda: not target.rig.output_on(), 1000, "the output off")
    target.rig.reconnect_host()
    info = client.info()
    assert info.state == "DONE" and info.fault is None
    page = client.log_read(0)
    assert page.ok and "HEARTBEAT_LOST" in [f for e in page.entries for f in _fault_names(e)]


def _fault_names(entry):
    return [faults.name(c) for c in entry.get(m.LOG_FAULTS, ())]


@pytest.mark.needs("rig")
@pytest.mark.req("SAF-POWER-1", "SAF-BOOT-1")
@pytest.mark.parametrize("cut, latched", [("power_cycle", None), ("brownout", "BROWNOUT")])
def test_power_loss_while_stimulating_boots_with_the_output_off_and_the_protocol_kept(
    target, stim_client, cut, latched
):
    client = stim_client
    _stimulating(target, client)
    before = client.info().uptime_ms
    getattr(target.rig, cut)()
    assert not target.rig.output_on()
    n = len(target.rig.pulses())
    info = client.info()  # greets the new boot
    # a new boot (a Pico's takes over 1 s)
    assert info.uptime_ms < max(1000, before) and len(target.rig.pulses()) == n
    assert (info.fault.name if info.fault else None) == latched
    assert info.protocol is not None and info.protocol.id == PROTOCOL_ID
    assert client.log_read(0).ok
