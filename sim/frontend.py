"""The EMG front end as the firmware sees it: a ring that hardware fills.

On the Pico, PIO + DMA write samples into a RAM ring with hardware wrap and
the main loop drains it; here the simulator fills the ring as simulated time
passes. The ring holds RING_SAMPLES; a firmware that does not drain it for
longer than that loses the oldest samples, and the read index jumps past
them (EMG_OVERRUN), exactly as a DMA write pointer laps a slow reader.
Indices count samples since the front end started (at boot).

Coupled to the output stage (couple(), which SimBoard does), every pulse
adds its artefact (sim/emg_model.py StimArtefact) to the samples it
overlaps before they reach the ring; samples are clipped to the input range
like the ADC's codes, and saturation is reported as the Pico reports it:
for the samples read, when they are read. While a pulse is under way its
samples wait (at most its ~1 ms) until it is complete and its artefact known.
"""

from collections import deque
from itertools import islice

import numpy as np

from firmware import hal as H
from sim.emg_model import FULL_SCALE_DV, StimArtefact
from sim.output import OutputStage

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
        self._rails: deque[tuple[int, int]] = deque()  # index runs of written samples that read the rail
        # the output stage whose pulses reach the input, and through what, once coupled
        self._coupled: tuple[OutputStage, StimArtefact] | None = None
        self._drawn = 0  # output pulses whose artefact is in the overlay
        self._art = np.zeros(0)  # artefact (0.1 µV) still to add, from model sample _art_at
        self._over = np.zeros(0, dtype=bool)  # ...and the samples it overloads
        self._art_at = 0

    def couple(self, output, artefact):
        """Pulses that output (sim.output.OutputStage) delivers from now reach the input through artefact."""
        self._coupled = (output, artefact)
        self._drawn = output.emitted

    def index_at(self, t_us):
        """Index of the sample converting at t_us (simulated time): the count emg_index() uses."""
        # samples the ring never got (before the last restart, while stalled) have no index
        return t_us * self.rate_hz // 1_000_000 - (self._taken - self._written)

    def restart(self):
        """A board reset: the DMA ring starts again empty, at index 0."""
        self._written = 0
        self._read = 0
        self._status = 0
        self._rails.clear()

    def sync(self, now_us):
        """Convert every sample due by now_us (sample k is ready at (k + 1) / rate)."""
        due = now_us * self.rate_hz // 1_000_000
        if self._coupled is not None:
            due = min(due, self._pulses(*self._coupled, now_us))
        n = due - self._taken
        if n <= 0:
            return
        samples, status = self.model.take(n)
        # the model reports EMG_SATURATED whenever a sample it gives reads the rail
        may_rail = status & H.EMG_SATURATED
        if len(self._art):
            samples = self._with_artefact(samples)
            may_rail = True
        self._taken = due
        if self.stalled:
            return
        self._status |= status & ~H.EMG_SATURATED  # saturation is seen in the samples as they are read
        if n > RING_SAMPLES:
            samples = samples[-RING_SAMPLES:]
            self._written += n - RING_SAMPLES
            n = RING_SAMPLES
        start = self._written % RING_SAMPLES
        first = min(n, RING_SAMPLES - start)
        self._ring[start : start + first] = samples[:first]
        if n > first:
            self._ring[: n - first] = samples[first:]
        if may_rail:
            self._note_rails(samples, self._written)
        self._written += n
        if self._written - self._read > RING_SAMPLES:
            self._read = self._written - RING_SAMPLES
            self._status |= H.EMG_OVERRUN

    def _note_rails(self, samples, base):
        """Keep the runs of railed samples (indices from base on): read() reports them without a scan."""
        hit = np.flatnonzero(np.abs(samples) >= FULL_SCALE_DV)
        if not len(hit):
            return
        breaks = np.flatnonzero(np.diff(hit) > 1)
        starts = hit[np.r_[0, breaks + 1]] + base
        ends = hit[np.r_[breaks, len(hit) - 1]] + base + 1
        self._rails.extend(zip(starts.tolist(), ends.tolist(), strict=True))

    def _railed(self, begin, end):
        """Did a sample in [begin, end) read the rail? Forgets the runs before begin."""
        rails = self._rails
        while rails and rails[0][1] <= begin:
            rails.popleft()
        return bool(rails) and rails[0][0] < end

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
        if self._rails and self._railed(self._read, self._read + n):
            self._status |= H.EMG_SATURATED
        _copy(buf, 0, self._ring[start : start + first])
        if n > first:
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

    def _pulses(self, out, artefact, now_us):
        """Draw the artefacts of the pulses delivered since the last look; the first sample still unknown."""
        out.sync(now_us)
        new = out.emitted - self._drawn
        if new:
            self._drawn = out.emitted
            for p in reversed(list(islice(reversed(out.trace), min(new, len(out.trace))))):
                self._draw(*artefact.wave(p))
        t = out.in_progress_us()
        return (now_us if t is None else t) * self.rate_hz // 1_000_000

    def _draw(self, k0, values, overloaded):
        skip = self._taken - k0  # > 0 only if samples were converted before the pulse was known
        if skip > 0:
            k0, values, overloaded = self._taken, values[skip:], overloaded[skip:]
        if not len(values):
            return
        if not len(self._art):
            self._art_at = k0
        begin = min(k0, self._art_at)
        end = max(k0 + len(values), self._art_at + len(self._art))
        art = np.zeros(end - begin)
        over = np.zeros(end - begin, dtype=bool)
        art[self._art_at - begin : self._art_at - begin + len(self._art)] = self._art
        over[self._art_at - begin : self._art_at - begin + len(self._art)] = self._over
        art[k0 - begin : k0 - begin + len(values)] += values
        over[k0 - begin : k0 - begin + len(values)] |= overloaded
        self._art, self._over, self._art_at = art, over, begin

    def _with_artefact(self, samples):
        """samples (model samples _taken...) plus the artefact over them, clipped like the ADC's codes."""
        n = len(samples)
        lo = self._art_at - self._taken  # where the overlay starts in samples (< 0: partly consumed)
        a = max(lo, 0)
        b = min(n, lo + len(self._art))
        if b > a:
            x = samples.astype(np.float64)
            x[a:b] += self._art[a - lo : b - lo]
            over = self._over[a - lo : b - lo]
            x[a:b][over] = np.where(x[a:b][over] >= 0, FULL_SCALE_DV, -FULL_SCALE_DV)
            samples = np.clip(np.rint(x), -FULL_SCALE_DV, FULL_SCALE_DV).astype(np.int32)
        used = max(self._taken + n - self._art_at, 0)
        self._art = self._art[used:]
        self._over = self._over[used:]
        self._art_at += used
        return samples


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
