"""EMG acquisition in blocks: drain the front end's ring, filter, frame, envelope.

The front end fills a ring in hardware; each main-loop pass drains what is
pending into a preallocated block of FRAME_SAMPLES. A full block goes
through the chain of firmware/emg_dsp.py (20 Hz high-pass, mains notch, RMS
envelope updated at 20 Hz) and becomes one stream frame: the high-passed,
un-notched samples packed as int32 LE (0.1 µV, saturating at ±LIMIT_DV).

Indices that jump mark a gap (FLAG_GAP); so does EMG_OVERRUN. A gap, lead-off
or saturation restarts the chain: filters start again from the next sample
and envelope updates carry FLAG_GAP until the window has refilled, so a
session never scores an envelope computed across a discontinuity or a rail.
No samples for STALL_MS while the clock runs means a stalled front end.

During stimulation (blank()), the samples around each pulse are held at
the last clean value before they reach the chain (Blanker), and their
block carries FLAG_BLANKED. Saturation the artefact causes inside those
windows is not the signal's: it neither flags the block nor restarts the
chain, so the envelope stays trusted (ETS can re-trigger) while any
saturation outside them still does both.
"""

from array import array

from firmware import hal as H
from firmware.emg_artefact import ArtefactGuard
from firmware.emg_dsp import BLOCK, Chain
from protocol.messages import FLAG_ARTEFACT, FLAG_BLANKED, FLAG_GAP, FLAG_SATURATED

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


FRAME_SAMPLES = BLOCK
STALL_MS = 200
# One block (25 ms at 2 kHz, ~6 ms of a board's CPU while stimulating) a pass: two would take
# a pass past 10 ms, and a pass comes round in under 10 ms, so a short backlog (a collection, a
# request) is caught up within a few passes. A backlog still there after BEHIND_PASSES passes
# (a flash write, a signature check, long requests in a row) is drained MAX_BLOCKS_PER_PASS
# blocks a pass before it laps the ring (1 s).
BLOCKS_PER_PASS = 1
BEHIND_PASSES = 3
MAX_BLOCKS_PER_PASS = 4
BLANK_BEFORE_US = 500  # a predicted start may be a sample late: hold the sample before it too
BLANK_AFTER_US = 4000  # the longest pulse (2 x 450 + 100 µs), then ~3 ms of input recovery
# Blanker.apply()'s state: the block's first sample and its end, the train's last sensed pulse,
# the next pulse's number, the block's samples behind the last window, the samples held
_FIRST = const(0)
_END = const(1)
_LAST = const(2)
_M = const(3)
_DONE = const(4)
_HELD = const(5)


