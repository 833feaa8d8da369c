"""The board's flash filesystem as files in a directory, and losing power mid-write.

A blob is replaced the way the Pico board does it on littlefs: write the new
bytes aside, then rename over the old file (os.replace is atomic). A power
cut injected at write #N stops that write halfway through the side file, so
the blob keeps its old content, and raises PowerLoss, which the simulator
turns into a power cycle.
"""

import contextlib
import errno
import os
import string
from pathlib import Path

_NAME_CHARS = frozenset(string.ascii_letters + string.digits + "_-")
_SIDE = ".new"


class PowerLoss(BaseException):
    """The supply went away. A BaseException: no firmware handler may swallow it."""


class Flash:
    def __init__(self, directory):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.writes = 0  # fs_write calls since the simulator started, the cut one included
        self.removes = 0
        self._cut_at = 0
        self._power_cut = False

    def cut_power_at_write(self, n):
        """Lose power during write number n (counted from the simulator's start, from 1)."""
        if not isinstance(n, int) or n <= self.writes:
            raise ValueError(f"write #{n!r} is not in the future ({self.writes} writes so far)")
        self._cut_at = n

    def _path(self, name):
        if not isinstance(name, str) or not name or not set(name) <= _NAME_CHARS:
            raise OSError(errno.EINVAL, f"bad blob name {name!r}")
        return self.dir / name

    def take_power_cut(self):
        """True once after an injected power cut happened."""
        cut = self._power_cut
        self._power_cut = False
        return cut

    def read(self, name):
        try:
            return self._path(name).read_bytes()
        except FileNotFoundError:
            return None

    def write(self, name, data):
        path = self._path(name)
        side = path.with_name(name + _SIDE)
        data = bytes(data)
        self.writes += 1
        if self.writes == self._cut_at:
            self._cut_at = 0
            self._power_cut = True  # also known to the simulator if the firmware swallows PowerLoss
            side.write_bytes(data[: len(data) // 2])
            raise PowerLoss(f"power cut during write #{self.writes} ({name})")
        side.write_bytes(data)
        os.replace(side, path)

    def remove(self, name):
        path = self._path(name)
        self.removes += 1
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
