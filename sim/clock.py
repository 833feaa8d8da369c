"""Simulated time, and how it is paced against the wall clock.

Time is an integer count of microseconds so that sums of ticks never drift
and scenario events land on their exact instant. Pacing is absolute: the
simulator is anchored to a wall-clock instant and each simulated instant has
one wall-clock deadline, so the small oversleeps of time.sleep() do not add
up over a long run.
"""

import math
import time

_US_PER_S = 1_000_000
MAX_LAG_MS = 250


class Clock:
    """Integer-microsecond simulated time with optional wall-clock pacing.

    speed 1.0 keeps simulated time with the wall clock, N runs N times
    faster, 0 does not pace at all. When the computer cannot keep up, the
    clock gives up the backlog beyond max_lag_ms (counted in slipped_us)
    instead of sprinting to catch up, which would starve the host of time.
    """

    def __init__(self, speed=0.0, wall=time.monotonic, sleep=time.sleep, max_lag_ms=MAX_LAG_MS):
        self.us = 0
        self._wall = wall
        self._sleep = sleep
        self.max_lag_us = max_lag_ms * 1000
        self.slipped_us = 0
        self.speed = 0.0
        self.set_speed(speed)

    def set_speed(self, speed):
        speed = float(speed)
        if not math.isfinite(speed) or speed < 0:
            raise ValueError(f"speed must be a finite number >= 0, not {speed!r}")
        self.speed = speed
        self.anchor()

    def anchor(self):
        """Pace from here: the current simulated instant is due now, with no backlog."""
        self._anchor(self.us)

    def _anchor(self, us):
        self._wall0 = self._wall()
        self._us0 = us

    def advance_to(self, us):
        if us < self.us:
            raise ValueError(f"simulated time cannot go back ({us} < {self.us} us)")
        self.us = us

    def wall_delay(self, us):
        """Seconds of wall time before simulated instant `us` is due; 0 when unpaced or due."""
        if not self.speed:
            return 0.0
        due = self._wall0 + (us - self._us0) / (_US_PER_S * self.speed)
        return max(0.0, due - self._wall())

    def due_us(self):
        """The simulated instant the wall clock has reached (paced clocks only).

        Never more than max_lag ahead of the current time: a longer backlog
        is given up (slipped_us) and the clock re-anchored.
        """
        due = self._us0 + round((self._wall() - self._wall0) * _US_PER_S * self.speed)
        lag = due - self.us
        if lag > self.max_lag_us:
            self.slipped_us += lag - self.max_lag_us
            due = self.us + self.max_lag_us
            self._anchor(due)
        return due

    def pace(self, us):
        """Wait until simulated instant `us` is due (at once when unpaced or behind)."""
        if self.speed and us > self.due_us():
            self._sleep(self.wall_delay(us))
