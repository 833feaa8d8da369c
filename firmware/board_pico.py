"""The HAL on a Raspberry Pi Pico (RP2040): the one Hal that touches machine, rp2 and time.

Clock, output enable with its dynamic keepalive, hard-IRQ e-stop, buttons,
LED, buzzer, watchdog with a true reset cause, storage on littlefs, the USB
CDC link beside the REPL; the ADS1292R EMG front end (PIO0 + DMA into a RAM
ring) and the pulse engine (PIO1 fed by DMA, MCP4822 amplitude DAC,
track-and-hold current and voltage sense on the RP2040 ADC).

The board profile (firmware/profiles/pico.json, docs/hardware.md) gives the
analog scales and ceilings. Pins are fixed here, because the output enable
must be driven low before any file is read; the profile must name the same
pins. A missing or invalid profile leaves profile_ok False with the reason
in profile_error, the front end and pulse engine unstarted and hw_max_ua 0,
for the controller to latch a STORAGE fault; no session can pass its checks.
"""

import gc
import json
import os
import select
import sys
import time
from array import array

import machine
import micropython
import rp2
import uctypes

from firmware import ads1292 as ads
from firmware import hal as H
from firmware import pico_pio as pio

# collect() runs the collector once in this many passes (~1-2 s): ahead of an
# allocation that would find the heap full in the middle of a pass
_COLLECT_PASSES = 200
# ... or once this many link requests came in since the last one: each allocates
# (decode, answer, framing: a PING 1.1 KB, an INFO 4.8 KB, benchmarks/pico_board.py),
# a host may send them as fast as the loop answers (one per pass), and ~54 KB are free
_COLLECT_REQUESTS = 8

PIN_OUT_KEEPALIVE = 0  # drives the charge pump that holds the output enable
PIN_AFE_RESET = 1  # ADS1292R PWDN/RESET, active low
PIN_AFE_SCLK = 2
PIN_AFE_DIN = 3
PIN_AFE_DOUT = 4
PIN_AFE_DRDY = 5  # must follow DOUT: the capture program waits on in_base + 1
PIN_AFE_CS = 6
PIN_TH_I1 = 7  # track-and-hold gates, consecutive for the PIO set pins
PIN_TH_I2 = 8
PIN_TH_V = 9
PIN_LEG_A = 10  # H-bridge legs, consecutive for the PIO side-set
PIN_LEG_B = 11
PIN_DUMMY_LOAD = 12  # dummy-load relay driver, active high, pulled down: the electrodes at reset
PIN_DAC_CS = 13
PIN_DAC_SCK = 14
PIN_DAC_SDI = 15
PIN_OUT_ENABLE = 16  # active high; pulled down on the board so reset means off
PIN_ESTOP = 17  # normally-closed loop to ground, pulled up: open/broken = stop
PIN_BTN_START = 18
PIN_BTN_UP = 19
PIN_BTN_DOWN = 20
PIN_BUZZER = 21
PIN_OUT_SENSE = 22  # the enable as the output stage sees it (static AND charge pump)
# SPI1 RX, which the bus claims though the DAC answers nothing: the Pico's own
# VBUS-sense input, so no header pin is lost to it (not on a Pico W: its radio uses GPIO 24)
PIN_DAC_RX = 24
PIN_LED = 25
PIN_SENSE_I1 = 26  # ADC0: first-phase current, held
PIN_SENSE_I2 = 27  # ADC1: second-phase current, held
PIN_SENSE_V = 28  # ADC2: electrode voltage, held
PINS = {
    "out_keepalive": PIN_OUT_KEEPALIVE,
    "afe_reset": PIN_AFE_RESET,
    "afe_sclk": PIN_AFE_SCLK,
    "afe_din": PIN_AFE_DIN,
    "afe_dout": PIN_AFE_DOUT,
    "afe_drdy": PIN_AFE_DRDY,
    "afe_cs": PIN_AFE_CS,
    "th_i1": PIN_TH_I1,
    "th_i2": PIN_TH_I2,
    "th_v": PIN_TH_V,
    "leg_a": PIN_LEG_A,
    "leg_b": PIN_LEG_B,
    "dummy_load": PIN_DUMMY_LOAD,
    "dac_cs": PIN_DAC_CS,
    "dac_sck": PIN_DAC_SCK,
    "dac_sdi": PIN_DAC_SDI,
    "out_enable": PIN_OUT_ENABLE,
    "estop": PIN_ESTOP,
    "btn_start": PIN_BTN_START,
    "btn_up": PIN_BTN_UP,
    "btn_down": PIN_BTN_DOWN,
    "buzzer": PIN_BUZZER,
    "out_sense": PIN_OUT_SENSE,
    "dac_rx": PIN_DAC_RX,
    "led": PIN_LED,
    "sense_i1": PIN_SENSE_I1,
    "sense_i2": PIN_SENSE_I2,
    "sense_v": PIN_SENSE_V,
}
PROFILE_PATH = "firmware/profiles/pico.json"  # deployed by tonus flash (host/flashing.py PROFILE)
DATA_DIR = "/data"

