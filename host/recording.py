"""Session recordings: the live stream saved as it came, read back later.

A recording is a CBOR sequence (RFC 8742): one header map, then one map per
event or EMG frame the client received, each with the host's receive time,
then an end map when the recorder closed cleanly. It is only ever appended
to, so a recording cut off by a crash or a full disk reads back up to its
last complete item. Every item map starts with its "type" key: after a
damaged stretch the reader finds the next item by that key and carries on,
so one bad byte costs the items it hits, not the rest of the file.

Items keep the client's field names and the device's integer units (0.1 µV
samples as int32 LE bytes, µA, ms); the header says who, what and when,
with the patient's pseudonym only. Device time is the EMG sample index /
rate (the front end starts with the device), the clock events' time_ms
counts in too.
"""

import dataclasses
import io
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import cbor2
import numpy as np

from host.client import Advice, Cue, EmgFrame, FaultEvent, SessionSummary, StateChanged, StimEvent
from host.errors import TonusError
from protocol import messages as m

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


TYPES = {c.__name__: c for c in (EmgFrame, StateChanged, Cue, FaultEvent, StimEvent, SessionSummary, Advice, Marker)}
_FIELDS = {c: tuple(f.name for f in dataclasses.fields(c)) for c in TYPES.values()}
_END = "end"
_TYPE_KEY = b"dtype"  # "type" as a CBOR text string: every item map starts with it
_FLUSH_S = 1.0  # at most this much host time of stream sits in buffers
_MAX_JUMP_S = 3600  # an index jump longer than this is a restart or garbage, not a gap


class RecordingError(TonusError):
    """The file is not a tonus recording, or cannot be read at all."""


# -- writing -------------------------------------------------------------------


def header(info, now=None):
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


def encode_item(item, host_s):
    """One event or frame as the map a recording holds: "type" first (the reader resyncs on it)."""
    d = {"type": type(item).__name__, "host_s": round(host_s, 4)}
    for name in _FIELDS[type(item)]:
        d[name] = getattr(item, name)  # not asdict(): it deep-copies every frame's samples
    return cbor2.dumps(d)


class Recorder:
    """Appends the client's events and frames to a recording; call it with each item (follow's on_item).

    The file is created at once (an existing one is never overwritten), so
    a bad path fails before a session starts. Flushed every second of
    host time and on every event, so a crash loses at most that much.
    """

    def __init__(self, path, info, clock=time.monotonic):
        self.path = str(path)
        try:
            self._fp = open(self.path, "xb")
        except FileExistsError:
            raise RecordingError("%s exists already; choose another name for the recording" % self.path) from None
        except OSError as e:
            raise RecordingError("cannot create the recording %s: %s" % (self.path, e.strerror)) from e
        self._clock = clock
        self._t0 = clock()
        self._flushed = self._t0
        self.items = 0
        self.frames = 0
        self.samples = 0
        self.rate_hz = info.limits.emg_rate_hz
        self._write(cbor2.dumps(header(info)))
        self._fp.flush()

    def __call__(self, item):
        now = self._clock()
        self._write(encode_item(item, now - self._t0))
        self.items += 1
        if isinstance(item, EmgFrame):
            self.frames += 1
            self.samples += item.count
        if not isinstance(item, EmgFrame) or now - self._flushed >= _FLUSH_S:
            self._fp.flush()
            self._flushed = now

    @property
    def seconds(self):
        """Device time recorded, from the samples."""
        return self.samples / self.rate_hz if self.rate_hz else 0.0

    def close(self, reason="closed"):
        """Write the end marker and close; a recording without one was cut off."""
        if self._fp is None:
            return
        try:
            end = {"type": _END, "host_s": round(self._clock() - self._t0, 4), "items": self.items, "reason": reason}
            self._write(cbor2.dumps(end))
        finally:
            self._fp.close()
            self._fp = None

    def _write(self, data):
        try:
            self._fp.write(data)
        except OSError as e:
            raise RecordingError("cannot write the recording %s: %s" % (self.path, e.strerror)) from e

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc):
        self.close("closed" if exc_type is None else "interrupted (%s)" % exc_type.__name__)


# -- reading -------------------------------------------------------------------


@dataclass(frozen=True)
class Annotation:
    """Something that happened, in device time (s); duration 0 for an instant."""

    onset_s: float
    duration_s: float
    kind: str  # cue, phase, state, stim, trigger, fault, advice, summary, marker, gap, lead_off, saturated
    text: str


@dataclass
class Signals:
    """The stream as contiguous arrays by sample index from first_index; NaN where nothing arrived."""

    rate_hz: int
    first_index: int
    emg_uv: np.ndarray  # the raw (20 Hz high-passed) samples
    envelope_uv: np.ndarray  # each frame's envelope, held over its samples
    stim_ma: np.ndarray  # the stimulation current commanded at the end of each frame, held
    flags: np.ndarray  # uint8, each frame's FLAG_* bits over its samples (0 where missing)

    @property
    def present(self):
        return ~np.isnan(self.emg_uv)

    @property
    def time_s(self):
        """Device time of each sample."""
        return (self.first_index + np.arange(len(self.emg_uv))) / self.rate_hz

    def gaps(self):
        """(first missing index, number of samples) of each stretch where no sample arrived."""
        return [(self.first_index + int(a), int(b - a)) for a, b in runs(~self.present)]


