"""Scenario files are validated data with errors that point at the mistake."""

import pytest

from firmware import hal as H
from protocol import faults
from sim import scenario
from sim.runner import Simulator
from sim.scenario import ScenarioError

pytestmark = pytest.mark.req("SIM-SCN-1")

GOOD = """
description = "lead falls off, then the patient hits the e-stop"

[[event]]
at_ms = 5000
action = "estop_press"

[[event]]
at_ms = 100
action = "button"
button = "start"

[[event]]
at_ms = 5000
action = "load_ohms"
ohms = 1e6

[[event]]
at_ms = 2000
action = "lead_off"

[[event]]
at_ms = 3000
action = "exception"
method = "link_read"
"""


def test_a_good_file_gives_events_in_time_order_with_converted_fields():
    events = scenario.loads(GOOD, "good.toml")
    assert [(e.at_ms, e.action) for e in events] == [
        (100, "button"),
        (2000, "lead_off"),
        (3000, "exception"),
        (5000, "estop_press"),  # same instant: file order kept
        (5000, "load_ohms"),
    ]
    assert events[0].args == {"mask": H.BTN_START}
    assert events[1].args == {"on": True}  # the default
    assert events[2].args == {"method": "link_read", "error": "runtime"}  # the default error
    assert events[4].args == {"ohms": 1e6}


BAD = [
    ("[[event]]\nat_ms = 1\naction = 'explode'\n", "event 1: unknown action 'explode'"),
    (
        "[[event]]\nat_ms = 1\naction = 'estop_press'\n[[event]]\naction = 'estop_release'\n",
        "event 2: missing field 'at_ms'",
    ),
    ("[[event]]\nat_ms = 1\n", "event 1: missing field 'action'"),
    ("[[event]]\nat_ms = 1\naction = 'button'\n", "event 1: action 'button' needs field 'button'"),
    ("[[event]]\nat_ms = 1\naction = 'button'\nbutton = 'stop'\n", "event 1: button must be one of"),
    (
        "[[event]]\nat_ms = 1\naction = 'load_ohms'\nohms = 'high'\n",
        "event 1: ohms must be a positive number",
    ),
    ("[[event]]\nat_ms = 1\naction = 'load_ohms'\nohms = -5\n", "event 1: ohms must be a positive number"),
    ("[[event]]\nat_ms = 1\naction = 'lead_off'\non = 1\n", "event 1: on must be true or false"),
    ("[[event]]\nat_ms = 1\naction = 'estop_press'\nbutton = 'start'\n", "event 1: unknown field 'button'"),
    ("[[event]]\nat_ms = -1\naction = 'estop_press'\n", "event 1: at_ms must be an integer >= 0"),
    ("[[event]]\nat_ms = 1.5\naction = 'estop_press'\n", "event 1: at_ms must be an integer >= 0"),
    ("[[event]]\nat_ms = 1\naction = 'power_cut_at_write'\nwrite = 0\n", "event 1: write must be an integer"),
    (
        "[[event]]\nat_ms = 1\naction = 'exception'\nmethod = 'reboot'\n",
        "event 1: method must name a HAL method",
    ),
    ("[[event]]\nat_ms = 1\naction = ['estop_press']\n", "event 1: unknown action"),
    (
        "[[event]]\nat_ms = 1\naction = 'exception'\nerror = 'oom'\n",
        "event 1: error must be one of runtime, memory",
    ),
    (
        "[[event]]\nat_ms = 1\naction = 'patient_contract'\nseconds = 0\n",
        "event 1: seconds must be a positive number of seconds",
    ),
    (
        "[[event]]\nat_ms = 1\naction = 'patient_contract'\nseconds = 'long'\n",
        "event 1: seconds must be a positive number of seconds",
    ),
    ("[[event]]\nat_ms = 1\naction = 'patient_relax'\nseconds = 2\n", "event 1: unknown field 'seconds'"),
    ("[[event]]\nat_ms = 1\naction = 'phases_unbalanced'\n", "needs field 'percent'"),
    ("[[events]]\nat_ms = 1\n", "unknown top-level key 'events'"),
    ("event = 3\n", "'event' must be an array of tables"),
    ("[[event]\n", "not valid TOML"),
]


