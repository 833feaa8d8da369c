"""The recording's layout: its header map and one map per item, "type" first (docs/recording.md)."""

import dataclasses
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import cbor2

from host.client import Advice, Cue, EmgFrame, FaultEvent, Info, SessionSummary, StateChanged, StimEvent
from host.errors import TonusError

FORMAT = "tonus-recording"
VERSION = 1
SUFFIX = ".tonus"
PRIVACY_NOTE = (
    "holds the patient's pseudonym only: no name, birth date or other identifying data; "
    "keep it with the clinical record all the same"
)


@dataclass(frozen=True)
class Marker:
    """A note the clinician added while watching, at a device time (`tonus view`)."""

    time_ms: int
    text: str


# what a recording holds besides its header and end: the client's events and frames, and markers
RecordedEvent = StateChanged | Cue | FaultEvent | StimEvent | SessionSummary | Advice | Marker
Item = EmgFrame | RecordedEvent
TYPES: dict[str, type[Item]] = {
    c.__name__: c
    for c in (EmgFrame, StateChanged, Cue, FaultEvent, StimEvent, SessionSummary, Advice, Marker)
}
FIELDS = {c: tuple(f.name for f in dataclasses.fields(c)) for c in TYPES.values()}
END = "end"
TYPE_KEY = b"dtype"  # "type" as a CBOR text string: every item map starts with it


class RecordingError(TonusError):
    """The file is not a tonus recording, or cannot be read at all."""


def header(info: Info, now: float | None = None) -> dict[str, Any]:
    """The header map for a recording of the device `info` (a client Info) describes."""
    now = time.time() if now is None else now
    p = info.protocol
    return {
        "format": FORMAT,
        "version": VERSION,
        "note": PRIVACY_NOTE,
        "started_utc": datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds"),
        "started_unix_s": now,
        "device_uptime_ms": info.uptime_ms,  # device time at started_unix_s
        "serial": info.serial,
        "board": info.board,
        "firmware_version": info.firmware_version,
        "emg_rate_hz": info.limits.emg_rate_hz,
        "sample_unit": "int32 LE, 0.1 uV",
        "patient": p.patient if p else None,
        "protocol_id": p.id if p else None,
        "protocol_sequence": p.sequence if p else None,
    }


def encode_item(item: Item, host_s: float) -> bytes:
    """One event or frame as the map a recording holds: "type" first (the reader resyncs on it)."""
    d = {"type": type(item).__name__, "host_s": round(host_s, 4)}
    for name in FIELDS[type(item)]:
        d[name] = getattr(item, name)  # not asdict(): it deep-copies every frame's samples
    return cbor2.dumps(d)


def decode_item(d: dict[str, Any]) -> tuple[float, Item]:
    """(host_s, item) from one item map, or raise ValueError/TypeError/KeyError."""
    cls = TYPES[d["type"]]
    fields = {k: v for k, v in d.items() if k in FIELDS[cls]}
    if cls is SessionSummary:
        fields["phases"] = tuple(fields.get("phases", ()))
    if cls is EmgFrame and (not isinstance(fields.get("data"), bytes) or len(fields["data"]) % 4):
        raise ValueError("EMG frame without whole samples")
    return float(d["host_s"]), cls(**fields)


def check_header(head: object, path: str) -> None:
    if not isinstance(head, dict) or head.get("format") != FORMAT:
        raise RecordingError(f"{path} is not a tonus recording (no recording header at its start)")
    if not isinstance(head.get("version"), int) or not 1 <= head["version"] <= VERSION:
        raise RecordingError(
            f"{path} is a version {head.get('version')!r} recording; "
            f"this tonus reads versions 1 to {VERSION}: update tonus"
        )
    for key, kind in (("emg_rate_hz", int), ("started_unix_s", (int, float)), ("device_uptime_ms", int)):
        v = head.get(key)
        if not isinstance(v, kind) or isinstance(v, bool) or (key == "emg_rate_hz" and v <= 0):
            raise RecordingError(f"{path} has no valid {key} in its header")
