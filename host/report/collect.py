"""What a folder holds for the report: sessions, the trend, and what could not be read.

A session comes from a recording (*.tonus, which carries the device's
scores too) and/or a scores file (*.json as `session run --out` writes it;
it adds the Glazer measures). A scores file whose scores equal a
recording's is the same session. The trend comes from the device's
compliance log (sessions.json from `tonus logs pull`) when the folder has
one, which also holds the patient's pain/comfort scores; else from the
sessions found. Nothing unreadable stops the report: it is listed as
skipped, with the reason. A recording with neither EMG nor scores (a start
the device refused, a recorder stopped at once) is a stub: listed apart,
never counted as a session.

Recordings are read one at a time, streamed (host.recording), and only a
digest is kept of each (Trace: the envelope binned for the plot, the
events): memory grows with the number of sessions by tens of kilobytes,
not by their length.
"""

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from host import recording, scores
from host.client import FaultEvent

LOG_NAME = "sessions.json"
_STAMP = re.compile(r"(\d{8}-\d{6})")  # tonus-session-SERIAL-YYYYmmdd-HHMMSS.json
_PLOT_BINS = 1000  # envelope bins per session plot: finer than the plot's pixels
_SAME_SESSION = timedelta(minutes=10)  # a log entry and a recording this close are one session
_PLOTTED = ("cue", "phase", "gap", "lead_off", "fault", "advice", "trigger", "marker")

# how a session ended, in the order the report's legend lists them
OUTCOMES = {
    "finished": "ran to its planned end",
    "stopped": "stopped early (the patient, the clinician, a long pause or failed checks)",
    "advised": "stopped on the device's advice (rest tone rising, or paused twice)",
    "faulted": "ended by a fault",
    "aborted": "cut off without scores (a crash, a cable pulled, a power cut)",
}
_ABORTED_REASONS = ("HEARTBEAT_LOST", "INTERRUPTED")


def outcome(end_reason, advice, faulted=False):
    """One of OUTCOMES from the device's end reason and advice."""
    if end_reason is None or end_reason in _ABORTED_REASONS:
        return "aborted"
    if end_reason == "FAULT" or faulted:
        return "faulted"
    if advice:
        return "advised"
    return "finished" if end_reason == "FINISHED" else "stopped"


@dataclass
class Trace:
    """What a session's plot needs from its recording, binned: minutes from the first sample."""

    t_min: np.ndarray  # each bin's start
    env_lo: np.ndarray  # envelope (µV) per bin: lowest, mean, highest frame value
    env_mean: np.ndarray
    env_hi: np.ndarray
    stim_ma: np.ndarray  # highest commanded current per bin
    annotations: list  # host.recording.Annotation, onsets in minutes from the first sample
    minutes: float


@dataclass
class Session:
    protocol_id: str | None
    serial: str | None
    when: datetime | None  # aware
    when_from: str  # how `when` is known: recording, file name, file time
    scores: dict | None = None  # host.scores.to_json form
    glazer: dict | None = None
    glazer_error: str | None = None
    trace: Trace | None = None
    files: list = field(default_factory=list)
    problems: list = field(default_factory=list)  # what was lost from damaged files
    outcome: str = "aborted"
    notes: list = field(default_factory=list)  # (aware datetime, text): the clinician's markers
    pseudonym: str | None = None

    @property
    def target_uv(self):
        """The relaxation target the device scored against, or None."""
        for p in (self.scores or {}).get("phases", []):
            if p.get("target_uv") is not None:
                return p["target_uv"]
        return None


@dataclass
class TrendPoint:
    protocol_id: str | None
    when: datetime | None
    label: str
    rest_uv: float | None
    below_target_percent: float | None  # of the whole session
    pain: float | None
    outcome: str
    notes: list = field(default_factory=list)  # texts
    target_uv: float | None = None


@dataclass
class Folder:
    sessions: list
    trend: list
    trend_from: str  # where the trend comes from, in words
    skipped: list  # (file name, reason)
    pseudonyms: list
    stubs: list = field(default_factory=list)  # (file name, why it is not a session)

    def groups(self):
        """{protocol id: (sessions, trend points)} in order of first appearance."""
        out: dict[str, tuple[list, list]] = {}
        for s in self.sessions:
            out.setdefault(s.protocol_id, ([], []))[0].append(s)
        for p in self.trend:
            out.setdefault(p.protocol_id, ([], []))[1].append(p)
        return out


def collect(folder):
    folder = Path(folder)
    sessions, skipped, stubs, by_scores = [], [], [], {}
    log = None
    jsons = []
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        if path.suffix == recording.SUFFIX:
            try:
                rec = recording.read(path)
            except recording.RecordingError as e:
                skipped.append((path.name, str(e)))
                continue
            with rec:  # only the digest stays
                if rec.span is None and rec.summary is None:
                    stubs.append(
                        (
                            path.name,
                            (
                                f"no EMG and no scores ({path.stat().st_size:d} bytes): "
                                "a start the device refused, or a recorder stopped at once"
                            ),
                        )
                    )
                    continue
                s = _from_recording(rec, path)
            sessions.append(s)
            if s.scores is not None:
                by_scores[json.dumps(s.scores, sort_keys=True)] = s
        elif path.name == LOG_NAME:
            try:
                log = _read_log(path)
            except ValueError as e:
                skipped.append((path.name, str(e)))
        elif path.suffix == ".json":
            jsons.append(path)
    for path in jsons:
        try:
            data = _read_scores(path)
        except ValueError as e:
            skipped.append((path.name, str(e)))
            continue
        same = by_scores.get(json.dumps(data["scores"], sort_keys=True))
        if same is None:
            when, how = _file_time(path)
            sc = data["scores"]
            same = Session(
                data.get("protocol"),
                data.get("device"),
                when,
                how,
                sc,
                outcome=outcome(sc.get("ended"), sc.get("advice")),
            )
            sessions.append(same)
        same.files.append(path.name)
        same.glazer = data.get("glazer")
        same.glazer_error = data.get("glazer_error")
    sessions.sort(key=lambda s: (s.when is None, s.when or datetime.min.replace(tzinfo=UTC)))
    if log is not None:
        trend, trend_from = log, f"the device's compliance log ({LOG_NAME})"
        _match(trend, sessions)
    else:
        trend = [_point(s) for s in sessions]
        trend_from = (
            f"the sessions in this folder (no {LOG_NAME}: pain/comfort scores are in the device's log)"
        )
    pseudonyms = sorted({s.pseudonym for s in sessions if s.pseudonym})
    return Folder(sessions, trend, trend_from, skipped, pseudonyms, stubs)


