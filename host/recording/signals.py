"""A recording's samples as contiguous arrays by sample index, filled from the frames that hold them."""

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from host.client import EmgFrame


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
    def present(self) -> np.ndarray:
        return ~np.isnan(self.emg_uv)

    @property
    def time_s(self) -> np.ndarray:
        """Device time of each sample."""
        return (self.first_index + np.arange(len(self.emg_uv))) / self.rate_hz

    def gaps(self) -> list[tuple[int, int]]:
        """(first missing index, number of samples) of each stretch where no sample arrived."""
        return [(self.first_index + int(a), int(b - a)) for a, b in runs(~self.present)]


def fill(rate: int, a: int, b: int, frames: Sequence[EmgFrame]) -> Signals:
    """Signals for samples [a, b) from the frames holding any of them, in whole arrays (no per-frame loop)."""
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


def runs(mask: np.ndarray) -> Iterator[tuple[int, int]]:
    """(start, end) of each stretch where the boolean array is true."""
    edges = np.flatnonzero(np.diff(np.concatenate(([False], mask, [False])).astype(np.int8)))
    return zip(edges[::2], edges[1::2], strict=True)
