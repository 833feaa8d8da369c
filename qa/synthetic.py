"""Synthetic recordings in the real .tonus format, written fast, for the report's tests and benchmarks.

A session is a relaxation down-training: a baseline phase, then a
relaxation phase with a target, cues alternating REST/RELAX, the envelope
drifting down towards the target with noise. The items are the client's own
event and frame types written by host.recording.Recorder, so the file is
what `session run --record` writes; only the numbers are made up. How the
session ends is chosen: finished, stopped by the patient, stopped on the
device's advice, ended by a fault, or cut off (aborted: no scores, no end
mark).
"""

from datetime import UTC, datetime

import numpy as np

from host import recording
from host.client import (
    Advice,
    Cue,
    EmgFrame,
    FaultEvent,
    Info,
    Limits,
    LinkCounters,
    ProtocolSummary,
    SessionSummary,
    StateChanged,
)
from protocol import messages as m

RATE = 2000
FRAME = 50  # samples per frame, as the device sends them
OUTCOMES = ("finished", "stopped", "advised", "faulted", "aborted")
TARGET_DV = 80  # 8.0 µV
_BASELINE_S = 60
_END_MARK = b"\xa4dtypecend"  # the end map's first bytes: {"type": "end", ...}


def info(serial="SYN0001", patient="P-0042", protocol="relax-a"):
    p = ProtocolSummary(
        protocol, 3, "Dr Example", patient, "vaginal", 20, 1, "0" * 64, "2026-11-01", 3600, 0, "k1"
    )
    return Info(
        "0.1.0",
        "sim",
        serial,
        "IDLE",
        None,
        p,
        Limits(20000, 20000, 3600, RATE),
        1000,
        False,
        None,
        LinkCounters(0, 0, 0, 0, 0),
    )


def _summary(end_ms, planned_ms, reason, advice, below_ms, rest_dv):
    base = {
        m.SC_PHASE: 0,
        m.SC_KIND: 1,
        m.SC_PLANNED_MS: _BASELINE_S * 1000,
        m.SC_RUN_MS: min(end_ms, _BASELINE_S * 1000),
        m.SC_UNTRUSTED_MS: 0,
        m.SC_REST_DV: 140,
        m.SC_REST_CV: 120,
    }
    relax_ms = max(0, end_ms - _BASELINE_S * 1000)
    relax = {
        m.SC_PHASE: 1,
        m.SC_KIND: 2,
        m.SC_PLANNED_MS: planned_ms - _BASELINE_S * 1000,
        m.SC_RUN_MS: relax_ms,
        m.SC_UNTRUSTED_MS: 0,
        m.SC_REST_DV: rest_dv,
        m.SC_REST_CV: 150,
        m.SC_TARGET_DV: TARGET_DV,
        m.SC_BELOW_MS: below_ms,
        m.SC_HOLDS: below_ms // 10000,
        m.SC_LONGEST_HOLD_MS: min(below_ms, 30000),
    }
    return SessionSummary(0, end_ms + 1000, reason, advice, end_ms, 0, 140, (base, relax))


