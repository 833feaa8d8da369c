"""The resting tone as a running median: what the patient-paced advice watches.

A rest tone that creeps up over minutes is the sign a relaxation session
should end (EMG-PACED-1). A contraction, a cough, a burst or an artefact is
not: each lasts seconds at most. So the tone is taken in two robust steps:

- each second, the median of its SECOND_UPDATES trusted envelope updates
  (a cough or a spike train shorter than half a second does not move it);
- the tone is the median of the last WINDOW_S such seconds: an excursion
  shorter than WINDOW_S / 2 seconds (a 10 s squeeze, a 2 s burst of any
  amplitude, an electrode step) cannot move it, whatever its size, while a
  tone that truly rises is followed with a lag of about WINDOW_S / 2.

Untrusted updates are left out (a second is complete after SECOND_UPDATES
trusted ones). Integers, preallocated arrays, no allocation per update.
"""

from array import array

SECOND_UPDATES = 20  # envelope updates per second (20 Hz)
WINDOW_S = 30  # seconds in the running median: ignores excursions up to 14 s


def _insert(a, n, v):
    """Insert v into the sorted a[0:n] (a has room for one more)."""
    i = n
    while i > 0 and a[i - 1] > v:
        a[i] = a[i - 1]
        i -= 1
    a[i] = v


def _remove(a, n, v):
    """Remove one v from the sorted a[0:n]."""
    i = 0
    while i < n and a[i] != v:
        i += 1
    while i < n - 1:
        a[i] = a[i + 1]
        i += 1


def _median(a, n):
    h = n >> 1
    if n & 1:
        return a[h]
    return (a[h - 1] + a[h] + 1) >> 1


class ToneTrend:
    def __init__(self):
        self._sec = array("i", [0] * SECOND_UPDATES)  # this second's updates, sorted
        self._ring = array("i", [0] * WINDOW_S)  # per-second medians, oldest at _head when full
        self._sorted = array("i", [0] * WINDOW_S)
        self.reset()

    def reset(self):
        self._n = 0
        self._head = 0
        self.seconds = 0  # per-second medians in the window (at most WINDOW_S)
        self.value = 0  # the tone: median of the window's seconds (0.1 µV); 0 before the first second

    def add(self, dv):
        """One trusted envelope update; True when it completed a second (value may have changed)."""
        _insert(self._sec, self._n, dv)
        self._n += 1
        if self._n < SECOND_UPDATES:
            return False
        self._n = 0
        v = _median(self._sec, SECOND_UPDATES)
        n = self.seconds
        if n == WINDOW_S:
            old = self._ring[self._head]
            _remove(self._sorted, n, old)
            n -= 1
        self._ring[self._head] = v
        self._head = (self._head + 1) % WINDOW_S
        _insert(self._sorted, n, v)
        n += 1
        self.seconds = n
        self.value = _median(self._sorted, n)
        return True

    def full(self):
        return self.seconds == WINDOW_S
