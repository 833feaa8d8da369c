"""What the requirements promise of each interlock: the fault kinds and their deadlines, what a
pulse calls for, and what every session keeps whatever its fault.

Written from docs/requirements.toml, not from firmware/stim.py, so that the
two can disagree.
"""

from collections.abc import Callable
from typing import NamedTuple

from firmware import hal as H
from protocol import faults
from sim.output import Pulse
from sim.runner import TICK_MS

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
TICK_US = TICK_MS * 1000


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
        f"OUT_HOLD_MS ({H.OUT_HOLD_MS:d} ms); reset 2 s",
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
    number: int  # the case's place in the campaign (not `index`, which is tuple.index)
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
        problems.append(f"level {max(p.set_ua for p in trace):d} µA above the limit {bench.limit_ua:d} µA")
    problems += ramp_problems(bench)
    for p in trace:
        if p.t_us < healthy_until_us and not p.cut and abs(p.net_nc) > 0.01 * abs(p.q1_nc) + 0.1:
            problems.append(f"net charge {p.net_nc:.2f} nC in the pulse at {p.t_us / 1e6:.3f} s")
            break
    if bench.sim.board.fs_writes_while_output_on:
        problems.append(f"{bench.sim.board.fs_writes_while_output_on:d} storage writes with the output on")
    if bench.sim.bad_frames:
        problems.append(f"{bench.sim.bad_frames:d} invalid frames from the device")
    return problems


def ramp_problems(bench):
    """Each train (enable on .. off) starts at the electrode check and rises within the slew limit."""
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
                    f"a train starts at {p.set_ua:d} µA at {p.t_us / 1e6:.3f} s, not from the check"
                )
        else:
            allowed = SLEW_UA_PER_S * (p.t_us - prev.t_us + TICK_US) // 1_000_000 + RESOLUTION_UA
            if p.set_ua - prev.set_ua > allowed:
                problems.append(f"amplitude jumps {prev.set_ua:d} -> {p.set_ua:d} µA at {p.t_us / 1e6:.3f} s")
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


def readings(case: "Case", t_inj: int) -> Callable[[Pulse], tuple[int, int]]:
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
LOAD_CHANGING = ("open_load", "short_load", "charge_imbalance")


def deadline_us(bench, case):
    k = case.fault
    if k == "estop":
        return ESTOP_DEADLINE_US
    if k in ("host_estop", "exception", "memory", "none"):
        return TICK_US
    if k in PER_PULSE:
        return bench.period_us
    if k == "stall_pulses":
        return 2 * bench.period_us + STALL_GRACE_MS * 1000 + 2 * TICK_US + 1000
    if k == "hang":
        return OUT_HOLD_US
    if k in ("power_loss", "brownout"):
        return 0
    if k == "link_loss":
        return case.heartbeat_ms * 1000 + TICK_US if case.host else None
    if k == "emg_stall":
        return EMG_STALL_MS * 1000 + 2 * TICK_US + 1000
    return None
