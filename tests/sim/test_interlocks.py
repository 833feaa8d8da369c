"""Every stimulation interlock, injected on the simulator and timed in simulated time.

Each test approves a clinician's trial protocol (examples/protocols/*-trial-*.toml)
on a fresh simulator with a provisioned device policy, starts a session the
way a patient or a host does, injects one fault and measures, from the output
stage's own record (sim/output.py), when the output went off and which pulses
reached the load. The deadlines are the requirements' figures, not the
firmware's constants.
"""

import random
from pathlib import Path

import pytest

from firmware import hal as H
from host.client import Refusal
from protocol import faults, record
from protocol import messages as m
from qa import campaign as C
from sim.runner import TICK_MS

TICK_US = TICK_MS * 1000
SCENARIOS = Path(__file__).resolve().parents[2] / "examples" / "scenarios"


@pytest.fixture
def bench():
    made = []

    def make(protocol="stimulation-trial-1min.toml", **kw):
        b = C.Bench(protocol, **kw)
        made.append(b)
        return b

    yield make
    for b in made:
        b.close()


def stimulating(b, level_ua=10000, heartbeat_ms=0):
    """Start a session, set the level, run until the output carries it; the READY instant."""
    since = b.us
    b.start(heartbeat_ms)
    ready = b.wait_stim(m.STIM_READY, 5000, since_us=since)
    assert ready is not None, "the electrode check did not pass"
    b.set_level(level_ua)
    assert b.run_until(lambda: b.pulses() and b.pulses()[-1].set_ua == level_ua, 5000)
    return ready


def fault_record(b):
    blob = b.sim.board.flash.read("fault")
    return record.unpack(blob) if blob is not None else None


def last_log_entry(client):
    page = client.log_read(0)
    assert page.ok and page.damaged == 0
    return page.entries[-1] if page.entries else None


def trip(b, t_inj):
    """Run until the output is off; (off instant, first fault code reported after t_inj)."""
    assert b.run_until(lambda: b.off_after(t_inj) is not None, 10000), "the output never went off"
    off = b.off_after(t_inj)
    b.run_for(50)  # the loop pass after the trip reports it
    got = b.faults_after(t_inj)
    return off, (got[0][1] if got else 0)


def first_faulty(b, t_inj, read=None):
    """The first completed pulse after t_inj that the requirements say must trip, and its codes."""
    for p in b.pulses(t_inj - b.pulse_us):  # one under way completes into the fault
        if p.cut:
            continue
        r = read(p) if read else (round(p.ua1), round(p.ua2))
        want = C.pulse_faults(p, *r, b.sim.board.compliance_mv)
        if want:
            return p, want
    return None, set()


# -- emergency stop ---------------------------------------------------------------------


@pytest.mark.req("SAF-ESTOP-1", "SAF-AMPLITUDE-1", "SAF-LOG-1")
@pytest.mark.parametrize("seed", [11, 12, 13])
def test_an_estop_at_a_random_instant_cuts_the_output_within_1ms_and_a_restart_ramps_from_zero(bench, seed):
    b = bench(seed=seed)
    c = b.connect()
    ready = stimulating(b, 12000, heartbeat_ms=750)
    press = ready + random.Random(seed).randrange(1_000_000, 5_000_000)  # any µs, mid-pulse or not
    b.run_to(press)
    b.rig.press_estop()
    off = b.off_after(press)
    assert off is not None and off - press <= C.ESTOP_DEADLINE_US
    assert not b.rig.output_on()
    assert all(p.t_us < press for p in b.pulses(ready))  # a pulse under way is cut, none starts
    b.run_for(500)
    assert b.faults_after(press)[0][1] == faults.ESTOP
    info = c.info()
    assert info.state == "FAULT" and info.fault.name == "ESTOP" and info.fault.latched
    assert fault_record(b)[0] == faults.ESTOP
    entry = last_log_entry(c)
    assert faults.ESTOP in entry[m.LOG_FAULTS]
    refused = c.session_start(heartbeat_ms=750, keep_alive=False)
    assert isinstance(refused, Refusal) and refused.name == "FAULT_LATCHED"
    assert c.fault_clear().name == "ESTOP_ACTIVE"  # not while the e-stop is still open
    b.rig.release_estop()
    assert c.fault_clear().state == "IDLE"
    assert fault_record(b) is None
    restart = b.us
    b.heartbeat_ms = 0
    stimulating(b, 12000, heartbeat_ms=750)
    again = b.pulses(restart)
    assert again[0].set_ua <= C.CHECK_UA  # the electrode check first, then from zero
    assert C.ramp_problems(b) == []
    rising = [p.set_ua for p in again if p.set_ua != C.CHECK_UA]
    assert rising[0] < 1000 and rising[-1] == 12000