class Blanker:
    """Holds the last clean sample over each pulse's artefact window, before the high-pass.

    Pulses of a train are periodic: counted from the last one sensed (at
    sample `last`), pulse m starts at last + round(m * rate / hz), within a
    sample of the truth (the board floors both the pulse times and the
    sample clock). Samples from `before` ahead of it to `after` after it
    (both included) are replaced by the last clean value; while the train
    runs, pulses after the last one sensed are predicted too, and after it
    stopped the known ones are still blanked in samples not yet processed.

    Sample-and-hold, not interpolation: it needs nothing from after the
    window, so a block is filtered as soon as it is full even when a window
    runs into the next block, and a constant has no slope for the high-pass
    to ring on. The envelope misses the EMG of the held samples and reads
    low by about half the held share (5 % of samples: ~3 %; 25 %: ~13 %).
    """

    def __init__(self, rate_hz):
        self.rate_hz = rate_hz
        self.hz = 0  # the train running now (0: none)
        self.before_us = 0
        self.after_us = 0
        self.held = 0  # the last sample processed, as the chain saw it
        self.peak = 0  # largest |sample| held in the last block
        self._f = 0  # frequency of the last train while its pulses may lie ahead of the chain
        self._before = 0
        self._after = 0
        self._w = [0] * 6  # apply()'s state (_FIRST.._HELD); a list: sample indices outgrow 32 bits

    def configure(self, hz, before_us, after_us):
        if hz < 0 or before_us < 0 or after_us < 0:
            raise ValueError("blanking needs a frequency and window times >= 0")
        self.hz = hz
        self.before_us = before_us
        self.after_us = after_us
        if hz:
            r = self.rate_hz
            self._f = hz
            self._before = (before_us * r + 999999) // 1000000
            self._after = (after_us * r + 999999) // 1000000

    def active(self):
        """Pulses may need blanking in the next block (the caller then senses them)."""
        return self._f != 0

    def apply(self, x, first, n, last, count):
        """Hold over x[0:n] (samples first..first+n-1) around a pulse train.

        The train's count-th pulse began at sample last. Returns how many
        samples were held; peak is the largest |x| replaced.
        """
        self.peak = 0
        if not self._f or count <= 0:
            if not self.hz:
                self._f = 0
            return 0
        w = self._w
        w[_FIRST] = first
        w[_END] = first + n
        w[_LAST] = last
        # one pulse earlier than the first whose window can reach the block, but not before the train began
        w[_M] = (first - self._after - last) * self._f // self.rate_hz - 1
        if w[_M] < 1 - count:
            w[_M] = 1 - count
        w[_DONE] = 0
        w[_HELD] = 0
        while self._window(x):
            pass
        if not self.hz and first + n > last + self._after:
            self._f = 0  # the last known pulse is behind us: nothing more to blank
        return w[_HELD]

    # apply() in three calls, its state in _w: on MicroPython a call whose arguments, locals and
    # stack exceed 11 words takes its frame from the heap, a search of it every block

    def _window(self, x):
        """Hold the next pulse's window; False once no window is left in the block."""
        w = self._w
        if not self.hz and w[_M] > 0:
            return False
        p = w[_LAST] + (2 * w[_M] * self.rate_hz + self._f) // (2 * self._f)
        w[_M] += 1
        a = p - self._before
        if a >= w[_END]:
            return False
        b = p + self._after + 1
        if b > w[_END]:
            b = w[_END]
        a = a - w[_FIRST] if a > w[_FIRST] + w[_DONE] else w[_DONE]
        b -= w[_FIRST]
        if b > a:
            self._hold(x, a, b)
            w[_HELD] += b - a
            w[_DONE] = b
        return True

    def _hold(self, x, a, b):
        # the last clean value: the sample before the window, or the last one of the block before
        v = x[a - 1] if a else self.held
        for i in range(a, b):
            if x[i] > self.peak:
                self.peak = x[i]
            elif -x[i] > self.peak:
                self.peak = -x[i]
            x[i] = v

    def railed_outside(self, x, n):
        """After apply: does a sample outside the windows come as near the rail as the ones held (15/16)?"""
        top = 0
        for i in range(n):
            s = x[i]
            if s < 0:
                s = -s
            if s > top:
                top = s
        return top >= self.peak - (self.peak >> 4)


