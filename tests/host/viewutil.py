"""A `tonus view` on an in-process simulator, for the view's tests and benchmark."""

import contextlib
from pathlib import Path

from host import simclinic, therapy_file
from host.client import Client
from host.recording import Recorder
from host.view import serving
from host.view.state import plan_of

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "protocols" / "relaxation-downtraining.toml"
TARGET_DV = 150  # the relaxation phase's absolute target: 15 µV
LIMIT_UA = 5000  # the stimulation phase's maximum
RELAX_AT_S = 10  # the relaxation phase starts after the baseline
STIM_AT_S = 70


def short_protocol(folder):
    """10 s baseline, 60 s relaxation below 15 µV, 60 s stimulation up to 5 mA."""
    text = EXAMPLE.read_text(encoding="utf-8")
    head = text[: text.index("[[phase]]")].replace("amplitude_max_ma = 0", "amplitude_max_ma = 10")
    phases = f"""
[[phase]]
type = "baseline"
duration_s = {RELAX_AT_S}

[[phase]]
type = "relaxation"
duration_s = {STIM_AT_S - RELAX_AT_S}
target_uv = {TARGET_DV / 10}
hold_s = 5
tone_margin_percent = 50

[[phase]]
type = "stimulation"
duration_s = 60
frequency_hz = 35
pulse_width_us = 250
interphase_gap_us = 50
amplitude_max_ma = {LIMIT_UA / 1000}
ramp_up_s = 2
ramp_down_s = 2
on_s = 0
off_s = 0
"""
    path = Path(folder) / "view-short.toml"
    path.write_text(head + phases, encoding="utf-8")
    return path


@contextlib.contextmanager
def running_view(url, folder, heartbeat_ms=1000, approve=True):
    """(feed, server, client, recording path): the view's link thread and web server, stopped after."""
    folder = Path(folder)
    with Client.open(url) as c:
        plan = None
        if approve:
            proto = short_protocol(folder)
            simclinic.approve(c, proto)
            plan = plan_of(therapy_file.load(proto)[0])
        path = folder / "view.tonus"
        with Recorder(path, c.info().unwrap()) as rec, serving(c, rec, plan, heartbeat_ms) as (feed, server):
            yield feed, server, c, path
