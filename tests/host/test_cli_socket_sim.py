"""End to end over TCP: `tonus sim` in its own process, the CLI and the HIL suite against it."""

import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from cliutil import served_sim

from hil_tests.watch import Watch
from host.cli import main
from host.client import Client

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def sim_url(tmp_path_factory):
    with served_sim(tmp_path_factory.mktemp("sim") / "sim.log") as url:
        yield url


def tonus(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.req("UX-CLI-1", "SAF-ESTOP-1", "LINK-CLIENT-2")
def test_estop_from_the_cli_latches_a_fault_that_info_shows(sim_url, capsys):
    code, out, _ = tonus(capsys, "--port", sim_url, "--json", "info")
    assert code == 0
    before = json.loads(out)
    assert before["board"] == "sim" and before["fault"] is None and before["state"] in ("IDLE", "DONE")

    assert tonus(capsys, "--port", sim_url, "session", "start", "--demo-seconds", "60")[:2] == (
        0,
        "session: ARMED\n",
    )
    assert tonus(capsys, "--port", sim_url, "estop")[0] == 0

    code, out, _ = tonus(capsys, "--port", sim_url, "--json", "info")
    after = json.loads(out)
    assert code == 0 and after["state"] == "FAULT"
    assert {k: after["fault"][k] for k in ("name", "code", "latched")} == {
        "name": "HOST_ESTOP",
        "code": 2,
        "latched": True,
    }
    assert after["serial"] == before["serial"]  # the same board, across connections

    code, _, err = tonus(capsys, "--port", sim_url, "session", "start", "--demo-seconds", "60")
    assert code == 4
    assert err == (
        "tonus: device refused SESSION_START: FAULT_LATCHED (41) — clear the fault with "
        "'tonus fault clear' after releasing the e-stop\n"
    )
    assert tonus(capsys, "--port", sim_url, "fault", "clear")[:2] == (
        0,
        "fault cleared: the device is IDLE\n",
    )


@pytest.mark.req("HIL-TARGET-1")
def test_the_hil_suite_runs_against_a_socket_target_and_skips_with_reasons(sim_url):
    # the quick tests, and the ones that need what a socket target lacks
    quick = (
        "hello or version or malformed or noise or host_estop or illegal or button or power_cycle or "
        "paused_too_long"
    )
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "hil_tests",
            "--target",
            sim_url,
            "-q",
            "-rs",
            "-p",
            "no:cacheprovider",
            "-k",
            quick,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "failed" not in r.stdout and " passed" in r.stdout
    assert f"target {sim_url} lacks rig" in r.stdout
    assert f"target {sim_url} lacks fast_time" in r.stdout


def _session_run(url, *extra):
    """`tonus session run` in its own process, returned once the session is RUNNING."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "host.cli", "--port", url, "session", "run", "--demo-seconds", "60", *extra],
        cwd=tempfile.mkdtemp(prefix="tonus-run-"),  # where the scores are saved, if the session ends
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    for line in proc.stdout:
        if line.startswith("ARMED -> RUNNING"):
            return proc
    proc.kill()
    pytest.fail(f"the session never ran: {proc.stderr.read()}")


@pytest.mark.req("UX-CLI-1", "SES-RUN-1")
def test_ctrl_c_stops_a_running_session_cleanly(sim_url):
    proc = _session_run(sim_url)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 130
    assert "stopped by Ctrl-C: the device is DONE" in out and err == "tonus: interrupted\n"
    with Client.open(sim_url) as c:
        info = c.info()
    assert info.state == "DONE" and info.session.elapsed_ms < 10_000


@pytest.mark.req("SAF-HEARTBEAT-1")
def test_a_killed_session_run_loses_its_session_to_the_heartbeat(sim_url):
    proc = _session_run(sim_url, "--heartbeat-ms", "500")
    proc.kill()  # no chance to say goodbye
    proc.communicate(timeout=10)
    with Client.open(sim_url) as c:  # a silent observer: it greets, then only listens
        w = Watch(c)
        done = w.state("DONE", 2000)
    assert done.reason == "HEARTBEAT_LOST"