class EmgInput:
    def __init__(self, hal, now_ms, window_ms=250, mains_hz=50, on_envelope=None):
        self._hal = hal
        kernel = getattr(hal, "emg_kernel", None)  # a board's compiled kernel, if it has one
        # ValueError if unsupported
        self.chain = Chain(hal.emg_rate_hz, window_ms, mains_hz, self._updated, kernel)
        self._block = array("i", [0] * FRAME_SAMPLES)
        whole = memoryview(self._block)
        # one view per fill level, made once: slicing in the loop would allocate
        self._views = [whole[i:] for i in range(FRAME_SAMPLES)]
        self._fill = 0
        self._first = hal.emg_index()
        self._on_envelope = on_envelope
        self.payload = bytearray(4 * FRAME_SAMPLES)
        self.envelope_dv = 0  # latest 20 Hz envelope, 0.1 µV RMS
        self.envelope_count = 0  # envelope updates since start
        self.flags = 0  # FLAG_* of the block being filled
        self.status = 0  # EMG_* conditions seen in the last block
        self.last_data_ms = now_ms
        self.block_ms = -1  # when the last block was completed and assessed
        self.total = 0  # samples received since boot
        self.blanker = Blanker(hal.emg_rate_hz)
        self.guard = ArtefactGuard(hal.emg_rate_hz, FRAME_SAMPLES)
        self._sense = [0, 0, 0, 0, 0]
        self._behind = 0  # passes in a row that left samples waiting in the ring

    def reconfigure(self, window_ms=None, mains_hz=None):
        """Change the envelope window (ms) or the mains notch (Hz) between sessions; restarts the chain."""
        chain = self.chain
        chain.configure(
            chain.window_ms if window_ms is None else window_ms,
            chain.mains_hz if mains_hz is None else mains_hz,
        )

    def blank(self, frequency_hz, before_us=BLANK_BEFORE_US, after_us=BLANK_AFTER_US):
        """Blank the artefact of a pulse train running at frequency_hz (0: none runs now).

        Meant for every loop pass: nothing happens unless the values change.
        Windows run from before_us ahead of each pulse's start to after_us
        after it. The pulses come from hal.stim_sense() (SENSE_INDEX,
        SENSE_PULSES), read as each block completes.
        """
        b = self.blanker
        if frequency_hz != b.hz or before_us != b.before_us or after_us != b.after_us:
            b.configure(frequency_hz, before_us, after_us)

    def pump(self, now_ms, emit):
        """Drain pending samples; emit(first_index, payload, flags) per full block.

        One read per block: a read that leaves the block short has emptied
        the ring, and what arrives meanwhile waits for the next pass (read
        after read at the arrival rate, a pass never ends on a board). At
        most BLOCKS_PER_PASS blocks a pass, MAX_BLOCKS_PER_PASS once a
        backlog lasted BEHIND_PASSES passes; the ring holds the rest.
        """
        for _ in range(MAX_BLOCKS_PER_PASS if self._behind >= BEHIND_PASSES else BLOCKS_PER_PASS):
            if not self._read(now_ms, emit):
                self._behind = 0
                return
        self._behind += 1  # the ring still held a block's worth: a backlog

    # pump() and _finish() are split in calls of at most 11 words of state (arguments, locals,
    # stack): MicroPython puts a larger call's frame on the heap, a search of it every call

    def _read(self, now_ms, emit):
        """One read into the block; True if it filled what the block lacked (more may wait)."""
        idx = self._hal.emg_index()
        if idx != self._first + self._fill:
            # the ring overran or the front end restarted: start afresh
            self.flags |= FLAG_GAP
            self._first = idx
            self._fill = 0
            self.chain.restart()
            self.guard.restart()
        want = FRAME_SAMPLES - self._fill
        n = self._hal.emg_read(self._views[self._fill])
        if n > 0:
            self.last_data_ms = now_ms
            self._fill += n
            self.total += n
            if self._fill == FRAME_SAMPLES:
                self._finish(emit)
                self.block_ms = now_ms
        return n >= want

    def _finish(self, emit):
        status = self._hal.emg_status()
        if self.blanker.active():
            status = self._blank(status)
        block = self._block
        self.blanker.held = block[FRAME_SAMPLES - 1]
        self.status = status
        # EMG_LEAD_OFF and EMG_SATURATED are the same bits as FLAG_LEAD_OFF, FLAG_SATURATED
        flags = self.flags | (status & (H.EMG_LEAD_OFF | H.EMG_SATURATED))
        flags |= self.guard.check(block, FRAME_SAMPLES)
        if status & H.EMG_OVERRUN:
            flags |= FLAG_GAP
        self._out(flags, emit)

    def _blank(self, status):
        """The pulses' artefact held; status without EMG_SATURATED where only the artefact railed."""
        s = self._sense
        self._hal.stim_sense(s)
        if self.blanker.apply(self._block, self._first, FRAME_SAMPLES, s[H.SENSE_INDEX], s[H.SENSE_PULSES]):
            self.flags |= FLAG_BLANKED
            if status & H.EMG_SATURATED and not self.blanker.railed_outside(self._block, FRAME_SAMPLES):
                status &= ~H.EMG_SATURATED  # only the artefact railed, inside its windows
        return status

    def _out(self, flags, emit):
        """The block through the chain, then out as a frame."""
        # an index jump restarted the chain before this block: no second restart after it
        self.chain.process(
            self._block, FRAME_SAMPLES, self.payload, flags & ~FLAG_GAP if self.flags & FLAG_GAP else flags
        )
        emit(self._first, self.payload, flags | (self.chain.block_flags & (FLAG_SATURATED | FLAG_ARTEFACT)))
        self._first += FRAME_SAMPLES
        self._fill = 0
        self.flags = 0

    def _updated(self, envelope_dv, flags):
        self.envelope_dv = envelope_dv
        self.envelope_count += 1
        if self._on_envelope is not None:
            self._on_envelope(envelope_dv, flags)

    def stalled(self, now_ms):
        return now_ms - self.last_data_ms > STALL_MS

    def trustworthy(self, since_ms):
        """A block completed since since_ms, without lead-off or saturation."""
        return self.block_ms >= since_ms and not (self.status & (H.EMG_LEAD_OFF | H.EMG_SATURATED))
