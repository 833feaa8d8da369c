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

import array
import dataclasses
import io
import mmap
import os
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


TYPES = {
    c.__name__: c
    for c in (EmgFrame, StateChanged, Cue, FaultEvent, StimEvent, SessionSummary, Advice, Marker)
}
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
    `clock` times the items (monotonic), `wall` dates the header.
    """

    def __init__(self, path, info, clock=time.monotonic, wall=time.time):
        self.path = str(path)
        try:
            self._fp = open(self.path, "xb")
        except FileExistsError:
            raise RecordingError(
                f"{self.path} exists already; choose another name for the recording"
            ) from None
        except OSError as e:
            raise RecordingError(f"cannot create the recording {self.path}: {e.strerror}") from e
        self._clock = clock
        self._t0 = clock()
        self._flushed = self._t0
        self.items = 0
        self.frames = 0
        self.samples = 0
        self.rate_hz = info.limits.emg_rate_hz
        self._write(cbor2.dumps(header(info, wall())))
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
            end = {
                "type": _END,
                "host_s": round(self._clock() - self._t0, 4),
                "items": self.items,
                "reason": reason,
            }
            self._write(cbor2.dumps(end))
        finally:
            self._fp.close()
            self._fp = None

    def _write(self, data):
        try:
            self._fp.write(data)
        except OSError as e:
            raise RecordingError(f"cannot write the recording {self.path}: {e.strerror}") from e

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc):
        self.close("closed" if exc_type is None else f"interrupted ({exc_type.__name__})")


# -- reading -------------------------------------------------------------------
#
# A recording is read in one streaming pass that keeps the events and, per
# EMG frame, a row of small integers (FrameTable); the samples stay in the
# file and are read again, a stretch at a time, only by what needs them
# (signals(), blocks(), iter_items()). A 30-minute recording at 2 kHz is
# 72,000 frames: its table is about 2.5 MB, its samples 14 MB on disk and
# 29 MB as float64.


@dataclass(frozen=True)
class Annotation:
    """Something that happened, in device time (s); duration 0 for an instant."""

    onset_s: float
    duration_s: float
    kind: (
        str  # cue, phase, state, stim, trigger, fault, advice, summary, marker, gap, lead_off, saturated, ...
    )
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


_TABLE_COLUMNS = (
    ("first_index", "q"),
    ("count", "l"),
    ("envelope_dv", "l"),
    ("flags", "B"),
    ("stim_ua", "l"),
    ("triggered", "B"),
)


class FrameTable:
    """Every EMG frame kept for the signals, without its samples: one numpy array per field."""

    def __init__(self, columns):
        for name, _code in _TABLE_COLUMNS:
            setattr(self, name, np.asarray(columns[name]))

    def __len__(self):
        return len(self.first_index)

    @property
    def end_index(self):
        return self.first_index + self.count


class Recording:
    """A recording read back: header, events, the frame table, and what could not be read.

    `problems` are sentences saying what was lost (empty when all was read);
    `end` is the end marker, or None when the recording was cut off.
    """

    def __init__(self, path, header, events, table, problems, end, source, mapped=None):
        self.path = str(path)
        self.header = header
        self._events = events  # [(host_s, item)] of everything but EMG frames
        self.table = table
        self.problems = problems
        self.end = end
        self._source = source  # () -> a fresh _Scanner over the same bytes
        self._mapped = mapped  # the file's mmap, unmapped by close()

    def close(self):
        """Unmap the file when done with it (its pages count as this process's memory while mapped);
        the events and the table stay."""
        if self._mapped is not None:
            self._mapped.close()
            self._mapped = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def iter_items(self):
        """(host_s, item) of every item, in file order, read from the file again."""
        return self._source().items()

    @property
    def items(self):
        return list(self.iter_items())

    def __iter__(self):
        return (item for _t, item in self.iter_items())

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

    def iter_frames(self):
        """The EMG frames kept for the signals, with their samples, read from the file again."""
        n = len(self.table)
        for _t, it in self.iter_items():
            if n == 0:
                return
            if isinstance(it, EmgFrame):
                n -= 1
                yield it

    @property
    def frames(self):
        return list(self.iter_frames())

    @property
    def events(self):
        return [it for _t, it in self._events]

    @property
    def cues(self):
        return [it for _t, it in self._events if isinstance(it, Cue)]

    @property
    def summary(self):
        """The device's SessionSummary, or None if the recording holds none."""
        s = [it for _t, it in self._events if isinstance(it, SessionSummary)]
        return s[-1] if s else None

    @property
    def span(self):
        """(first sample index, end index) of the signals; None without frames."""
        if not len(self.table):
            return None
        return int(self.table.first_index[0]), int(self.table.end_index[-1])

    def blocks(self, samples):
        """Signals for consecutive stretches of `samples` samples (the last may be shorter), streamed."""
        span = self.span
        if span is None:
            return
        first, end = span
        frames = self.iter_frames()
        carry = None
        for a in range(first, end, samples):
            b = min(a + samples, end)
            group = []  # the frames with samples in [a, b)
            while True:
                f = carry if carry is not None else next(frames, None)
                carry = None
                if f is None or f.first_index >= b:
                    carry = f
                    break
                group.append(f)
                if f.end_index > b:
                    carry = f
                    break
            yield _fill(self.rate_hz, a, b, group)

    def signals(self):
        """All the frames as one Signals; None without frames. For long recordings use blocks()."""
        span = self.span
        if span is None:
            return None
        return next(self.blocks(span[1] - span[0]))

    def annotations(self):
        """Every event, and the stream's triggers, gaps, lead-off and saturation, in device time order."""
        out = []
        for it in self.events:
            a = _event_annotation(it)
            if a is not None:
                out.append(a)
        out += _phase_annotations(self.cues, self.summary)
        rate = self.rate_hz
        t = self.table
        out += [
            Annotation(float(i / rate), 0.0, "trigger", "ETS trigger")
            for i in t.first_index[t.triggered != 0]
        ]
        out += _stream_annotations(t, rate)
        out.sort(key=lambda a: (a.onset_s, a.kind))
        return out


def _fill(rate, a, b, frames):
    """Signals for samples [a, b) from the frames that hold some of them, in whole arrays (no loop per frame)."""
    n = b - a
    s = Signals(rate, a, np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan), np.zeros(n, np.uint8))
    if not frames:
        return s
    counts = np.array([f.count for f in frames])
    data = np.frombuffer(b"".join(f.data for f in frames), dtype="<i4")
    offsets = np.repeat(np.array([f.first_index for f in frames]) - a - (np.cumsum(counts) - counts), counts)
    pos = np.arange(len(data)) + offsets  # each sample's place in the block
    keep = (pos >= 0) & (pos < n)
    pos = pos[keep]
    s.emg_uv[pos] = data[keep] / 10.0
    s.envelope_uv[pos] = np.repeat(np.array([f.envelope_dv for f in frames]) / 10.0, counts)[keep]
    s.stim_ma[pos] = np.repeat(np.array([f.stim_ua for f in frames]) / 1000.0, counts)[keep]
    s.flags[pos] = np.repeat(np.array([f.flags for f in frames], dtype=np.uint8), counts)[keep]
    return s


