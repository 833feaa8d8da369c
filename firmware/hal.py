"""The hardware boundary: the only way firmware reaches time and hardware.

`firmware/board_pico.py` implements it with machine/rp2; `sim/board.py`
implements it with simulated peripherals. Nothing else in firmware/ imports
machine, rp2 or time. The contract is what a Pico can honour
(shared/MICROPYTHON.md):

- EMG arrives in blocks from a ring that hardware fills (PIO + DMA on the
  board), each sample with an absolute index; the firmware drains it from its
  main loop and never times a sample itself.
- The output stage takes pulse-train descriptors through a FIFO (PIO on the
  board) and stops by itself when it is not fed.
- The e-stop is an interrupt callback; it must stay trivial (no allocation,
  no exceptions: a hard IRQ that raises is disabled for good).
- Storage is never written while the output is enabled (flash writes stop
  all interrupts on an RP2040).
- Link I/O never blocks: a host that stops reading costs dropped frames,
  not a stalled device.
"""

# buttons(): presses since the last call, as a bit mask
BTN_START = 1  # start / pause / resume
BTN_UP = 2  # intensity up
BTN_DOWN = 4  # intensity down

# emg_status(): conditions since the last call, as a bit mask
# (the same bits as the EMG stream frame flags in protocol/messages.py)
EMG_LEAD_OFF = 1
EMG_SATURATED = 2
EMG_OVERRUN = 4  # the ring overflowed: samples were lost

# led()
LED_OFF = 0
LED_IDLE = 1  # slow blink
LED_RUNNING = 2  # steady
LED_PAUSED = 3  # double blink
LED_FAULT = 4  # fast blink
LED_DONE = 5

# reset_cause()
RESET_POWER_ON = 0
RESET_WATCHDOG = 1  # the watchdog timed out
RESET_REQUESTED = 2  # machine.reset() from maintenance or flashing
RESET_BROWNOUT = 3


class Hal:
    """What every board provides. Methods raise NotImplementedError here."""

    board = "abstract"  # board name, e.g. "pico" or "sim"
    serial = ""  # unique id, upper-case hex (the USB serial number on a Pico)
    emg_rate_hz = 2000
    hw_max_ua = 0  # hardware current ceiling of the output stage, µA

    # -- clock --
    def now_ms(self):
        """Milliseconds since boot; monotonic, never wraps."""
        raise NotImplementedError

    # -- EMG front end --
    def emg_index(self):
        """Absolute index of the next sample emg_read() will return."""
        raise NotImplementedError

    def emg_read(self, buf):
        """Move up to len(buf) pending samples (int, 0.1 µV) into buf; return the count."""
        raise NotImplementedError

    def emg_status(self):
        """EMG_* conditions seen since the last call."""
        raise NotImplementedError

    # -- output stage (owned by firmware/safety.py alone) --
    def out_enable(self, on):
        """Drive the output-enable line. Off must also stop and ground both legs."""
        raise NotImplementedError

    def out_enabled(self):
        raise NotImplementedError

    # -- emergency stop --
    def estop_open(self):
        """True when the e-stop loop reads "stop" (pressed, or a broken wire)."""
        raise NotImplementedError

    def estop_irq(self, handler):
        """Call handler() in interrupt context when the e-stop opens."""
        raise NotImplementedError

    # -- patient controls and indicators --
    def buttons(self):
        """BTN_* presses since the last call."""
        raise NotImplementedError

    def led(self, mode):
        raise NotImplementedError

    def buzzer(self, hz):
        """Tone at hz; 0 silences it."""
        raise NotImplementedError

    # -- watchdog and reset --
    def wdt_start(self, timeout_ms):
        raise NotImplementedError

    def wdt_feed(self):
        raise NotImplementedError

    def reset_cause(self):
        """RESET_* for the reset that started this boot."""
        raise NotImplementedError

    # -- storage: small named blobs, each replaced atomically --
    def fs_read(self, name):
        """The blob's bytes, or None if it does not exist."""
        raise NotImplementedError

    def fs_write(self, name, data):
        """Replace the blob: after a power cut it holds the old or the new bytes."""
        raise NotImplementedError

    def fs_remove(self, name):
        """Delete the blob; nothing happens if it does not exist."""
        raise NotImplementedError

    # -- link byte stream (USB CDC on the board) --
    def link_read(self, buf):
        """Move pending received bytes into buf without blocking; return the count."""
        raise NotImplementedError

    def link_write(self, data):
        """Send all of data, or nothing, without blocking; return True if sent."""
        raise NotImplementedError
