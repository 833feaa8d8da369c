"""What a folder holds for the report: sessions, the trend, and what could not be read.

A session comes from a recording (*.tonus, which carries the device's
scores too) and/or a scores file (*.json as `session run --out` writes it;
it adds the Glazer measures). A scores file whose scores equal a
recording's is the same session. The trend comes from the device's
compliance log (sessions.json from `tonus logs pull`) when the folder has
one, which also holds the patient's pain/comfort scores; else from the
sessions found. Nothing unreadable stops the report: it is listed as
skipped, with the reason.
"""

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from host import recording, scores

LOG_NAME = "sessions.json"
_STAMP = re.compile(r"(\d{8}-\d{6})")  # tonus-session-SERIAL-YYYYmmdd-HHMMSS.json


@dataclass
class Session:
    protocol_id: str | None
    serial: str | None
    when: datetime | None  # aware
    when_from: str  # how `when` is known: recording, file name, file time
    scores: dict | None = None  # host.scores.to_json form
    glazer: dict | None = None
    glazer_error: str | None = None
    recording: "recording.Recording | None" = None
    files: list = field(default_factory=list)
    problems: list = field(default_factory=list)  # what was lost from damaged files


@dataclass
class TrendPoint:
    protocol_id: str | None
    when: datetime | None
    label: str
    rest_uv: float | None
    below_target_percent: float | None
    pain: float | None


@dataclass
class Folder:
    sessions: list
    trend: list
    trend_from: str  # where the trend comes from, in words
    skipped: list  # (file name, reason)
    pseudonyms: list

    def groups(self):
        """{protocol id: (sessions, trend points)} in order of first appearance."""
        out = {}
        for s in self.sessions:
            out.setdefault(s.protocol_id, ([], []))[0].append(s)
        for p in self.trend:
            out.setdefault(p.protocol_id, ([], []))[1].append(p)
        return out


def collect(folder):
    folder = Path(folder)
    sessions, skipped, by_scores = [], [], {}
    log = None
    jsons = []
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        if path.suffix == recording.SUFFIX:
            try:
                rec = recording.read(path)
            except recording.RecordingError as e:
                skipped.append((path.name, str(e)))
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
            same = Session(data.get("protocol"), data.get("device"), when, how, data["scores"])
            sessions.append(same)
        same.files.append(path.name)
        same.glazer = data.get("glazer")
        same.glazer_error = data.get("glazer_error")
    sessions.sort(key=lambda s: (s.when is None, s.when or datetime.min.replace(tzinfo=UTC)))
    if log is not None:
        trend, trend_from = log, "the device's compliance log (%s)" % LOG_NAME
    else:
        trend = [_point(s) for s in sessions if s.scores is not None]
        trend_from = "the sessions' scores in this folder (no %s: pain/comfort scores are in the device's log)" % LOG_NAME
    pseudonyms = sorted({s.recording.pseudonym for s in sessions if s.recording and s.recording.pseudonym})
    return Folder(sessions, trend, trend_from, skipped, pseudonyms)


def _from_recording(rec, path):
    summary = rec.summary
    s = Session(rec.protocol_id, rec.serial, rec.started, "recording", scores.to_json(summary) if summary else None)
    s.recording = rec
    s.files.append(path.name)
    s.problems = list(rec.problems)
    return s


def _read_scores(path):
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError("not readable JSON: %s" % e) from None
    sc = data.get("scores") if isinstance(data, dict) else None
    if not isinstance(sc, dict) or not isinstance(sc.get("phases"), list):
        raise ValueError("not a tonus scores file (no \"scores\" with phases)")
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
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError("not readable JSON: %s" % e) from None
    if not isinstance(data, list) or not all(isinstance(e, dict) for e in data):
        raise ValueError("not a compliance log (a list of session entries)")
    out = []
    for e in sorted(data, key=lambda e: e.get("seq") if isinstance(e.get("seq"), int) else -1):
        t = e.get("host_time_s")
        when = datetime.fromtimestamp(t, UTC) if isinstance(t, (int, float)) and t > 0 else None
        out.append(
            TrendPoint(
                e.get("protocol_id"),
                when,
                "#%s" % e.get("seq"),
                _number(e.get("rest_uv")),
                _number(e.get("below_target_percent")),
                _number(e.get("pain")),
            )
        )
    return out


def _number(v):
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _point(s):
    """A session's trend figures by the device's own rule (firmware/controller.py's log entry)."""
    rest = None
    below = 0.0
    for p in s.scores["phases"]:
        if "rest_uv" in p and (rest is None or p.get("type") == "relaxation"):
            rest = p["rest_uv"]
        below += p.get("below_target_s", 0.0)
    run = s.scores.get("practised_s") or 0
    pct = round(100 * below / run, 1) if run and below else None
    label = s.when.astimezone().strftime("%d %b %H:%M") if s.when else "?"
    return TrendPoint(s.protocol_id, s.when, label, rest, pct, None)