def _event_annotation(it):
    t = it.time_ms / 1000
    if isinstance(it, Cue):
        return Annotation(t, it.duration_ms / 1000, "cue", f"cue {it.cue}")
    if isinstance(it, StateChanged):
        return Annotation(t, 0.0, "state", f"{it.from_state} -> {it.to_state} ({it.reason})")
    if isinstance(it, StimEvent):
        text = f"stim {it.state} {it.level_ua / 1000:.1f}/{it.limit_ua / 1000:.1f} mA"
        if it.state == "READY" and it.impedance_ohm:  # measured by the electrode check
            text += " %d ohm" % it.impedance_ohm
        return Annotation(t, 0.0, "stim", text)
    if isinstance(it, FaultEvent):
        return Annotation(t, 0.0, "fault", "fault {}{}".format(it.name, " latched" if it.latched else ""))
    if isinstance(it, Advice):
        return Annotation(t, 0.0, "advice", f"advice {it.reason}")
    if isinstance(it, SessionSummary):
        return Annotation(t, 0.0, "summary", f"scored: ended {it.end_reason}")
    if isinstance(it, Marker):
        return Annotation(t, 0.0, "marker", f"marker: {it.text}")
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


def _stream_annotations(t, rate):
    """Gaps between frames, and lead-off and saturation over runs of adjacent flagged frames."""
    if not len(t):
        return []
    end = t.end_index
    missing = t.first_index[1:] - end[:-1]
    out = [
        Annotation(float(end[k] / rate), float(missing[k] / rate), "gap", "gap: %d samples lost" % missing[k])
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
            for a, b in zip(starts, ends)
        ]
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


_DECODE_ERRORS = (
    cbor2.CBORDecodeError,
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    OverflowError,
    AttributeError,
)


class _Unknown(Exception):
    """An item of a type this reader does not know: a newer writer's, or a damaged type key."""


def _check_header(head, path):
    if not isinstance(head, dict) or head.get("format") != FORMAT:
        raise RecordingError(f"{path} is not a tonus recording (no recording header at its start)")
    if not isinstance(head.get("version"), int) or not 1 <= head["version"] <= VERSION:
        raise RecordingError(
            "%s is a version %r recording; this tonus reads versions 1 to %d: update tonus"
            % (path, head.get("version"), VERSION)
        )
    for key, kind in (("emg_rate_hz", int), ("started_unix_s", (int, float)), ("device_uptime_ms", int)):
        v = head.get(key)
        if not isinstance(v, kind) or isinstance(v, bool) or (key == "emg_rate_hz" and v <= 0):
            raise RecordingError(f"{path} has no valid {key} in its header")


