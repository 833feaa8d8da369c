"""One campaign session: start, set the level, inject the case's fault, and check what followed."""

from firmware import hal as H
from protocol import faults, record
from protocol import messages as m
from qa.campaign.bench import Bench
from qa.campaign.oracles import (
    FAULTS,
    LOAD_CHANGING,
    LOOP_METHODS,
    PER_PULSE,
    TICK_US,
    WDT_TIMEOUT_MS,
    Result,
    deadline_us,
    invariant_problems,
    pulse_faults,
    readings,
)
from sim.runner import TICK_MS

_AFTER_TRIP_MS = 600  # watched after a trip: nothing may come out


def run_case(case, flash_dir=None):
    bench = Bench(case.protocol, case.seed, case.patient, case.policy_ua, flash_dir)
    try:
        return _session(bench, case)
    finally:
        bench.close()


def _session(bench, case):
    problems = []
    extra: dict[str, int] = {}
    bench.start(case.heartbeat_ms if case.host else 0)
    ready = bench.wait_stim(m.STIM_READY, 30000)
    if ready is None:
        return Result(case, None, 0, None, ("the stimulation never passed its electrode check",), extra)
    if case.host:
        r = bench.client.stim_level(bench.limit_ua + 500)
        if r.ok:
            problems.append("a level above the limit was accepted (SAF-LAYERS-1)")
    bench.set_level(case.level_ua)
    if bench.ets:
        bench.attempts()
    t_inj = ready + case.at_us
    bench.run_to(t_inj)
    t_ref = bench.us
    _inject(bench, case)
    deadline = deadline_us(bench, case)
    reaction = None
    code = 0
    k = case.fault
    if k in PER_PULSE:
        reaction, code = _per_pulse(bench, case, t_ref, problems)
    elif k in ("lead_off", "saturation"):
        _flagged(bench, case, t_ref, problems, extra)
    elif k == "none" or (k == "link_loss" and not case.host):
        reaction = _to_the_end(bench, case, problems)
    else:
        reaction, code = _timed(bench, case, t_ref, deadline, problems, extra)
    problems += invariant_problems(bench, t_ref if k in LOAD_CHANGING else 1 << 62)
    _after(bench, case, code, problems)
    return Result(case, reaction, code, deadline, tuple(problems), extra)


def _per_pulse(bench, case, t_inj, problems):
    """Run until the trip (or the session's end); check it against the first pulse that shows the fault."""
    bench.run_until(lambda: bench.off_after(t_inj) is not None, bench.duration_ms + 5000, step_ms=50)
    off = bench.off_after(t_inj)
    read = readings(case, t_inj)
    compliance = bench.sim.board.compliance_mv
    first = None
    # a pulse under way at the injection completes into the faulty stage too
    for p in bench.pulses(t_inj - bench.pulse_us):
        if p.cut or (off is not None and p.t_us >= off):
            continue
        want = pulse_faults(p, *read(p), compliance)
        if want:
            first = (p, want)
            break
    if off is not None:
        bench.run_for(_AFTER_TRIP_MS)  # the next loop pass reports the fault
    tripped = bench.faults_after(t_inj)
    code = tripped[0][1] if tripped else 0
    if first is None:
        if code:
            problems.append(f"tripped {faults.name(code)} although no pulse showed the fault")
        return None, code
    p, want = first
    if not code:
        problems.append(
            "a faulty pulse at {:.3f} s ({}) did not trip".format(
                p.t_us / 1e6, "/".join(faults.name(c) for c in want)
            )
        )
        return None, 0
    if code not in want:
        problems.append(
            "tripped {}; the pulse called for {}".format(
                faults.name(code), "/".join(faults.name(c) for c in want)
            )
        )
    expected = FAULTS[case.fault].codes
    if code not in expected:
        problems.append(f"tripped {faults.name(code)}, expected {faults.name(expected[0])}")
    if case.fault == "charge_imbalance" and abs(p.net_nc) <= 0.01 * abs(p.q1_nc) + 0.1:
        problems.append("the unbalanced pulse at %.3f s left no net charge" % (p.t_us / 1e6))
    if off is None or off >= p.t_us + bench.period_us:
        problems.append("the output was still on when the next pulse was due")
    late = [q for q in bench.pulses(p.t_us + 1) if off is None or q.t_us >= off]
    if late:
        problems.append(f"{len(late)} pulses after the trip")
    return (off - p.t_us if off is not None else None), code


