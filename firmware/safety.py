"""The single owner of the output-enable line.

Nothing else in the firmware calls hal.out_enable(). Any doubt ends in
enter_safe_state(): output disabled, amplitude zero, and for safety-class
causes a fault latched until an explicit clear. enter_safe_state() may run in
hard-interrupt context (the e-stop), so it only assigns integers and calls
the HAL: no allocation, no time reads, nothing that can raise.
"""

from protocol import faults
from protocol.errors import ESTOP_ACTIVE, ILLEGAL_STATE


class Safety:
    def __init__(self, hal):
        self._hal = hal
        hal.out_enable(False)  # before anything else, whatever the reset left behind
        self.amplitude_ua = 0
        self.fault = 0  # latched fault code; 0 = none
        self.fault_ms = 0
        self.fault_count = 0  # safe-state entries since the last clear
        self.last_cause = 0
        self.unreported = 0  # cause recorded in IRQ context, not yet logged/persisted
        self.protocol_verified = False  # set only by protocol verification (a later stage)

    def enter_safe_state(self, cause):
        """Output off, amplitude zero, latch safety-class causes. Idempotent."""
        self._hal.out_enable(False)
        self._hal.stim_stop()
        self.amplitude_ua = 0
        self.last_cause = cause
        self.fault_count += 1
        if self.fault == 0 and cause in faults.LATCHED:
            self.fault = cause
        self.unreported = cause

    def estop_irq(self, _pin=None):
        # hard IRQ: must not allocate (no *args) or raise
        self.enter_safe_state(faults.ESTOP)

    def take_unreported(self):
        """The cause the main loop has yet to log and report, or 0."""
        cause = self.unreported
        self.unreported = 0
        return cause

    def restore(self, code, time_ms, count):
        """Re-latch a fault found in storage at boot."""
        self._hal.out_enable(False)
        self.fault = code
        self.fault_ms = time_ms
        self.fault_count = count

    def may_clear(self):
        """0 when a clear is allowed, else the protocol error code that refuses it.

        The caller passes fault_count as it was at this check to clear(), which
        refuses if anything entered the safe state since.
        """
        if self.fault == 0:
            return ILLEGAL_STATE
        if self._hal.estop_open():
            return ESTOP_ACTIVE
        return 0

    def clear(self, seen_count):
        """Clear the latch if no safe-state entry happened since fault_count read seen_count; True if cleared.

        An interrupt may land anywhere in here (the e-stop IRQ, held off by the
        flash write between the check and the clear, runs at its end). It
        latches by itself once fault is 0; before that, the count moves and
        the second check puts the latch back.
        """
        self._hal.out_enable(False)
        if self.fault_count != seen_count:
            return False
        old = self.fault
        self.fault = 0
        if self.fault_count != seen_count or self._hal.estop_open():
            if self.fault == 0:
                cause = self.last_cause
                self.fault = cause if cause in faults.LATCHED else old
            return False
        self.fault_ms = 0
        self.fault_count = 0
        self.last_cause = 0
        return True

    def request_output(self, session_running):
        """Enable the output only when every condition holds; True if enabled.

        Without a verified protocol the answer is always no: the firmware
        refuses to stimulate from its first version on.
        """
        if self.fault or not session_running or not self.protocol_verified or self._hal.estop_open():
            self._hal.out_enable(False)
            return False
        self._hal.out_enable(True)
        return True

    def request_dummy_output(self):
        """Enable the output into the board's internal dummy load, for the self-test; True if enabled.

        No patient is on the output (the relay has taken the electrodes
        away), so no verified protocol is needed; a latched fault, the
        e-stop or a relay that did not switch still refuse.
        """
        hal = self._hal
        if self.fault or hal.estop_open() or not hal.dummy_load_on():
            hal.out_enable(False)
            return False
        hal.out_enable(True)
        return True

    def release_output(self):
        """The phase no longer needs the output: disable it (no fault)."""
        self._hal.out_enable(False)

    def keepalive(self):
        """Keep the dynamic enable up; called once per loop pass while stimulating."""
        if self._hal.out_enabled():
            self._hal.out_keepalive()

    def output_on(self):
        return self._hal.out_enabled()
