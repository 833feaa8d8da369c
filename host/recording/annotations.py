"""What happened during a recording, in device time: events, protocol phases, the stream's gaps and flags."""

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from host.client import Advice, Cue, FaultEvent, SessionSummary, StateChanged, StimEvent
from host.recording.fileformat import RecordedEvent
from protocol import messages as m

if TYPE_CHECKING:  # the reader imports this module
    from host.recording.reader import FrameTable, Recording


@dataclass(frozen=True)
class Annotation:
    """Something that happened, in device time (s); duration 0 for an instant."""

    onset_s: float
    duration_s: float
    kind: (
        str  # cue, phase, state, stim, trigger, fault, advice, summary, marker, gap, lead_off, saturated, ...
    )
    text: str


def of_recording(rec: "Recording") -> list[Annotation]:
    """Every event, and the stream's triggers, gaps, lead-off and saturation, in device time order."""
    out = [_event_annotation(it) for it in rec.events]
    out += _phase_annotations(rec.cues, rec.summary)
    rate = rec.rate_hz
    t = rec.table
    out += [
        Annotation(float(i / rate), 0.0, "trigger", "ETS trigger") for i in t.first_index[t.triggered != 0]
    ]
    out += _stream_annotations(t, rate)
    out.sort(key=lambda a: (a.onset_s, a.kind))
    return out


def _event_annotation(it: RecordedEvent) -> Annotation:
    t = it.time_ms / 1000
    if isinstance(it, Cue):
        return Annotation(t, it.duration_ms / 1000, "cue", f"cue {it.cue}")
    if isinstance(it, StateChanged):
        return Annotation(t, 0.0, "state", f"{it.from_state} -> {it.to_state} ({it.reason})")
    if isinstance(it, StimEvent):
        text = f"stim {it.state} {it.level_ua / 1000:.1f}/{it.limit_ua / 1000:.1f} mA"
        if it.state == "READY" and it.impedance_ohm:  # measured by the electrode check
            text += f" {it.impedance_ohm} ohm"
        return Annotation(t, 0.0, "stim", text)
    if isinstance(it, FaultEvent):
        return Annotation(t, 0.0, "fault", "fault {}{}".format(it.name, " latched" if it.latched else ""))
    if isinstance(it, Advice):
        return Annotation(t, 0.0, "advice", f"advice {it.reason}")
    if isinstance(it, SessionSummary):
        return Annotation(t, 0.0, "summary", f"scored: ended {it.end_reason}")
    return Annotation(t, 0.0, "marker", f"marker: {it.text}")  # every other kind is a Marker


def _phase_annotations(cues: list[Cue], summary: SessionSummary | None) -> list[Annotation]:
    """One annotation per protocol phase, from its first cue to the next phase's (or the session's end)."""
    from host import scores

    kinds = {}
    if summary is not None:
        for p in summary.phases:
            kinds[p.get(m.SC_PHASE, -1)] = scores.phase_scores(p)["type"]
    starts: list[tuple[int, Cue]] = []  # (protocol phase, its first cue)
    for c in cues:
        if c.protocol_phase is not None and (not starts or starts[-1][0] != c.protocol_phase):
            starts.append((c.protocol_phase, c))
    out = []
    for k, (phase, c) in enumerate(starts):
        last = cues[-1] if k + 1 == len(starts) else None
        end = starts[k + 1][1].time_ms if last is None else last.time_ms + last.duration_ms
        name = kinds.get(phase)
        text = f"phase {phase + 1}" + (" " + name if name else "")
        out.append(Annotation(c.time_ms / 1000, (end - c.time_ms) / 1000, "phase", text))
    return out


def _stream_annotations(t: "FrameTable", rate: int) -> list[Annotation]:
    """Gaps between frames, and lead-off and saturation over runs of adjacent flagged frames."""
    if not len(t):
        return []
    end = t.end_index
    missing = t.first_index[1:] - end[:-1]
    out = [
        Annotation(float(end[k] / rate), float(missing[k] / rate), "gap", f"gap: {missing[k]} samples lost")
        for k in np.flatnonzero(missing)
    ]
    joined = np.concatenate(([False], missing == 0, [False]))  # frame k follows frame k-1 without a gap
    for bit, kind, text in (
        (m.FLAG_LEAD_OFF, "lead_off", "lead off"),
        (m.FLAG_SATURATED, "saturated", "EMG saturated"),
    ):
        on = np.concatenate(([False], (t.flags & bit) != 0, [False]))
        starts = np.flatnonzero(on[1:-1] & ~(on[:-2] & joined[:-1]))
        ends = np.flatnonzero(on[1:-1] & ~(on[2:] & joined[1:]))
        out += [
            Annotation(float(t.first_index[a] / rate), float((end[b] - t.first_index[a]) / rate), kind, text)
            for a, b in zip(starts, ends, strict=True)
        ]
    return out
