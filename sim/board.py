"""SimBoard: firmware.hal.Hal on simulated peripherals.

The board only answers the firmware and records what it did; it never runs
on its own. The Simulator (sim/runner.py) moves time, fills the EMG ring
(sync), fires the watchdog and turns resets and power cuts into new boots.
Behaviour follows the Pico board, not the easiest model: the e-stop is a
normally-closed loop whose opening calls the handler at once like a hard
IRQ (and a handler that raises is disabled for good, as in MicroPython);
the watchdog cannot be stopped and caps its timeout like the RP2040; storage
replaces blobs atomically; link writes never block.
"""

import hashlib
from collections import deque

from firmware import hal as H
from sim import emg_kernel
from sim.emg_model import StimArtefact
from sim.output import COMPLIANCE_V

WDT_MAX_MS = 8388  # the RP2040 watchdog's longest timeout (hardware erratum)
# Bytes the device can have in flight towards a host that is not reading: the
# CDC FIFO plus the host's tty buffer. Past it, link_write reports a drop
# rather than block.
TX_BOUND = 4096
# The Pico's USB receive ring: a host cannot write further ahead of the firmware's
# reads than this (the CDC endpoint NAKs, and the host's writes wait).
RX_RING = 512
HISTORY = 10000
HAL_METHODS = tuple(n for n, v in vars(H.Hal).items() if callable(v) and not n.startswith("_"))


class BoardReset(BaseException):
    """machine.reset(): the firmware's own call never returns."""


def serial_for_seed(seed):
    """A stable 16-hex-digit serial per seed, shaped like an RP2040 flash unique id."""
    return hashlib.sha256(b"tonus-sim:%d" % seed).hexdigest()[:16].upper()


