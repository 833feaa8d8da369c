"""The hardware boundary: the only way firmware reaches time and hardware.

`firmware/board_pico.py` implements it with machine/rp2; `sim/board.py`
implements it with simulated peripherals. Only the Pico's own modules import
machine or rp2 (board_pico.py with its EMG capture pico_capture.py and output
stage pico_output.py; pico_pio.py, the PIO programs they load; pico_main.py,
which boots the board), and only those three board modules import time;
tests/test_layering.py holds the rest of firmware/ to that. The contract is
what a Pico can honour (shared/MICROPYTHON.md):

- EMG arrives in blocks from a ring that hardware fills (PIO + DMA on the
  board), each sample with an absolute index; the firmware drains it from its
  main loop and never times a sample itself.
- The output stage generates pulses by itself from pre-validated timing
  (PIO on the board; Python never times a phase) at the amplitude last
  commanded; the firmware only configures, starts, stops, sets amplitude and
  reads back what each pulse did. Its enable is dynamic: it holds only while
  the firmware keeps calling out_keepalive(), so a hung or reset MCU loses
  the output within OUT_HOLD_MS.
- The e-stop is an interrupt callback; it must stay trivial (no allocation,
  no exceptions: a hard IRQ that raises is disabled for good).
- Storage is never written while the output is enabled (flash writes stop
  all interrupts on an RP2040).
- Link I/O never blocks: a host that stops reading costs dropped frames,
  not a stalled device.
- The board's internal dummy load can take the output stage's place for
  the bring-up self-test (firmware/selftest.py): a changeover relay that
  disconnects the electrodes while it is switched in, off at reset.
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
LED_ABOVE_TARGET = 6  # biofeedback: the envelope is above the relaxation target (quick blink)
LED_ADVICE = 7  # the device advises ending the session (long pulses)

# The loop's budget, measured on the emulated RP2040 (docs/emulated-pico.md,
# "Figures"): the loop keeps the output alive between its tasks, and the
# longest stretch between two keepalives inside a pass is at most PASS_MAX_MS
# (a request answered just after a collection, when every allocation of more
# than one block searches a fragmented heap: an INFO 30 ms, a PING 7 ms); a
# garbage collection pauses at most GC_MAX_MS (37.5 ms with the firmware's
# live heap idle, 47.9 ms during a stimulation session). The loop collects at
# one point, between two keepalives (collect()), and allocates nothing per pass
# in steady state, so the heap does not run out inside a pass while the output
# is on: the longest gap between keepalives is a task or a collection, not both.
PASS_MAX_MS = 35
GC_MAX_MS = 50
# Output stage: the dynamic enable (a charge pump on the board, a timer in the
# simulator) holds at least OUT_HOLD_MIN_MS after a keepalive, the longest gap
# above with a margin, so no pass the loop takes drops it; and it drops at
# most OUT_HOLD_MS after the last one, so a hung MCU loses the output within
# it (docs/hardware.md gives the parts that meet both).
OUT_HOLD_MIN_MS = max(PASS_MAX_MS, GC_MAX_MS) + 5
OUT_HOLD_MS = 95

# stim_sense() fields, in this order, of the last completed pulse
SENSE_PULSES = 0  # pulses completed since stim_start()
SENSE_UA = 1  # current measured in the first phase, µA (absolute value)
SENSE_UA_2 = 2  # current measured in the second phase, µA (absolute value)
SENSE_MV = 3  # electrode voltage at the end of the first phase, mV (absolute value)
SENSE_INDEX = 4  # EMG sample index (emg_index() count) at which the last pulse started

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
    compliance_mv = 0  # the output stage's compliance voltage, mV
    dummy_load_ohm = 0  # the internal self-test load dummy_load() switches in; 0: the board has none
    profile_ok = True  # the board profile (pins, ceilings, calibration) loaded and passed its checks
    # A compiled EMG filter kernel with emg_dsp.run_plain's signature and results, bit for bit;
    # None: the one firmware/emg_dsp.py picks at import (viper where the port has native emitters)
    emg_kernel = None

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

    def out_keepalive(self):
        """Toggle the dynamic-enable line; must be called at least every OUT_HOLD_MIN_MS while enabled."""
        raise NotImplementedError

    # -- pulse engine (driven by firmware/stim.py, gated by the output enable) --
    def stim_configure(self, frequency_hz, phase_us, gap_us):
        """Load the timing of symmetric biphasic pulses (already validated); stops any running train."""
        raise NotImplementedError

    def stim_start(self):
        """Start the pulse train at the current amplitude (which the firmware has set to 0)."""
        raise NotImplementedError

    def stim_stop(self):
        """Stop after the current pulse; both legs grounded. Safe from interrupt context."""
        raise NotImplementedError

    def stim_amplitude(self, ua):
        """Commanded current for the next pulses, µA (0 .. hw_max_ua, 100 µA steps)."""
        raise NotImplementedError

    def stim_sense(self, out):
        """Fill out[SENSE_*] (a preallocated list or array of 5 ints) for the last pulse; no allocation."""
        raise NotImplementedError

    def dummy_load(self, on):
        """Switch the output from the electrodes to the internal dummy load (True) or back (False).

        Only with the output disabled: a relay switched under current arcs.
        """
        raise NotImplementedError

    def dummy_load_on(self):
        """True while the output is switched to the dummy load (read back from the relay drive)."""
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

    # -- memory --
    def collect(self, requests):
        """Collect garbage now if it is due. The loop calls it at the one point of its pass where
        a pause is harmless (between two keepalives), so that no allocation finds the heap full.
        requests: link requests received since boot; each allocates, a pass without one does not."""
        raise NotImplementedError

    # -- watchdog and reset --
    def wdt_start(self, timeout_ms):
        raise NotImplementedError

    def wdt_feed(self):
        raise NotImplementedError

    def wdt_left_ms(self):
        """Milliseconds until the watchdog resets the board, as the hardware counts them; -1 if it is off."""
        raise NotImplementedError

    def reset(self):
        """Reset the board now (maintenance asked for it); does not return on a board."""
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
