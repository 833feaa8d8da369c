"""The fault-injection campaign: every stimulation interlock, tripped at random, timed in simulated time.

    python -m qa.campaign --sessions 500 --seed 1

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
table of docs/interlocks.md, with the worst reaction per interlock.

- oracles.py: what the requirements promise (written from
  docs/requirements.toml, not from firmware/stim.py, so that the two can
  disagree): fault kinds, deadlines, per-pulse checks, invariants;
- bench.py: a simulator with the protocol approved, driven by a patient
  and a host (the host client, over the simulated link);
- session.py: one case, from the start to the records after a power cycle;
- plan.py: the seeded cases, running them, the table; cli.py: the command.
"""

from qa.campaign.bench import Bench
from qa.campaign.cli import main
from qa.campaign.oracles import (
    CHECK_UA,
    ESTOP_DEADLINE_US,
    FAULTS,
    OUT_HOLD_US,
    STALL_GRACE_MS,
    WDT_TIMEOUT_MS,
    Case,
    Fault,
    Result,
    invariant_problems,
    pulse_faults,
    ramp_problems,
    tolerance_ua,
)
from qa.campaign.plan import HEARTBEATS_MS, describe, plan, run, table
from qa.campaign.session import run_case

__all__ = [
    "CHECK_UA",
    "ESTOP_DEADLINE_US",
    "FAULTS",
    "HEARTBEATS_MS",
    "OUT_HOLD_US",
    "STALL_GRACE_MS",
    "WDT_TIMEOUT_MS",
    "Bench",
    "Case",
    "Fault",
    "Result",
    "describe",
    "invariant_problems",
    "main",
    "plan",
    "pulse_faults",
    "ramp_problems",
    "run",
    "run_case",
    "table",
    "tolerance_ua",
]