@pytest.mark.req("SAF-ESTOP-1", "SIM-SCN-1")
def test_the_estop_scenario_file_latches_within_1ms(bench):
    b = bench(scenario=SCENARIOS / "estop-during-stimulation.toml")
    b.run_to(7_990_000)
    assert b.pulses()[-1].set_ua == 5000 and b.rig.output_on()
    b.run_to(10_500_000)
    assert b.off_after(8_000_000) - 8_000_000 <= C.ESTOP_DEADLINE_US
    assert not b.pulses(8_000_001)
    assert b.faults_after(0)[0][1] == faults.ESTOP
    assert fault_record(b)[0] == faults.ESTOP


# -- per-pulse checks -------------------------------------------------------------------


def _per_pulse_trip(b, t_inj, expected, read=None):
    off, code = trip(b, t_inj)
    p, want = first_faulty(b, t_inj, read)
    assert p is not None and expected in want
    assert code == expected
    assert p.t_us + b.pulse_us <= off < p.t_us + b.period_us  # after the pulse, before the next
    assert not [q for q in b.pulses(p.t_us + 1) if q.t_us >= off]
    return off, p


def _latched_and_logged(b, code):
    """SAF-LOG-1: the FAULT record (cause, time) survives a power cycle; the log entry lists the fault."""
    rec = fault_record(b)
    assert rec[0] == code and rec[1] > 0
    b.rig.power_cycle()
    b.run_for(100)
    assert not b.rig.output_on()
    c = b.client or b.connect()
    info = c.info()
    assert info.state == "FAULT" and info.fault.code == code and info.fault.time_ms == rec[1]
    assert info.protocol is not None  # the approved protocol is intact
    entry = last_log_entry(c)
    assert code in entry[m.LOG_FAULTS] and entry[m.LOG_END_REASON] == m.REASON_FAULT


@pytest.mark.req("SAF-CURRENT-1", "SAF-LOG-1")
def test_overcurrent_trips_before_the_next_pulse_and_is_logged(bench):
    b = bench()
    ready = stimulating(b, 8000)
    b.run_to(ready + 3_123_000)
    t = b.us
    b.rig.over_current(30)
    _per_pulse_trip(b, t, faults.OVERCURRENT)
    _latched_and_logged(b, faults.OVERCURRENT)


@pytest.mark.req("SAF-CURRENT-1")
@pytest.mark.parametrize(
    "action, value, expected",
    [
        ("stick_sense", 0, faults.CURRENT_MISMATCH),
        ("stick_sense", 30000, faults.OVERCURRENT),
        ("over_current", -40, faults.CURRENT_MISMATCH),
    ],
    ids=["sense-stuck-at-0", "sense-stuck-high", "weak-source"],
)
def test_a_current_sense_that_disagrees_trips_before_the_next_pulse(bench, action, value, expected):
    b = bench("stimulation-trial-cycled.toml")  # 10 Hz: a 100 ms period to beat
    ready = stimulating(b, 6000)
    b.run_to(ready + 2_000_000)
    t = b.us
    getattr(b.rig, action)(value)
    read = (lambda p: (value, value)) if action == "stick_sense" else None
    _per_pulse_trip(b, t, expected, read)


