"""The fault-injection campaign: every stimulation interlock, tripped at random, timed in simulated time.

    python -m sim.campaign --sessions 500 --seed 1

Each session is a fresh simulator running the real firmware: a clinician's
stimulation or ETS protocol (examples/protocols/*-trial-*.toml) is approved
on it, a random patient starts it (with the device's button, or a host that
keeps a heartbeat), sets a random level, and at a random instant one fault
from FAULTS is injected (or none). The session then asserts what the
interlock promises:

- the safe state (output enable off) within the interlock's deadline,
  measured from the injection, or for a per-pulse check from the first
  pulse on which the fault could be seen (an open load carries no current
  at 0 mA, so it is only visible once the level rises);
- the expected fault, latched where the fault is a latched one, in the
  FAULT record that survives a power cycle and in the session's compliance
  log entry; a start refused until it is cleared;
- no pulse after the trip, no pulse outside a RUNNING session, the level
  never above the smallest limit, every train from zero and no steeper than
  the slew limit, net charge per pulse zero on a healthy load, no storage
  write while the output is on.

What a session saw is a Result; `table()` turns many into the Markdown
table of docs/interlocks.md, with the worst reaction per interlock. The
oracles below are written from the requirements (docs/requirements.toml),
not from firmware/stim.py, so that the two can disagree.
"""

import argparse
import logging
import random
import sys
import time
from pathlib import Path
from typing import NamedTuple

from firmware import hal as H
from protocol import codec, faults, framing, record
from protocol import messages as m
from sim.patient import PROFILES
from sim.runner import TICK_MS, Simulator

ROOT = Path(__file__).resolve().parent.parent
PROTOCOL_DIR = ROOT / "examples" / "protocols"
PROTOCOLS = ("stimulation-trial-1min.toml", "stimulation-trial-cycled.toml", "ets-trial-short.toml")
POLICIES_UA = (
    25000,
    40000,
    100000,
)  # the device policy; it refuses a protocol above it, so never below 25 mA
HEARTBEATS_MS = (500, 750, 990)  # a host-driven session stops within 1 s of silence
HW_MAX_UA = 100000  # sim/board.py: the simulated board's ceiling

# What the requirements promise, independently of firmware/stim.py:
TOLERANCE_PERCENT = 10  # SAF-CURRENT-1: 10 % or 1 mA, the larger
TOLERANCE_MIN_UA = 1000
MIN_IMPEDANCE_OHM = 100  # a short, measured at 1 mA or more
CHECK_UA = 1000  # SAF-IMPEDANCE-1: every phase starts with a 1 mA check
SLEW_UA_PER_S = 20000  # SAF-AMPLITUDE-1
RESOLUTION_UA = 100
ESTOP_DEADLINE_US = 1000  # SAF-ESTOP-1: output off within 1 ms of the press
OUT_HOLD_US = H.OUT_HOLD_MS * 1000  # SAF-ENABLE-1
WDT_TIMEOUT_MS = 2000  # firmware/controller.py; SAF-WDT-1
STALL_GRACE_MS = 20  # SAF-PULSE-1: two periods plus 20 ms
EMG_STALL_MS = 200  # firmware/emg.py STALL_MS
_TICK_US = TICK_MS * 1000
_AFTER_TRIP_MS = 600  # watched after a trip: nothing may come out
_ATTEMPT_EVERY_MS = 10000  # the ETS patient's own contractions
_ATTEMPT_HOLD_MS = 2000


class Fault(NamedTuple):
    """One kind of injected fault and what its interlock promises."""

    codes: tuple  # acceptable fault codes (the first is the one named in the table)
    latched: bool
    reqs: tuple  # requirement IDs it proves
    deadline: str  # as the table states it
    measured_from: str
    host_only: bool = False
    ets_only: bool = False


