"""A recording read back: the header, the events, and a small table per EMG frame.

A recording is read in one streaming pass that keeps the events and, per
EMG frame, a row of small integers (FrameTable); the samples stay in the
file and are read again, a stretch at a time, only by what needs them
(signals(), blocks(), iter_items()). A 30-minute recording at 2 kHz is
72,000 frames: its table is about 2.5 MB, its samples 14 MB on disk and
29 MB as float64.
"""

import array
import mmap
import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, Self

import numpy as np

from host.client import Cue, EmgFrame, SessionSummary
from host.recording import annotations
from host.recording.annotations import Annotation
from host.recording.fileformat import Item, RecordedEvent, RecordingError
from host.recording.scanner import Scanner
from host.recording.signals import Signals, fill

_MAX_JUMP_S = 3600  # an index jump longer than this is a restart or garbage, not a gap


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

    first_index: np.ndarray
    count: np.ndarray
    envelope_dv: np.ndarray
    flags: np.ndarray
    stim_ua: np.ndarray
    triggered: np.ndarray

    def __init__(self, columns: dict[str, array.array]) -> None:
        for name, _code in _TABLE_COLUMNS:
            setattr(self, name, np.asarray(columns[name]))

    def __len__(self) -> int:
        return len(self.first_index)

    @property
    def end_index(self) -> np.ndarray:
        return self.first_index + self.count


class Recording:
    """A recording read back: header, events, the frame table, and what could not be read.

    `problems` are sentences saying what was lost (empty when all was read);
    `end` is the end marker, or None when the recording was cut off.
    """

    def __init__(
        self,
        path: str,
        header: dict[str, Any],
        events: list[tuple[float, RecordedEvent]],
        table: FrameTable,
        problems: list[str],
        end: dict[str, Any] | None,
        source: Callable[[], Scanner],
        mapped: mmap.mmap | None = None,
    ) -> None:
        self.path = str(path)
        self.header = header
        self._events = events  # [(host_s, item)] of everything but EMG frames
        self.table = table
        self.problems = problems
        self.end = end
        self._source = source  # () -> a fresh Scanner over the same bytes
        self._mapped = mapped  # the file's mmap, unmapped by close()

    def close(self) -> None:
        """Unmap the file when done with it (its pages count as this process's memory while mapped);
        the events and the table stay."""
        if self._mapped is not None:
            self._mapped.close()
            self._mapped = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def iter_items(self) -> Iterator[tuple[float, Item]]:
        """(host_s, item) of every item, in file order, read from the file again."""
        return self._source().items()

    @property
    def items(self) -> list[tuple[float, Item]]:
        return list(self.iter_items())

    def __iter__(self) -> Iterator[Item]:
        return (item for _t, item in self.iter_items())

    @property
    def complete(self) -> bool:
        return not self.problems

    @property
    def rate_hz(self) -> int:
        return self.header["emg_rate_hz"]

    @property
    def pseudonym(self) -> str | None:
        return self.header.get("patient")

    @property
    def protocol_id(self) -> str | None:
        return self.header.get("protocol_id")

    @property
    def serial(self) -> str | None:
        return self.header.get("serial")

    @property
    def started(self) -> datetime:
        """The host's start time (aware UTC datetime)."""
        return datetime.fromtimestamp(self.header["started_unix_s"], UTC)

    def wall_time(self, device_s: float) -> datetime:
        """The host's UTC time at device time device_s (exact to the link's latency)."""
        return self.started + timedelta(seconds=device_s - self.header["device_uptime_ms"] / 1000)

    def iter_frames(self) -> Iterator[EmgFrame]:
        """The EMG frames kept for the signals, with their samples, read from the file again."""
        n = len(self.table)
        for _t, it in self.iter_items():
            if n == 0:
                return
            if isinstance(it, EmgFrame):
                n -= 1
                yield it

    @property
    def frames(self) -> list[EmgFrame]:
        return list(self.iter_frames())

    @property
    def events(self) -> list[RecordedEvent]:
        return [it for _t, it in self._events]

    @property
    def cues(self) -> list[Cue]:
        return [it for _t, it in self._events if isinstance(it, Cue)]

    @property
    def summary(self) -> SessionSummary | None:
        """The device's SessionSummary, or None if the recording holds none."""
        s = [it for _t, it in self._events if isinstance(it, SessionSummary)]
        return s[-1] if s else None

    @property
    def span(self) -> tuple[int, int] | None:
        """(first sample index, end index) of the signals; None without frames."""
        if not len(self.table):
            return None
        return int(self.table.first_index[0]), int(self.table.end_index[-1])

    def blocks(self, samples: int) -> Iterator[Signals]:
        """Signals for consecutive stretches of `samples` samples (the last may be shorter), streamed."""
        span = self.span
        if span is None:
            return
        first, end = span
        frames = self.iter_frames()
        carry: EmgFrame | None = None
        for a in range(first, end, samples):
            b = min(a + samples, end)
            group: list[EmgFrame] = []  # the frames with samples in [a, b)
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
            yield fill(self.rate_hz, a, b, group)

    def signals(self) -> Signals | None:
        """All the frames as one Signals; None without frames. For long recordings use blocks()."""
        span = self.span
        if span is None:
            return None
        return next(self.blocks(span[1] - span[0]))

    def annotations(self) -> list[Annotation]:
        """Every event, and the stream's triggers, gaps, lead-off and saturation, in device time order."""
        return annotations.of_recording(self)


def _load(source: Callable[[], Scanner], path: str, mapped: mmap.mmap | None = None) -> Recording:
    """A Recording from one streaming pass of source() (a Scanner factory)."""
    scan = source()
    events: list[tuple[float, RecordedEvent]] = []
    cols = {name: array.array(code) for name, code in _TABLE_COLUMNS}
    end = None  # the index after the last frame kept
    dropped = 0
    jump = (0, 0)  # (index after the last frame kept, first index of the first frame dropped)
    rate = scan.header["emg_rate_hz"]
    for t, it in scan.items():
        if not isinstance(it, EmgFrame):
            events.append((t, it))
            continue
        if dropped:
            dropped += 1
            continue
        if end is not None and (it.first_index < end or it.first_index - end > _MAX_JUMP_S * rate):
            jump = (end, it.first_index)
            dropped = 1
            continue
        end = it.end_index
        for name, _code in _TABLE_COLUMNS:
            cols[name].append(getattr(it, name))
    problems = scan.problems
    if dropped:
        problems.append(
            f"{dropped} EMG frames from sample {jump[1]} on are not in the signals: the sample index went "
            f"from {jump[0]} to {jump[1]} (the device restarted?)"
        )
    return Recording(path, scan.header, events, FrameTable(cols), problems, scan.end, source, mapped)


def read(path: str | os.PathLike[str]) -> Recording:
    """A Recording from `path`, read in one streaming pass (the file is mapped, not loaded).
    Raises RecordingError if it cannot be one; what was lost from a damaged or cut-off one is in .problems."""
    path = str(path)
    try:
        with open(path, "rb") as f:
            empty = os.fstat(f.fileno()).st_size == 0
            mapped = None if empty else mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    except OSError as e:
        raise RecordingError(f"cannot read {path}: {e.strerror}") from e

    def source() -> Scanner:
        return Scanner(b"" if mapped is None else mapped, path)

    try:
        return _load(source, path, mapped)
    except RecordingError:
        if mapped is not None:
            mapped.close()
        raise


def parse(data: bytes | bytearray | memoryview, path: str = "<bytes>") -> Recording:
    """A Recording from the bytes of one (see read)."""
    data = bytes(data)
    return _load(lambda: Scanner(data, path), path)
