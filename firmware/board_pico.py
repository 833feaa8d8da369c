"""The HAL on a Raspberry Pi Pico (RP2040): the only module that imports machine.

Implemented here: clock, output-enable line, hard-IRQ e-stop, buttons,
LED, buzzer, watchdog with a true reset cause, storage on littlefs, and the
USB CDC link beside the REPL. The ADS1292R front end (PIO + DMA) and the PIO
pulse engine with dynamic enable are the EMG and stimulation stages; until
they exist this board reports no electrode signal (lead-off), so a session
never passes its checks, and its hardware ceiling is 0 µA.

Pins are those of the reference carrier board (docs/hardware.md).
"""

import os
import select
import sys
import time

import machine
import micropython

from firmware import hal as H

PIN_OUT_ENABLE = 16  # active high; pulled down on the board so reset means off
PIN_ESTOP = 17  # normally-closed loop to ground, pulled up: open/broken = stop
PIN_BTN_START = 18
PIN_BTN_UP = 19
PIN_BTN_DOWN = 20
PIN_BUZZER = 21
PIN_LED = 25
DATA_DIR = "/data"
_DEBOUNCE_MS = 40
_WATCHDOG_REASON = 0x40058008  # RP2040 WATCHDOG.REASON: bit 0 TIMER, bit 1 FORCE
_BLINK_MS = {H.LED_IDLE: 1000, H.LED_PAUSED: 300, H.LED_FAULT: 100, H.LED_DONE: 2000}


class PicoHal(H.Hal):
    board = "pico"
    emg_rate_hz = 2000
    hw_max_ua = 0

    def __init__(self):
        self._out = machine.Pin(PIN_OUT_ENABLE, machine.Pin.OUT, value=0)
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
        self._stdout = sys.stdout.buffer
        self._rx_poll = select.poll()
        self._rx_poll.register(sys.stdin, select.POLLIN)
        self._tx_poll = select.poll()
        self._tx_poll.register(sys.stdout, select.POLLOUT)

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

    # -- EMG front end: not driven yet, see the module docstring
    def emg_index(self):
        return 0

    def emg_read(self, buf):
        return 0

    def emg_status(self):
        return H.EMG_LEAD_OFF

    # -- output stage
    def out_enable(self, on):
        self._out.value(1 if on else 0)

    def out_enabled(self):
        return self._out.value() == 1

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
        n = 0
        while n < len(buf) and self._rx_poll.poll(0):
            b = self._stdin.read(1)
            if not b:
                break
            buf[n] = b[0]
            n += 1
        return n

    def link_write(self, data):
        if not self._tx_poll.poll(0):
            return False  # the host is not reading: drop rather than stall
        self._stdout.write(data)
        return True

    def idle(self):
        machine.idle()
