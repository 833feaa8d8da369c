"""Scenario files are validated data with errors that point at the mistake."""

import pytest

from firmware import hal as H
from sim import scenario
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
    assert events[2].args == {"method": "link_read"}
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
    assert 0 <= times[0] and times[-1] < 60000
    holds = [r - p for p, r in zip(times[::2], times[1::2], strict=True)]
    assert min(holds) >= 50


def test_random_estops_refuse_what_does_not_fit():
    with pytest.raises(ValueError):
        scenario.random_estops(seed=1, n=100, span_ms=1000)
    with pytest.raises(ValueError):
        scenario.random_estops(seed=1, n=0, span_ms=1000)
