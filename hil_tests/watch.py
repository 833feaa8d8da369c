"""Reading what a device says, the way the HIL tests need it.

Waits are bounded in wall time with room for a target that runs in real
time (device time / 1000 + MARGIN_S), stretched by the target's declared
slowdown (hil_tests/conftest.py); on a faster target they end sooner.
Everything read is kept, so a failed wait shows what did happen.
"""

import time

from host.client import EmgFrame, StateChanged

MARGIN_S = 5.0


class Watch:
    slowdown = 1.0  # wall seconds per device second at most; the target fixture sets it

    def __init__(self, client):
        self.client = client
        self.events = []  # everything but EMG frames, in order
        self.frames = []

    def _take(self, item):
        (self.frames if isinstance(item, EmgFrame) else self.events).append(item)

    def until(self, predicate, device_ms, what):
        """Read until predicate(item) holds for an item; return that item."""
        deadline = time.monotonic() + (device_ms / 1000 + MARGIN_S) * self.slowdown
        while time.monotonic() < deadline:
            item = self.client.poll(0.05)
            if item is not None:
                self._take(item)
                if predicate(item):
                    return item
        raise AssertionError(f"{what} did not happen; last events: {self.events[-8:]!r}")

    def state(self, to_state, device_ms=1000, reason=None):
        """The next STATE_CHANGED into to_state (with that reason, if given)."""
        return self.until(
            lambda e: isinstance(e, StateChanged) and e.to_state == to_state and reason in (None, e.reason),
            device_ms,
            "a change to {}{}".format(to_state, f" ({reason})" if reason else ""),
        )

    def event(self, cls, device_ms=1000, **fields):
        return self.until(
            lambda e: isinstance(e, cls) and all(getattr(e, k) == v for k, v in fields.items()),
            device_ms,
            f"a {cls.__name__} {fields!r}",
        )

    def stream_for(self, device_ms, rate_hz=2000):
        """Read until the frames read since this call cover device_ms of samples; return them."""
        start = len(self.frames)
        need = device_ms * rate_hz // 1000
        got = [0]

        def enough(item):
            if isinstance(item, EmgFrame):
                got[0] += item.count
            return got[0] >= need

        self.until(enough, device_ms, f"{device_ms:d} ms of EMG")
        return self.frames[start:]

    def of(self, cls):
        return [e for e in self.events if isinstance(e, cls)]
