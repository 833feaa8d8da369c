"""EMG acquisition in blocks: drain the front end's ring, frame, envelope.

The front end fills a ring in hardware; each main-loop pass drains what is
pending into a preallocated block of FRAME_SAMPLES. A full block becomes one
stream frame (samples packed as int32 LE) and one step of the envelope: RMS
over the last WINDOW_BLOCKS blocks (250 ms at 2 kHz). Indices that jump mark
a gap; no samples for STALL_MS while the clock runs means a stalled front end.
"""

import struct
from array import array

from firmware import hal as H
from protocol.intmath import isqrt
from protocol.messages import FLAG_GAP

FRAME_SAMPLES = 50
WINDOW_BLOCKS = 10
STALL_MS = 200


class EmgInput:
    def __init__(self, hal, now_ms):
        self._hal = hal
        self._block = array("i", [0] * FRAME_SAMPLES)
        self._view = memoryview(self._block)
        self._fill = 0
        self._first = hal.emg_index()
        self._sq = [0] * WINDOW_BLOCKS  # sum of squares per block
        self._blocks = 0
        self.payload = bytearray(4 * FRAME_SAMPLES)
        self.envelope_dv = 0
        self.flags = 0  # FLAG_* of the block being filled
        self.status = 0  # EMG_* conditions seen in the last block
        self.last_data_ms = now_ms
        self.block_ms = -1  # when the last block was completed and assessed
        self.total = 0  # samples received since boot

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
            n = hal.emg_read(self._view[self._fill :])
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
        blk = self._block
        ss = 0
        for i in range(FRAME_SAMPLES):
            v = blk[i]
            ss += v * v
            struct.pack_into("<i", self.payload, 4 * i, v)
        self._sq[self._blocks % WINDOW_BLOCKS] = ss
        self._blocks += 1
        n = min(self._blocks, WINDOW_BLOCKS)
        total = 0
        for i in range(n):
            total += self._sq[i]
        self.envelope_dv = isqrt(total // (n * FRAME_SAMPLES))
        self.status = self._hal.emg_status()
        flags = self.flags | (self.status & (H.EMG_LEAD_OFF | H.EMG_SATURATED))
        if self.status & H.EMG_OVERRUN:
            flags |= FLAG_GAP
        emit(self._first, self.payload, flags)
        self._first += FRAME_SAMPLES
        self._fill = 0
        self.flags = 0

    def stalled(self, now_ms):
        return now_ms - self.last_data_ms > STALL_MS

    def trustworthy(self, since_ms):
        """A block completed since since_ms, without lead-off or saturation."""
        return self.block_ms >= since_ms and not (self.status & (H.EMG_LEAD_OFF | H.EMG_SATURATED))