FAULTS = {
    "estop": Fault((faults.ESTOP,), True, ("SAF-ESTOP-1",), "1 ms", "press"),
    "host_estop": Fault(
        (faults.HOST_ESTOP,), True, ("SAF-ESTOP-1",), "1 loop pass (5 ms)", "request sent", host_only=True
    ),
    "overcurrent": Fault(
        (faults.OVERCURRENT,),
        True,
        ("SAF-CURRENT-1",),
        "before the next pulse (1 period)",
        "first faulty pulse",
    ),
    "weak_source": Fault(
        (faults.CURRENT_MISMATCH,),
        True,
        ("SAF-CURRENT-1",),
        "before the next pulse (1 period)",
        "first faulty pulse",
    ),
    "sense_stuck": Fault(
        (faults.CURRENT_MISMATCH, faults.OVERCURRENT),
        True,
        ("SAF-CURRENT-1",),
        "before the next pulse (1 period)",
        "first faulty pulse",
    ),
    "sense_drift": Fault(
        (faults.CURRENT_MISMATCH, faults.OVERCURRENT),
        True,
        ("SAF-CURRENT-1",),
        "before the next pulse (1 period)",
        "first pulse out of tolerance",
    ),
    "open_load": Fault(
        (faults.OPEN_ELECTRODE,),
        True,
        ("SAF-IMPEDANCE-1", "SAF-CURRENT-1"),
        "before the next pulse (1 period)",
        "first faulty pulse",
    ),
    "short_load": Fault(
        (faults.ELECTRODE_SHORT,),
        True,
        ("SAF-IMPEDANCE-1",),
        "before the next pulse (1 period)",
        "first pulse at >= 1 mA",
    ),
    "charge_imbalance": Fault(
        (faults.CHARGE_IMBALANCE,),
        True,
        ("SAF-CHARGE-1",),
        "before the next pulse (1 period)",
        "first unbalanced pulse",
    ),
    "stall_pulses": Fault(
        (faults.PULSE_STALLED,), True, ("SAF-PULSE-1",), "2 periods + 20 ms + 2 loop passes", "stall"
    ),
    "exception": Fault((faults.EXCEPTION,), True, ("SAF-EXC-1",), "1 loop pass (5 ms)", "injection"),
    "memory": Fault((faults.MEMORY,), True, ("SAF-EXC-1",), "1 loop pass (5 ms)", "injection"),
    "hang": Fault(
        (faults.WATCHDOG,),
        True,
        ("SAF-ENABLE-1", "SAF-WDT-1"),
        "OUT_HOLD_MS (%d ms); reset 2 s" % H.OUT_HOLD_MS,
        "hang",
    ),
    "power_loss": Fault((), False, ("SAF-POWER-1", "SAF-BOOT-1"), "at once (reset)", "power cut"),
    "brownout": Fault(
        (faults.BROWNOUT,), True, ("SAF-POWER-1", "SAF-BOOT-1"), "at once (reset)", "brown-out"
    ),
    "link_loss": Fault(
        (faults.HEARTBEAT_LOST,), False, ("SAF-HEARTBEAT-1",), "heartbeat + 1 loop pass (< 1 s)", "link cut"
    ),
    "emg_stall": Fault((faults.EMG_STALLED,), False, ("EMG-TRUST-1",), "200 ms + 2 loop passes", "stall"),
    "lead_off": Fault(
        (), False, ("ETS-TRIGGER-1", "EMG-TRUST-1"), "no trigger while flagged", "flag", ets_only=True
    ),
    "saturation": Fault(
        (), False, ("ETS-TRIGGER-1", "EMG-TRUST-1"), "no trigger while flagged", "flag", ets_only=True
    ),
    "none": Fault(
        (), False, ("SAF-TIMEOUT-1", "SAF-AMPLITUDE-1"), "1 loop pass after the protocol's end", "planned end"
    ),
}
# HAL methods the main loop calls on every pass while stimulating
LOOP_METHODS = ("emg_read", "emg_index", "stim_sense", "link_read", "buttons", "estop_open", "out_keepalive")