@pytest.mark.parametrize("text, message", BAD)
def test_mistakes_name_the_file_and_the_event(tmp_path, text, message):
    path = tmp_path / "broken.toml"
    path.write_text(text)
    with pytest.raises(ScenarioError) as info:
        scenario.load(path)
    assert str(info.value).startswith(str(path) + ": ")
    assert message in str(info.value)


def test_a_missing_file_is_a_scenario_error(tmp_path):
    with pytest.raises(ScenarioError, match="cannot read"):
        scenario.load(tmp_path / "nope.toml")


def test_random_estops_are_reproducible_and_never_overlap():
    a = scenario.random_estops(seed=4, n=20, span_ms=60000)
    assert a == scenario.random_estops(seed=4, n=20, span_ms=60000)
    assert a != scenario.random_estops(seed=5, n=20, span_ms=60000)
    assert [e.action for e in a] == ["estop_press", "estop_release"] * 20
    times = [e.at_ms for e in a]
    assert times == sorted(times)
    assert len(set(times)) == len(times)
    assert times[0] >= 0 and times[-1] < 60000
    holds = [r - p for p, r in zip(times[::2], times[1::2], strict=True)]
    assert min(holds) >= 50


def test_random_estops_refuse_what_does_not_fit():
    with pytest.raises(ValueError, match="do not fit in 1000 ms"):
        scenario.random_estops(seed=1, n=100, span_ms=1000)
    with pytest.raises(ValueError, match="n must be >= 1"):
        scenario.random_estops(seed=1, n=0, span_ms=1000)


@pytest.mark.req("SIM-HAL-2", "SIM-OUT-6", "SIM-PATIENT-5")
def test_the_fault_and_patient_actions_parse_with_their_defaults():
    assert scenario.event(0, "exception").args == {"method": "emg_read", "error": "runtime"}
    assert scenario.event(0, "exception", method="stim_sense", error="memory").args == {
        "method": "stim_sense",
        "error": "memory",
    }
    assert scenario.event(0, "phases_unbalanced", percent=-30).args == {"percent": -30.0}
    assert scenario.event(0, "patient_contract").args == {"seconds": None}  # until told to relax
    assert scenario.event(0, "patient_contract", seconds=2).args == {"seconds": 2.0}
    assert scenario.event(0, "patient_relax").args == {}
    for action, method in (
        ("phases_unbalanced", "unbalance_phases"),
        ("patient_contract", "patient_contract"),
        ("patient_relax", "patient_relax"),
    ):
        assert scenario.ACTIONS[action][0] == method


@pytest.mark.req("SIM-HAL-2", "SAF-EXC-1")
@pytest.mark.parametrize("error, code", [("runtime", faults.EXCEPTION), ("memory", faults.MEMORY)])
def test_an_exception_event_raises_the_named_error_in_the_firmware(error, code):
    with Simulator(seed=1, scenario=[scenario.event(20, "exception", method="emg_read", error=error)]) as sim:
        sim.run_for(10)
        assert sim.ctrl.safety.fault == 0
        sim.run_for(20)
        assert sim.crash is None and sim.ctrl.safety.fault == code
        with pytest.raises(ValueError, match="error must be one of runtime, memory"):
            sim.rig.inject_exception("emg_read", "oom")


def _activation_at(sim, ms):
    sim.run_for(ms - sim.now_ms)
    return sim.patient.activation


@pytest.mark.req("SIM-PATIENT-5", "SIM-SCN-1")
def test_the_patient_contracts_and_relaxes_when_told_after_her_reaction_time():
    # healthy: reacts in 300-600 ms, rises with 150 ms and falls with 250 ms time constants
    told = [
        scenario.event(1000, "patient_contract", seconds=2),
        scenario.event(6000, "patient_contract"),
        scenario.event(9000, "patient_relax"),
    ]
    with Simulator(seed=2, scenario=told) as sim:
        assert _activation_at(sim, 1250) < 0.05  # not before her reaction time
        assert _activation_at(sim, 2500) > 0.6
        assert _activation_at(sim, 3250) > 0.3  # still holding until the relax reaches her
        assert _activation_at(sim, 5000) < 0.05
        assert _activation_at(sim, 8500) > 0.3  # no seconds: she holds until told
        assert _activation_at(sim, 11000) < 0.05
        with pytest.raises(ValueError, match="seconds must be a positive number"):
            sim.rig.patient_contract(-1)