RING_SAMPLES = 2048  # 1.02 s at 2 kHz, as in the simulator (sim/frontend.py)
_RING_MASK = RING_SAMPLES - 1
_RING_BYTES = 4 * RING_SAMPLES
_RING_BITS = 13  # DMA write-address wrap: log2(_RING_BYTES)
_LAP_MARGIN = 64  # samples the DMA may be writing while a lapped reader restarts
_ARM = (1 << 30) - 1  # DMA transfer count: the largest that reads back as a small int
_PIO0 = 0x50200000
_PIO1 = 0x50300000
_TXF0 = 0x010
_RXF0 = 0x020
_IRQ = 0x030  # write 1 to clear a flag
_IRQ_FORCE = 0x034  # write 1 to set a flag
_SM0_ADDR = 0x0D4  # the state machine's program counter
# Register addresses, added once: above 2**30 each is a big int, and a sum made in
# the e-stop's hard IRQ would allocate, raise MemoryError and disable that IRQ for good.
_PIO0_RXF0 = _PIO0 + _RXF0
_PIO1_RXF0 = _PIO1 + _RXF0
_PIO1_TXF0 = _PIO1 + _TXF0
_PIO1_IRQ = _PIO1 + _IRQ
_PIO1_IRQ_FORCE = _PIO1 + _IRQ_FORCE
_PIO1_SM0_ADDR = _PIO1 + _SM0_ADDR
_DREQ_PIO0_RX0 = 4
_DREQ_PIO1_TX0 = 8
_DREQ_PIO1_RX0 = 12
_STOP_FLAG = 1 << pio.STOP_IRQ
_PULSE_BUSY = (4, 24)  # pulse_train instructions from leg A on to leg B off (pico_pio.py)
_PULSE_MAX_US = 2 * pio.PHASE_MAX_US + pio.GAP_MAX_US + 20
_PUMP_EDGES = 16  # a charge pump of 47 nF into 100 nF is full after ~8 edge pairs
_PUMP_US = 20
_DAC_BITS = 12
_DAC_CMD = 0x30  # MCP4822 channel A, gain 1x, output on
_ADC_SHIFT = 4  # read_u16 carries 12 bits
_MAX_SCALE = 1 << 18  # a 12-bit reading times a full scale stays under 2**30
_DEBOUNCE_MS = 40
_WATCHDOG_CTRL = (
    0x40058000  # RP2040 WATCHDOG.CTRL: bit 30 ENABLE; bits 0-23 TIME, 2 counts per µs (erratum E1)
)
_WDT_ENABLE = 1 << 30
_WATCHDOG_REASON = 0x40058008  # RP2040 WATCHDOG.REASON: bit 0 TIMER, bit 1 FORCE
_BLINK_MS = {
    H.LED_IDLE: 1000,
    H.LED_PAUSED: 300,
    H.LED_FAULT: 100,
    H.LED_DONE: 2000,
    H.LED_ABOVE_TARGET: 200,
    H.LED_ADVICE: 700,
}


def _int(d, key, low, high):
    v = d[key]
    if not isinstance(v, int) or isinstance(v, bool) or not low <= v <= high:
        raise ValueError("profile %s out of range" % key)
    return v


