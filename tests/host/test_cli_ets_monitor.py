"""ETS through the command line on a served simulator, watched with tonus monitor."""

import json
import selectors
import subprocess
import sys
import time
from pathlib import Path

import pytest

from host.cli import main
from host.client import Client, StimEvent

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 30


@pytest.fixture
def ets_sim(tmp_path):
    """`tonus sim` with a weak patient and the short ETS protocol approved, 8x real time."""
    log = tmp_path / "sim.log"
    with open(log, "w") as err:
        proc = subprocess.Popen(
            [
                sys.executable, "-m", "host.cli", "sim", "--listen", "127.0.0.1:0", "--patient", "weak",
                "--speed", "8", "--approve", "examples/protocols/ets-trial-short.toml",
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
    try:
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ)
            if not sel.select(START_TIMEOUT_S):
                pytest.fail("tonus sim printed no URL:\n" + log.read_text())
        yield proc.stdout.readline().strip()
    finally:
        proc.terminate()
        proc.wait(10)


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