class Recording:
    """A recording read back: header, (host_s, item) pairs, and what could not be read."""

    def __init__(self, path, header, items, problems, end):
        self.path = str(path)
        self.header = header
        self.items = items
        self.problems = problems  # sentences saying what was lost; empty when all was read
        self.end = end  # the end marker, or None when the recording was cut off

    def __iter__(self):
        return (item for _t, item in self.items)

    @property
    def complete(self):
        return not self.problems

    @property
    def rate_hz(self):
        return self.header["emg_rate_hz"]

    @property
    def pseudonym(self):
        return self.header.get("patient")

    @property
    def protocol_id(self):
        return self.header.get("protocol_id")

    @property
    def serial(self):
        return self.header.get("serial")

    @property
    def started(self):
        """The host's start time (aware UTC datetime)."""
        return datetime.fromtimestamp(self.header["started_unix_s"], UTC)

    def wall_time(self, device_s):
        """The host's UTC time at device time device_s (exact to the link's latency)."""
        return self.started + timedelta(seconds=device_s - self.header["device_uptime_ms"] / 1000)

    @property
    def frames(self):
        return [it for it in self if isinstance(it, EmgFrame)]

    @property
    def events(self):
        return [it for it in self if not isinstance(it, EmgFrame)]

    @property
    def cues(self):
        return [it for it in self if isinstance(it, Cue)]

    @property
    def summary(self):
        """The device's SessionSummary, or None if the recording holds none."""
        s = [it for it in self if isinstance(it, SessionSummary)]
        return s[-1] if s else None

    def signals(self):
        """The frames as Signals; None without frames. Frames out of order are left out, with a problem noted."""
        frames = self.frames
        if not frames:
            return None
        rate = self.rate_hz
        kept = [frames[0]]
        for f in frames[1:]:
            end = kept[-1].end_index
            if f.first_index < end or f.first_index - end > _MAX_JUMP_S * rate:
                self._note_left_out(len(frames) - len(kept), f, end)
                break
            kept.append(f)
        first = kept[0].first_index
        n = kept[-1].end_index - first
        s = Signals(
            rate, first, np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan), np.zeros(n, np.uint8)
        )
        for f in kept:
            a, b = f.first_index - first, f.end_index - first
            s.emg_uv[a:b] = np.frombuffer(f.data, dtype="<i4") / 10.0
            s.envelope_uv[a:b] = f.envelope_dv / 10.0
            s.stim_ma[a:b] = f.stim_ua / 1000.0
            s.flags[a:b] = f.flags
        return s

    def _note_left_out(self, n, f, end):
        text = "%d EMG frames from sample %d on are not in the signals: the sample index went from %d to %d " \
            "(the device restarted?)" % (n, f.first_index, end, f.first_index)
        if text not in self.problems:
            self.problems.append(text)

    def annotations(self, signals=None):
        """Every event, and the stream's triggers, gaps, lead-off and saturation, in device time order."""
        out = []
        for it in self.events:
            a = _event_annotation(it)
            if a is not None:
                out.append(a)
        out += _phase_annotations(self.cues, self.summary)
        rate = self.rate_hz
        out += [Annotation(f.first_index / rate, 0.0, "trigger", "ETS trigger") for f in self.frames if f.triggered]
        sig = self.signals() if signals is None else signals
        if sig is not None:
            out += _stream_annotations(sig)
        out.sort(key=lambda a: (a.onset_s, a.kind))
        return out


def _event_annotation(it):
    t = it.time_ms / 1000
    if isinstance(it, Cue):
        return Annotation(t, it.duration_ms / 1000, "cue", "cue %s" % it.cue)
    if isinstance(it, StateChanged):
        return Annotation(t, 0.0, "state", "%s -> %s (%s)" % (it.from_state, it.to_state, it.reason))
    if isinstance(it, StimEvent):
        text = "stim %s %.1f/%.1f mA" % (it.state, it.level_ua / 1000, it.limit_ua / 1000)
        if it.state == "READY" and it.impedance_ohm:  # measured by the electrode check
            text += " %d ohm" % it.impedance_ohm
        return Annotation(t, 0.0, "stim", text)
    if isinstance(it, FaultEvent):
        return Annotation(t, 0.0, "fault", "fault %s%s" % (it.name, " latched" if it.latched else ""))
    if isinstance(it, Advice):
        return Annotation(t, 0.0, "advice", "advice %s" % it.reason)
    if isinstance(it, SessionSummary):
        return Annotation(t, 0.0, "summary", "scored: ended %s" % it.end_reason)
    if isinstance(it, Marker):
        return Annotation(t, 0.0, "marker", "marker: %s" % it.text)
    return None


