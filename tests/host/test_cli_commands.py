"""The `tonus` commands: exit codes from one place, --json shapes, port resolution.

Commands talk to the in-process simulator (the real firmware), so what they
print is what a board says.
"""

import json
from types import SimpleNamespace

import pytest

from host.cli import main
from host.discovery import MICROPYTHON_PID, RASPBERRY_PI_VID

SIM = "sim://?seed=1&speed=0"
INFO_KEYS = {"firmware_version", "board", "serial", "state", "fault", "protocol", "limits"}


@pytest.fixture
def no_boards(monkeypatch):
    monkeypatch.setattr("serial.tools.list_ports.comports", list)
    monkeypatch.delenv("TONUS_PORT", raising=False)


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def json_lines(out):
    return [json.loads(line) for line in out.splitlines()]


@pytest.mark.req("UX-CLI-1")
def test_info_json_has_the_documented_keys(capsys):
    code, out, err = run(capsys, "--port", SIM, "--json", "info")
    assert code == 0 and err == ""
    info = json.loads(out)
    assert info.keys() >= INFO_KEYS
    assert info["state"] == "IDLE" and info["fault"] is None and info["board"] == "sim"
    assert info["limits"]["emg_rate_hz"] == 2000 and info["link"]["rx_dropped"] == 0


@pytest.mark.req("UX-CLI-1")
def test_info_for_people(capsys):
    code, out, _ = run(capsys, "--port", SIM, "info")
    assert code == 0
    assert "state     IDLE" in out and "fault     none" in out and "e-stop    closed" in out


@pytest.mark.req("UX-CLI-1", "SAF-STATE-1")
def test_a_refusal_exits_4_with_the_devices_reason(capsys):
    code, out, err = run(capsys, "--port", SIM, "session", "pause")
    assert code == 4 and out == ""
    assert err == "tonus: device refused SESSION_PAUSE: ILLEGAL_STATE (40) — PAUSE not allowed in IDLE\n"


@pytest.mark.req("UX-CLI-1")
def test_a_refusal_in_json_mode_leaves_stdout_for_results(capsys):
    code, out, err = run(capsys, "--port", SIM, "--json", "fault", "clear")
    assert (code, out) == (4, "")
    assert err == "tonus: device refused FAULT_CLEAR: ILLEGAL_STATE (40) — no fault to clear\n"


@pytest.mark.req("UX-CLI-1")
def test_a_demo_length_the_device_refuses(capsys):
    code, _, err = run(capsys, "--port", SIM, "session", "start", "--demo-seconds", "5")
    assert code == 4 and "BAD_FIELD (32)" in err and "10..3600" in err


@pytest.mark.req("UX-CLI-1")
@pytest.mark.parametrize(
    "argv",
    [
        ["session"],
        ["session", "start", "--demo-seconds", "0"],
        ["monitor", "--duration", "-1"],
        ["frobnicate"],
    ],
)
def test_usage_errors_exit_2(capsys, argv):
    assert run(capsys, "--port", SIM, *argv)[0] == 2


@pytest.mark.req("UX-CLI-1", "LINK-CLIENT-1")
def test_a_link_that_talks_nonsense_exits_3_with_a_hexdump(capsys):
    # loop:// echoes our own HELLO back: a device never sends requests
    code, _, err = run(capsys, "--port", "loop://", "info")
    assert code == 3
    assert err.startswith("tonus: the device sent a request\n  0000  84 00 01 01 a2")


@pytest.mark.req("UX-CLI-1")
def test_a_port_that_cannot_open_exits_3(capsys):
    code, _, err = run(capsys, "--port", "/dev/tonus-no-such-board", "info")
    assert code == 3 and "does not exist" in err


@pytest.mark.req("UX-CLI-1", "LINK-CLIENT-2")
def test_without_port_or_board_the_user_is_told_to_pass_port(capsys, no_boards):
    code, _, err = run(capsys, "info")
    assert code == 3 and "pass --port" in err


@pytest.mark.req("UX-CLI-1")
def test_tonus_port_from_the_environment(capsys, no_boards, monkeypatch):
    monkeypatch.setenv("TONUS_PORT", SIM)
    code, out, _ = run(capsys, "--json", "info")
    assert code == 0 and json.loads(out)["port"] == SIM


