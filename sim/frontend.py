"""The EMG front end as the firmware sees it: a ring that hardware fills.

On the Pico, PIO + DMA write samples into a RAM ring with hardware wrap and
the main loop drains it; here the simulator fills the ring as simulated time
passes. The ring holds RING_SAMPLES; a firmware that does not drain it for
longer than that loses the oldest samples, and the read index jumps past
them (EMG_OVERRUN), exactly as a DMA write pointer laps a slow reader.
Indices count samples since the front end started (at boot).
"""

import numpy as np

from firmware import hal as H

RING_SAMPLES = 2048  # 1.02 s at 2 kHz; an 8 KiB, naturally aligned DMA ring


class EmgFrontEnd:
    def __init__(self, model, rate_hz):
        self.model = model
        self.rate_hz = rate_hz
        self.stalled = False  # the front end stopped converting (clock lost, SPI hung)
        self._ring = np.zeros(RING_SAMPLES, dtype=np.int32)
        self._taken = 0  # model samples consumed: keeps physiology on simulated time
        self._written = 0
        self._read = 0
        self._status = 0

    def restart(self):
        """A board reset: the DMA ring starts again empty, at index 0."""
        self._written = 0
        self._read = 0
        self._status = 0

    def sync(self, now_us):
        """Convert every sample due by now_us (sample k is ready at (k + 1) / rate)."""
        due = now_us * self.rate_hz // 1_000_000
        n = due - self._taken
        if n <= 0:
            return
        samples, status = self.model.take(n)
        self._taken = due
        if self.stalled:
            return
        self._status |= status
        if n > RING_SAMPLES:
            samples = samples[-RING_SAMPLES:]
            self._written += n - RING_SAMPLES
            n = RING_SAMPLES
        start = self._written % RING_SAMPLES
        first = min(n, RING_SAMPLES - start)
        self._ring[start : start + first] = samples[:first]
        self._ring[: n - first] = samples[first:]
        self._written += n
        if self._written - self._read > RING_SAMPLES:
            self._read = self._written - RING_SAMPLES
            self._status |= H.EMG_OVERRUN

    def index(self):
        return self._read

    def pending(self):
        return self._written - self._read

    def read(self, buf):
        n = min(len(buf), self._written - self._read)
        if n <= 0:
            return 0
        start = self._read % RING_SAMPLES
        first = min(n, RING_SAMPLES - start)
        _copy(buf, 0, self._ring[start : start + first])
        _copy(buf, first, self._ring[: n - first])
        self._read += n
        return n

    def status(self):
        """EMG_* conditions since the last call; lead-off is reported while it lasts."""
        s = self._status
        self._status = 0
        if self.model.lead_off:
            s |= H.EMG_LEAD_OFF
        return s


def _copy(buf, at, src):
    n = len(src)
    if not n:
        return
    try:
        view = memoryview(buf)
    except TypeError:
        view = None  # a list
    if view is not None and view.format == "i":
        view[at : at + n] = memoryview(src)  # the firmware's preallocated array('i'): one copy
    else:
        for i, v in enumerate(src.tolist()):
            buf[at + i] = v
