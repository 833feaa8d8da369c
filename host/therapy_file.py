"""Therapy protocol files: clinician TOML in clinical units <-> the signed document.

The file speaks mA, s, µV, hours and minutes; the document speaks the
device's integers (µA, ms, 0.1 µV, s). Conversion is exact: a value that does
not land on a whole device unit is an error, never rounded. Problems found
by protocol.therapy.validate() come back with the file line they concern.
"""

import datetime
import math
import re
import tomllib
from decimal import Decimal, InvalidOperation
from pathlib import Path

from host.errors import TonusError
from protocol import electrode, therapy

# file key -> (document key, factor from the file unit to the device unit)
_UNITS = {
    "amplitude_max_ma": ("amplitude_max_ua", 1000),
    "ramp_up_s": ("ramp_up_ms", 1000),
    "ramp_down_s": ("ramp_down_ms", 1000),
    "on_s": ("on_ms", 1000),
    "off_s": ("off_ms", 1000),
    "rest_after_s": ("rest_ms", 1000),
    "hold_above_s": ("hold_ms", 1000),
    "hold_grace_s": ("hold_grace_ms", 1000),
    "target_uv": ("target_dv", 10),
    "min_interval_hours": ("min_interval_s", 3600),
    "max_session_minutes": ("max_session_s", 60),
}
_DOC_TO_FILE = {doc: (key, factor) for key, (doc, factor) in _UNITS.items()}
# units people write by habit, and the name the file wants instead
_HINTS = {
    "amplitude_max_ua": "amplitude_max_ma",
    "amplitude_max_a": "amplitude_max_ma",
    "amplitude_ma": "amplitude_max_ma",
    "ramp_up_ms": "ramp_up_s",
    "ramp_down_ms": "ramp_down_s",
    "on_ms": "on_s",
    "off_ms": "off_s",
    "rest_ms": "rest_after_s or rest_s (see the phase type)",
    "hold_ms": "hold_above_s",
    "hold_grace_ms": "hold_grace_s",
    "target_dv": "target_uv",
    "target_mv": "target_uv",
    "pulse_width_ms": "pulse_width_us",
    "interphase_gap_ms": "interphase_gap_us",
    "frequency_khz": "frequency_hz",
    "min_interval_s": "min_interval_hours",
    "max_session_s": "max_session_minutes",
    "duration_min": "duration_s",
    "duration_minutes": "duration_s",
}
_SECTIONS = ("protocol", "screening", "budget", "limits", "emg", "phase")


class ProtocolFileError(TonusError):
    """The file cannot be read as a protocol at all (syntax, structure)."""


class Problem:
    def __init__(self, line, path, message):
        self.line = line  # 1-based line in the file, or None
        self.path = path  # the setting, as written in the file
        self.message = message

    def __str__(self):
        where = f"line {self.line:d}" if self.line else "file"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


def _key_lines(text):
    """Where each setting is written: {("phase", 2, "frequency_hz"): line, ...}."""
    lines: dict[tuple, int] = {}
    section: tuple = ()
    counts: dict[str, int] = {}
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        m = re.fullmatch(r"\[\[\s*([A-Za-z0-9_.-]+)\s*\]\]", line)
        if m:
            name = m.group(1)
            counts[name] = counts.get(name, -1) + 1
            section = (name, counts[name])
            lines[section] = n
            continue
        m = re.fullmatch(r"\[\s*([A-Za-z0-9_.-]+)\s*\]", line)
        if m:
            section = tuple(m.group(1).split("."))
            lines[section] = n
            continue
        m = re.match(r"([A-Za-z0-9_-]+)\s*=", line)
        if m:
            lines[(*section, m.group(1))] = n
    return lines


def _exact(value, factor, key):
    """value (file unit) * factor as an exact integer, or raise ValueError."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError("must be a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"must be a finite number, not {value}")
    try:
        d = Decimal(str(value)) * factor
    except InvalidOperation as e:
        raise ValueError("must be a number") from e
    if d != d.to_integral_value():
        unit = key.rsplit("_", 1)[1]
        raise ValueError(f"{value} {unit} is finer than the device's steps of {Decimal(1) / factor} {unit}")
    return int(d)


def _convert_table(table, file_path, problems, lines, failed):
    """Device-unit copy of a file table; unconvertible settings go to problems and failed."""
    out = {}
    for key, given in table.items():
        value = given  # a date or a whole float is normalised below
        fpath = (*file_path, key)
        if key in _HINTS and key not in _UNITS:
            problems.append(
                Problem(lines.get(fpath), _dotted(fpath), f"write this as {_HINTS[key]} (clinical units)")
            )
            hinted = _UNITS.get(_HINTS[key])
            failed.add((*file_path, hinted[0] if hinted else _HINTS[key]))
            continue
        if key in _UNITS:
            doc_key, factor = _UNITS[key]
            try:
                out[doc_key] = _exact(value, factor, key)
            except ValueError as e:
                problems.append(Problem(lines.get(fpath), _dotted(fpath), str(e)))
                failed.add((*file_path, doc_key))
            continue
        if isinstance(value, datetime.datetime):
            problems.append(
                Problem(lines.get(fpath), _dotted(fpath), "give a date only (YYYY-MM-DD), no time")
            )
            continue
        if isinstance(value, datetime.date):
            value = value.isoformat()
        if isinstance(value, float):
            if not math.isfinite(value):
                problems.append(
                    Problem(lines.get(fpath), _dotted(fpath), f"must be a finite whole number, not {value}")
                )
                failed.add(fpath)
                continue
            if value != int(value):
                problems.append(Problem(lines.get(fpath), _dotted(fpath), "must be a whole number"))
                failed.add(fpath)
                continue
            value = int(value)
        out[key] = value
    return out


def _dotted(path):
    parts: list[str] = []
    for p in path:
        parts.append(f"[{p + 1:d}]" if isinstance(p, int) else ("." + p if parts else p))
    return "".join(parts).replace(".[", "[")


def load(path):
    """(document, problems) for a protocol file; ProtocolFileError if unreadable."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise ProtocolFileError(f"cannot read {path}: {e.strerror}") from e
    except UnicodeDecodeError as e:
        raise ProtocolFileError(f"{path} is not UTF-8 text") from e
    return loads(text)