@pytest.mark.req("LINK-CLIENT-2", "UX-CLI-1")
def test_devices_lists_boards_and_id_picks_one(capsys, monkeypatch):
    ours = SimpleNamespace(
        device=SIM,
        vid=RASPBERRY_PI_VID,
        pid=MICROPYTHON_PID,
        serial_number="5EED0001",
        description="Board in FS mode",
        manufacturer="MicroPython",
        product=None,
        location=None,
    )
    other = SimpleNamespace(
        device="/dev/ttyUSB0",
        vid=0x0403,
        pid=0x6001,
        serial_number="X",
        description="FTDI",
        manufacturer=None,
        product=None,
        location=None,
    )
    monkeypatch.setattr("serial.tools.list_ports.comports", lambda: [other, ours])
    code, out, _ = run(capsys, "--json", "devices")
    assert code == 0 and [d["serial_number"] for d in json.loads(out)] == ["5EED0001"]
    code, out, _ = run(capsys, "--port", "id:5eed0001", "--json", "info")
    assert code == 0 and json.loads(out)["board"] == "sim"


@pytest.mark.req("UX-CLI-1")
def test_devices_with_none_attached(capsys, no_boards):
    assert run(capsys, "--json", "devices")[:2] == (0, "[]\n")
    assert "no board attached (looking for USB 2E8A:0005)" in run(capsys, "devices")[1]


@pytest.mark.req("UX-CLI-1", "SAF-ESTOP-1")
def test_estop_reports_the_fault_state(capsys):
    code, out, _ = run(capsys, "--port", SIM, "--json", "estop")
    assert code == 0 and json.loads(out) == {"request": "ESTOP", "state": "FAULT"}


@pytest.mark.req("UX-CLI-1", "SES-RUN-1", "SAF-HEARTBEAT-1")
def test_session_run_follows_the_session_to_its_end(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "--port", SIM, "--json", "session", "run", "--demo-seconds", "16")
    assert code == 0, err
    lines = json_lines(out)
    states = [(x["from_state"], x["to_state"], x["reason"]) for x in lines if x["type"] == "StateChanged"]
    assert states == [
        ("IDLE", "ARMED", "REQUEST"),
        ("ARMED", "RUNNING", "CHECKS_PASSED"),
        ("RUNNING", "DONE", "FINISHED"),
    ]
    assert [x["cue"] for x in lines if x["type"] == "Cue"] == ["REST", "CONTRACT", "RELAX"]
    elapsed = [x["elapsed_ms"] for x in lines if x["type"] == "progress"]
    assert elapsed == sorted(elapsed) and len(elapsed) >= 15
    end = lines[-2]
    assert end["type"] == "end" and end["state"] == "DONE" and end["duration_ms"] == 16000
    assert abs(end["elapsed_ms"] - 16000) <= 25  # one frame
    assert "DONE (FINISHED)" in end["message"]
    scores = lines[-1]
    assert scores["type"] == "scores" and scores["scores"]["practised_s"] == pytest.approx(16, abs=0.1)
    saved = json.loads((tmp_path / scores["saved"]).read_text())
    assert saved["scores"] == scores["scores"] and saved["device"] == scores["device"]


@pytest.mark.req("UX-CLI-1")
def test_session_run_for_people_in_a_log(capsys, tmp_path):
    out_file = tmp_path / "s.json"
    code, out, _ = run(
        capsys, "--port", SIM, "session", "run", "--demo-seconds", "10", "--out", str(out_file)
    )
    assert code == 0
    assert "ARMED -> RUNNING (CHECKS_PASSED)" in out and "cue REST for 10.0 s" in out
    assert "RUNNING  cue REST" in out and "µV [" in out
    assert (
        "session ended DONE (FINISHED) after 10.0 of 10.0 s\nscore: practised 10.0 s, ended finished" in out
    )
    assert out.rstrip().endswith(f"saved to {out_file}") and out_file.exists()


@pytest.mark.req("UX-CLI-1")
def test_monitor_stops_after_its_duration(capsys):
    code, out, _ = run(capsys, "--port", SIM, "--json", "monitor", "--duration", "0.3")
    assert code == 0
    lines = json_lines(out)
    assert lines[-1]["type"] == "end" and lines[-1]["frames"] > 0 and lines[-1]["state"] == "IDLE"
    assert any(x["type"] == "progress" for x in lines)


@pytest.mark.req("UX-CLI-1")
def test_json_is_accepted_after_the_command_too(capsys):
    assert main(["link-check", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["protocol_version"] >= 1
    assert main(["--port", "sim://?seed=0&speed=0", "info", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["state"] == "IDLE"
    assert main(["link-check"]) == 0
    assert not capsys.readouterr().out.startswith("{")