def parse_profile(d):
    """Check a decoded board profile; return (output, afe) dicts or raise ValueError/KeyError/TypeError."""
    pins = d["pins"]
    for name, pin in PINS.items():
        if pins[name] != pin:
            raise ValueError("profile pin %s is not this board's" % name)
    out = d["output"]
    fs = _int(out, "dac_full_scale_ua", 1, _MAX_SCALE - 1)
    hw = _int(out, "hw_max_ua", 0, fs)
    if hw % 100:
        raise ValueError("profile hw_max_ua is not in 100 µA steps")
    _int(out, "compliance_mv", 1, 200000)
    _int(out, "sense_full_scale_ua", 1, _MAX_SCALE - 1)
    _int(out, "sense_full_scale_mv", 1, _MAX_SCALE - 1)
    _int(out, "dummy_load_ohm", 1, 100000)
    # the charge pump's shortest hold: longer than the loop's longest keepalive gap, and a
    # hung MCU still loses the output within OUT_HOLD_MS
    _int(out, "hold_ms", H.OUT_HOLD_MIN_MS, H.OUT_HOLD_MS)
    afe = d["afe"]
    if _int(afe, "rate_hz", 1000, 2000) not in (1000, 2000):
        raise ValueError("profile rate_hz must be 1000 or 2000")
    ads.registers(
        afe["rate_hz"], afe["gain"], afe["vref_uv"], afe["loff_current_na"], afe["loff_threshold_pct10"]
    )
    ads.Calibration(afe["vref_uv"], afe["gain"], afe["cal_gain_ppm"], afe["cal_offset_code"])
    return out, afe


