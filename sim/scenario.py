"""Scenario files: rig actions at simulated times, as validated TOML data.

    [[event]]
    at_ms = 12000
    action = "estop_press"

    [[event]]
    at_ms = 15000
    action = "button"
    button = "start"

A scenario is data, never code: every action and field is checked against
ACTIONS when the file is loaded, and a mistake is reported with the file
name and the event's number (1 = the first [[event]]).
"""

import math
import random
import tomllib
from collections.abc import Callable
from typing import Any, NamedTuple

from firmware import hal as H
from sim.board import HAL_METHODS
from sim.output import DEFAULT_CDL_UF, DEFAULT_RCT_OHMS, DEFAULT_RS_OHMS

_REQUIRED = object()
_BUTTONS = {"start": H.BTN_START, "up": H.BTN_UP, "down": H.BTN_DOWN}
# what an injected HAL failure raises: the firmware tells a MemoryError apart (SAF-EXC-1)
ERRORS = {"runtime": RuntimeError, "memory": MemoryError}


class ScenarioError(ValueError):
    pass


class Event(NamedTuple):
    at_ms: int
    action: str
    args: dict  # keyword arguments of the rig method, already converted


def _bool(v):
    if v is True or v is False:
        return v
    raise ValueError("must be true or false")


def _button(v):
    if not isinstance(v, str) or v not in _BUTTONS:
        raise ValueError("must be one of " + ", ".join(sorted(_BUTTONS)))
    return _BUTTONS[v]


def _ohms(v):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
        raise ValueError("must be a positive number")
    return float(v)


def _number(v):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ValueError("must be a finite number")
    return float(v)


def _percent(v):
    if _number(v) <= -100:
        raise ValueError("must be a number > -100 (percent more than commanded)")
    return float(v)


def _microamps(v):
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise ValueError("must be an integer >= 0 (µA)")
    return v


def _write_number(v):
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise ValueError("must be an integer >= 1")
    return v


def _hal_method(v):
    if v not in HAL_METHODS:
        raise ValueError(f"must name a HAL method ({', '.join(HAL_METHODS)})")
    return v


def _error(v):
    if not isinstance(v, str) or v not in ERRORS:
        raise ValueError("must be one of " + ", ".join(ERRORS))
    return v


def _seconds(v):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
        raise ValueError("must be a positive number of seconds")
    return float(v)


def _percent_per_minute(v):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not -100 < v <= 1000:
        raise ValueError("must be a number of % per minute, above -100 and at most 1000")
    return float(v)


def _peak_uv(v):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not 0 < v <= 400_000:
        raise ValueError("must be a positive number of µV, at most 400000 (the input range)")
    return float(v)


# action -> (rig method, {field: (rig keyword, converter, default)})
ACTIONS: dict[str, tuple[str, dict[str, tuple[str, Callable[[Any], object], object]]]] = {
    "estop_press": ("press_estop", {}),
    "estop_release": ("release_estop", {}),
    "button": ("press_button", {"button": ("mask", _button, _REQUIRED)}),
    "lead_off": ("set_lead_off", {"on": ("on", _bool, True)}),
    "saturation": ("set_saturation", {"on": ("on", _bool, True)}),
    "stall_emg": ("stall_emg", {"on": ("on", _bool, True)}),
    "load_ohms": ("set_load_ohms", {"ohms": ("ohms", _ohms, _REQUIRED)}),
    "electrode": (
        "set_electrode",
        {
            "rs_ohms": ("rs_ohms", _ohms, DEFAULT_RS_OHMS),
            "cdl_uf": ("cdl_uf", _ohms, DEFAULT_CDL_UF),  # the same check: a positive number
            "rct_ohms": ("rct_ohms", _ohms, DEFAULT_RCT_OHMS),
        },
    ),
    "load_open": ("open_load", {}),
    "load_short": ("short_load", {}),
    "over_current": ("over_current", {"percent": ("percent", _percent, _REQUIRED)}),
    "sense_stuck": ("stick_sense", {"ua": ("ua", _microamps, _REQUIRED)}),
    "sense_drift": ("drift_sense", {"percent_per_min": ("percent_per_min", _number, _REQUIRED)}),
    "sense_ok": ("heal_sense", {}),
    # the second phase percent more than the first (negative: less), 0 heals it
    "phases_unbalanced": ("unbalance_phases", {"percent": ("percent", _percent, _REQUIRED)}),
    "stall_pulses": ("stall_pulses", {"on": ("on", _bool, True)}),
    "power_cut_at_write": ("cut_power_at_write", {"write": ("n", _write_number, _REQUIRED)}),
    "exception": (
        "inject_exception",
        {"method": ("method", _hal_method, "emg_read"), "error": ("error", _error, "runtime")},
    ),
    "hang": ("hang_firmware", {}),
    "disconnect": ("disconnect_host", {}),
    "reconnect": ("reconnect_host", {}),
    "power_cycle": ("power_cycle", {}),
    "brownout": ("brownout", {}),
    # the patient: told to squeeze (and let go after `seconds`, else until told to relax),
    # tension that creeps up (0 stops it), a movement of the probe
    "patient_contract": ("patient_contract", {"seconds": ("seconds", _seconds, None)}),
    "patient_relax": ("patient_relax", {}),
    "tense_up": ("tense_up", {"percent_per_minute": ("percent_per_minute", _percent_per_minute, _REQUIRED)}),
    "motion": ("motion_artefact", {"peak_uv": ("peak_uv", _peak_uv, 2000.0)}),
}