def tolerance_ua(set_ua):
    """SAF-CURRENT-1's tolerance around a commanded current."""
    return max(set_ua * TOLERANCE_PERCENT // 100, TOLERANCE_MIN_UA)


class Case(NamedTuple):
    index: int
    seed: int  # the simulator's seed: serial, patient and EMG noise
    protocol: str  # file name in examples/protocols
    patient: str
    policy_ua: int
    host: bool  # host-driven (heartbeat) or started with the device's button
    heartbeat_ms: int
    level_ua: int  # the level the patient asks for
    fault: str  # a key of FAULTS
    at_us: int  # injection, after the stimulation phase's electrode check passed
    param: float  # the fault's size (percent, µA, %/min, HAL method index), 0 if none


class Result(NamedTuple):
    case: Case
    reaction_us: int | None  # measured from FAULTS[fault].measured_from; None: nothing to measure
    code: int  # the fault the device reported first after the injection, 0 if none
    deadline_us: int | None
    problems: tuple  # what went wrong; empty means the session passed
    extra: dict  # secondary figures (watchdog reset, triggers while flagged)


# -- a simulated board with a protocol approved, driven like a patient and a host would -------


class Bench:
    """One simulator with a stimulation protocol approved and a device policy provisioned."""

    def __init__(
        self,
        protocol,
        seed=0,
        patient="healthy",
        policy_ua=40000,
        flash_dir=None,
        scenario=None,
        pass_cost=None,
    ):
        from host import therapy_file
        from host.simclinic import approve_on

        self.path = PROTOCOL_DIR / protocol if not Path(protocol).is_absolute() else Path(protocol)
        doc, problems = therapy_file.load(self.path)
        if problems:
            raise ValueError("%s: %s" % (self.path, problems))
        self.doc = doc
        self.stim_phase = next(p for p in doc["phases"] if p["type"] in ("stimulation", "ets"))
        self.ets = self.stim_phase["type"] == "ets"
        self.limit_ua = min(
            HW_MAX_UA, policy_ua, doc["limits"]["amplitude_max_ua"], self.stim_phase["amplitude_max_ua"]
        )
        self.period_us = 1_000_000 // self.stim_phase["frequency_hz"]
        self.pulse_us = 2 * self.stim_phase["pulse_width_us"] + self.stim_phase["interphase_gap_us"]
        self.duration_ms = sum(_phase_ms(p) for p in doc["phases"])
        self.sim = Simulator(
            seed=seed, patient=patient, flash_dir=flash_dir, scenario=scenario, pass_cost=pass_cost
        )
        self.rig = self.sim.rig
        self.out = self.sim.board.output
        self.sim.board.flash.write("policy", record.pack({"amplitude_max_ua": policy_ua}))
        approve_on(self.sim, self.path)  # power-cycles: the policy is read at that boot
        self.client = None
        self.heartbeat_ms = 0
        self.link_up = True
        self._last_ping_us = 0
        self._pings = 0
        self._attempts_from_us = None

    # -- the host -------------------------------------------------------------

    def connect(self):
        """A host on the link (a new HELLO); the client is kept in self.client."""
        from host.client import Client
        from host.transport import Port
        from sim.urlhandler.protocol_sim import Serial

        self.client = Client(Port(Serial.attached(self.sim), "sim://attached"), timeout=1.0)
        return self.client

    def start(self, heartbeat_ms=0):
        """Start the approved session: over the link with a heartbeat, else with the button."""
        self.heartbeat_ms = heartbeat_ms
        if heartbeat_ms:
            c = self.client or self.connect()
            r = c.session_start(heartbeat_ms=heartbeat_ms, keep_alive=False)
            self._last_ping_us = self.sim.clock.us
            return r
        self.rig.press_button(H.BTN_START)
        self.run_for(TICK_MS)
        return None

    def cut_link(self):
        self.rig.disconnect_host()
        self.link_up = False

    # -- time -----------------------------------------------------------------

    @property
    def us(self):
        return self.sim.clock.us

    def run_for(self, ms):
        self.run_to(self.us + round(ms * 1000))

    def run_to(self, t_us):
        """Run to t_us, keeping the heartbeat and the ETS patient's attempts going."""
        sim = self.sim
        while sim.clock.us < t_us:
            nxt = t_us
            if self.heartbeat_ms and self.link_up:
                nxt = min(nxt, self._last_ping_us + self.heartbeat_ms * 1000 // 3)
            sim.run_for((max(nxt, sim.clock.us + 1) - sim.clock.us) / 1000)
            self._drain()
            self._attempt()
            if (
                self.heartbeat_ms
                and self.link_up
                and sim.clock.us >= self._last_ping_us + self.heartbeat_ms * 1000 // 3
            ):
                self._ping()

    def _ping(self):
        # sent and not awaited, as the host client's own heartbeat: a device that
        # hangs or resets must not stall the bench
        self._last_ping_us = self.sim.clock.us
        self._pings += 1
        msg = m.build(m.REQUEST, 0xFF00 + self._pings % 0xFF, m.PING)
        self.client.send_raw(framing.encode(codec.dumps(msg)))

    def _drain(self):
        # the device drops what does not fit its transmit buffer, and the
        # simulator only records what was sent: keep reading like a host
        if self.client is None:
            self.sim.host_read(-1)
        else:
            while self.sim.host_pending():
                self.client.poll(0)

    def run_until(self, predicate, timeout_ms, step_ms=TICK_MS):
        end = self.us + timeout_ms * 1000
        while not predicate():
            if self.us >= end:
                return False
            self.run_for(step_ms)
        return True

    # -- the patient -------------------------------------------------------------

    def attempts(self, on=True):
        """The ETS patient contracts on her own every _ATTEMPT_EVERY_MS (from now), or stops."""
        self._attempts_from_us = self.us if on else None

    def _attempt(self):
        start = self._attempts_from_us
        if start is None or self.us < start:
            return
        # the therapist beside her asks for a squeeze and a let-go
        self.rig.patient_contract(_ATTEMPT_HOLD_MS / 1000)
        self._attempts_from_us = self.us + _ATTEMPT_EVERY_MS * 1000

    def set_level(self, ua):
        """The patient's level: over the link when a host drives, else BTN_UP presses until reached."""
        if self.heartbeat_ms:
            return self.client.stim_level(ua)
        for _ in range(200):
            if self.stim_level() >= ua:
                break
            self.rig.press_button(H.BTN_UP)
            self.run_for(TICK_MS)
        return None

    # -- what the device said and did ----------------------------------------------

    def events(self, mtype, since_us=0):
        return [(t, f) for t, ty, f in self.sim.device_events if ty == mtype and t >= since_us]

    def stim_states(self, since_us=0):
        return [(t, f["state"]) for t, f in self.events(m.STIM, since_us)]

    def stim_level(self):
        got = [f["level_ua"] for _t, f in self.events(m.STIM)]
        ctrl = self.sim.ctrl
        return ctrl.stim.level_ua if ctrl is not None else (got[-1] if got else 0)

    def wait_stim(self, state, timeout_ms, since_us=0):
        """Run until the stimulator reported `state` (after since_us); its time, or None."""
        found = []

        def seen():
            found[:] = [t for t, s in self.stim_states(since_us) if s == state]
            return bool(found)

        return found[0] if self.run_until(seen, timeout_ms) else None

    def off_after(self, t_us):
        """The first instant at or after t_us the output enable went (or was) off."""
        on = False
        for t, state in self.out.changes:
            if t <= t_us:
                on = state
            elif not state:
                return t
        return None if on else t_us

    def pulses(self, since_us=0):
        return [p for p in self.rig.pulses() if p.t_us >= since_us]

    def faults_after(self, t_us):
        return [(t, f["code"]) for t, f in self.events(m.FAULT, t_us)]

    def running_spans(self):
        """[start, end) of every RUNNING stretch, in simulator µs (a reboot ends one)."""
        spans = []
        start = None
        marks = [(t, "e", f) for t, f in self.events(m.STATE_CHANGED)] + [
            (t, "b", None) for t, _c in self.sim.boots
        ]
        for t, kind, f in sorted(marks, key=lambda x: (x[0], x[1] == "e")):
            if (kind == "b" or f["from_state"] == m.RUNNING) and start is not None:
                spans.append((start, t))
                start = None
            if kind == "e" and f["to_state"] == m.RUNNING:
                start = t
        if start is not None:
            spans.append((start, None))
        return spans

    def close(self):
        if self.client is not None:
            self.client.close()
        self.sim.close()


def _phase_ms(p):
    from protocol.therapy import phase_seconds

    return phase_seconds(p) * 1000


# -- invariants every session keeps -----------------------------------------------------


def invariant_problems(bench, healthy_until_us):
    """What a session broke whatever its fault; pulses before healthy_until_us are on a sound load."""
    problems = []
    trace = bench.pulses()
    spans = bench.running_spans()
    for p in trace:
        if not any(a <= p.t_us and (b is None or p.t_us < b) for a, b in spans):
            problems.append("pulse at %.3f s outside a running session" % (p.t_us / 1e6))
            break
    if trace and max(p.set_ua for p in trace) > bench.limit_ua:
        problems.append("level %d µA above the limit %d µA" % (max(p.set_ua for p in trace), bench.limit_ua))
    problems += ramp_problems(bench)
    for p in trace:
        if p.t_us < healthy_until_us and not p.cut and abs(p.net_nc) > 0.01 * abs(p.q1_nc) + 0.1:
            problems.append("net charge %.2f nC in the pulse at %.3f s" % (p.net_nc, p.t_us / 1e6))
            break
    if bench.sim.board.fs_writes_while_output_on:
        problems.append("%d storage writes with the output on" % bench.sim.board.fs_writes_while_output_on)
    if bench.sim.bad_frames:
        problems.append("%d invalid frames from the device" % bench.sim.bad_frames)
    return problems


def ramp_problems(bench):
    """Each train (enable on .. off) starts at the electrode check and rises no steeper than the slew limit."""
    edges = [t for t, on in bench.out.changes if on]
    problems = []
    prev = None
    edge_i = 0
    for p in bench.pulses():
        while edge_i < len(edges) and edges[edge_i] <= p.t_us:
            edge_i += 1
            prev = None  # a new train: nothing carries over
        if prev is None:
            if p.set_ua > CHECK_UA:
                problems.append(
                    "a train starts at %d µA at %.3f s, not from the check" % (p.set_ua, p.t_us / 1e6)
                )
        else:
            allowed = SLEW_UA_PER_S * (p.t_us - prev.t_us + _TICK_US) // 1_000_000 + RESOLUTION_UA
            if p.set_ua - prev.set_ua > allowed:
                problems.append(
                    "amplitude jumps %d -> %d µA at %.3f s" % (prev.set_ua, p.set_ua, p.t_us / 1e6)
                )
        prev = p
        if len(problems) > 2:
            break
    return problems


# -- what each pulse calls for, by the requirements -------------------------------------


def pulse_faults(p, read1, read2, compliance_mv):
    """The fault codes a completed pulse calls for, given what the sense read of it.

    SAF-CURRENT-1 (over, under), SAF-CHARGE-1 (the two phases), SAF-IMPEDANCE-1
    (an under-current with the voltage near compliance is an open electrode;
    an impedance under 100 ohm at 1 mA or more a short).
    """
    tol = tolerance_ua(p.set_ua)
    mv = round(p.mv)
    got = set()
    if read1 > p.set_ua + tol or read2 > p.set_ua + tol:
        got.add(faults.OVERCURRENT)
    if abs(read1 - read2) > tol:
        got.add(faults.CHARGE_IMBALANCE)
    if read1 < p.set_ua - tol or read2 < p.set_ua - tol:
        got.add(faults.OPEN_ELECTRODE if mv * 100 >= compliance_mv * 90 else faults.CURRENT_MISMATCH)
    if read1 >= CHECK_UA and mv * 1000 // read1 < MIN_IMPEDANCE_OHM:
        got.add(faults.ELECTRODE_SHORT)
    return got


def _readings(case, t_inj):
    """How the current sense reads a pulse once the case's fault is in (true values otherwise)."""
    if case.fault == "sense_stuck":
        stuck = int(case.param)
        return lambda p: (stuck, stuck)
    if case.fault == "sense_drift":
        per_us = case.param / 100 / 60e6

        def drifted(p):
            g = 1.0 + per_us * max(p.t_us - t_inj, 0)
            return max(0, round(p.ua1 * g)), max(0, round(p.ua2 * g))

        return drifted
    return lambda p: (round(p.ua1), round(p.ua2))


PER_PULSE = (
    "overcurrent",
    "weak_source",
    "sense_stuck",
    "sense_drift",
    "open_load",
    "short_load",
    "charge_imbalance",
)
# after these a pulse may leave net charge: the balance invariant holds up to the injection
_LOAD_CHANGING = ("open_load", "short_load", "charge_imbalance")


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


def _deadline_us(bench, case):
    k = case.fault
    if k == "estop":
        return ESTOP_DEADLINE_US
    if k in ("host_estop", "exception", "memory", "none"):
        return _TICK_US
    if k in PER_PULSE:
        return bench.period_us
    if k == "stall_pulses":
        return 2 * bench.period_us + STALL_GRACE_MS * 1000 + 2 * _TICK_US + 1000
    if k == "hang":
        return OUT_HOLD_US
    if k in ("power_loss", "brownout"):
        return 0
    if k == "link_loss":
        return case.heartbeat_ms * 1000 + _TICK_US if case.host else None
    if k == "emg_stall":
        return EMG_STALL_MS * 1000 + 2 * _TICK_US + 1000
    return None


# -- one session ------------------------------------------------------------------------


def run_case(case, flash_dir=None):
    bench = Bench(case.protocol, case.seed, case.patient, case.policy_ua, flash_dir)
    try:
        return _session(bench, case)
    finally:
        bench.close()


def _session(bench, case):
    problems = []
    extra = {}
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
    deadline = _deadline_us(bench, case)
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
    problems += invariant_problems(bench, t_ref if k in _LOAD_CHANGING else 1 << 62)
    _after(bench, case, code, problems)
    return Result(case, reaction, code, deadline, tuple(problems), extra)


def _per_pulse(bench, case, t_inj, problems):
    """Run until the trip (or the session's end); check it against the first pulse that shows the fault."""
    bench.run_until(lambda: bench.off_after(t_inj) is not None, bench.duration_ms + 5000, step_ms=50)
    off = bench.off_after(t_inj)
    read = _readings(case, t_inj)
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
            problems.append("tripped %s although no pulse showed the fault" % faults.name(code))
        return None, code
    p, want = first
    if not code:
        problems.append(
            "a faulty pulse at %.3f s (%s) did not trip"
            % (p.t_us / 1e6, "/".join(faults.name(c) for c in want))
        )
        return None, 0
    if code not in want:
        problems.append(
            "tripped %s; the pulse called for %s"
            % (faults.name(code), "/".join(faults.name(c) for c in want))
        )
    expected = FAULTS[case.fault].codes
    if code not in expected:
        problems.append("tripped %s, expected %s" % (faults.name(code), faults.name(expected[0])))
    if case.fault == "charge_imbalance" and abs(p.net_nc) <= 0.01 * abs(p.q1_nc) + 0.1:
        problems.append("the unbalanced pulse at %.3f s left no net charge" % (p.t_us / 1e6))
    if off is None or off >= p.t_us + bench.period_us:
        problems.append("the output was still on when the next pulse was due")
    late = [q for q in bench.pulses(p.t_us + 1) if off is None or q.t_us >= off]
    if late:
        problems.append("%d pulses after the trip" % len(late))
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
        problems.append("output off after %s µs, deadline %d µs" % (reaction, deadline))
    if off is not None:
        late = bench.pulses(off + 1)
        if late and k not in ("power_loss", "brownout", "hang"):
            problems.append("%d pulses after the trip" % len(late))
        elif any(p.t_us > off for p in late):
            problems.append("pulses after a reset")
    if k in ("hang", "power_loss", "brownout"):
        boots = [(t, c) for t, c in bench.sim.boots if t >= t_ref]
        want = {"hang": H.RESET_WATCHDOG, "power_loss": H.RESET_POWER_ON, "brownout": H.RESET_BROWNOUT}[k]
        if not boots or boots[0][1] != want:
            problems.append("no reset with cause %d after the %s" % (want, k))
        elif k == "hang":
            extra["watchdog_us"] = boots[0][0] - t_ref
            if boots[0][0] - t_ref > WDT_TIMEOUT_MS * 1000:
                problems.append(
                    "the watchdog reset came %d ms after the hang" % ((boots[0][0] - t_ref) // 1000)
                )
        bench.run_for(TICK_MS * 2)  # the first loop pass after boot stores the latched cause
        # no host has greeted the new boot, so no FAULT event went out: the record tells
        rec = bench.sim.board.flash.read("fault")
        code = record.unpack(rec).get(0, 0) if rec is not None else 0
    else:
        tripped = bench.faults_after(t_ref)
        code = tripped[0][1] if tripped else 0
    if fault.codes and code not in fault.codes:
        problems.append("fault %s reported, expected %s" % (faults.name(code), faults.name(fault.codes[0])))
    if not fault.codes and code:
        problems.append("fault %s reported where none is detectable" % faults.name(code))
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
        problems.append("%d ETS triggers while the EMG was flagged" % len(triggers))
    tripped = bench.faults_after(t_ref)
    if tripped:
        problems.append("fault %s on a flagged EMG" % faults.name(tripped[0][1]))
    _to_the_end(bench, case, problems)


def _to_the_end(bench, case, problems):
    """Run the session to its planned end; the output must stop within one loop pass of it (SAF-TIMEOUT-1)."""
    runs = [t for t, f in bench.events(m.STATE_CHANGED) if f["to_state"] == m.RUNNING]
    end = runs[0] + bench.duration_ms * 1000
    bench.run_to(end + 500_000)
    off = bench.off_after(end - _TICK_US)
    if off is None or off > end + _TICK_US:
        problems.append("the output was still on after the session's end")
    late = [p for p in bench.pulses(end)]
    if late:
        problems.append("%d pulses after the session's end" % len(late))
    done = [
        f
        for t, f in bench.events(m.STATE_CHANGED)
        if f["to_state"] == m.DONE and f["reason"] == m.REASON_FINISHED
    ]
    if not done:
        problems.append("the session did not finish on time")
    if bench.faults_after(0):
        problems.append("fault %s in a session without one" % faults.name(bench.faults_after(0)[0][1]))
    return None if off is None else off - end


def _after(bench, case, code, problems):
    """Records after the session: the latched fault, the FAULT record, the log, a power cycle."""
    fault = FAULTS[case.fault]
    if case.fault in ("emg_stall",):
        bench.rig.stall_emg(False)
    if not bench.link_up:
        bench.rig.reconnect_host()
        bench.link_up = False  # no more heartbeats: the session is over
    bench.heartbeat_ms = 0
    bench.attempts(False)
    if case.fault == "estop":
        bench.rig.release_estop()
    latched = fault.latched and code != 0  # a wrong code is reported above; this checks it is kept
    if latched:
        rec = bench.sim.board.flash.read("fault")
        stored = record.unpack(rec) if rec is not None else None
        if not isinstance(stored, dict) or stored.get(0) != code:
            problems.append("no FAULT record of %s in flash" % faults.name(code))
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
            problems.append("%s not latched after a power cycle" % faults.name(code))
        r = c.session_start(keep_alive=False)
        if r.ok or r.name != "FAULT_LATCHED":
            problems.append("a start was not refused with the fault latched")
    elif info.fault is not None:
        problems.append("fault %s latched where none should be" % info.fault.name)
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
            problems.append("the log entry does not list %s" % faults.name(code))
        if entry.get(m.LOG_MAX_UA, 0) > bench.limit_ua:
            problems.append("the log says %d µA, above the limit" % entry[m.LOG_MAX_UA])


# -- the campaign -----------------------------------------------------------------------


def plan(seed, sessions):
    """`sessions` seeded cases; the first ones cycle through every fault kind, then at random."""
    rnd = random.Random(seed)
    kinds = list(FAULTS)
    cases = []
    for i in range(sessions):
        kind = kinds[i % len(kinds)] if i < 2 * len(kinds) else rnd.choice(kinds)
        cases.append(_case(rnd, i, seed, kind))
    return cases


def _case(rnd, i, seed, kind):
    fault = FAULTS[kind]
    protocols = [p for p in PROTOCOLS if not fault.ets_only or p.startswith("ets")]
    protocol = rnd.choice(protocols)
    host = True if fault.host_only else rnd.random() < 0.5
    policy = rnd.choice(POLICIES_UA)
    limit = min(policy, _limit_of(protocol))
    level = rnd.randrange(3000, limit + 1, 500)
    param = 0.0
    if kind == "overcurrent":
        param = rnd.uniform(25, 100)
    elif kind == "weak_source":
        param = rnd.uniform(25, 80)
    elif kind == "sense_stuck":
        param = float(rnd.choice((0, rnd.randrange(0, 2 * limit, 100))))
    elif kind == "sense_drift":
        param = rnd.choice((-1, 1)) * rnd.uniform(20, 300)
    elif kind == "charge_imbalance":
        # the second phase short of the first by more than the tolerance at her level
        # (short, not over: an over-current second phase is OVERCURRENT first)
        least = 100 * tolerance_ua(level) / level + 5
        param = -rnd.uniform(least, 90)
    elif kind in ("exception", "memory"):
        param = float(rnd.randrange(len(LOOP_METHODS)))
    return Case(
        index=i,
        seed=seed * 100003 + i,
        protocol=protocol,
        patient=rnd.choice(sorted(PROFILES)),
        policy_ua=policy,
        host=host,
        heartbeat_ms=rnd.choice(HEARTBEATS_MS) if host else 0,
        level_ua=level,
        fault=kind,
        at_us=rnd.randrange(500_000, 30_000_000),  # any µs: mid-pulse, mid-tick
        param=round(param, 1),
    )


_LIMITS = {}


def _limit_of(protocol):
    if protocol not in _LIMITS:
        from host import therapy_file

        doc, _problems = therapy_file.load(PROTOCOL_DIR / protocol)
        stim = [p["amplitude_max_ua"] for p in doc["phases"] if "amplitude_max_ua" in p]
        _LIMITS[protocol] = min([doc["limits"]["amplitude_max_ua"]] + stim)
    return _LIMITS[protocol]


def run(cases, jobs=1, progress=None):
    """Run the cases (in `jobs` processes); Results in case order."""
    if jobs <= 1:
        out = []
        for c in cases:
            out.append(run_case(c))
            if progress:
                progress(out[-1])
        return out
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(jobs, initializer=_quiet) as pool:
        out = []
        for r in pool.map(run_case, cases, chunksize=4):
            out.append(r)
            if progress:
                progress(r)
        return out


def _quiet():
    # a watchdog reset or a power cut is what the campaign injects: not news
    logging.getLogger("tonus.sim").setLevel(logging.ERROR)


def table(results):
    """The Markdown table of docs/interlocks.md: per fault kind, sessions, trips and the worst reaction."""
    rows = [
        "| injected fault | expected | requirement | deadline | measured from | sessions | tripped | reported | worst reaction (ms) | failed |",
        "| --- | --- | --- | --- | --- | ---: | ---: | --- | ---: | ---: |",
    ]
    for kind, fault in FAULTS.items():
        mine = [r for r in results if r.case.fault == kind]
        if not mine:
            continue
        times = [r.reaction_us for r in mine if r.reaction_us is not None]
        worst = "%.1f" % (max(times) / 1000) if times else "—"
        if kind == "hang":
            wd = [r.extra["watchdog_us"] for r in mine if "watchdog_us" in r.extra]
            if wd:
                worst += "; reset %.0f" % (max(wd) / 1000)
        if kind in ("lead_off", "saturation"):
            worst = "%d triggers" % sum(r.extra.get("triggers_while_flagged", 0) for r in mine)
        seen = sorted({r.code for r in mine if r.code})
        rows.append(
            "| %s | %s | %s | %s | %s | %d | %d | %s | %s | %d |"
            % (
                kind,
                "/".join(faults.name(c) for c in fault.codes) or "—",
                ", ".join(fault.reqs),
                fault.deadline,
                fault.measured_from,
                len(mine),
                sum(1 for r in mine if r.code),
                ", ".join(faults.name(c) for c in seen) or "—",
                worst,
                sum(1 for r in mine if r.problems),
            )
        )
    return "\n".join(rows)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m sim.campaign", description=__doc__.split("\n")[0])
    ap.add_argument("--sessions", type=int, default=500, help="number of sessions (default %(default)s)")
    ap.add_argument(
        "--seed", type=int, default=1, help="campaign seed; session i uses simulator seed SEED*100003+i"
    )
    ap.add_argument("--jobs", type=int, default=1, help="worker processes (default %(default)s)")
    ap.add_argument("--only", choices=sorted(FAULTS), action="append", help="run only these fault kinds")
    args = ap.parse_args(argv)
    _quiet()
    cases = plan(args.seed, args.sessions)
    if args.only:
        cases = [c for c in cases if c.fault in args.only]
    started = time.monotonic()
    failed = []

    def progress(r):
        if r.problems:
            failed.append(r)
            print("FAIL %s" % describe(r), file=sys.stderr)

    results = run(cases, args.jobs, progress)
    print(table(results))
    print()
    print(
        "%d sessions (seed %d, simulator seeds %d..%d), %d failed, %.0f s"
        % (len(results), args.seed, cases[0].seed, cases[-1].seed, len(failed), time.monotonic() - started)
    )
    return 1 if failed else 0


def describe(r):
    c = r.case
    return "#%d %s at %.6f s (%s, %s, %s, policy %d µA, level %d µA, param %s): %s" % (
        c.index,
        c.fault,
        c.at_us / 1e6,
        c.protocol,
        c.patient,
        "host %d ms" % c.heartbeat_ms if c.host else "button",
        c.policy_ua,
        c.level_ua,
        c.param,
        "; ".join(r.problems) or "ok",
    )


if __name__ == "__main__":
    sys.exit(main())
