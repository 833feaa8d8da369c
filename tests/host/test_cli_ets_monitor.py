"""ETS through the command line on a served simulator, watched with tonus monitor."""

import json

import pytest
from cliutil import served_sim

from host.cli import main


@pytest.fixture
def ets_sim(tmp_path):
    """`tonus sim` with a weak patient and the short ETS protocol approved, 8x real time."""
    args = ("--patient", "weak", "--speed", "8", "--approve", "examples/protocols/ets-trial-short.toml")
    with served_sim(tmp_path / "sim.log", *args) as url:
        yield url


@pytest.mark.req("ETS-TRIGGER-1", "UX-CLI-1", "SAF-LEVEL-1")
def test_an_ets_session_shows_triggers_and_stimulation_beside_the_emg(ets_sim, capsys, tmp_path):
    # the host that asks for a level stays for the session: a level outlives no host (SAF-LEVEL-1)
    argv = ["--port", ets_sim, "--json", "session", "run", "--level", "20", "--out", str(tmp_path / "s.json")]
    assert main(argv) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    stim = [x for x in lines if x["type"] == "StimEvent"]
    assert {"CHECK", "RAMP_UP", "ON", "RAMP_DOWN", "REST", "READY", "OFF"} >= {x["state"] for x in stim} and stim
    assert [x for x in lines if x["type"] == "note" and x["text"] == "level set to 20.0 mA"]
    progress = [x for x in lines if x["type"] == "progress"]
    assert max(x["stim_ma"] for x in progress) > 0 and max(x["envelope_uv"] for x in progress) > 0, lines
    end = [x for x in lines if x["type"] == "end"]
    assert end and end[0]["triggers"] >= 1