def _from_recording(rec, path):
    summary = rec.summary
    faulted = any(isinstance(e, FaultEvent) and e.latched for e in rec.events)
    s = Session(
        rec.protocol_id,
        rec.serial,
        rec.started,
        "recording",
        scores.to_json(summary) if summary else None,
        outcome=outcome(
            summary.end_reason if summary else None, summary.advice if summary else None, faulted
        ),
    )
    s.trace = _trace(rec)
    s.files.append(path.name)
    s.problems = list(rec.problems)
    s.pseudonym = rec.pseudonym
    s.notes = [
        (rec.wall_time(e.time_ms / 1000), e.text) for e in rec.events if isinstance(e, recording.Marker)
    ]
    return s


def _trace(rec):
    """The recording's envelope in at most _PLOT_BINS bins, and its events, for the plot."""
    t = rec.table
    if not len(t):
        return None
    rate = rec.rate_hz
    first = int(t.first_index[0])
    starts = np.linspace(0, len(t), min(_PLOT_BINS, len(t)) + 1).astype(int)[:-1]
    env = t.envelope_dv / 10.0
    minutes = (int(t.end_index[-1]) - first) / rate / 60
    t0 = first / rate
    notes = [
        recording.Annotation((a.onset_s - t0) / 60, a.duration_s / 60, a.kind, a.text)
        for a in rec.annotations()
        if a.kind in _PLOTTED
    ]
    return Trace(
        (t.first_index[starts] - first) / rate / 60,
        np.minimum.reduceat(env, starts),
        np.add.reduceat(env, starts) / np.diff(np.append(starts, len(t))),
        np.maximum.reduceat(env, starts),
        np.maximum.reduceat(t.stim_ua, starts) / 1000.0,
        notes,
        minutes,
    )


def _match(trend, sessions):
    """Give each log entry the notes and target of its recording; a recorded session the log lacks (cut
    off before the device logged it) joins the trend as it is. The trend stays in date order."""
    matched = set()
    for p in trend:
        for k, s in enumerate(sessions):
            if (
                p.when is not None
                and s.when is not None
                and k not in matched
                and s.protocol_id == p.protocol_id
                and abs(s.when - p.when) <= _SAME_SESSION
            ):
                p.notes = [text for _w, text in s.notes]
                p.target_uv = s.target_uv
                matched.add(k)
                break
    trend += [_point(s, "recording only") for k, s in enumerate(sessions) if k not in matched and s.trace]
    trend.sort(key=lambda p: (p.when is None, p.when or datetime.min.replace(tzinfo=UTC)))


def _read_scores(path):
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"not readable JSON: {e}") from None
    sc = data.get("scores") if isinstance(data, dict) else None
    if not isinstance(sc, dict) or not isinstance(sc.get("phases"), list):
        raise ValueError('not a tonus scores file (no "scores" with phases)')
    return data


def _file_time(path):
    m = _STAMP.search(path.stem)
    if m:
        try:
            return datetime.strptime(m.group(1), "%Y%m%d-%H%M%S").astimezone(), "file name"
        except ValueError:
            pass
    return datetime.fromtimestamp(path.stat().st_mtime).astimezone(), "file time"


def _read_log(path):
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"not readable JSON: {err}") from None
    if not isinstance(data, list) or not all(isinstance(e, dict) for e in data):
        raise ValueError("not a compliance log (a list of session entries)")
    out = []
    for e in sorted(data, key=lambda e: e.get("seq") if isinstance(e.get("seq"), int) else -1):
        t = e.get("host_time_s")
        when = datetime.fromtimestamp(t, UTC) if isinstance(t, (int, float)) and t > 0 else None
        reason = e.get("end_reason")
        out.append(
            TrendPoint(
                e.get("protocol_id"),
                when,
                "#{}".format(e.get("seq")),
                _number(e.get("rest_uv")),
                _number(e.get("below_target_percent")),
                _number(e.get("pain")),
                outcome(reason if isinstance(reason, str) else None, e.get("advice"), bool(e.get("faults"))),
            )
        )
    return out


def _number(v):
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _point(s, label=None):
    """A session's trend figures by the device's own rule (firmware/records.py's log entry):
    the relaxation phase's rest tone, else the first measured; time at or below target as a share of
    the whole session practised."""
    rest = None
    below = 0.0
    sc = s.scores or {"phases": []}
    for p in sc["phases"]:
        if "rest_uv" in p and (rest is None or p.get("type") == "relaxation"):
            rest = p["rest_uv"]
        below += p.get("below_target_s", 0.0)
    run = sc.get("practised_s") or 0
    pct = round(100 * below / run, 1) if run and below else None
    label = label or (s.when.astimezone().strftime("%d %b %H:%M") if s.when else "?")
    return TrendPoint(
        s.protocol_id, s.when, label, rest, pct, None, s.outcome, [t for _w, t in s.notes], s.target_uv
    )
