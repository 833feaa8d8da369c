"""ETS through the command line on a served simulator, watched with tonus monitor."""

import json
import time

import pytest
from cliutil import served_sim

from host.cli import main
from host.client import Client, StimEvent


@pytest.fixture
def ets_sim(tmp_path):
    """`tonus sim` with a weak patient and the short ETS protocol approved, 8x real time."""
    args = ("--patient", "weak", "--speed", "8", "--approve", "examples/protocols/ets-trial-short.toml")
    with served_sim(tmp_path / "sim.log", *args) as url:
        yield url


@pytest.mark.req("ETS-TRIGGER-1", "UX-CLI-1")
def test_an_ets_session_shows_triggers_and_stimulation_beside_the_emg(ets_sim, capsys):
    assert main(["--port", ets_sim, "session", "start"]) == 0
    # the clinician sets the level once the electrode check passed
    with Client.open(ets_sim) as c:
        c.stream(True).unwrap()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            item = c.poll(0.2)
            if isinstance(item, StimEvent) and item.state == "READY":
                break
        else:
            pytest.fail("the ETS phase never got ready")
    capsys.readouterr()
    assert main(["--port", ets_sim, "session", "level", "20"]) == 0
    assert capsys.readouterr().out.strip() == "stimulation level 20.0 mA"
    assert main(["--port", ets_sim, "--json", "monitor", "--duration", "4"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    stim = [x for x in lines if x["type"] == "StimEvent"]
    assert {"RAMP_UP", "ON", "RAMP_DOWN", "REST", "READY"} >= {x["state"] for x in stim} and stim
    progress = [x for x in lines if x["type"] == "progress"]
    assert max(x["stim_ma"] for x in progress) > 0 and max(x["envelope_uv"] for x in progress) > 0, lines
    assert lines[-1]["type"] == "end" and lines[-1]["triggers"] >= 1
