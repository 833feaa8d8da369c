"""A fixed sample of the fault-injection campaign, one session per fault kind, inside the suite's budget.

The full campaign is `python -m qa.campaign --sessions 500 --seed 1`
(docs/interlocks.md); this runs the first len(FAULTS) sessions of seed 1,
which cover every kind, and shows that the campaign's checks fail when an
interlock is weakened.
"""

from types import SimpleNamespace

import pytest

from firmware import stim
from protocol import faults
from qa import campaign as C

pytestmark = pytest.mark.req("SAF-CAMPAIGN-1")


def test_the_plan_is_seeded_and_covers_every_fault_kind_first():
    a = C.plan(1, 60)
    assert a == C.plan(1, 60) and a != C.plan(2, 60)
    assert [c.fault for c in a[: len(C.FAULTS)]] == list(C.FAULTS)
    assert len({c.seed for c in a}) == 60
    for c in a:
        f = C.FAULTS[c.fault]
        assert 500_000 <= c.at_us < 30_000_000 and c.level_ua >= 3000
        assert c.host or not f.host_only
        assert c.protocol.startswith("ets") or not f.ets_only
        assert (c.heartbeat_ms in C.HEARTBEATS_MS) == c.host


@pytest.mark.req(
    "SAF-ESTOP-1",
    "SAF-CURRENT-1",
    "SAF-IMPEDANCE-1",
    "SAF-CHARGE-1",
    "SAF-PULSE-1",
    "SAF-EXC-1",
    "SAF-ENABLE-1",
    "SAF-WDT-1",
    "SAF-POWER-1",
    "SAF-HEARTBEAT-1",
    "SAF-TIMEOUT-1",
    "SAF-LOG-1",
    "ETS-TRIGGER-1",
)
def test_one_session_per_fault_kind_keeps_every_promise():
    results = C.run(C.plan(1, len(C.FAULTS)))
    failed = [C.describe(r) for r in results if r.problems]
    assert failed == []
    by_kind = {r.case.fault: r for r in results}
    for kind, fault in C.FAULTS.items():
        r = by_kind[kind]
        if fault.codes and r.reaction_us is not None:
            assert r.code in fault.codes, kind
            assert r.reaction_us <= r.deadline_us, kind
    assert by_kind["estop"].reaction_us <= C.ESTOP_DEADLINE_US
    table = C.table(results)
    assert table.count("\n") == len(C.FAULTS) + 1
    assert "| estop | ESTOP | SAF-ESTOP-1 | 1 ms | press | 1 | 1 | ESTOP |" in table


def test_a_weakened_current_check_fails_the_campaign(monkeypatch):
    case = next(c for c in C.plan(1, len(C.FAULTS)) if c.fault == "overcurrent")
    case = case._replace(param=35.0, level_ua=10000)
    assert C.run_case(case).problems == ()
    monkeypatch.setattr(stim, "TOLERANCE_PERCENT", 50)  # 35 % too much would pass unseen
    problems = C.run_case(case).problems
    assert any("did not trip" in p for p in problems), problems


@pytest.mark.req("SAF-CHARGE-1", "SIM-OUT-6")
def test_an_imbalance_reported_under_another_name_fails_the_campaign(monkeypatch):
    case = next(c for c in C.plan(1, len(C.FAULTS)) if c.fault == "charge_imbalance")
    case = case._replace(protocol="stimulation-trial-1min.toml", param=-40.0, level_ua=8000)
    r = C.run_case(case)
    assert r.problems == () and r.code == faults.CHARGE_IMBALANCE and r.reaction_us <= r.deadline_us
    # a firmware that checks under-current first: the same pulse, named CURRENT_MISMATCH
    renamed = dict(vars(faults), CHARGE_IMBALANCE=faults.CURRENT_MISMATCH)
    monkeypatch.setattr(stim, "faults", SimpleNamespace(**renamed))
    problems = C.run_case(case).problems
    assert any("expected CHARGE_IMBALANCE" in p for p in problems), problems


def test_a_late_trip_is_reported(monkeypatch):
    # an e-stop handled by the loop instead of the interrupt: 5 ms, not 1
    case = next(c for c in C.plan(1, len(C.FAULTS)) if c.fault == "estop")
    case = case._replace(at_us=10_000_001)  # 1 µs after a loop pass: the next is 5 ms away
    monkeypatch.setattr("sim.board.SimBoard.estop_irq", lambda self, handler: None)
    r = C.run_case(case)
    assert r.code == faults.ESTOP and r.reaction_us > C.ESTOP_DEADLINE_US
    assert any("deadline" in p for p in r.problems)


def test_the_command_line_prints_the_table_and_fails_on_a_broken_session(capsys, monkeypatch):
    assert C.main(["--sessions", "3", "--seed", "1", "--only", "estop", "--only", "none"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("| injected fault |") and "| estop |" in out and "sessions (seed 1" in out
    # an e-stop input nobody reads
    monkeypatch.setattr("sim.board.SimBoard.estop_irq", lambda self, handler: None)
    monkeypatch.setattr("sim.board.SimBoard.estop_open", lambda self: False)
    assert C.main(["--sessions", "1", "--seed", "1", "--only", "estop"]) == 1
    assert "FAIL #0 estop" in capsys.readouterr().err
