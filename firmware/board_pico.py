"""The HAL on a Raspberry Pi Pico (RP2040): the one Hal that touches machine, rp2 and time.

Clock, hard-IRQ e-stop, buttons, LED, buzzer, watchdog with a true reset
cause, storage on littlefs, the USB CDC link beside the REPL; the EMG front
end (pico_capture.py: the ADS1292R through PIO0 + DMA into a RAM ring) and the
output stage (pico_output.py: the enable's keepalive, PIO1 pulse engine,
MCP4822 amplitude DAC, track-and-hold read-back), which PicoHal composes,
binding the HAL's calls straight to their methods.

The board profile (board_profile.py, firmware/profiles/pico.json,
docs/hardware.md) gives the analog scales and ceilings. A missing or invalid
profile leaves profile_ok False with the reason in profile_error, the front
end and pulse engine unstarted and hw_max_ua 0, for the controller to latch a
STORAGE fault; no session can pass its checks.
"""

import gc
import json
import os
import select
import sys
import time

import machine
import micropython
from micropython import const

from firmware import board_profile as profile
from firmware import hal as H
from firmware.pico_capture import Capture
from firmware.pico_output import OutputStage

# collect() runs the collector once in this many passes (~1-2 s): ahead of an
# allocation that would find the heap full in the middle of a pass
_COLLECT_PASSES = const(200)
# ... or once this many link requests came in since the last one: each allocates
# (decode, answer, framing: a PING 1.1 KB, an INFO 4.8 KB, benchmarks/pico_board.py),
# a host may send them as fast as the loop answers (one per pass), and ~53 KB are free
_COLLECT_REQUESTS = const(8)

DATA_DIR = "/data"

_DEBOUNCE_MS = const(40)
# const(): no global and no big int of each in the heap (the values are 2**30 and above)
_WATCHDOG_CTRL = const(
    0x40058000
)  # RP2040 WATCHDOG.CTRL: bit 30 ENABLE; bits 0-23 TIME, 2 counts per µs (E1)
_WDT_ENABLE = const(1 << 30)
_WATCHDOG_REASON = const(0x40058008)  # RP2040 WATCHDOG.REASON: bit 0 TIMER, bit 1 FORCE
_BLINK_MS = {
    H.LED_IDLE: 1000,
    H.LED_PAUSED: 300,
    H.LED_FAULT: 100,
    H.LED_DONE: 2000,
    H.LED_ABOVE_TARGET: 200,
    H.LED_ADVICE: 700,
}


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
        # the output enable first, driven low before any file is read
        self._capture = cap = Capture()
        self._output = outs = OutputStage(cap)
        # the HAL's calls go straight to the stage that serves them, no call of ours in between:
        # the ring read and the keepalive run every pass, the e-stop's out_enable in a hard IRQ
        for name in ("emg_index", "emg_read", "emg_status"):
            setattr(self, name, getattr(cap, name))
        for name in (
            "out_enable",
            "out_enabled",
            "out_keepalive",
            "stim_configure",
            "stim_start",
            "stim_stop",
            "stim_amplitude",
            "stim_sense",
            "dummy_load",
            "dummy_load_on",
        ):
            setattr(self, name, getattr(outs, name))
        self._passes = 0  # collect() calls since the last collection
        self._requests = 0  # link requests received at the last collection
        self.serial = "".join("%02X" % b for b in machine.unique_id())
        reason = machine.mem32[_WATCHDOG_REASON]  # read before a WDT rewrites it
        self._cause = self._classify_reset(machine.reset_cause(), reason)
        self._estop = machine.Pin(profile.PIN_ESTOP, machine.Pin.IN, machine.Pin.PULL_UP)
        self._pressed = 0
        self._last_press = time.ticks_ms()
        self._btn_pins = []
        for pin, bit in (
            (profile.PIN_BTN_START, H.BTN_START),
            (profile.PIN_BTN_UP, H.BTN_UP),
            (profile.PIN_BTN_DOWN, H.BTN_DOWN),
        ):
            p = machine.Pin(pin, machine.Pin.IN, machine.Pin.PULL_UP)
            p.irq(trigger=machine.Pin.IRQ_FALLING, handler=self._button_irq(bit))
            self._btn_pins.append(p)
        self._led = machine.Pin(profile.PIN_LED, machine.Pin.OUT, value=0)
        self._led_mode = H.LED_OFF
        self._blink = machine.Timer(-1)  # a virtual timer: blinking needs no precision
        self._buzzer = machine.PWM(machine.Pin(profile.PIN_BUZZER))
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
        self._load_profile()

    def _load_profile(self):
        try:
            with open(profile.PROFILE_PATH) as f:
                out, afe = profile.parse_profile(json.load(f))
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
        self._output.start(out, afe["rate_hz"])
        self._capture.start(afe)
        self.afe_ok = self._capture.running

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