@pytest.mark.req("SAF-CURRENT-1")
def test_a_drifting_sense_trips_at_the_first_pulse_out_of_tolerance(bench):
    b = bench()
    ready = stimulating(b, 10000)
    b.run_to(ready + 1_000_000)
    t = b.us
    b.rig.drift_sense(120)  # +2 %/s: 10 % after about 5 s
    per_us = 120 / 100 / 60e6

    def read(p):
        g = 1 + per_us * max(p.t_us - t, 0)
        return round(p.ua1 * g), round(p.ua2 * g)

    _off, p = _per_pulse_trip(b, t, faults.OVERCURRENT, read)
    assert 4.5e6 < p.t_us - t < 5.5e6
    # every earlier pulse read within tolerance: the check did not trip early
    assert all(abs(read(q)[0] - q.set_ua) <= C.tolerance_ua(q.set_ua) for q in b.pulses(t) if q.t_us < p.t_us)


@pytest.mark.req("SAF-IMPEDANCE-1", "SAF-CURRENT-1")
def test_an_open_lead_trips_open_electrode_before_the_next_pulse(bench):
    b = bench(scenario=SCENARIOS / "lead-breaks-during-stimulation.toml")
    b.run_to(5_900_000)
    assert b.pulses()[-1].set_ua == 2500
    b.run_to(13_000_000)
    # the scenario's over-current comes first; then a fresh board for the open lead itself
    assert b.faults_after(0)[0][1] == faults.OVERCURRENT
    b2 = bench("stimulation-trial-cycled.toml", seed=3)
    ready = stimulating(b2, 4000)
    b2.run_to(ready + 1_500_000)
    t = b2.us
    b2.rig.open_load()
    _off, p = _per_pulse_trip(b2, t, faults.OPEN_ELECTRODE)
    assert p.mv >= 0.9 * b2.sim.board.compliance_mv  # the voltage at compliance named it


@pytest.mark.req("SAF-IMPEDANCE-1")
def test_a_short_trips_electrode_short_before_the_next_pulse(bench):
    b = bench()
    ready = stimulating(b, 5000)
    b.run_to(ready + 2_500_000)
    t = b.us
    b.rig.short_load()
    _per_pulse_trip(b, t, faults.ELECTRODE_SHORT)


@pytest.mark.req("SAF-CHARGE-1", "SAF-LOG-1", "SIM-OUT-6")
def test_a_short_second_phase_trips_charge_imbalance_on_its_first_pulse(bench):
    b = bench()
    ready = stimulating(b, 20000)
    b.run_to(ready + 2_000_000)
    before = [p for p in b.pulses() if not p.cut]
    assert before and max(abs(p.net_nc) for p in before) <= 0.01 * max(p.q1_nc for p in before)
    t = b.us
    b.rig.unbalance_phases(-15)  # 3 mA short at 20 mA: past the 2 mA tolerance
    off, p = _per_pulse_trip(b, t, faults.CHARGE_IMBALANCE)
    assert p.t_us <= t + b.period_us  # the first pulse after the injection (or the one under way)
    assert p.ua1 == pytest.approx(20000) and p.ua2 == pytest.approx(17000)
    assert p.net_nc == pytest.approx(0.15 * p.q1_nc)  # the one unbalanced pulse that was delivered
    assert [q for q in b.pulses(t - b.pulse_us) if q.t_us < off] == [p]
    _latched_and_logged(b, faults.CHARGE_IMBALANCE)


