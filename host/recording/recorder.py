"""Writing a recording as the client receives it: appended, flushed every second and on every event."""

import contextlib
import os
import time
from collections.abc import Callable
from typing import BinaryIO, Self

import cbor2

from host.client import EmgFrame, Info
from host.recording.fileformat import END, Item, RecordingError, encode_item, header

_FLUSH_S = 1.0  # at most this much host time of stream sits in buffers


class Recorder:
    """Appends the client's events and frames to a recording; call it with each item (follow's on_item).

    The file is created at once (an existing one is never overwritten), so
    a bad path fails before a session starts. Flushed every second of
    host time and on every event, so a crash loses at most that much.
    `clock` times the items (monotonic), `wall` dates the header.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        info: Info,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.path = str(path)
        self._fp: BinaryIO | None
        try:
            self._fp = open(self.path, "xb")  # noqa: SIM115 - held until close()
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
        self._write(cbor2.dumps(header(info, wall())), flush=True)

    def __call__(self, item: Item) -> None:
        now = self._clock()
        flush = not isinstance(item, EmgFrame) or now - self._flushed >= _FLUSH_S
        self._write(encode_item(item, now - self._t0), flush)
        if flush:
            self._flushed = now
        self.items += 1
        if isinstance(item, EmgFrame):
            self.frames += 1
            self.samples += item.count

    @property
    def seconds(self) -> float:
        """Device time recorded, from the samples."""
        return self.samples / self.rate_hz if self.rate_hz else 0.0

    def close(self, reason: str = "closed") -> None:
        """Write the end marker and close; a recording without one was cut off."""
        fp = self._fp
        if fp is None:
            return
        end = {
            "type": END,
            "host_s": round(self._clock() - self._t0, 4),
            "items": self.items,
            "reason": reason,
        }
        try:
            self._write(cbor2.dumps(end), flush=True)
        except RecordingError:
            self._fp = None
            with contextlib.suppress(OSError):  # the buffer that did not fit fails the close again
                fp.close()
            raise
        self._fp = None
        fp.close()  # flushed above: nothing left that a full disk could refuse

    def _write(self, data: bytes, flush: bool = False) -> None:
        # a full disk usually shows at the flush, which empties the buffer the writes filled
        if self._fp is None:
            raise RecordingError(f"the recording {self.path} is closed")
        try:
            self._fp.write(data)
            if flush:
                self._fp.flush()
        except OSError as e:
            raise RecordingError(f"cannot write the recording {self.path}: {e.strerror}") from e

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        self.close("closed" if exc_type is None else f"interrupted ({exc_type.__name__})")
