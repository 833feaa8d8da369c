"""`tonus selftest` against the simulated board, healthy and broken, and the client's wait for the result."""

import json

import pytest
from cliutil import run_cli
from fakedevice import FakeSerial

from host.client import Client, SelftestResult, StateChanged
from host.transport import LinkError, Port
from protocol import messages as m

HEALTHY = "sim://?seed=0&speed=0"


def _scenario(tmp_path, action, **fields):
    path = tmp_path / "bench.toml"
    extra = "".join(f"{k} = {v}\n" for k, v in fields.items())
    path.write_text(f"[[event]]\nat_ms = 1\naction = '{action}'\n{extra}")
    return f"{HEALTHY}&scenario={path}"


@pytest.mark.req("UX-SELFTEST-1", "DEV-SELFTEST-1")
def test_a_healthy_simulated_board_passes_every_check(capsys):
    # the simulated patient has her probe in place
    code, out, err = run_cli(capsys, "--port", HEALTHY, "selftest", "--probe", "attached")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["check", "result", "measured", "limit"]
    rows = {ln[:13].strip(): ln for ln in lines[1:6]}
    assert set(rows) == {"front end", "lead-off", "current sense", "watchdog", "storage"}
    assert all(" PASS " in ln for ln in rows.values())
    assert (
        "10.0 / 10.0 mA, 5.00 V" in rows["current sense"]
        and "9.0-11.0 mA, 4.50-5.50 V" in rows["current sense"]
    )
    assert "0 % of blocks flagged" in rows["lead-off"] and "(probe attached)" in rows["lead-off"]
    assert lines[-1] == "all 5 checks passed"


@pytest.mark.req("UX-SELFTEST-1")
def test_json_gives_every_measurement(capsys):
    code, out, err = run_cli(capsys, "--port", HEALTHY, "--json", "selftest", "--probe", "attached")
    assert code == 0, err
    data = json.loads(out)
    assert data["passed"] is True and data["probe"] == "attached" and data["port"] == HEALTHY
    checks = {c["check"]: c for c in data["checks"]}
    assert list(checks) == ["FRONT_END", "LEAD_OFF", "CURRENT", "WATCHDOG", "STORAGE"]
    fe = checks["FRONT_END"]
    assert fe["unit"] == "samples" and fe["low"] <= fe["value"] <= fe["high"] and 380 <= fe["value"] <= 420
    cur = checks["CURRENT"]
    assert abs(cur["value"] - 10000) <= 100 and abs(cur["ua_2"] - 10000) <= 100
    assert abs(cur["mv"] - 5000) <= 50 and cur["mv_low"] < cur["mv"] < cur["mv_high"]
    assert 1850 <= checks["WATCHDOG"]["value"] <= 2000
    assert all(c["passed"] and c["why"] is None for c in checks.values())


@pytest.mark.req("UX-SELFTEST-1", "DEV-SELFTEST-1")
def test_lead_off_that_contradicts_the_operator_fails_with_exit_1(capsys):
    # the operator says nothing is plugged in, yet the simulated probe is in place
    code, out, _err = run_cli(capsys, "--port", HEALTHY, "selftest")
    assert code == 1
    row = next(ln for ln in out.splitlines() if ln.startswith("lead-off"))
    assert " FAIL " in row and "100 % (no probe)" in row and "disagrees with --probe" in row
    assert out.splitlines()[-1] == "1 of 5 checks FAILED: lead-off"


@pytest.mark.req("UX-SELFTEST-1", "SAF-SELFTEST-1")
def test_a_stuck_current_sense_fails_the_current_check(capsys, tmp_path):
    port = _scenario(tmp_path, "sense_stuck", ua=3000)
    code, out, _err = run_cli(capsys, "--port", port, "selftest", "--probe", "attached")
    assert code == 1
    row = next(ln for ln in out.splitlines() if ln.startswith("current sense"))
    assert " FAIL " in row and "3.0 / 3.0 mA" in row and "the current source or its sense" in row
    assert out.splitlines()[-1] == "1 of 5 checks FAILED: current sense"