@pytest.mark.req("SAF-CHARGE-1", "SIM-OUT-6", "SIM-SCN-1")
def test_the_second_phase_scenario_file_trips_charge_imbalance_before_the_next_pulse(bench):
    b = bench(scenario=SCENARIOS / "second-phase-short-during-stimulation.toml")
    b.run_to(6_990_000)
    assert b.pulses()[-1].set_ua == 5000 and b.rig.output_on()
    b.run_to(8_000_000)
    unbalanced = b.pulses(7_000_000 - b.pulse_us)
    assert len(unbalanced) == 1 and unbalanced[0].net_nc == pytest.approx(0.4 * unbalanced[0].q1_nc)
    off = b.off_after(7_000_000)
    assert unbalanced[0].end_us <= off < unbalanced[0].t_us + b.period_us
    assert b.faults_after(0)[0][1] == faults.CHARGE_IMBALANCE


@pytest.mark.req("SAF-CHARGE-1")
def test_a_drying_contact_trips_charge_imbalance_too(bench):
    b = bench()
    ready = stimulating(b, 20000)
    b.run_to(ready + 2_000_000)
    t = b.us
    b.rig.set_electrode(2900, 0.1, 5000)  # the first phase hits compliance, the second is helped by Cdl
    _off, p = _per_pulse_trip(b, t, faults.CHARGE_IMBALANCE)
    assert abs(p.net_nc) > 0.1 * p.q1_nc


@pytest.mark.req("SAF-PULSE-1")
def test_a_stalled_pulse_generator_trips_within_two_periods_and_20ms(bench):
    b = bench("stimulation-trial-cycled.toml")
    ready = stimulating(b, 5000)
    b.run_to(ready + 2_050_000)
    t = b.us
    last = b.pulses()[-1]
    b.rig.stall_pulses(True)
    off, code = trip(b, t)
    assert code == faults.PULSE_STALLED
    assert off - last.t_us <= 2 * b.period_us + C.STALL_GRACE_MS * 1000 + 2 * TICK_US
    assert off - last.t_us > 2 * b.period_us  # not before two pulses were missed
    assert not b.pulses(last.t_us + 1)


# -- EMG trust in ETS -----------------------------------------------------------------


@pytest.mark.req("ETS-TRIGGER-1", "EMG-TRUST-1", "SAF-AMPLITUDE-1")
def test_no_ets_trigger_while_the_lead_is_off_or_the_input_saturated(bench):
    b = bench("ets-trial-short.toml", seed=4, scenario=SCENARIOS / "ets-lead-off.toml")
    b.start()
    assert b.wait_stim(m.STIM_READY, 20000) is not None
    b.set_level(6000)
    b.attempts()
    b.run_to(50_000_000)
    bursts = [t for t, s in b.stim_states() if s == m.STIM_RAMP_UP]
    flagged = [(25_100_000, 33_000_000), (40_100_000, 44_000_000)]
    assert not [t for t in bursts if any(a <= t <= z for a, z in flagged)]
    assert [t for t in bursts if 33_000_000 < t < 40_000_000]  # she triggers again once trusted
    assert b.faults_after(0) == []
    # each burst starts from zero: the pulses before every ramp are at 0 µA
    for t in bursts:
        prior = [p for p in b.pulses(t - 200_000) if p.t_us < t]
        assert prior and prior[-1].set_ua == 0
    assert C.ramp_problems(b) == []


# -- the link ---------------------------------------------------------------------------------


@pytest.mark.req("SAF-HEARTBEAT-1", "SAF-LOG-1")
@pytest.mark.parametrize("heartbeat_ms", [500, 990])
def test_link_loss_in_a_host_driven_session_stops_the_output_within_the_heartbeat(bench, heartbeat_ms):
    b = bench(seed=heartbeat_ms)
    ready = stimulating(b, 7000, heartbeat_ms=heartbeat_ms)
    b.run_to(ready + 4_321_000)
    t = b.us
    b.cut_link()
    b.run_for(heartbeat_ms + 500)
    off = b.off_after(t)
    assert off is not None and off - t <= heartbeat_ms * 1000 + TICK_US < 1_000_000 + TICK_US
    assert b.faults_after(t)[0][1] == faults.HEARTBEAT_LOST
    assert not b.pulses(off + 1)
    b.rig.reconnect_host()
    c = b.connect()
    info = c.info()
    assert info.state == "DONE" and info.fault is None  # ends the session, latches nothing
    assert faults.HEARTBEAT_LOST in last_log_entry(c)[m.LOG_FAULTS]


