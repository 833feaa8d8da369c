"""The Pico's output stage: the enable with its charge pump, the pulse engine and its read-back.

The enable is a static pin AND a charge pump that only out_keepalive() edges
hold up. Pulses come from PIO1 (pico_pio.pulse_train), fed one descriptor per
pulse by a DMA channel and counted by another; the MCP4822 DAC on SPI1 sets
the amplitude; the track-and-hold current and voltage sense is read on the
RP2040 ADC. PicoHal binds the HAL's output calls straight to these methods.
"""

import time
from array import array

import machine
import rp2
import uctypes
from micropython import const

from firmware import board_profile as profile
from firmware import hal as H
from firmware import pico_pio as pio
from firmware.pico_capture import ARM

_PIO1 = 0x50300000
_TXF0 = const(0x010)
_RXF0 = const(0x020)
_IRQ = const(0x030)  # write 1 to clear a flag
_IRQ_FORCE = const(0x034)  # write 1 to set a flag
_SM0_ADDR = const(0x0D4)  # the state machine's program counter
# Register addresses, added once: above 2**30 each is a big int, and a sum made in
# the e-stop's hard IRQ would allocate, raise MemoryError and disable that IRQ for good.
_PIO1_RXF0 = _PIO1 + _RXF0
_PIO1_TXF0 = _PIO1 + _TXF0
_PIO1_IRQ = _PIO1 + _IRQ
_PIO1_IRQ_FORCE = _PIO1 + _IRQ_FORCE
_PIO1_SM0_ADDR = _PIO1 + _SM0_ADDR
_DREQ_PIO1_TX0 = const(8)
_DREQ_PIO1_RX0 = const(12)
_STOP_FLAG = 1 << pio.STOP_IRQ
_PULSE_BUSY = (4, 24)  # pulse_train instructions from leg A on to leg B off (pico_pio.py)
_PULSE_MAX_US = 2 * pio.PHASE_MAX_US + pio.GAP_MAX_US + 20
_PUMP_EDGES = const(16)  # a charge pump of 47 nF into 100 nF is full after ~8 edge pairs
_PUMP_US = const(20)
_DAC_BITS = const(12)
_DAC_CMD = const(0x30)  # MCP4822 channel A, gain 1x, output on
# how far from a pulse a DAC write stays: the train's start as timed here runs ahead of its
# first pulse by the activation call, and the write itself takes its bytecode and 16 SPI clocks
_DAC_GUARD_US = const(150)
_ADC_SHIFT = const(4)  # read_u16 carries 12 bits