def _timed(bench, case, t_ref, deadline, problems, extra):
    """Faults timed from their injection: the output must be off within the deadline."""
    k = case.fault
    fault = FAULTS[k]
    watch_ms = max(deadline // 1000 + 100, _AFTER_TRIP_MS)
    if k == "hang":
        watch_ms = WDT_TIMEOUT_MS + 500
    bench.run_for(watch_ms)
    off = bench.off_after(t_ref)
    reaction = None if off is None else off - t_ref
    if reaction is None or reaction > deadline:
        problems.append(f"output off after {reaction} µs, deadline {deadline:d} µs")
    if off is not None:
        late = bench.pulses(off + 1)
        if late and k not in ("power_loss", "brownout", "hang"):
            problems.append(f"{len(late)} pulses after the trip")
        elif any(p.t_us > off for p in late):
            problems.append("pulses after a reset")
    if k in ("hang", "power_loss", "brownout"):
        boots = [(t, c) for t, c in bench.sim.boots if t >= t_ref]
        want = {"hang": H.RESET_WATCHDOG, "power_loss": H.RESET_POWER_ON, "brownout": H.RESET_BROWNOUT}[k]
        if not boots or boots[0][1] != want:
            problems.append(f"no reset with cause {want:d} after the {k}")
        elif k == "hang":
            extra["watchdog_us"] = boots[0][0] - t_ref
            if boots[0][0] - t_ref > WDT_TIMEOUT_MS * 1000:
                problems.append(
                    f"the watchdog reset came {(boots[0][0] - t_ref) // 1000:d} ms after the hang"
                )
        bench.run_for(TICK_MS * 2)  # the first loop pass after boot stores the latched cause
        # no host has greeted the new boot, so no FAULT event went out: the record tells
        rec = bench.sim.board.flash.read("fault")
        code = record.unpack(rec).get(0, 0) if rec is not None else 0
    else:
        tripped = bench.faults_after(t_ref)
        code = tripped[0][1] if tripped else 0
    if fault.codes and code not in fault.codes:
        problems.append(f"fault {faults.name(code)} reported, expected {faults.name(fault.codes[0])}")
    if not fault.codes and code:
        problems.append(f"fault {faults.name(code)} reported where none is detectable")
    return reaction, code


def _flagged(bench, case, t_ref, problems, extra):
    """ETS with the EMG untrusted for 8 s, the patient still contracting: no trigger meanwhile."""
    bench.run_for(8000)
    t_clear = bench.us
    if case.fault == "lead_off":
        bench.rig.set_lead_off(False)
    else:
        bench.rig.set_saturation(False)
    # a burst already under way runs on; the flag reaches the trigger within one envelope update
    early = t_ref + 100_000
    triggers = [t for t, s in bench.stim_states(early) if s == m.STIM_RAMP_UP and t <= t_clear]
    extra["triggers_while_flagged"] = len(triggers)
    if triggers:
        problems.append(f"{len(triggers)} ETS triggers while the EMG was flagged")
    tripped = bench.faults_after(t_ref)
    if tripped:
        problems.append(f"fault {faults.name(tripped[0][1])} on a flagged EMG")
    _to_the_end(bench, case, problems)


def _to_the_end(bench, case, problems):
    """Run the session to its planned end; the output must stop within one loop pass of it (SAF-TIMEOUT-1)."""
    runs = [t for t, f in bench.events(m.STATE_CHANGED) if f["to_state"] == m.RUNNING]
    end = runs[0] + bench.duration_ms * 1000
    bench.run_to(end + 500_000)
    off = bench.off_after(end - TICK_US)
    if off is None or off > end + TICK_US:
        problems.append("the output was still on after the session's end")
    late = list(bench.pulses(end))
    if late:
        problems.append(f"{len(late)} pulses after the session's end")
    done = [
        f
        for t, f in bench.events(m.STATE_CHANGED)
        if f["to_state"] == m.DONE and f["reason"] == m.REASON_FINISHED
    ]
    if not done:
        problems.append("the session did not finish on time")
    if bench.faults_after(0):
        problems.append(f"fault {faults.name(bench.faults_after(0)[0][1])} in a session without one")
    return None if off is None else off - end


def _after(bench, case, code, problems):
    """Records after the session: the latched fault, the FAULT record, the log, a power cycle."""
    fault = FAULTS[case.fault]
    if case.fault == "emg_stall":
        bench.rig.stall_emg(False)
    if not bench.link_up:
        bench.rig.reconnect_host()
        bench.link_up = False  # no more heartbeats: the session is over
    bench.heartbeat_ms = 0
    bench.stop_talking()
    bench.attempts(False)
    if case.fault == "estop":
        bench.rig.release_estop()
    latched = fault.latched and code != 0  # a wrong code is reported above; this checks it is kept
    if latched:
        rec = bench.sim.board.flash.read("fault")
        stored = record.unpack(rec) if rec is not None else None
        if not isinstance(stored, dict) or stored.get(0) != code:
            problems.append(f"no FAULT record of {faults.name(code)} in flash")
    bench.rig.power_cycle()
    bench.run_for(200)
    if bench.rig.output_on() or any(t > bench.sim.boots[-1][0] for t, on in bench.out.changes if on):
        problems.append("the output came on after a power cycle")
    c = bench.client or bench.connect()
    info = c.info()
    if not info.ok:
        problems.append("INFO refused after the power cycle")
        return
    if latched:
        if info.fault is None or info.fault.code != code or info.state != "FAULT":
            problems.append(f"{faults.name(code)} not latched after a power cycle")
        r = c.session_start(keep_alive=False)
        if r.ok or r.name != "FAULT_LATCHED":
            problems.append("a start was not refused with the fault latched")
    elif info.fault is not None:
        problems.append(f"fault {info.fault.name} latched where none should be")
    if info.protocol is None:
        problems.append("the approved protocol was lost")
    page = c.log_read(0)
    if not page.ok or page.damaged:
        problems.append("the compliance log is not readable")
        return
    logged = case.fault not in ("hang", "power_loss", "brownout")  # the board reset mid-session
    if logged:
        if not page.entries:
            problems.append("the session is not in the compliance log")
            return
        entry = page.entries[-1]
        if code and code not in entry.get(m.LOG_FAULTS, ()):
            problems.append(f"the log entry does not list {faults.name(code)}")
        if entry.get(m.LOG_MAX_UA, 0) > bench.limit_ua:
            problems.append(f"the log says {entry[m.LOG_MAX_UA]:d} µA, above the limit")


def _inject(bench, case):
    rig = bench.rig
    k = case.fault
    if k == "estop":
        rig.press_estop()
    elif k == "host_estop":
        bench.client.estop()
    elif k == "overcurrent":
        rig.over_current(case.param)
    elif k == "weak_source":
        rig.over_current(-case.param)
    elif k == "sense_stuck":
        rig.stick_sense(int(case.param))
    elif k == "sense_drift":
        rig.drift_sense(case.param)
    elif k == "open_load":
        rig.open_load()
    elif k == "short_load":
        rig.short_load()
    elif k == "charge_imbalance":
        rig.unbalance_phases(case.param)
    elif k == "stall_pulses":
        rig.stall_pulses(True)
    elif k in ("exception", "memory"):
        rig.inject_exception(LOOP_METHODS[int(case.param)], "memory" if k == "memory" else "runtime")
    elif k == "hang":
        rig.hang_firmware()
    elif k == "power_loss":
        rig.power_cycle()
    elif k == "brownout":
        rig.brownout()
    elif k == "link_loss":
        bench.cut_link()
    elif k == "emg_stall":
        rig.stall_emg(True)
    elif k == "lead_off":
        rig.set_lead_off(True)
    elif k == "saturation":
        rig.set_saturation(True)