@pytest.mark.req("SAF-HEARTBEAT-1")
def test_a_button_started_session_does_not_depend_on_the_link(bench):
    b = bench()
    ready = stimulating(b, 7000)
    b.rig.disconnect_host()
    b.run_to(ready + 30_000_000)
    assert b.rig.output_on() and b.pulses()[-1].set_ua == 7000
    assert b.faults_after(0) == []


# -- the firmware itself -----------------------------------------------------------------------


@pytest.mark.req("SAF-EXC-1", "SAF-EXC-2", "SAF-LOG-1", "SIM-HAL-2")
@pytest.mark.parametrize("method", ["emg_read", "stim_sense", "link_read", "buttons"])
@pytest.mark.parametrize("error, code", [("runtime", faults.EXCEPTION), ("memory", faults.MEMORY)])
def test_an_exception_in_the_main_loop_ends_in_the_safe_state(bench, method, error, code):
    b = bench()
    ready = stimulating(b, 5000)
    b.run_to(ready + 1_777_000)
    t = b.us
    b.rig.inject_exception(method, error)
    off, got = trip(b, t)
    assert got == code and off - t <= TICK_US
    assert b.sim.crash is None  # caught by the controller, not a crash
    assert not b.pulses(off + 1)
    assert fault_record(b)[0] == code
    # the host is told where it was raised (SAF-EXC-2), and so is whoever reads the record after a reset
    where = b.connect().info().fault.where
    assert (
        where.startswith({"runtime": "RuntimeError", "memory": "MemoryError"}[error] + " at ")
        and fault_record(b)[3] == where
    )


@pytest.mark.req("SAF-ENABLE-1", "SAF-WDT-1", "SAF-BOOT-1", "SIM-SCN-1")
def test_a_hung_loop_loses_the_output_within_out_hold_and_the_watchdog_resets_it(bench):
    b = bench(scenario=SCENARIOS / "hang-then-watchdog.toml")
    b.run_to(8_990_000)
    assert b.rig.output_on()
    b.run_to(9_000_000 + C.WDT_TIMEOUT_MS * 1000 + 100_000)
    off = b.off_after(9_000_000)
    assert off - 9_000_000 <= C.OUT_HOLD_US
    assert list(b.out.lapses)[-1] == off  # the dynamic enable dropped by itself
    boots = [(t, cause) for t, cause in b.sim.boots if t > 9_000_000]
    assert boots[0][1] == H.RESET_WATCHDOG and boots[0][0] - 9_000_000 <= C.WDT_TIMEOUT_MS * 1000
    assert not b.rig.output_on() and not b.pulses(off + 1)
    assert fault_record(b)[0] == faults.WATCHDOG
    info = b.connect().info()
    assert info.state == "FAULT" and info.fault.name == "WATCHDOG"