def write(
    path,
    minutes=30.0,
    outcome="finished",
    started=None,
    seed=0,
    serial="SYN0001",
    patient="P-0042",
    protocol="relax-a",
    rest_uv=10.0,
    markers=(),
):
    """Write one synthetic session recording to path; `markers` are (minute, text) clinician notes."""
    if outcome not in OUTCOMES:
        raise ValueError("outcome must be one of {}".format(", ".join(OUTCOMES)))
    started = started or datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    rng = np.random.default_rng(seed)
    planned_ms = int(minutes * 60000)
    end_ms = planned_ms if outcome == "finished" else int(planned_ms * 0.6)
    frames = end_ms * RATE // 1000 // FRAME
    t_frame = np.arange(frames) * FRAME / RATE
    # the envelope: baseline tone, then relaxing from it towards and below the target
    env = np.where(t_frame < _BASELINE_S, 14.0, rest_uv + 4.0 * np.exp(-(t_frame - _BASELINE_S) / 120))
    env = np.clip(env * (1 + 0.15 * rng.standard_normal(frames)), 0.5, None)
    below_ms = int(1000 * FRAME / RATE * np.count_nonzero((env <= TARGET_DV / 10) & (t_frame >= _BASELINE_S)))
    samples = (rng.standard_normal((frames, FRAME)) * env[:, None] * 12).astype("<i4")
    events: list[tuple[float, recording.RecordedEvent]] = [
        (0, StateChanged(0, "IDLE", "ARMED", "REQUEST", 1000)),
        (0, StateChanged(1, "ARMED", "RUNNING", "CHECKS_PASSED", 1000)),
    ]
    cue_s = 10
    for k, t in enumerate(range(0, end_ms // 1000, cue_s)):
        name = "REST" if t < _BASELINE_S or k % 2 else "RELAX"
        events.append((t, Cue(k, k, name, 1000 + t * 1000, cue_s * 1000, 0 if t < _BASELINE_S else 1)))
    for minute, text in markers:
        events.append((minute * 60, recording.Marker(1000 + int(minute * 60000), text)))
    end_s = end_ms / 1000
    if outcome == "advised":
        events.append((end_s - 1, Advice(2, "TONE_RISING", 1000 + end_ms - 1000, 120, 95)))
    if outcome == "faulted":
        events.append((end_s, FaultEvent(2, 3, "OVERCURRENT", 1000 + end_ms, None)))
    reason = {"finished": "FINISHED", "stopped": "BUTTON", "advised": "REQUEST", "faulted": "FAULT"}.get(
        outcome
    )
    if reason is not None:
        events.append((end_s, StateChanged(3, "RUNNING", "DONE", reason, 1000 + end_ms)))
        advice = "TONE_RISING" if outcome == "advised" else None
        rest_dv = int(10 * env[t_frame >= _BASELINE_S].mean()) if (t_frame >= _BASELINE_S).any() else 0
        events.append((end_s, _summary(end_ms, planned_ms, reason, advice, below_ms, rest_dv)))
    events.sort(key=lambda e: e[0])
    clock = _Clock()
    with recording.Recorder(
        path, info(serial, patient, protocol), clock=clock, wall=started.timestamp
    ) as rec:
        k = 0
        for f in range(frames):
            t_s = f * FRAME / RATE
            while k < len(events) and events[k][0] <= t_s:
                clock.now = events[k][0]
                rec(events[k][1])
                k += 1
            clock.now = t_s
            state = "RUNNING"
            rec(EmgFrame(f, RATE + f * FRAME, samples[f].tobytes(), int(env[f] * 10), state, 0, 0))
        for _t, e in events[k:]:
            rec(e)
    if outcome == "aborted":  # as a crash leaves it: no end mark
        with open(path, "r+b") as file:
            data = file.read()
            file.truncate(data.rindex(_END_MARK))
    return path


class _Clock:
    """The host time a synthetic item was received at (seconds from the start)."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def stub(path, started=None):
    """A recording of a refused start: a header, one state event, the end mark; no EMG, no scores."""
    started = started or datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    with recording.Recorder(path, info(), clock=_Clock(), wall=started.timestamp) as rec:
        rec(StateChanged(0, "IDLE", "IDLE", "CHECKS_FAILED", 1000))
    return path


# a fortnight of practice as a clinic folder holds it: (day, outcome, rest tone µV, pain, note)
FORTNIGHT = (
    (0, "finished", 12.0, 6, None),
    (2, "finished", 11.0, 5, None),
    (3, "advised", 11.5, 6, "tense after a long day at work"),
    (5, "finished", 10.0, 4, None),
    (7, "aborted", 9.5, None, None),
    (8, "finished", 9.0, 3, None),
    (10, "faulted", 8.8, 3, "probe moved when she coughed"),
    (12, "stopped", 8.5, 2, None),
    (13, "finished", 8.0, 2, None),
)


def journal(folder, minutes=2.0, days=FORTNIGHT, start=None):
    """A patient's folder: one recording per session of `days`, the device's log (sessions.json, with the
    pain/comfort scores) and one stub. Returns the folder."""
    import json
    import pathlib
    from datetime import timedelta

    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    start = start or datetime(2026, 11, 2, 18, 30, tzinfo=UTC)
    log: list[dict] = []
    for seq, (day, outcome, rest, pain, note) in enumerate(days):
        when = start + timedelta(days=day, minutes=7 * seq)
        path = folder / when.strftime("%Y-%m-%d-%H%M.tonus")
        write(
            path,
            minutes,
            outcome,
            when,
            seed=seq,
            rest_uv=rest,
            markers=[(minutes / 2, note)] if note else (),
        )
        if outcome == "aborted":
            continue  # a session cut off never reached the device's log
        rec = recording.read(path)
        sc = rec.summary
        assert sc is not None  # every outcome but "aborted" ends with the device's summary
        relax = sc.phases[1]  # the synthetic protocol: baseline, then relaxation
        log.append(
            {
                "seq": len(log),
                "protocol_id": "relax-a",
                "host_time_s": when.timestamp() + 1,
                "duration_s": sc.run_ms / 1000,
                "rest_uv": relax[m.SC_REST_DV] / 10,
                "below_target_s": relax.get(m.SC_BELOW_MS, 0) / 1000,
                "below_target_percent": round(100 * relax.get(m.SC_BELOW_MS, 0) / sc.run_ms, 1),
                "pain": pain,
                "end_reason": sc.end_reason,
                "advice": sc.advice,
                "faults": ["OVERCURRENT"] if outcome == "faulted" else [],
            }
        )
    (folder / "sessions.json").write_text(json.dumps(log, indent=1))
    stub(folder / start.strftime("%Y-%m-%d-refused.tonus"), start)
    return folder
