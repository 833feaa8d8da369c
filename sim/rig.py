"""The test rig around the simulated board: what a person, a fixture or a fault can do to it.

Each action takes effect at the current simulated instant. Scenario events
(sim/scenario.py) name these methods; a HIL rig for a real board offers the
subset its hardware can do.
"""

from firmware import hal as H
from sim.scenario import ACTIONS


class Rig:
    def __init__(self, sim):
        self._sim = sim
        self._board = sim.board

    def apply(self, event):
        getattr(self, ACTIONS[event.action][0])(**event.args)

    # -- what the rig measures ------------------------------------------------

    def output_on(self):
        """The output-enable line now, as a probe on the output stage would read it."""
        return self._board.output.enabled

    def output_ever_enabled(self):
        return any(on for _t, on in self._board.output.changes)

    # -- the patient's hands --------------------------------------------------

    def press_estop(self):
        """Open the e-stop loop; the firmware's IRQ handler runs at this instant."""
        self._board.set_estop(True)

    def release_estop(self):
        self._board.set_estop(False)

    def press_button(self, mask):
        self._board.press(mask)

    # -- electrodes and front end -------------------------------------------------

    def set_lead_off(self, on=True):
        self._board.frontend.model.lead_off = bool(on)

    def set_saturation(self, on=True):
        self._board.frontend.model.saturated = bool(on)

    def stall_emg(self, on=True):
        self._board.frontend.stalled = bool(on)

    def set_load_ohms(self, ohms):
        self._board.output.set_load(ohms)

    # -- faults ---------------------------------------------------------------------

    def cut_power_at_write(self, n):
        """Lose power during storage write number n (from 1, since the simulator started)."""
        self._board.flash.cut_power_at_write(n)

    def inject_exception(self, method="emg_read"):
        """The next call of HAL `method` raises inside the firmware's task that made it."""
        self._board.inject_failure(method, RuntimeError(f"injected failure in hal.{method}"))

    def hang_firmware(self):
        """The firmware's loop stops (stuck in a call): nothing steps or feeds the watchdog until a reset."""
        self._sim.hang()

    def power_cycle(self):
        self._sim.power_cycle()

    def brownout(self):
        self._sim.reset(H.RESET_BROWNOUT)

    # -- the host -------------------------------------------------------------------

    def disconnect_host(self):
        self._board.disconnect_host()

    def reconnect_host(self):
        self._board.connect_host()
