"""Biofeedback sessions on the simulator: the device's tones and LED, and the advice to stop."""

from pathlib import Path

import pytest

from firmware import hal as H
from firmware.patient_io import TONE_ADVICE_HZ, TONE_FEEDBACK_MAX_HZ, TONE_FEEDBACK_MIN_HZ
from host import simclinic
from protocol import messages as m

EXAMPLE = "examples/protocols/relaxation-downtraining.toml"


def _short_relaxation(tmp_path, margin=20):
    """The example, cut to a 60 s baseline and a 4-minute relaxation."""
    text = Path(EXAMPLE).read_text(encoding="utf-8")
    head = text[: text.index("[[phase]]")]
    path = tmp_path / "relax-short.toml"
    path.write_text(
        head
        + '[[phase]]\ntype = "baseline"\nduration_s = 60\n\n'
        + '[[phase]]\ntype = "relaxation"\nduration_s = 240\ntarget_percent = 90\nhold_s = 5\n'
        + f"tone_margin_percent = {margin:d}\n"
    )
    return path


def _run_standalone(sim):
    """Start with the device's own button, as a patient at home does, and run to the end."""
    sim.rig.press_button(H.BTN_START)
    sim.run_until(lambda: sim.ctrl.session.state == m.DONE, 400000)
    return [(t, ev) for t, mtype, ev in sim.device_events if mtype == m.ADVICE]


@pytest.mark.req("EMG-SCORE-2", "SIM-PATIENT-3")
def test_the_device_sounds_and_shows_the_envelope_above_target_without_a_computer(make_sim, tmp_path):
    sim = make_sim(seed=4, patient="hypertonic")
    simclinic.approve_on(sim, _short_relaxation(tmp_path))
    _run_standalone(sim)
    tones = [hz for _t, hz in sim.board.tone_changes]
    assert any(TONE_FEEDBACK_MIN_HZ <= hz <= TONE_FEEDBACK_MAX_HZ for hz in tones)
    leds = {mode for _t, mode in sim.board.led_changes}
    assert H.LED_ABOVE_TARGET in leds and H.LED_RUNNING in leds  # above and at/below target
    summary = sim.ctrl.last_summary
    relax = summary[m.SUM_PHASES][1]
    assert relax[m.SC_KIND] == 2 and 0 < relax[m.SC_BELOW_MS] < relax[m.SC_RUN_MS]


@pytest.mark.req("EMG-PACED-1", "SIM-PATIENT-4")
def test_rising_tension_brings_advice_once_and_the_log_keeps_why(make_sim, tmp_path):
    sim = make_sim(seed=5, patient="anxious")
    simclinic.approve_on(sim, _short_relaxation(tmp_path))
    advice = _run_standalone(sim)
    assert [ev["reason"] for _t, ev in advice] == [m.ADVICE_TONE_RISING]
    assert ev_ratio(advice[0][1]) > 1.2  # the smoothed rest tone over the baseline, beyond the 20 % margin
    assert TONE_ADVICE_HZ in [hz for _t, hz in sim.board.tone_changes]
    entry = sim.ctrl.sessionlog.get(sim.ctrl.sessionlog.next_seq - 1)
    assert entry[m.LOG_ADVICE] == m.ADVICE_TONE_RISING


def ev_ratio(ev):
    return ev["rest_dv"] / ev["reference_dv"]


@pytest.mark.req("EMG-PACED-1")
def test_a_calm_patient_gets_no_advice(make_sim, tmp_path):
    sim = make_sim(seed=6, patient="healthy")
    simclinic.approve_on(sim, _short_relaxation(tmp_path, margin=30))
    assert _run_standalone(sim) == []
