"""The test rig of the emulated Pico: sim/rig.py's interface, for what the emulated board models.

hil_tests drive a target's bench through one interface (sim/rig.py Rig).
The emulated board can press the e-stop and the buttons, change the load,
power-cycle, and measure the output stage and its pulses; what it does not
model (EMG faults, sense faults, injected exceptions, a cut host link) is
declared in LACKS, and a test that asks for it is skipped with the reason.
"""

from typing import NamedTuple

import pytest

from firmware import hal as H

LACKS = {
    "set_lead_off": "the ADS1292R model has no lead-off injection",
    "set_saturation": "the ADS1292R model has no saturation injection",
    "stall_emg": "the ADS1292R model cannot stall",
    "set_electrode": "the load is a plain resistor, not a Randles cell",
    "over_current": "the output-stage model has no current error",
    "stick_sense": "the sense model has no faults",
    "drift_sense": "the sense model has no faults",
    "unbalance_phases": "the output-stage model has no phase error",
    "heal_sense": "the sense model has no faults",
    "stall_pulses": "the pulse engine is the firmware's own PIO program",
    "patient_contract": "the patient model follows its own schedule",
    "patient_relax": "the patient model follows its own schedule",
    "tense_up": "the patient model follows its own schedule",
    "motion_artefact": "the patient model follows its own schedule",
    "cut_power_at_write": "power cuts land between writes only (power_cycle)",
    "inject_exception": "exceptions cannot be injected into the board's MicroPython",
    "hang_firmware": "the board's firmware cannot be hung from outside",
    "brownout": "no supply model",
    "disconnect_host": "the USB link cannot be cut while the host keeps its port",
    "reconnect_host": "the USB link cannot be cut while the host keeps its port",
}
SHORT_OHMS = 1
_BUTTONS = ((H.BTN_START, "start"), (H.BTN_UP, "up"), (H.BTN_DOWN, "down"))


class Pulse(NamedTuple):
    """One pulse that reached the load, as the emulated output stage saw it."""

    t_us: int
    set_ua: int  # amplitude the DAC commanded at the pulse's start
    ua1: int  # current delivered in each phase (the source's compliance limits it)
    ua2: int
    phase_us: int


class EmulatedRig:
    def __init__(self, pico):
        self._pico = pico
        self._load_ohms = pico.state()["load_ohms"]  # the electrodes in place

    def __getattr__(self, name):
        if name in LACKS:
            pytest.skip(f"the emulated Pico's rig cannot {name}: {LACKS[name]}")
        raise AttributeError(name)

    def restore(self):
        """The bench as the next test must find it: e-stop closed, buttons up, the electrodes in place."""
        self._pico.release_estop()
        for _, name in _BUTTONS:
            self._pico.button(name, False)
        self._pico.set_load(self._load_ohms)

    def output_on(self):
        """The output stage delivering: static enable, charge pump held, e-stop closed."""
        return self._pico.state()["out"]["live"]

    def output_ever_enabled(self):
        return self._pico.state()["out"]["enables"] > 0

    def pulses(self):
        return [
            Pulse(p["t_ns"] // 1000, p["set_ua"], p["ua1"], p["ua2"], p["phase1_ns"] // 1000)
            for p in self._pico.request("pulses")["pulses"]
        ]

    def press_estop(self):
        self._pico.press_estop()

    def release_estop(self):
        self._pico.release_estop()

    def press_button(self, mask):
        """Press and release the buttons in mask (BTN_*), long enough for the debounce."""
        names = [n for bit, n in _BUTTONS if mask & bit]
        for n in names:
            self._pico.button(n, True)
        self._pico.wait_board_ms(100)
        for n in names:
            self._pico.button(n, False)

    def set_load_ohms(self, ohms):
        self._pico.set_load(ohms)

    def open_load(self):
        self._pico.set_load(None)

    # Putting things right is modelled where breaking them is not: a test that heals after its
    # check must not be skipped for the healing, nor leave the next test an open electrode.
    def set_electrode(self, *params, **named):
        """The probe back in place: the board's resistive load again (another electrode: LACKS)."""
        if params or named:
            pytest.skip("the emulated Pico's rig cannot set_electrode: {}".format(LACKS["set_electrode"]))
        self._pico.set_load(self._load_ohms)

    def over_current(self, percent):
        if percent:
            pytest.skip("the emulated Pico's rig cannot over_current: {}".format(LACKS["over_current"]))

    def stall_pulses(self, on=True):
        if on:
            pytest.skip("the emulated Pico's rig cannot stall_pulses: {}".format(LACKS["stall_pulses"]))

    def short_load(self):
        self._pico.set_load(SHORT_OHMS)

    def power_cycle(self):
        self._pico.power_cycle()
        if self._pico.wait_event("usb", 120) is None:
            raise AssertionError("the emulated Pico did not enumerate on USB after a power cycle")