def loads(text):
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ProtocolFileError(f"not valid TOML: {e}") from e
    lines = _key_lines(text)
    problems = []
    failed: set[tuple] = set()  # settings already reported; the schema would only call them missing
    known = ", ".join(_SECTIONS)
    problems += [
        Problem(lines.get((key,)), key, f"unknown section; a protocol has {known}")
        for key in data
        if key not in _SECTIONS
    ]
    meta = data.get("protocol", {})
    if not isinstance(meta, dict):
        raise ProtocolFileError("[protocol] must be a table")
    doc = _convert_table(meta, ("protocol",), problems, lines, failed)
    doc.setdefault("format", therapy.FORMAT)
    for section in ("budget", "limits", "screening", "emg"):
        value = data.get(section)
        doc[section] = (
            _convert_table(value, (section,), problems, lines, failed) if isinstance(value, dict) else value
        )
    phases = data.get("phase", [])
    if not isinstance(phases, list):
        raise ProtocolFileError("phases are written as [[phase]] tables")
    doc["phases"] = [
        _convert_table(ph, ("phase", i), problems, lines, failed) if isinstance(ph, dict) else ph
        for i, ph in enumerate(phases)
    ]
    for key in list(doc):
        if doc[key] is None:
            del doc[key]
    for dpath, msg in therapy.validate(doc):
        if _doc_in_file_terms(dpath) in failed:
            continue
        fpath = _file_path(dpath)
        problems.append(Problem(_line_for(lines, fpath), _dotted(fpath), msg))
    problems.sort(key=lambda pr: pr.line or 0)
    return doc, problems


_SECTION_OF = {
    "budget": "budget",
    "limits": "limits",
    "screening": "screening",
    "emg": "emg",
    "phases": "phase",
}


def _doc_in_file_terms(dpath):
    """A document path with the file's section names but the document's key names."""
    if not dpath:
        return ()
    if dpath[0] in _SECTION_OF:
        return (_SECTION_OF[dpath[0]], *dpath[1:])
    return ("protocol", *dpath)


def _file_path(dpath):
    """The file's name for a document path (sections, units)."""
    if not dpath:
        return ()
    head = dpath[0]
    out = (_SECTION_OF[head], *dpath[1:]) if head in _SECTION_OF else ("protocol", *dpath)
    last = out[-1]
    if isinstance(last, str) and last in _DOC_TO_FILE:
        out = (*out[:-1], _DOC_TO_FILE[last][0])
    return out


def _line_for(lines, fpath):
    # the setting's own line, else its table's
    while fpath:
        if fpath in lines:
            return lines[fpath]
        fpath = fpath[:-1]
    return None


def delivery(doc):
    """What the device will deliver, per phase, for `tonus protocol check`."""
    area = electrode.PROBES[doc["probe"]][0]
    rows = []
    stim_s = 0
    for i, ph in enumerate(doc["phases"]):
        row = {"phase": i + 1, "type": ph["type"], "seconds": therapy.phase_seconds(ph)}
        if ph["type"] in therapy.STIM_KINDS:
            amp, pw, f = ph["amplitude_max_ua"], ph["pulse_width_us"], ph["frequency_hz"]
            on = ph["on_ms"]
            duty: float | None = 1.0
            if ph["type"] == "stimulation" and on:
                duty = on / (on + ph["off_ms"])
            elif ph["type"] == "ets":
                duty = None  # depends on how often the patient triggers it
            row.update(
                amplitude_max_ma=amp / 1000,
                frequency_hz=f,
                pulse_width_us=pw,
                rms_ma=electrode.rms_ua(amp, pw, f) / 1000,
                rms_density_ma_cm2=electrode.density_ua_per_cm2(amp, pw, f, area) / 1000,
                charge_per_phase_uc=electrode.charge_pc(amp, pw) / 1e6,
                max_allowed_ma=electrode.max_amplitude_ua(pw, f, area) / 1000,
            )
            if duty is not None:
                stim_s += row["seconds"] * duty
                row["stimulation_s"] = round(row["seconds"] * duty)
            else:
                row["stimulation_s"] = None
        rows.append(row)
    return {
        "probe": doc["probe"],
        "probe_area_cm2": area / 100,
        "phases": rows,
        "stimulation_s": round(stim_s),
        "session_s": therapy.session_seconds(doc),
    }