class SimBoard(H.Hal):
    board = "sim"
    emg_rate_hz = 2000
    hw_max_ua = 100000
    compliance_mv = round(COMPLIANCE_V * 1000)
    dummy_load_ohm = 500  # as the Pico carrier's profile

    def __init__(self, clock, frontend, flash, output, serial):
        self.clock = clock
        self.frontend = frontend
        self.flash = flash
        self.output = output
        self.serial = serial
        self.emg_kernel = emg_kernel.kernel()  # the board's viper kernel, compiled
        self.cause = H.RESET_POWER_ON
        self.boot_us = 0
        self.estop_is_open = False
        self.estop_changes: deque[tuple[int, bool]] = deque(maxlen=HISTORY)  # (t_us, open)
        self.irq_errors = []  # (t_us, exception) from e-stop handlers, which were then disabled
        self.led_mode = H.LED_OFF
        self.led_changes: deque[tuple[int, int]] = deque(maxlen=HISTORY)  # (t_us, mode)
        self.tone_hz = 0
        self.tone_changes: deque[tuple[int, int]] = deque(maxlen=HISTORY)  # (t_us, hz)
        self.tone_count = 0  # changes ever, so a listener finds the new ones in the bounded history
        self.wdt_deadline_us = None  # the watchdog is not running
        self.fs_writes_while_output_on = 0  # a breach of the storage rule in hal.py
        self.host_connected = True
        self.tx_refused = 0
        self._estop_handler = None
        self._pressed = 0
        self._wdt_timeout_us = 0
        self._rx = bytearray()  # host -> device
        self._tx = bytearray()  # device -> host, not yet read by the host
        self._written = []  # chunks the device wrote since the simulator last looked
        # the EMG electrodes share the patient with the stimulator: every pulse reaches the front end
        frontend.couple(output, StimArtefact(self.emg_rate_hz))

    # -- what a reset does to the hardware ---------------------------------

    def hardware_reset(self, cause):
        """Chip reset: pins to their defaults, peripherals restarted; the world outside keeps its state."""
        self.output.reset(self.clock.us)  # enable pulled down, pulse engine stopped, amplitude 0
        self.cause = cause
        self.boot_us = self.clock.us
        self._estop_handler = None
        self._pressed = 0
        self._set_led(H.LED_OFF)
        self._set_tone(0)
        self.wdt_deadline_us = None
        self._rx.clear()  # the device's USB receive ring
        self.frontend.restart()

    def inject_failure(self, method, exc):
        """Make the next call of HAL `method` raise exc (once), whichever boot makes it."""
        if method not in HAL_METHODS:
            raise ValueError(f"{method!r} is not a HAL method (one of: {', '.join(HAL_METHODS)})")

        def failing(*_args):
            del self.__dict__[method]
            raise exc

        setattr(self, method, failing)

    # -- clock --------------------------------------------------------------

    def now_ms(self):
        return (self.clock.us - self.boot_us) // 1000

    # -- EMG front end --------------------------------------------------------

    def emg_index(self):
        return self.frontend.index()

    def emg_read(self, buf):
        return self.frontend.read(buf)

    def emg_status(self):
        return self.frontend.status()

    # -- output stage ---------------------------------------------------------

    def out_enable(self, on):
        self.output.set_enabled(on, self.clock.us)

    def out_enabled(self):
        self.output.sync(self.clock.us)
        return self.output.enabled

    def out_keepalive(self):
        self.output.keepalive(self.clock.us)

    def stim_configure(self, frequency_hz, phase_us, gap_us):
        self.output.configure(frequency_hz, phase_us, gap_us, self.clock.us)

    def stim_start(self):
        self.output.start(self.clock.us)

    def stim_stop(self):
        self.output.stop(self.clock.us)

    def stim_amplitude(self, ua):
        self.output.set_amplitude(ua, self.clock.us)

    def stim_sense(self, out):
        stage = self.output
        stage.sense(out, self.clock.us)
        if len(out) > H.SENSE_INDEX:  # callers written before SENSE_INDEX pass 4 ints
            out[H.SENSE_INDEX] = self.frontend.index_at(stage.sensed_us) if out[H.SENSE_PULSES] else 0

    def dummy_load(self, on):
        self.output.set_dummy(self.dummy_load_ohm if on else None, self.clock.us)

    def dummy_load_on(self):
        return self.output.dummy_ohms is not None

    # -- emergency stop: a normally-closed loop; open (pressed or broken) = stop

    def estop_open(self):
        return self.estop_is_open

    def estop_irq(self, handler):
        self._estop_handler = handler

    def set_estop(self, is_open):
        if is_open == self.estop_is_open:
            return
        self.estop_is_open = is_open
        self.estop_changes.append((self.clock.us, is_open))
        handler = self._estop_handler
        if is_open and handler is not None:
            try:
                handler(None)  # the Pico passes the Pin; the firmware must not need it
            except Exception as e:  # noqa: BLE001 - MicroPython disables a raising hard IRQ
                self._estop_handler = None
                self.irq_errors.append((self.clock.us, e))

    # -- patient controls and indicators ------------------------------------

    def press(self, mask):
        if mask <= 0 or mask & ~(H.BTN_START | H.BTN_UP | H.BTN_DOWN):
            raise ValueError(f"button mask {mask!r} is not a combination of BTN_*")
        self._pressed |= mask

    def buttons(self):
        p = self._pressed
        self._pressed = 0
        return p

    def led(self, mode):
        self._set_led(mode)

    def _set_led(self, mode):
        if mode != self.led_mode:
            self.led_mode = mode
            self.led_changes.append((self.clock.us, mode))

    def buzzer(self, hz):
        self._set_tone(hz)

    def _set_tone(self, hz):
        if hz != self.tone_hz:
            self.tone_hz = hz
            self.tone_changes.append((self.clock.us, hz))
            self.tone_count += 1

    # -- memory -------------------------------------------------------------------

    def collect(self, requests):
        """Nothing to collect here: a pass-cost profile (sim/passcost.py) models the board's heap."""

    # -- watchdog and reset ---------------------------------------------------

    def wdt_start(self, timeout_ms):
        self._wdt_timeout_us = min(timeout_ms, WDT_MAX_MS) * 1000
        self.wdt_deadline_us = self.clock.us + self._wdt_timeout_us

    def wdt_feed(self):
        if self.wdt_deadline_us is not None:
            self.wdt_deadline_us = self.clock.us + self._wdt_timeout_us

    def wdt_left_ms(self):
        if self.wdt_deadline_us is None:
            return -1
        return max(self.wdt_deadline_us - self.clock.us, 0) // 1000

    def reset(self):
        # the simulator catches this and boots the board anew (RESET_REQUESTED)
        raise BoardReset()

    def reset_cause(self):
        return self.cause

    # -- storage ----------------------------------------------------------------

    def fs_read(self, name):
        return self.flash.read(name)

    def fs_write(self, name, data):
        if self.output.enabled:
            self.fs_writes_while_output_on += 1
        self.flash.write(name, data)

    def fs_remove(self, name):
        self.flash.remove(name)

    # -- link byte stream ---------------------------------------------------------

    def link_read(self, buf):
        n = min(len(buf), len(self._rx))
        if n:
            buf[:n] = self._rx[:n]
            del self._rx[:n]
        return n

    def link_write(self, data):
        if len(self._tx) + len(data) > TX_BOUND:
            self.tx_refused += 1
            return False
        chunk = bytes(data)
        self._tx += chunk
        self._written.append(chunk)
        return True

    # -- the host's end of the link ---------------------------------------------

    def take_written(self):
        """Chunks the device wrote since the last call (for the simulator's observers)."""
        w = self._written
        self._written = []
        return w

    def host_write(self, data):
        """The host sends bytes: as many as the receive ring has room for (the count returned).

        While the host is disconnected its bytes are lost (all count as sent).
        """
        if not self.host_connected:
            return len(data)
        n = min(len(data), self.host_room())
        self._rx += data[:n]
        return n

    def host_room(self):
        """Bytes the receive ring can take now."""
        return RX_RING - len(self._rx)

    def host_read(self, max_bytes):
        if not self.host_connected:
            return b""
        n = len(self._tx) if max_bytes is None or max_bytes < 0 else min(max_bytes, len(self._tx))
        out = bytes(self._tx[:n])
        del self._tx[:n]
        return out

    def host_pending(self):
        return len(self._tx) if self.host_connected else 0

    def connect_host(self):
        """A host opens the port: both directions start afresh.

        Stale output is not delivered; what the last host left unread in the
        receive ring is discarded, and a delimiter ends any frame it left half
        sent (one dropped frame), so the new host's first frame arrives whole.
        """
        self._tx.clear()
        self._rx[:] = b"\x00"
        self.host_connected = True

    def disconnect_host(self):
        """The host stops reading (cable pulled, program gone): output piles up, then drops."""
        self.host_connected = False