@pytest.mark.req("SAF-POWER-1", "SAF-BOOT-1")
@pytest.mark.parametrize("cut", ["power_cycle", "brownout"])
def test_power_loss_during_stimulation_boots_safe_with_records_intact(bench, cut):
    b = bench("stimulation-trial-cycled.toml")
    c = b.connect()
    first = stimulating(b, 4000)
    b.run_to(first + 62_000_000)  # a whole session first, so the log has an entry to keep
    assert c.info().state == "DONE" and len(c.log_read(0).entries) == 1
    ready = stimulating(b, 4000)
    b.run_to(ready + 5_555_000)
    t = b.us
    getattr(b.rig, cut)()
    assert b.off_after(t) == t and not b.rig.output_on()
    b.run_for(1000)
    assert not b.pulses(t)
    assert not any(on for when, on in b.out.changes if when >= t)
    info = c.info()
    if cut == "brownout":
        assert info.state == "FAULT" and info.fault.name == "BROWNOUT"
        assert fault_record(b)[0] == faults.BROWNOUT
    else:
        assert info.state == "IDLE" and info.fault is None  # nothing tells a power cut apart
    assert info.protocol is not None and info.protocol.used == 2
    page = c.log_read(0)
    assert page.ok and page.damaged == 0 and len(page.entries) == 2
    cut_short = page.entries[1]  # logged at the next boot from the session's open marker
    assert cut_short[m.LOG_END_REASON] == m.REASON_INTERRUPTED
    assert cut_short[m.LOG_FAULTS] == ([faults.BROWNOUT] if cut == "brownout" else [])


# -- time and amplitude -----------------------------------------------------------------------


@pytest.mark.req("SAF-TIMEOUT-1", "SES-RUN-1")
def test_the_output_stops_at_the_protocols_end(bench):
    b = bench()
    stimulating(b, 9000)
    run = next(t for t, f in b.events(m.STATE_CHANGED) if f["to_state"] == m.RUNNING)
    end = run + b.duration_ms * 1000
    b.run_to(end + 1_000_000)
    off = b.off_after(end - TICK_US)
    assert end <= off <= end + TICK_US
    assert not b.pulses(end)
    assert b.pulses()[-1].t_us > end - b.period_us - TICK_US  # it stimulated up to the end


@pytest.mark.req("SAF-AMPLITUDE-1", "SAF-LAYERS-1", "SAF-CHARGE-1")
def test_a_new_hello_drops_the_command_to_zero_and_the_level_stays_within_the_smallest_limit(bench):
    b = bench(policy_ua=40000)
    c = b.connect()
    ready = stimulating(b, 15000, heartbeat_ms=750)
    assert b.limit_ua == 25000  # the phase's maximum is the smallest limit here
    over = c.stim_level(25500)
    assert isinstance(over, Refusal) and over.name == "BAD_FIELD"  # refused, not clamped
    assert c.stim_level(25000).level_ua == 25000
    b.run_for(3000)
    hello = b.us
    c.hello()  # a (re)connecting host: the command drops to zero at once
    b.run_for(200)
    assert [p.set_ua for p in b.pulses(hello + 2 * TICK_US)][:3] == [0, 0, 0]
    assert b.stim_level() == 0
    c.stim_level(20000)
    b.run_for(3000)
    pulses = b.pulses(ready)
    assert max(p.set_ua for p in pulses) == 25000 and pulses[-1].set_ua == 20000
    assert C.ramp_problems(b) == []  # and the way back up to 20 mA was a ramp
    assert all(abs(p.net_nc) <= 0.01 * p.q1_nc + 0.1 for p in pulses if not p.cut)
    assert C.invariant_problems(b, 1 << 62) == []


@pytest.mark.req("SAF-AMPLITUDE-1")
def test_pause_and_resume_restart_the_phase_from_zero(bench):
    b = bench()
    c = b.connect()
    stimulating(b, 15000, heartbeat_ms=750)
    b.run_for(2000)
    paused = b.us
    assert c.session_pause().state == "PAUSED"
    assert b.off_after(paused) is not None
    b.run_for(500)
    assert c.session_resume().state == "RUNNING"
    resumed = b.wait_stim(m.STIM_READY, 2000, since_us=b.us - 1)
    assert resumed is not None, "the stimulation never came back after the resume"
    assert b.stim_level() == 0  # the patient sets it again, and it ramps from zero
    c.stim_level(15000)
    b.run_for(3000)
    after = b.pulses(resumed)
    assert after[0].set_ua == 0 and after[-1].set_ua == 15000
    assert C.ramp_problems(b) == []