def _phase_annotations(cues, summary):
    """One annotation per protocol phase, from its first cue to the next phase's (or the session's end)."""
    from host import scores

    kinds = {}
    if summary is not None:
        for p in summary.phases:
            kinds[p.get(m.SC_PHASE, -1)] = scores.phase_scores(p)["type"]
    starts = []
    for c in cues:
        if c.protocol_phase is not None and (not starts or starts[-1].protocol_phase != c.protocol_phase):
            starts.append(c)
    out = []
    for k, c in enumerate(starts):
        last = cues[-1] if k + 1 == len(starts) else None
        end = starts[k + 1].time_ms if last is None else last.time_ms + last.duration_ms
        name = kinds.get(c.protocol_phase)
        text = "phase %d%s" % (c.protocol_phase + 1, " " + name if name else "")
        out.append(Annotation(c.time_ms / 1000, (end - c.time_ms) / 1000, "phase", text))
    return out


def runs(mask):
    """(start, end) of each stretch where the boolean array is true."""
    edges = np.flatnonzero(np.diff(np.concatenate(([False], mask, [False])).astype(np.int8)))
    return zip(edges[::2], edges[1::2])


def _stream_annotations(sig):
    rate = sig.rate_hz
    t0 = sig.first_index / rate
    out = [Annotation(i / rate, n / rate, "gap", "gap: %d samples lost" % n) for i, n in sig.gaps()]
    for bit, kind, text in (
        (m.FLAG_LEAD_OFF, "lead_off", "lead off"),
        (m.FLAG_SATURATED, "saturated", "EMG saturated"),
    ):
        for a, b in runs((sig.flags & bit) != 0):
            out.append(Annotation(t0 + a / rate, (b - a) / rate, kind, text))
    return out


def _decode_item(d):
    """(host_s, item) from one item map, or raise ValueError/TypeError/KeyError."""
    cls = TYPES[d["type"]]
    fields = {k: v for k, v in d.items() if k in _FIELDS[cls]}
    if cls is SessionSummary:
        fields["phases"] = tuple(fields.get("phases", ()))
    if cls is EmgFrame and (not isinstance(fields.get("data"), bytes) or len(fields["data"]) % 4):
        raise ValueError("EMG frame without whole samples")
    return float(d["host_s"]), cls(**fields)


_DECODE_ERRORS = (cbor2.CBORDecodeError, ValueError, TypeError, KeyError, IndexError, OverflowError)


def read(path):
    """A Recording from `path`. Raises RecordingError if it cannot be one;
    what was lost from a damaged or cut-off one is in .problems."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise RecordingError("cannot read %s: %s" % (path, e.strerror)) from e
    return parse(data, path)


def parse(data, path="<bytes>"):
    """A Recording from the bytes of one (see read)."""
    fp = io.BytesIO(data)
    try:
        head = cbor2.CBORDecoder(fp).decode()
    except _DECODE_ERRORS:
        head = None
    if not isinstance(head, dict) or head.get("format") != FORMAT:
        raise RecordingError("%s is not a tonus recording (no recording header at its start)" % path)
    if not isinstance(head.get("version"), int) or head["version"] > VERSION:
        raise RecordingError(
            "%s is a version %r recording; this tonus reads up to version %d: update tonus" % (path, head.get("version"), VERSION)
        )
    if not isinstance(head.get("emg_rate_hz"), int) or head["emg_rate_hz"] <= 0:
        raise RecordingError("%s has no valid EMG rate in its header" % path)
    items, problems, end = [], [], None
    pos = fp.tell()
    last_s = 0.0
    while pos < len(data) and end is None:
        fp.seek(pos)
        try:
            d = cbor2.CBORDecoder(fp).decode()
            if d.get("type") == _END:
                end = d
            else:
                last_s, item = _decode_item(d)
                items.append((last_s, item))
            pos = fp.tell()
            continue
        except _DECODE_ERRORS + (AttributeError,):
            pass
        nxt = _resync(data, fp, pos + 1)
        if nxt is None:
            problems.append(
                "the last %d bytes (after %.1f s of host time) are cut off or damaged and were not read"
                % (len(data) - pos, last_s)
            )
            break
        problems.append(
            "%d damaged bytes after %.1f s of host time were skipped; the items in them are lost" % (nxt - pos, last_s)
        )
        pos = nxt
    if end is None and not problems:
        problems.append("the recording stops after %.1f s of host time without its end mark: it was cut off" % last_s)
    elif end is not None and pos < len(data):
        problems.append("%d bytes after the end mark were ignored" % (len(data) - pos))
    return Recording(path, head, items, problems, end)


def _resync(data, fp, start):
    """The offset of the next item that decodes, from `start`; None if there is none."""
    while True:
        k = data.find(_TYPE_KEY, start)
        if k < 0:
            return None
        cand = k - 1
        start = k + 1
        if not 0xA1 <= data[cand] <= 0xB7:  # a map of 1..23 pairs
            continue
        fp.seek(cand)
        try:
            d = cbor2.CBORDecoder(fp).decode()
            if d.get("type") == _END or _decode_item(d):
                return cand
        except _DECODE_ERRORS + (AttributeError,):
            continue