class OutputStage:
    def __init__(self, capture):
        self._out = machine.Pin(profile.PIN_OUT_ENABLE, machine.Pin.OUT, value=0)
        self._ka = machine.Pin(profile.PIN_OUT_KEEPALIVE, machine.Pin.OUT, value=0)
        self._out_sense = machine.Pin(profile.PIN_OUT_SENSE, machine.Pin.IN)
        self._dummy = machine.Pin(profile.PIN_DUMMY_LOAD, machine.Pin.OUT, value=0)
        self._capture = capture  # the EMG sample index a train starts at
        self.hw_max_ua = 0
        self.emg_rate_hz = 2000
        # pulse engine state; started only with a valid profile
        self._psm = None
        self._dac = None
        self._configured = False
        self._stim_hz = 1
        self._period_us = 1000000
        self._busy_us = 0  # from a period's start to the end of its pulse
        self._anchor_us = time.ticks_us()  # at the start of a recent period of the running train
        self._train_index = 0  # EMG sample index at which the running train started
        self._running = False  # the train runs (or finishes its pulse after a stop)
        self._counting = False  # the pulse counter was armed by stim_start

    def start(self, out, emg_rate_hz):
        self.hw_max_ua = out["hw_max_ua"]
        self.emg_rate_hz = emg_rate_hz
        self._dac_fs = out["dac_full_scale_ua"]
        self._sense_ua_fs = out["sense_full_scale_ua"]
        self._sense_mv_fs = out["sense_full_scale_mv"]
        self._dac_cs = machine.Pin(profile.PIN_DAC_CS, machine.Pin.OUT, value=1)
        dac = machine.SPI(
            1,
            baudrate=10000000,
            polarity=0,
            phase=0,
            sck=machine.Pin(profile.PIN_DAC_SCK),
            mosi=machine.Pin(profile.PIN_DAC_SDI),
            miso=machine.Pin(profile.PIN_DAC_RX),
        )
        self._dac_word = bytearray(2)
        self._write_dac(dac, 0)
        self._dac = dac
        self._adc_i1 = machine.ADC(machine.Pin(profile.PIN_SENSE_I1))
        self._adc_i2 = machine.ADC(machine.Pin(profile.PIN_SENSE_I2))
        self._adc_v = machine.ADC(machine.Pin(profile.PIN_SENSE_V))
        machine.mem32[_PIO1_IRQ_FORCE] = _STOP_FLAG  # parked until stim_start
        sm = rp2.StateMachine(
            4,
            pio.pulse_train,
            freq=pio.PULSE_FREQ,
            sideset_base=machine.Pin(profile.PIN_LEG_A),
            set_base=machine.Pin(profile.PIN_TH_I1),
            jmp_pin=machine.Pin(profile.PIN_ESTOP),
        )
        sm.exec(pio.LEGS_LOW)
        self._pulse_pc0 = machine.mem32[_PIO1_SM0_ADDR]  # init leaves the PC at the program's start
        self._desc = array("I", [0, 0])  # the descriptor the feeder DMA reads round and round
        if uctypes.addressof(self._desc) & 7:
            raise MemoryError("pulse descriptor not 8-byte aligned")  # GC blocks are 16 bytes: never expected
        self._feed = rp2.DMA()
        self._feed_ctrl = self._feed.pack_ctrl(
            size=2,
            inc_read=True,
            inc_write=False,
            ring_size=3,  # two words, re-read for every pulse
            ring_sel=False,
            treq_sel=_DREQ_PIO1_TX0,
            bswap=False,
        )
        self._counter = rp2.DMA()
        self._count_ctrl = self._counter.pack_ctrl(
            size=2, inc_read=False, inc_write=False, treq_sel=_DREQ_PIO1_RX0, bswap=False
        )
        self._scratch = array("I", [0])
        self._psm = sm

    # -- the enable: static AND a charge pump that only keepalive() edges hold up
    def out_enable(self, on):
        if on:
            if not self._out.value():
                self._out(1)
                for _ in range(_PUMP_EDGES):  # charge the pump so the enable rises now
                    self._ka.toggle()
                    time.sleep_us(_PUMP_US)
        else:
            self._out(0)  # may run in a hard IRQ: no allocation from here on
            self._halt()

    def out_enabled(self):
        return self._out.value() == 1 and self._out_sense.value() == 1

    def out_keepalive(self):
        # a lapsed pump stays down until the next out_enable(True), as in the simulator
        if self._out.value() and self._out_sense.value():
            self._ka.toggle()

    # -- pulse engine
    def _halt(self):
        """Stop the train now with both legs low (interrupt-safe)."""
        sm = self._psm
        if sm is None:
            return
        self._feed.active(0)
        sm.active(0)
        sm.exec(pio.LEGS_LOW)  # side-set pins keep their level when a state machine stops
        self._running = False

    def _end_train(self):
        """Stop a running train between two of its pulses, never inside one."""
        if self._running:
            # a pulse has at most ~1 ms to run: wait for it rather than cut it in half
            t0 = time.ticks_us()
            while time.ticks_diff(time.ticks_us(), t0) < _PULSE_MAX_US:
                pc = machine.mem32[_PIO1_SM0_ADDR] - self._pulse_pc0
                if not _PULSE_BUSY[0] <= pc < _PULSE_BUSY[1]:
                    break
        self._halt()

    def stim_configure(self, frequency_hz, phase_us, gap_us):
        w0, w1 = pio.pulse_words(frequency_hz, phase_us, gap_us)  # ValueError outside the limits
        if self._psm is None:
            raise RuntimeError("no pulse engine without a valid board profile")
        self._end_train()  # the new timing must not meet a pulse of the old train in flight
        self._desc[0] = w0
        self._desc[1] = w1
        self._configured = True
        self._stim_hz = frequency_hz
        self._period_us = (1000000 + frequency_hz // 2) // frequency_hz  # pulse_words' period
        self._busy_us = 2 * phase_us + max(gap_us, pio.DEAD_US)

    def stim_start(self):
        if not self._configured or self._psm is None:
            raise RuntimeError("stim_start before stim_configure")
        sm = self._psm
        self._end_train()
        for _ in range(4):  # the TX FIFO may hold descriptor words of the last train
            sm.exec(pio.DROP_WORD)
        while sm.rx_fifo():
            sm.get()
        machine.mem32[_PIO1_IRQ] = _STOP_FLAG
        sm.restart()
        # a busy channel ignores a trigger: without the abort the count would run on from the last
        # train, not from this stim_start (the HAL's SENSE_PULSES, and the blanking index from it)
        self._counter.active(0)
        self._counter.config(
            read=_PIO1_RXF0, write=self._scratch, count=ARM, ctrl=self._count_ctrl, trigger=True
        )
        self._feed.config(read=self._desc, write=_PIO1_TXF0, count=ARM, ctrl=self._feed_ctrl, trigger=True)
        self._counting = True
        self._running = True
        # both clocks are the crystal's: pulse k starts at this sample + k periods (to a sample)
        capture = self._capture
        self._train_index = capture.written() if capture.running else 0
        self._anchor_us = time.ticks_us()
        sm.active(1)

    def stim_stop(self):
        if self._psm is None:
            return
        # the program parks at its next pulse boundary, both legs low (interrupt-safe: one register write)
        machine.mem32[_PIO1_IRQ_FORCE] = _STOP_FLAG

    def stim_amplitude(self, ua):
        if not isinstance(ua, int) or not 0 <= ua <= self.hw_max_ua or ua % 100:
            raise ValueError("amplitude out of range or not in 100 µA steps")
        dac = self._dac
        if dac is None:
            return
        code = (ua * (1 << _DAC_BITS) + self._dac_fs // 2) // self._dac_fs
        if not self._running:
            self._write_dac(dac, code)
            return
        # The DAC's output follows CS rising at once (LDAC tied low): a write inside a pulse
        # would give its two phases different currents. The PIO's clock and ticks_us are both
        # the crystal's, so the train's phase is known to the microsecond: write in the rest,
        # with interrupts held off from the check to the latch.
        lo = self._busy_us + _DAC_GUARD_US
        hi = self._period_us - _DAC_GUARD_US
        t0 = time.ticks_us()
        while time.ticks_diff(time.ticks_us(), t0) <= self._period_us:
            irq = machine.disable_irq()
            if lo <= self._since_period() <= hi:
                self._write_dac(dac, code)
                machine.enable_irq(irq)
                return
            machine.enable_irq(irq)
        raise RuntimeError("no rest between pulses for the DAC")  # a period always has one

    def _since_period(self):
        """µs since the running train's latest period began; moves the anchor up to it."""
        d = time.ticks_diff(time.ticks_us(), self._anchor_us)
        p = self._period_us
        if d >= p:
            whole = d - d % p
            self._anchor_us = time.ticks_add(self._anchor_us, whole)
            d -= whole
        return d

    def _write_dac(self, dac, code):
        w = self._dac_word
        w[0] = _DAC_CMD | code >> 8
        w[1] = code & 0xFF
        self._dac_cs(0)
        dac.write(w)
        self._dac_cs(1)  # the MCP4822 latches on CS rising (LDAC tied low)

    def stim_sense(self, out):
        if self._psm is None:
            out[H.SENSE_PULSES] = out[H.SENSE_UA] = out[H.SENSE_UA_2] = out[H.SENSE_MV] = 0
            return
        out[H.SENSE_PULSES] = ARM - self._counter.count if self._counting else 0  # type: ignore[attr-defined]
        out[H.SENSE_UA] = _scale(self._adc_i1.read_u16(), self._sense_ua_fs)
        out[H.SENSE_UA_2] = _scale(self._adc_i2.read_u16(), self._sense_ua_fs)
        out[H.SENSE_MV] = _scale(self._adc_v.read_u16(), self._sense_mv_fs)
        n = out[H.SENSE_PULSES]
        if self._running:
            self._since_period()  # called every pass of a train: the anchor never ages past ticks' wrap
        if len(out) > H.SENSE_INDEX:
            # (n - 1) * rate stays a small int for the longest session (3600 s at 100 Hz)
            out[H.SENSE_INDEX] = self._train_index + (n - 1) * self.emg_rate_hz // self._stim_hz if n else 0

    def dummy_load(self, on):
        self._dummy(1 if on else 0)

    def dummy_load_on(self):
        return self._dummy() == 1


def _scale(u16, full_scale):
    return ((u16 >> _ADC_SHIFT) * full_scale + 2048) >> 12
