"""The Pico's EMG capture: the ADS1292R streams through PIO0, a DMA channel fills a RAM ring.

The DMA writes the ring with a hardware address wrap and no CPU; the main
loop drains it through PicoHal, which binds emg_index/emg_read/emg_status
straight to this object's methods.
"""

import gc
import time
from array import array

import machine
import rp2
import uctypes
from micropython import const

from firmware import ads1292 as ads
from firmware import board_profile as profile
from firmware import hal as H
from firmware import pico_pio as pio

RING_SAMPLES = const(2048)  # 1.02 s at 2 kHz, as in the simulator (sim/frontend.py)
_RING_MASK = const(RING_SAMPLES - 1)
_RING_BYTES = const(4 * RING_SAMPLES)
_RING_BITS = const(13)  # DMA write-address wrap: log2(_RING_BYTES)
_LAP_MARGIN = const(64)  # samples the DMA may be writing while a lapped reader restarts
ARM = const((1 << 30) - 1)  # DMA transfer count: the largest that reads back as a small int
_PIO0_RXF0 = const(0x50200000 + 0x020)  # PIO0's RX FIFO of state machine 0
_DREQ_PIO0_RX0 = const(4)


def _aligned_ring():
    """Words for a ring of RING_SAMPLES whose first sits on a multiple of the ring's size (the DMA's
    address wrap wants it), and the index of that first word.

    Made behind a pad that reaches the next boundary, the ring costs its own size: the heap puts
    a large block at the first free run long enough, so a pad as long as the address missed it
    by moves the ring onto the boundary. Where the heap places it otherwise, the ring takes
    twice its size and starts at the aligned word inside. Its collections free the garbage the
    HAL's imports left low in the heap, for the controller's modules to fill: pico_main's low
    room keeps a free run there for the loop's call frames.
    """
    lead = 0
    for _ in range(3):
        gc.collect()
        ring, miss = _ring_behind(lead)
        if ring is not None:
            gc.collect()  # the pad and the zeros
            return ring, 0
        lead = (lead + miss) & (_RING_BYTES - 1)
    gc.collect()
    ring = array("I", bytearray(2 * _RING_BYTES))
    return ring, ((-uctypes.addressof(ring)) & (_RING_BYTES - 1)) // 4


def _ring_behind(lead):
    """(the ring, 0) when made behind a pad lead bytes longer than a ring it starts on a boundary,
    else (None, the bytes by which it missed the next one).

    A call of its own: the collector scans a frame's stale stack slots, and a missed ring, the
    pad and the zeros must not outlive it, or the next try would not start where this one did.
    """
    pad = bytearray(_RING_BYTES + lead)  # long: it goes to the free run, not to a hole before it
    ring = array("I", bytearray(_RING_BYTES))
    del pad
    miss = (-uctypes.addressof(ring)) & (_RING_BYTES - 1)
    return (None, miss) if miss else (ring, 0)


class Capture:
    def __init__(self):
        self.running = False  # the ADS1292R answered, took its registers and streams
        self._read = 0
        self._base = 0  # samples written before the DMA was last armed
        self._status = 0
        self._loff_now = 0

    def start(self, afe):
        reset = machine.Pin(profile.PIN_AFE_RESET, machine.Pin.OUT, value=0)
        time.sleep_us(10)  # >= 2 tCLK low resets the chip
        reset(1)
        time.sleep_ms(1)  # 18 tCLK before the first command
        cs = machine.Pin(profile.PIN_AFE_CS, machine.Pin.OUT, value=1)
        spi = machine.SPI(
            0,
            baudrate=1000000,
            polarity=0,
            phase=1,  # mode 1: the chip shifts on SCLK rising, we sample on falling
            sck=machine.Pin(profile.PIN_AFE_SCLK),
            mosi=machine.Pin(profile.PIN_AFE_DIN),
            miso=machine.Pin(profile.PIN_AFE_DOUT),
        )
        chip = ads.Ads1292(spi, cs, time.sleep_us)
        regs = ads.registers(
            afe["rate_hz"], afe["gain"], afe["vref_uv"], afe["loff_current_na"], afe["loff_threshold_pct10"]
        )
        if not chip.start(regs):
            return  # no samples will come: the firmware's stall detection reports it
        machine.Pin(profile.PIN_AFE_DIN, machine.Pin.OUT, value=0)  # DIN low: no command while frames stream
        self._cal = ads.Calibration(afe["vref_uv"], afe["gain"], afe["cal_gain_ppm"], afe["cal_offset_code"])
        self._ring, self._ring_base = _aligned_ring()
        self._ring_addr = uctypes.addressof(self._ring) + 4 * self._ring_base
        sm = rp2.StateMachine(
            0,
            pio.afe_capture,
            freq=pio.AFE_FREQ,
            sideset_base=machine.Pin(profile.PIN_AFE_SCLK),
            in_base=machine.Pin(profile.PIN_AFE_DOUT),
        )
        dma = rp2.DMA()
        self._ctrl = dma.pack_ctrl(
            size=2,
            inc_read=False,
            inc_write=True,
            ring_size=_RING_BITS,
            ring_sel=True,
            treq_sel=_DREQ_PIO0_RX0,
            bswap=False,
        )
        dma.config(read=_PIO0_RXF0, write=self._ring_addr, count=ARM, ctrl=self._ctrl, trigger=True)
        self._dma = dma
        self._sm = sm
        sm.active(1)
        self.running = True

    def written(self):
        """Samples the DMA has written since boot; re-arms a channel that ran out (after ~6 days)."""
        dma = self._dma
        n = self._base + (ARM - dma.count)  # type: ignore[attr-defined]  # the stubs lack DMA's registers
        if not dma.active():
            # the PIO's FIFO holds 4 ms: the main loop is usually back sooner, else this shows as a lap
            self._base = n
            dma.config(write=self._ring_addr + 4 * (n & _RING_MASK), count=ARM, ctrl=self._ctrl, trigger=True)
        return n

    def _catch_up(self):
        n = self.written()
        if n - self._read > RING_SAMPLES - _LAP_MARGIN:
            # the writer lapped us: skip to what it will not overwrite while we read
            self._read = n - RING_SAMPLES + _LAP_MARGIN
            self._status |= H.EMG_OVERRUN
        return n

    def emg_index(self):
        if self.running:
            self._catch_up()
        return self._read

    def emg_read(self, buf):
        if not self.running:
            return 0
        n = min(self._catch_up() - self._read, len(buf))
        if n <= 0:
            return 0
        ring = self._ring
        self._status |= ads.convert(ring, self._ring_base, _RING_MASK, self._read, n, buf, 0, self._cal)
        self._read += n
        self._loff_now = (
            ring[self._ring_base + ((self._read - 1) & _RING_MASK)] >> ads.WORD_LOFF_SHIFT & ads.EMG_LOFF
        )
        return n

    def emg_status(self):
        s = self._status
        self._status = 0
        if self._loff_now or not self.running:
            s |= H.EMG_LEAD_OFF  # lead-off lasts as long as the last sample says so
        return s
