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
"""

from array import array

from firmware import hal as H
from firmware.emg_dsp import BLOCK, Chain
from protocol.messages import FLAG_GAP, FLAG_SATURATED

FRAME_SAMPLES = BLOCK
STALL_MS = 200


class EmgInput:
    def __init__(self, hal, now_ms, window_ms=250, mains_hz=50, on_envelope=None):
        self._hal = hal
        self.chain = Chain(hal.emg_rate_hz, window_ms, mains_hz, self._updated)  # ValueError if unsupported
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

    def reconfigure(self, window_ms=None, mains_hz=None):
        """Change the envelope window (ms) or the mains notch (Hz) between sessions; restarts the chain."""
        chain = self.chain
        chain.configure(
            chain.window_ms if window_ms is None else window_ms,
            chain.mains_hz if mains_hz is None else mains_hz,
        )

    def pump(self, now_ms, emit):
        """Drain pending samples; emit(first_index, payload, flags) per full block."""
        hal = self._hal
        got = False
        while True:
            idx = hal.emg_index()
            if idx != self._first + self._fill:
                # the ring overran or the front end restarted: start afresh
                self.flags |= FLAG_GAP
                self._first = idx
                self._fill = 0
                self.chain.restart()
            n = hal.emg_read(self._views[self._fill])
            if n <= 0:
                break
            got = True
            self._fill += n
            self.total += n
            if self._fill == FRAME_SAMPLES:
                self._finish(emit)
                self.block_ms = now_ms
        if got:
            self.last_data_ms = now_ms

    def _finish(self, emit):
        self.status = status = self._hal.emg_status()
        # EMG_LEAD_OFF and EMG_SATURATED are the same bits as FLAG_LEAD_OFF, FLAG_SATURATED
        flags = self.flags | (status & (H.EMG_LEAD_OFF | H.EMG_SATURATED))
        if status & H.EMG_OVERRUN:
            flags |= FLAG_GAP
        chain = self.chain
        # an index jump restarted the chain before this block: no second restart after it
        chain.process(
            self._block, FRAME_SAMPLES, self.payload, flags & ~FLAG_GAP if self.flags & FLAG_GAP else flags
        )
        emit(self._first, self.payload, flags | (chain.block_flags & FLAG_SATURATED))
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
