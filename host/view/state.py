"""What a page shows, kept from the device's events and frames, as JSON messages.

The CLI's Tracker follows state, cue, time and stimulation; this adds what a
screen needs besides: the target, the level and its limit, the latched fault
in words, the advice, the device's scores and the clinician's markers. Every
message is a small JSON object with a one-letter kind ("t"): "f" for a
stream frame, "e" for an event (with the whole status), "r" for the answer
to a command.
"""

import json

import numpy as np

from host import scores
from host.client import (
    ACTIVE_STATES,
    Advice,
    Cue,
    EmgFrame,
    FaultEvent,
    SessionSummary,
    StateChanged,
    StimEvent,
)
from host.commands._live import _ADVICE_TEXT, Tracker
from host.recording import Marker

DECIMATE = 5  # raw samples per point sent to pages: 400 points/s at 2 kHz, peaks kept

FAULT_WORDS = {
    "ESTOP": "the emergency stop was pressed on the device",
    "HOST_ESTOP": "the emergency stop was pressed on a screen",
    "EXCEPTION": "the device's software failed",
    "WATCHDOG": "the device restarted after its software stopped responding",
    "HEARTBEAT_LOST": "the device heard nothing from this computer",
    "MEMORY": "the device ran out of memory",
    "STORAGE": "the device's storage failed",
    "EMG_STALLED": "the EMG front end stopped delivering samples",
    "BROWNOUT": "the device's supply dropped",
    "OVERCURRENT": "the measured current was above the commanded one",
    "CURRENT_MISMATCH": "the measured current was below the commanded one",
    "OPEN_ELECTRODE": "the electrode lost contact",
    "CHARGE_IMBALANCE": "a pulse's two phases carried different charge",
    "PULSE_STALLED": "the pulse generator stopped",
    "ELECTRODE_SHORT": "the electrodes touch or the lead is shorted",
    "OUTPUT_LOST": "the output dropped by itself",
}


def dumps(msg):
    return json.dumps(msg, separators=(",", ":"))


def fault_json(name, detail=None, latched=True):
    return {"name": name, "words": FAULT_WORDS.get(name, name), "detail": detail, "latched": latched}


def plan_of(doc):
    """The phases of an approved protocol document as [{kind, seconds}], or None."""
    from protocol.therapy import phase_seconds

    if not doc:
        return None
    return [{"kind": ph.get("type", "?"), "seconds": phase_seconds(ph)} for ph in doc.get("phases", ())]


class ViewState:
    """The status every page shows; feed() takes each item, in the link thread."""

    def __init__(self, info, plan=None):
        self.tracker = Tracker(info)
        self.rate_hz = info.limits.emg_rate_hz
        self.plan = plan
        self.protocol = {"id": info.protocol.id, "patient": info.protocol.patient} if info.protocol else None
        self.fault = fault_json(info.fault.name, latched=info.fault.latched) if info.fault else None
        self.estop_open = info.estop_open
        self.phase = info.session.phase if info.session else None
        # device time of the session's start, pauses included: the pages' time axis
        self.session_start_ms = (
            info.uptime_ms - info.session.elapsed_ms - info.session.paused_ms if info.session else None
        )
        self.cue_started_ms = self.tracker.elapsed_ms
        self.cue_ms = 0
        self.target_dv = 0
        self.level_ua = 0
        self.limit_ua = 0
        self.stim_state = None
        self.advice = None
        self.scores = None
        self.markers = 0
        self.device_ms = info.uptime_ms  # newest device time seen
        self.last_index = None  # the end of the newest EMG frame
        self.recording = None  # path, and what went wrong with it
        self.recording_error = None

    def started(self, info):
        """A new session started: its length and the cleared state of the last one."""
        s = info.session
        t = self.tracker
        t.duration_ms = s.duration_ms if s else 0
        t.elapsed_ms = s.elapsed_ms if s else 0
        t.triggers = 0
        self.cue_started_ms = t.elapsed_ms
        self.advice = None
        self.scores = None
        self.target_dv = 0

    def feed(self, item):
        """Take one item; return the message to publish."""
        t = self.tracker
        note = t.feed(item)
        if isinstance(item, EmgFrame):
            self.device_ms = max(self.device_ms, item.end_index * 1000 // self.rate_hz)
            self.last_index = item.end_index
            self.target_dv = item.target_dv
            return self.frame_message(item)
        self.device_ms = max(self.device_ms, item.time_ms)
        if isinstance(item, StateChanged):
            if item.from_state == "ARMED" and item.to_state == "RUNNING":
                self.session_start_ms = item.time_ms
            if item.to_state == "FAULT" and self.fault is None:
                self.fault = fault_json(item.reason)
            elif item.from_state == "FAULT":
                self.fault = None
            if item.to_state not in ACTIVE_STATES:
                self.target_dv = 0
        elif isinstance(item, FaultEvent):
            self.fault = fault_json(item.name, item.detail, item.latched)
        elif isinstance(item, Cue):
            self.phase = item.protocol_phase
            self.cue_started_ms = t.elapsed_ms
            self.cue_ms = item.duration_ms
        elif isinstance(item, StimEvent):
            self.stim_state = item.state
            self.level_ua = item.level_ua
            self.limit_ua = item.limit_ua
        elif isinstance(item, Advice):
            self.advice = _ADVICE_TEXT.get(item.reason, item.reason)
        elif isinstance(item, SessionSummary):
            self.scores = scores.lines(item)
        elif isinstance(item, Marker):
            self.markers += 1
            note = "marker: " + item.text
        return self.event_message(type(item).__name__, note, item.time_ms)

    def frame_message(self, f):
        a = f.array()
        n = len(a) // DECIMATE * DECIMATE
        blocks = a[:n].reshape(-1, DECIMATE)
        peaks = blocks[np.arange(len(blocks)), np.abs(blocks).argmax(axis=1)]
        return {
            "t": "f",
            "i": f.first_index,
            "n": f.count,
            "e": f.envelope_dv / 10,
            "g": f.target_dv / 10 if f.target_dv else None,
            "fl": f.flags,
            "s": f.state,
            "a": f.stim_ua / 1000,
            "el": self.tracker.elapsed_ms,
            "r": (peaks / 10).tolist(),
        }

    def event_message(self, kind, text, time_ms):
        return {"t": "e", "kind": kind, "text": text, "at_s": time_ms / 1000, "status": self.status()}

    def status(self):
        t = self.tracker
        return {
            "state": t.state,
            "cue": t.cue,
            "cue_ms": self.cue_ms,
            "cue_started_ms": self.cue_started_ms,
            "phase": self.phase,
            "plan": self.plan,
            "elapsed_ms": t.elapsed_ms,
            "session_start_ms": self.session_start_ms,
            "duration_ms": t.duration_ms,
            "target_uv": self.target_dv / 10 if self.target_dv else None,
            "stim": {
                "state": self.stim_state,
                "level_ma": self.level_ua / 1000,
                "limit_ma": self.limit_ua / 1000,
            },
            "triggers": t.triggers,
            "fault": self.fault,
            "advice": self.advice,
            "scores": self.scores,
            "markers": self.markers,
            "protocol": self.protocol,
            "recording": self.recording,
            "recording_error": self.recording_error,
        }
