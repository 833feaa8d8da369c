"""ETS on the command line: triggers and stimulation beside the EMG, as `session run --json` shows them."""

import json
from pathlib import Path

import pytest

from host.cli import main

ETS = Path(__file__).resolve().parents[2] / "examples" / "protocols" / "ets-trial-short.toml"
# in-process and unpaced: simulated time waits for this process, so a loaded
# machine cannot cost the heartbeat the session needs
WEAK = "sim://?seed=1&patient=weak&speed=0"


@pytest.mark.req("ETS-TRIGGER-1", "UX-CLI-1", "SAF-LEVEL-1")
def test_an_ets_session_shows_triggers_and_stimulation_beside_the_emg(capsys, tmp_path):
    # the host that asks for a level stays for the session: a level outlives no host (SAF-LEVEL-1)
    argv = [
        "--port",
        WEAK,
        "--json",
        "session",
        "run",
        "--protocol",
        str(ETS),
        "--level",
        "20",
        "--out",
        str(tmp_path / "s.json"),
    ]
    assert main(argv) == 0, capsys.readouterr().err
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    stim = [x for x in lines if x["type"] == "StimEvent"]
    assert {"CHECK", "RAMP_UP", "ON", "RAMP_DOWN", "REST", "READY", "OFF"} >= {
        x["state"] for x in stim
    } and stim
    assert [x for x in lines if x["type"] == "note" and x["text"] == "level set to 20.0 mA"]
    progress = [x for x in lines if x["type"] == "progress"]
    assert max(x["stim_ma"] for x in progress) > 0 and max(x["envelope_uv"] for x in progress) > 0, lines
    end = [x for x in lines if x["type"] == "end"]
    assert end and end[0]["triggers"] >= 1