class PicoHal(H.Hal):
    board = "pico"
    emg_rate_hz = 2000
    hw_max_ua = 0
    compliance_mv = 0
    dummy_load_ohm = 0
    profile_ok = False
    profile_error = ""
    afe_ok = False  # the ADS1292R answered, took its registers and streams

    def __init__(self):
        self._out = machine.Pin(PIN_OUT_ENABLE, machine.Pin.OUT, value=0)
        self._ka = machine.Pin(PIN_OUT_KEEPALIVE, machine.Pin.OUT, value=0)
        self._out_sense = machine.Pin(PIN_OUT_SENSE, machine.Pin.IN)
        self._passes = 0  # collect() calls since the last collection
        self._requests = 0  # link requests received at the last collection
        self._dummy = machine.Pin(PIN_DUMMY_LOAD, machine.Pin.OUT, value=0)
        self.serial = "".join("%02X" % b for b in machine.unique_id())
        reason = machine.mem32[_WATCHDOG_REASON]  # read before a WDT rewrites it
        self._cause = self._classify_reset(machine.reset_cause(), reason)
        self._estop = machine.Pin(PIN_ESTOP, machine.Pin.IN, machine.Pin.PULL_UP)
        self._pressed = 0
        self._last_press = time.ticks_ms()
        self._btn_pins = []
        for pin, bit in ((PIN_BTN_START, H.BTN_START), (PIN_BTN_UP, H.BTN_UP), (PIN_BTN_DOWN, H.BTN_DOWN)):
            p = machine.Pin(pin, machine.Pin.IN, machine.Pin.PULL_UP)
            p.irq(trigger=machine.Pin.IRQ_FALLING, handler=self._button_irq(bit))
            self._btn_pins.append(p)
        self._led = machine.Pin(PIN_LED, machine.Pin.OUT, value=0)
        self._led_mode = H.LED_OFF
        self._blink = machine.Timer(-1)  # a virtual timer: blinking needs no precision
        self._buzzer = machine.PWM(machine.Pin(PIN_BUZZER))
        self._buzzer.duty_u16(0)
        self._wdt = None
        self._t_last = time.ticks_ms()
        self._uptime = 0
        try:
            os.mkdir(DATA_DIR)
        except OSError:
            pass  # exists
        micropython.kbd_intr(-1)  # a 0x03 inside a frame must not interrupt us
        self._stdin = sys.stdin.buffer
        self._one = bytearray(1)  # link_read's landing byte
        self._stdout = sys.stdout.buffer
        self._rx_poll = select.poll()
        self._rx_poll.register(sys.stdin, select.POLLIN)
        self._tx_poll = select.poll()
        self._tx_poll.register(sys.stdout, select.POLLOUT)
        # EMG ring state; the front end fills it once started
        self._read = 0
        self._emg_base = 0  # samples written before the DMA was last armed
        self._emg_status = 0
        self._loff_now = 0
        self._afe_sm = None
        # pulse engine state; started only with a valid profile
        self._psm = None
        self._dac = None
        self._configured = False
        self._stim_hz = 1
        self._train_index = 0  # EMG sample index at which the running train started
        self._running = False  # the train runs (or finishes its pulse after a stop)
        self._counting = False  # the pulse counter was armed by stim_start
        self._load_profile()

    def _load_profile(self):
        try:
            with open(PROFILE_PATH) as f:
                out, afe = parse_profile(json.load(f))
        except OSError:
            self.profile_error = "missing"
            return
        except (ValueError, KeyError, TypeError) as e:
            self.profile_error = "invalid: %s" % (e.args[0] if e.args else type(e).__name__)
            return
        self.profile_ok = True
        self.hw_max_ua = out["hw_max_ua"]
        self.compliance_mv = out["compliance_mv"]
        self.dummy_load_ohm = out["dummy_load_ohm"]
        self.emg_rate_hz = afe["rate_hz"]
        self._start_output(out)
        self._start_afe(afe)

    # -- bring-up of the analog stages

    def _start_afe(self, afe):
        reset = machine.Pin(PIN_AFE_RESET, machine.Pin.OUT, value=0)
        time.sleep_us(10)  # >= 2 tCLK low resets the chip
        reset(1)
        time.sleep_ms(1)  # 18 tCLK before the first command
        cs = machine.Pin(PIN_AFE_CS, machine.Pin.OUT, value=1)
        spi = machine.SPI(
            0,
            baudrate=1000000,
            polarity=0,
            phase=1,  # mode 1: the chip shifts on SCLK rising, we sample on falling
            sck=machine.Pin(PIN_AFE_SCLK),
            mosi=machine.Pin(PIN_AFE_DIN),
            miso=machine.Pin(PIN_AFE_DOUT),
        )
        chip = ads.Ads1292(spi, cs, time.sleep_us)
        regs = ads.registers(
            afe["rate_hz"], afe["gain"], afe["vref_uv"], afe["loff_current_na"], afe["loff_threshold_pct10"]
        )
        if not chip.start(regs):
            return  # no samples will come: the firmware's stall detection reports it
        machine.Pin(PIN_AFE_DIN, machine.Pin.OUT, value=0)  # DIN low: no command while frames stream
        self._cal = ads.Calibration(afe["vref_uv"], afe["gain"], afe["cal_gain_ppm"], afe["cal_offset_code"])
        # a naturally aligned ring for the DMA's address wrap: allocate twice its size, use the aligned half
        self._ring = array("I", [0] * (2 * RING_SAMPLES))
        addr = uctypes.addressof(self._ring)
        self._ring_base = ((-addr) & (_RING_BYTES - 1)) // 4
        self._ring_addr = addr + 4 * self._ring_base
        self._afe_sm = rp2.StateMachine(
            0,
            pio.afe_capture,
            freq=pio.AFE_FREQ,
            sideset_base=machine.Pin(PIN_AFE_SCLK),
            in_base=machine.Pin(PIN_AFE_DOUT),
        )
        dma = rp2.DMA()
        self._emg_ctrl = dma.pack_ctrl(
            size=2,
            inc_read=False,
            inc_write=True,
            ring_size=_RING_BITS,
            ring_sel=True,
            treq_sel=_DREQ_PIO0_RX0,
            bswap=False,
        )
        dma.config(read=_PIO0_RXF0, write=self._ring_addr, count=_ARM, ctrl=self._emg_ctrl, trigger=True)
        self._emg_dma = dma
        self._afe_sm.active(1)
        self.afe_ok = True

    def _start_output(self, out):
        self._dac_fs = out["dac_full_scale_ua"]
        self._sense_ua_fs = out["sense_full_scale_ua"]
        self._sense_mv_fs = out["sense_full_scale_mv"]
        self._dac_cs = machine.Pin(PIN_DAC_CS, machine.Pin.OUT, value=1)
        dac = machine.SPI(
            1,
            baudrate=10000000,
            polarity=0,
            phase=0,
            sck=machine.Pin(PIN_DAC_SCK),
            mosi=machine.Pin(PIN_DAC_SDI),
            miso=machine.Pin(PIN_DAC_RX),
        )
        self._dac_word = bytearray(2)
        self._write_dac(dac, 0)
        self._dac = dac
        self._adc_i1 = machine.ADC(machine.Pin(PIN_SENSE_I1))
        self._adc_i2 = machine.ADC(machine.Pin(PIN_SENSE_I2))
        self._adc_v = machine.ADC(machine.Pin(PIN_SENSE_V))
        machine.mem32[_PIO1_IRQ_FORCE] = _STOP_FLAG  # parked until stim_start
        sm = rp2.StateMachine(
            4,
            pio.pulse_train,
            freq=pio.PULSE_FREQ,
            sideset_base=machine.Pin(PIN_LEG_A),
            set_base=machine.Pin(PIN_TH_I1),
            jmp_pin=machine.Pin(PIN_ESTOP),
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

    @staticmethod
    def _classify_reset(cause, reason):
        if cause == machine.WDT_RESET:
            # machine.reset() also reports WDT_RESET; only the TIMER bit is a real timeout
            return H.RESET_WATCHDOG if reason & 1 else H.RESET_REQUESTED
        return H.RESET_POWER_ON

    def _button_irq(self, bit):
        def handler(_pin):
            now = time.ticks_ms()
            if time.ticks_diff(now, self._last_press) > _DEBOUNCE_MS:
                self._pressed |= bit
                self._last_press = now

        return handler

    # -- clock: ticks_ms wraps after 2**30 ms; extend it on every read
    def now_ms(self):
        t = time.ticks_ms()
        self._uptime += time.ticks_diff(t, self._t_last)
        self._t_last = t
        return self._uptime

    # -- EMG front end: the DMA fills the ring, the main loop drains it
    def _written(self):
        """Samples the DMA has written since boot; re-arms a channel that ran out (after ~6 days)."""
        dma = self._emg_dma
        n = self._emg_base + (_ARM - dma.count)  # type: ignore[attr-defined]  # the stubs lack DMA's registers
        if not dma.active():
            # the PIO's FIFO holds 4 ms: the main loop is usually back sooner, else this shows as a lap
            self._emg_base = n
            dma.config(
                write=self._ring_addr + 4 * (n & _RING_MASK), count=_ARM, ctrl=self._emg_ctrl, trigger=True
            )
        return n

    def _catch_up(self):
        n = self._written()
        if n - self._read > RING_SAMPLES - _LAP_MARGIN:
            # the writer lapped us: skip to what it will not overwrite while we read
            self._read = n - RING_SAMPLES + _LAP_MARGIN
            self._emg_status |= H.EMG_OVERRUN
        return n

    def emg_index(self):
        if self._afe_sm is not None:
            self._catch_up()
        return self._read

    def emg_read(self, buf):
        if self._afe_sm is None:
            return 0
        n = min(self._catch_up() - self._read, len(buf))
        if n <= 0:
            return 0
        ring = self._ring
        self._emg_status |= ads.convert(ring, self._ring_base, _RING_MASK, self._read, n, buf, 0, self._cal)
        self._read += n
        self._loff_now = (
            ring[self._ring_base + ((self._read - 1) & _RING_MASK)] >> ads.WORD_LOFF_SHIFT & ads.EMG_LOFF
        )
        return n

    def emg_status(self):
        s = self._emg_status
        self._emg_status = 0
        if self._loff_now or self._afe_sm is None:
            s |= H.EMG_LEAD_OFF  # lead-off lasts as long as the last sample says so
        return s

    # -- output stage: static enable AND a charge pump that only keepalive() edges hold up
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

    def _wait_between_pulses(self):
        # a pulse has at most ~1 ms to run: wait for it rather than cut it in half
        t0 = time.ticks_us()
        while time.ticks_diff(time.ticks_us(), t0) < _PULSE_MAX_US:
            pc = machine.mem32[_PIO1_SM0_ADDR] - self._pulse_pc0
            if not _PULSE_BUSY[0] <= pc < _PULSE_BUSY[1]:
                return

    def stim_configure(self, frequency_hz, phase_us, gap_us):
        w0, w1 = pio.pulse_words(frequency_hz, phase_us, gap_us)  # ValueError outside the limits
        if self._psm is None:
            raise RuntimeError("no pulse engine without a valid board profile")
        self.stim_stop()
        self._desc[0] = w0
        self._desc[1] = w1
        self._configured = True
        self._stim_hz = frequency_hz

    def stim_start(self):
        if not self._configured or self._psm is None:
            raise RuntimeError("stim_start before stim_configure")
        sm = self._psm
        if self._running:
            self._wait_between_pulses()
        self._halt()
        for _ in range(4):  # the TX FIFO may hold descriptor words of the last train
            sm.exec(pio.DROP_WORD)
        while sm.rx_fifo():
            sm.get()
        machine.mem32[_PIO1_IRQ] = _STOP_FLAG
        sm.restart()
        self._counter.config(
            read=_PIO1_RXF0, write=self._scratch, count=_ARM, ctrl=self._count_ctrl, trigger=True
        )
        self._feed.config(read=self._desc, write=_PIO1_TXF0, count=_ARM, ctrl=self._feed_ctrl, trigger=True)
        self._counting = True
        self._running = True
        # both clocks are the crystal's: pulse k starts at this sample + k periods (to a sample)
        self._train_index = self._written() if self._afe_sm is not None else 0
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
        if dac is not None:
            self._write_dac(dac, (ua * (1 << _DAC_BITS) + self._dac_fs // 2) // self._dac_fs)

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
        out[H.SENSE_PULSES] = _ARM - self._counter.count if self._counting else 0  # type: ignore[attr-defined]
        out[H.SENSE_UA] = _scale(self._adc_i1.read_u16(), self._sense_ua_fs)
        out[H.SENSE_UA_2] = _scale(self._adc_i2.read_u16(), self._sense_ua_fs)
        out[H.SENSE_MV] = _scale(self._adc_v.read_u16(), self._sense_mv_fs)
        n = out[H.SENSE_PULSES]
        if len(out) > H.SENSE_INDEX:
            # (n - 1) * rate stays a small int for the longest session (3600 s at 100 Hz)
            out[H.SENSE_INDEX] = self._train_index + (n - 1) * self.emg_rate_hz // self._stim_hz if n else 0

    def dummy_load(self, on):
        self._dummy(1 if on else 0)

    def dummy_load_on(self):
        return self._dummy() == 1

    # -- e-stop
    def estop_open(self):
        return self._estop.value() == 1

    def estop_irq(self, handler):
        self._estop.irq(trigger=machine.Pin.IRQ_RISING, handler=handler, hard=True)

    # -- patient controls and indicators
    def buttons(self):
        state = machine.disable_irq()
        pressed = self._pressed
        self._pressed = 0
        machine.enable_irq(state)
        return pressed

    def led(self, mode):
        self._led_mode = mode
        self._blink.deinit()
        period = _BLINK_MS.get(mode, 0)
        if period:
            self._blink.init(period=period // 2, mode=machine.Timer.PERIODIC, callback=self._toggle_led)
        else:
            self._led.value(1 if mode == H.LED_RUNNING else 0)

    def _toggle_led(self, _timer):
        self._led.toggle()

    def buzzer(self, hz):
        if hz:
            self._buzzer.freq(hz)
            self._buzzer.duty_u16(32768)
        else:
            self._buzzer.duty_u16(0)

    # -- watchdog and reset
    def wdt_start(self, timeout_ms):
        self._wdt = machine.WDT(timeout=min(timeout_ms, 8388))  # RP2040 erratum limit

    def wdt_feed(self):
        if self._wdt is not None:
            self._wdt.feed()

    def wdt_left_ms(self):
        # the hardware's own count, not self._wdt: it also shows a watchdog this boot did not start
        ctrl = machine.mem32[_WATCHDOG_CTRL]
        if not ctrl & _WDT_ENABLE:
            return -1
        return (ctrl & 0xFFFFFF) // 2000

    def reset_cause(self):
        return self._cause

    # -- storage: littlefs renames are atomic, so write aside and rename
    def fs_read(self, name):
        try:
            with open(DATA_DIR + "/" + name, "rb") as f:
                return f.read()
        except OSError:
            return None

    def fs_write(self, name, data):
        path = DATA_DIR + "/" + name
        with open(path + ".new", "wb") as f:
            f.write(data)
        os.rename(path + ".new", path)

    def fs_remove(self, name):
        try:
            os.remove(DATA_DIR + "/" + name)
        except OSError:
            pass  # absent

    # -- USB CDC link: never block the main loop
    def link_read(self, buf):
        # a byte at a time, into a byte of our own: stdin's read() blocks until it has all it was
        # asked for, and read(1) would allocate a bytes object for every byte
        n = 0
        one = self._one
        while n < len(buf) and self._rx_poll.poll(0):
            if not self._stdin.readinto(one):  # type: ignore[union-attr]  # MicroPython's stdin buffer has it
                break
            buf[n] = one[0]
            n += 1
        return n

    def link_write(self, data):
        if not self._tx_poll.poll(0):
            return False  # the host is not reading: drop rather than stall
        self._stdout.write(data)
        return True

    def collect(self, requests):
        # gc.mem_free() walks the whole allocation table (7.8 ms on the emulated RP2040): count
        # passes and requests instead; a pass allocates nothing in steady state, a request does
        self._passes += 1
        if self._passes >= _COLLECT_PASSES or requests - self._requests >= _COLLECT_REQUESTS:
            self._passes = 0
            self._requests = requests
            gc.collect()

    def idle(self):
        machine.idle()


def _scale(u16, full_scale):
    return ((u16 >> _ADC_SHIFT) * full_scale + 2048) >> 12
