"""Protocol files in clinical units: conversion, line numbers, delivery figures."""

from pathlib import Path

import pytest

from host import therapy_file as tf

EXAMPLES = sorted((Path(__file__).parent.parent / "examples" / "protocols").glob("*.toml"))
ETS = (Path(__file__).parent.parent / "examples" / "protocols" / "ets-weak-pelvic-floor.toml").read_text()


def _problems(text):
    return [str(p) for p in tf.loads(text)[1]]


@pytest.mark.req("PROT-SCHEMA-1")
@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_every_example_protocol_checks_clean(path):
    doc, problems = tf.load(path)
    assert problems == []
    assert doc["format"] == 1 and doc["phases"]


@pytest.mark.req("PROT-SCHEMA-1")
def test_clinical_units_convert_exactly():
    doc, _ = tf.loads(ETS)
    ets = doc["phases"][2]
    assert ets["amplitude_max_ua"] == 30000 and ets["hold_ms"] == 500 and ets["rest_ms"] == 15000
    assert doc["budget"] == {"sessions": 24, "min_interval_s": 72000, "max_session_s": 1500}
    assert doc["approved_on"] == "2026-11-20"


@pytest.mark.req("PROT-SCHEMA-1")
def test_every_problem_at_once_with_its_line():
    text = (
        ETS.replace("frequency_hz = 35", "frequency_hz = 135")
        .replace("amplitude_max_ma = 30", "amplitude_max_ua = 30000")
        .replace("ramp_up_s = 1", "ramp_up_s = 1.0005")
    )
    assert _problems(text) == [
        "line 50: phase[3].frequency_hz: frequency 135 Hz is outside 1 Hz to 100 Hz",
        "line 53: phase[3].amplitude_max_ua: write this as amplitude_max_ma (clinical units)",
        "line 54: phase[3].ramp_up_s: 1.0005 s is finer than the device's steps of 0.001 s",
    ]


@pytest.mark.req("PROT-SCHEMA-1", "SAF-ELECTRODE-1")
def test_electrode_limit_names_the_amplitude_line_and_the_allowed_maximum():
    text = ETS.replace('probe = "vaginal-2plate"', 'probe = "anal-2ring"').replace(
        "pulse_width_us = 250", "pulse_width_us = 450"
    )
    probs = _problems(text)
    assert any(
        p.startswith("line 53: phase[3].amplitude_max_ma: charge per phase 13500 nC") for p in probs
    ), probs


@pytest.mark.req("PROT-SCHEMA-1")
def test_unknown_sections_keys_and_bad_toml():
    assert _problems(ETS + "\n[extras]\nx = 1\n")[0].startswith("line ")
    assert "unknown setting 'colour'" in _problems(ETS.replace("[budget]", "[budget]\ncolour = 1"))[0]
    with pytest.raises(tf.ProtocolFileError):
        tf.loads("[protocol\nid = 1")
    with pytest.raises(tf.ProtocolFileError):
        tf.load("/nonexistent/protocol.toml")


@pytest.mark.req("PROT-SCREEN-1")
def test_incomplete_screening_is_pointed_at():
    probs = _problems(ETS.replace("pregnancy = false\n", ""))
    assert probs == [
        "line 14: screening.pregnancy: screening is incomplete: answer pregnancy with true or false"
    ]


@pytest.mark.req("PROT-SCHEMA-1")
def test_delivery_figures():
    doc, _ = tf.loads(ETS)
    d = tf.delivery(doc)
    ets = d["phases"][2]
    assert ets["rms_ma"] == pytest.approx(30 * (2 * 250e-6 * 35) ** 0.5, abs=0.002)
    assert ets["charge_per_phase_uc"] == pytest.approx(7.5)
    assert ets["rms_density_ma_cm2"] == pytest.approx(ets["rms_ma"] / 6.75, abs=0.002)
    assert ets["stimulation_s"] is None  # depends on the patient's triggers
    assert d["session_s"] == 60 + 99 + 900 + 180
    lf, _ = tf.load(EXAMPLES[0].with_name("low-frequency-stimulation.toml"))
    assert tf.delivery(lf)["stimulation_s"] == 1200