@pytest.mark.req("UX-SELFTEST-1")
def test_a_stalled_front_end_fails_and_says_where_to_look(capsys, tmp_path):
    port = _scenario(tmp_path, "stall_emg")
    code, out, _err = run_cli(capsys, "--port", port, "--json", "selftest", "--probe", "attached")
    assert code == 1
    checks = {c["check"]: c for c in json.loads(out)["checks"]}
    assert checks["FRONT_END"]["why"] == "NO_SAMPLES" and checks["FRONT_END"]["value"] == 0
    assert checks["CURRENT"]["passed"] and checks["STORAGE"]["passed"]


@pytest.mark.req("UX-SELFTEST-1", "SAF-SELFTEST-1")
def test_refused_with_the_estop_open(capsys, tmp_path):
    code, out, err = run_cli(capsys, "--port", _scenario(tmp_path, "estop_press"), "selftest")
    assert code == 4 and out == ""
    assert "device refused SELFTEST: ESTOP_ACTIVE" in err and "release the emergency stop" in err


@pytest.mark.req("SAF-SELFTEST-1", "DEV-SELFTEST-1")
def test_the_pulses_go_into_the_dummy_load_and_never_reach_the_patient():
    from sim.runner import Simulator
    from sim.urlhandler.protocol_sim import Serial

    sim = Simulator(seed=1)
    try:
        with Client(Port(Serial.attached(sim), "sim://attached")) as client:
            result = client.selftest(probe_attached=True)
        assert result.passed, result.failed
        out = sim.board.output
        assert sim.rig.pulses() == []  # nothing reached the electrodes
        assert len(out.dummy_trace) >= 5 and all(abs(p.ua1 - 10000) < 1 for p in out.dummy_trace)
        assert [ohms for _t, ohms in out.dummy_changes] == [500.0, None]
        on = [t for t, enabled in out.changes if enabled]
        assert len(on) == 1 and out.dummy_changes[0][0] < on[0]  # the relay first, then the output
        assert not sim.rig.output_on() and out.changes[-1][0] <= out.dummy_changes[-1][0]
    finally:
        sim.close()


# -- the client's wait, against a scripted link ---------------------------------------


class SelftestDevice(FakeSerial):
    def __init__(self, result=True):
        super().__init__()
        self.result = result

    def response(self, seq, mtype, body):
        if mtype != m.SELFTEST:
            return super().response(seq, mtype, body)
        self.push(m.EVENT, m.STATE_CHANGED, from_state=m.IDLE, to_state=m.IDLE, reason=0, time_ms=1)
        if self.result:
            check = {m.ST_CHECK: m.CHECK_STORAGE, m.ST_PASSED: 0, m.ST_VALUE: 2, m.ST_LOW: 0, m.ST_HIGH: 0}
            check[m.ST_WHY] = m.WHY_OUT_OF_RANGE
            self.push(m.EVENT, m.SELFTEST_RESULT, time_ms=900, passed=False, checks=[check])
        return m.build(m.RESPONSE, seq, m.SELFTEST, started=True)


@pytest.mark.req("UX-SELFTEST-1", "LINK-CLIENT-1")
def test_the_client_returns_the_result_and_keeps_other_events_queued():
    dev = SelftestDevice()
    client = Client(Port(dev), timeout=0.05)
    r = client.selftest()
    assert isinstance(r, SelftestResult) and not r.passed and r.time_ms == 900
    (c,) = r.checks
    assert (c.check, c.passed, c.value, c.unit, c.why) == (
        "STORAGE",
        False,
        2,
        "damaged records",
        "OUT_OF_RANGE",
    )
    assert dev.requests[-1][2:] == [m.SELFTEST, {0: False}]
    assert isinstance(client.poll(), StateChanged) and client.poll() is None


@pytest.mark.req("UX-SELFTEST-1")
def test_a_result_that_never_comes_is_a_link_error_that_says_what_to_do():
    client = Client(Port(SelftestDevice(result=False)), timeout=0.05)
    with pytest.raises(LinkError, match=r"sent no result within 0\.2 s.*tonus info"):
        client.selftest(timeout=0.2)
