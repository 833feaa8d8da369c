"""The test rig around the simulated board: what a person, a fixture or a fault can do to it.

Each action takes effect at the current simulated instant. Scenario events
(sim/scenario.py) name these methods; a HIL rig for a real board offers the
subset its hardware can do.
"""

import math

from firmware import hal as H
from firmware.patient_io import TONE_CONTRACT_HZ, TONE_RELAX_HZ
from sim.output import DEFAULT_CDL_UF, DEFAULT_RCT_OHMS, DEFAULT_RS_OHMS, OPEN_OHMS, SHORT_OHMS
from sim.scenario import ACTIONS, ERRORS


class Rig:
    def __init__(self, sim):
        self._sim = sim
        self._board = sim.board

    def apply(self, event):
        getattr(self, ACTIONS[event.action][0])(**event.args)

    # -- what the rig measures ------------------------------------------------

    def output_on(self):
        """The output-enable line now, as a probe on the output stage would read it."""
        return self._output().enabled

    def output_ever_enabled(self):
        return any(on for _t, on in self._output().changes)

    def pulses(self):
        """Pulses that reached the load up to now, oldest first (sim.output.Pulse; the latest HISTORY)."""
        return list(self._output().trace)

    def _output(self):
        """The output stage brought up to now, so a look or a change lands at this instant."""
        out = self._board.output
        out.sync(self._sim.clock.us)
        return out

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

    # -- the output stage's load and faults ------------------------------------------

    def set_load_ohms(self, ohms):
        """A plain resistor in place of the electrode, as on a bench."""
        self._output().set_load(ohms)

    def set_electrode(self, rs_ohms=DEFAULT_RS_OHMS, cdl_uf=DEFAULT_CDL_UF, rct_ohms=DEFAULT_RCT_OHMS):
        """The probe in place: a Randles electrode-tissue load (the defaults, or these values)."""
        self._output().set_electrode(rs_ohms, cdl_uf, rct_ohms)

    def open_load(self):
        """The probe slips out or a lead breaks: the current collapses, the voltage hits compliance."""
        self._output().set_load(OPEN_OHMS)

    def short_load(self):
        """The leads touch: full current, almost no voltage."""
        self._output().set_load(SHORT_OHMS)

    def over_current(self, percent):
        """The current source delivers percent more than commanded (negative: less; 0 heals it)."""
        self._output().set_current_error(percent)

    def stick_sense(self, ua):
        """Both current-sense readings stay at ua, whatever flows."""
        self._output().set_sense_stuck(ua)

    def drift_sense(self, percent_per_min):
        """The current-sense gain error grows by percent_per_min from now on."""
        out = self._output()
        out.set_sense_drift(percent_per_min, self._sim.clock.us)

    def unbalance_phases(self, percent):
        """Each pulse's second phase delivers percent more than the first (negative: less; 0 heals it)."""
        self._output().set_phase2_error(percent)

    def heal_sense(self):
        out = self._output()
        out.set_sense_stuck(None)
        out.set_sense_drift(0, self._sim.clock.us)

    def stall_pulses(self, on=True):
        """The pulse generator stalls: started and enabled, yet no pulse comes out."""
        self._output().set_stalled(on)

    # -- faults ---------------------------------------------------------------------

    # -- the patient ---

    def patient_contract(self, seconds=None):
        """Someone in the room tells her to squeeze (and, after `seconds`, to let go).

        She follows the words as she follows the device's cue tones, after
        her reaction time. The relax is queued with her at once: a buzzer
        change during the hold reaches her after it.
        """
        if seconds is not None and (
            isinstance(seconds, bool)
            or not isinstance(seconds, (int, float))
            or not math.isfinite(seconds)
            or seconds <= 0
        ):
            raise ValueError(f"seconds must be a positive number or None, not {seconds!r}")
        now = self._sim.clock.us
        self._sim.patient.hear(TONE_CONTRACT_HZ, now)
        if seconds is not None:
            self._sim.patient.hear(TONE_RELAX_HZ, now + round(seconds * 1_000_000))

    def patient_relax(self):
        """Someone in the room tells her to let go; she does after her reaction time."""
        self._sim.patient.hear(TONE_RELAX_HZ, self._sim.clock.us)

    def tense_up(self, percent_per_minute):
        """From now the patient's resting tone rises this % per minute (0 stops it) until the session ends."""
        self._sim.patient.tense_up(percent_per_minute, self._sim.clock.us)

    def motion_artefact(self, peak_uv=2000.0):
        """The patient moves: a low-frequency transient on the EMG from this instant."""
        self._board.frontend.model.motion(peak_uv)

    def cut_power_at_write(self, n):
        """Lose power during storage write number n (from 1, since the simulator started)."""
        self._board.flash.cut_power_at_write(n)

    def inject_exception(self, method="emg_read", error="runtime"):
        """The next call of HAL `method` raises inside the firmware's task that made it.

        error "runtime" raises a RuntimeError, "memory" a MemoryError (a heap
        exhausted or fragmented mid-call).
        """
        if not isinstance(error, str) or error not in ERRORS:
            raise ValueError(f"error must be one of {', '.join(ERRORS)}, not {error!r}")
        self._board.inject_failure(method, ERRORS[error](f"injected failure in hal.{method}"))

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