def event(at_ms, action, **fields):
    """One validated event, from the same fields a scenario file uses."""
    return _event(dict(fields, at_ms=at_ms, action=action))


def _event(table):
    if "action" not in table:
        raise ValueError("missing field 'action'")
    action = table["action"]
    if not isinstance(action, str) or action not in ACTIONS:
        raise ValueError(f"unknown action {action!r} (known: {', '.join(sorted(ACTIONS))})")
    if "at_ms" not in table:
        raise ValueError("missing field 'at_ms'")
    at_ms = table["at_ms"]
    if isinstance(at_ms, bool) or not isinstance(at_ms, int) or at_ms < 0:
        raise ValueError("at_ms must be an integer >= 0")
    spec = ACTIONS[action][1]
    extra = sorted(set(table) - set(spec) - {"at_ms", "action"})
    if extra:
        raise ValueError(f"unknown field {extra[0]!r} for action {action!r}")
    args = {}
    for field, (keyword, convert, default) in spec.items():
        if field in table:
            try:
                args[keyword] = convert(table[field])
            except ValueError as e:
                raise ValueError(f"{field} {e}") from None
        elif default is _REQUIRED:
            raise ValueError(f"action {action!r} needs field {field!r}")
        else:
            args[keyword] = default
    return Event(at_ms, action, args)


def parse(data, source="<scenario>"):
    """Events from a decoded TOML document, in time order (file order within one instant)."""
    extra = sorted(set(data) - {"event", "description"})
    if extra:
        raise ScenarioError(f"{source}: unknown top-level key {extra[0]!r} (a scenario has [[event]] tables)")
    tables = data.get("event", [])
    if not isinstance(tables, list):
        raise ScenarioError(f"{source}: 'event' must be an array of tables ([[event]])")
    events = []
    for i, table in enumerate(tables, 1):
        if not isinstance(table, dict):
            raise ScenarioError(f"{source}: event {i}: not a table")
        try:
            events.append(_event(table))
        except ValueError as e:
            raise ScenarioError(f"{source}: event {i}: {e}") from None
    events.sort(key=_time)  # stable: same-time events keep file order
    return events


def _time(e):
    return e.at_ms


def loads(text, source="<scenario>"):
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ScenarioError(f"{source}: not valid TOML: {e}") from None
    return parse(data, source)


def load(path):
    try:
        with open(path, "rb") as f:
            text = f.read().decode("utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ScenarioError(f"{path}: cannot read: {e}") from None
    return loads(text, str(path))


def random_estops(seed, n, span_ms, hold_ms=(50, 2000)):
    """n e-stop press/release pairs at random times in [0, span_ms), never overlapping.

    The span is cut into n equal slots; each press falls in the first half of
    its slot and is released before the slot ends, so a press always finds
    the e-stop closed.
    """
    if n < 1:
        raise ValueError("n must be >= 1")
    slot = span_ms // n
    lo, hi = hold_ms
    if lo < 1 or hi < lo or slot < 2 * lo + 1:
        raise ValueError(f"{n} presses holding >= {lo} ms do not fit in {span_ms} ms")
    rnd = random.Random(seed)
    events = []
    for i in range(n):
        start = i * slot
        press = start + rnd.randrange(0, slot // 2 - lo + 1)
        hold = rnd.randint(lo, min(hi, start + slot - 1 - press))
        events.append(event(press, "estop_press"))
        events.append(event(press + hold, "estop_release"))
    return events