class _Scanner:
    """One pass over a recording's bytes (bytes or an mmap): items, problems, end marker."""

    def __init__(self, data, path):
        self.data = data  # for resync's search: the bytes, or the file mapped
        self.path = path
        # cbor2 decodes from a file object (not from an mmap)
        self.fp = io.BytesIO(data) if isinstance(data, bytes) else open(path, "rb")  # noqa: SIM115
        try:
            self.header = cbor2.CBORDecoder(self.fp).decode()
        except _DECODE_ERRORS:
            self.header = None
        try:
            _check_header(self.header, path)
        except RecordingError:
            self.fp.close()
            raise
        self.start = self.fp.tell()
        self.problems = []
        self.unknown = {}
        self.end = None

    def items(self):
        try:
            yield from self._items()
        finally:
            self.fp.close()

    def _items(self):
        data, fp = self.data, self.fp
        pos, last_s, size = self.start, 0.0, len(data)
        fp.seek(pos)
        dec = cbor2.CBORDecoder(fp)  # one decoder while items follow each other; a new one after damage
        while pos < size and self.end is None:
            try:
                d = dec.decode()
                if d.get("type") == _END:
                    self.end = d
                elif d.get("type") in TYPES:
                    last_s, item = _decode_item(d)
                    yield last_s, item
                elif isinstance(d.get("type"), str) and isinstance(d.get("host_s"), (int, float)):
                    self.unknown[d["type"]] = self.unknown.get(d["type"], 0) + 1
                else:
                    raise ValueError("not an item")
                pos = fp.tell()
                continue
            except _DECODE_ERRORS:
                pass
            nxt = _resync(data, fp, pos + 1)
            if nxt is None:
                self.problems.append(
                    "the last %d bytes (after %.1f s of host time) are cut off or damaged and were not read"
                    % (size - pos, last_s)
                )
                break
            self.problems.append(
                "%d damaged bytes after %.1f s of host time were skipped; the items in them are lost"
                % (nxt - pos, last_s)
            )
            pos = nxt
            fp.seek(pos)
            dec = cbor2.CBORDecoder(fp)
        for name, n in sorted(self.unknown.items()):
            self.problems.append(
                "%d items of type %r are not understood by this tonus and were left out: update tonus"
                % (n, name)
            )
        if self.end is None and not self.problems:
            self.problems.append(
                f"the recording stops after {last_s:.1f} s of host time without its end mark: it was cut off"
            )
        elif self.end is not None and pos < size:
            self.problems.append("%d bytes after the end mark were ignored" % (size - pos))


def _load(source, path, mapped=None):
    """A Recording from one streaming pass of source() (a _Scanner factory)."""
    scan = source()
    events = []
    cols = {name: array.array(code) for name, code in _TABLE_COLUMNS}
    end = None  # the index after the last frame kept
    dropped = 0
    rate = scan.header["emg_rate_hz"]
    for t, it in scan.items():
        if not isinstance(it, EmgFrame):
            events.append((t, it))
            continue
        if dropped or (
            end is not None and (it.first_index < end or it.first_index - end > _MAX_JUMP_S * rate)
        ):
            if not dropped:
                jump = (it.first_index, end)
            dropped += 1
            continue
        end = it.end_index
        for name, _code in _TABLE_COLUMNS:
            cols[name].append(getattr(it, name))
    problems = scan.problems
    if dropped:
        problems.append(
            "%d EMG frames from sample %d on are not in the signals: the sample index went from %d "
            "to %d (the device restarted?)" % (dropped, jump[0], jump[1], jump[0])
        )
    return Recording(path, scan.header, events, FrameTable(cols), problems, scan.end, source, mapped)


def read(path):
    """A Recording from `path`, read in one streaming pass (the file is mapped, not loaded).
    Raises RecordingError if it cannot be one; what was lost from a damaged or cut-off one is in .problems."""
    path = str(path)
    try:
        with open(path, "rb") as f:
            empty = os.fstat(f.fileno()).st_size == 0
            data = b"" if empty else mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    except OSError as e:
        raise RecordingError(f"cannot read {path}: {e.strerror}") from e

    def source():
        return _Scanner(data, path)

    try:
        return _load(source, path, data or None)
    except RecordingError:
        if data:
            data.close()
        raise


def parse(data, path="<bytes>"):
    """A Recording from the bytes of one (see read)."""
    data = bytes(data)
    return _load(lambda: _Scanner(data, path), path)


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
        except _DECODE_ERRORS:
            continue
