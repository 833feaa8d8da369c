"""The simulated output stage through the HAL: pulse timing, load, dynamic enable, faults.

The board is driven directly, the way firmware/stim.py and firmware/safety.py
would drive it: a 5 ms loop that keeps the enable alive, with calls at
exact simulated instants in between. No firmware runs here.
"""

import math
from types import SimpleNamespace

import pytest

from firmware import hal as H
from sim import scenario as scn
from sim.board import SimBoard, serial_for_seed
from sim.clock import Clock
from sim.flash import Flash
from sim.frontend import EmgFrontEnd
from sim.output import COMPLIANCE_V, DEFAULT_CDL_UF, DEFAULT_RCT_OHMS, DEFAULT_RS_OHMS, OutputStage
from sim.rig import Rig

HOLD_US = H.OUT_HOLD_MIN_MS * 1000
TICK_US = 5000


class Bench:
    """A SimBoard with its output stage, a clock, and a rig acting on them."""

    def __init__(self, tmp_path):
        self.clock = Clock()
        self.board = SimBoard(
            self.clock,
            EmgFrontEnd(None, SimBoard.emg_rate_hz),  # never synced: no EMG here
            Flash(tmp_path / "flash"),
            OutputStage(SimBoard.hw_max_ua),
            serial_for_seed(0),
        )
        self.out = self.board.output
        self.rig = Rig(SimpleNamespace(board=self.board, clock=self.clock))

    def at(self, us):
        self.clock.advance_to(us)

    def loop(self, until_us, keepalive=True):
        """The firmware's main loop: one pass (a keepalive) per 5 ms tick up to until_us."""
        while True:
            nxt = (self.clock.us // TICK_US + 1) * TICK_US
            if nxt > until_us:
                break
            self.clock.advance_to(nxt)
            if keepalive:
                self.board.out_keepalive()
        self.clock.advance_to(until_us)

    def train(self, f, phase, gap, ua, at_us=0):
        """Enable, configure, set the amplitude and start, all at at_us."""
        self.at(at_us)
        b = self.board
        b.out_enable(True)
        b.stim_configure(f, phase, gap)
        b.stim_amplitude(ua)
        b.stim_start()

    def sense(self):
        out = [0, 0, 0, 0]
        self.board.stim_sense(out)
        return out

    def pulses(self):
        return self.rig.pulses()


@pytest.fixture
def bench(tmp_path):
    return Bench(tmp_path)


# -- timing -----------------------------------------------------------------------


@pytest.mark.req("SIM-OUT-1")
def test_1hz_450us_pulses_start_exactly_on_the_grid_with_exact_phases(bench):
    bench.train(1, 450, 100, 20000, at_us=1000)
    bench.loop(10_000_000)
    p = bench.pulses()
    assert [x.t_us for x in p] == [1000 + k * 1_000_000 for k in range(10)]
    assert all(x.set_ua == 20000 and not x.cut for x in p)
    # constant current into the default electrode: charge = I * phase exactly
    assert all(
        x.q1_nc == pytest.approx(20000 * 450e-3) and x.q2_nc == pytest.approx(20000 * 450e-3) for x in p
    )
    assert bench.sense()[H.SENSE_PULSES] == 10
    # the gap is where it should be: cut 30 µs into it, then 200 µs into the second phase
    bench.loop(10_001_000 + 450 + 30)
    bench.board.out_enable(False)
    assert bench.pulses()[-1].cut and bench.pulses()[-1].q2_nc == 0
    bench.train(1, 450, 100, 20000, at_us=11_000_000)
    bench.at(11_000_000 + 450 + 100 + 200)
    bench.board.out_enable(False)
    last = bench.pulses()[-1]
    assert last.cut and last.q2_nc == pytest.approx(20000 * 200e-3)
    assert last.q1_nc == pytest.approx(20000 * 450e-3)
    assert bench.sense()[H.SENSE_PULSES] == 0  # a cut pulse is not a completed one


@pytest.mark.req("SIM-OUT-1")
def test_100hz_50us_and_a_non_dividing_rate_never_drift(bench):
    bench.train(100, 50, 0, 5000, at_us=7)
    bench.loop(1_000_007)
    assert [x.t_us for x in bench.pulses()] == [7 + k * 10_000 for k in range(100)]
    assert all(x.q1_nc == pytest.approx(5000 * 50e-3) for x in bench.pulses())
    bench.board.stim_configure(3, 200, 50)  # stops the 100 Hz train
    bench.board.stim_start()
    start = bench.clock.us
    bench.loop(start + 100_001_000)
    new = [x.t_us for x in bench.pulses() if x.t_us >= start]
    assert new == [start + k * 1_000_000 // 3 for k in range(301)]
    assert new[-1] == start + 100_000_000  # 300 periods of 333 333.3 µs, to the µs


@pytest.mark.req("SIM-OUT-1")
def test_amplitude_latches_at_a_pulse_start_and_stop_finishes_the_pulse(bench):
    bench.train(50, 400, 50, 10000)
    bench.loop(20_000 + 100)  # 100 µs into pulse 1
    bench.board.stim_amplitude(30000)  # for the next pulses, not this one
    bench.board.stim_stop()  # ends after the pulse in progress
    bench.loop(200_000)
    p = bench.pulses()
    assert [(x.t_us, x.set_ua, x.cut) for x in p] == [(0, 10000, False), (20_000, 10000, False)]
    assert bench.out.enabled  # stopping the train leaves the enable alone
    bench.board.stim_start()
    bench.loop(201_000)
    assert [(x.t_us, x.set_ua) for x in bench.pulses()[2:]] == [(200_000, 30000)]
    assert bench.sense()[H.SENSE_PULSES] == 1  # counted since this start


@pytest.mark.req("SIM-OUT-1")
def test_no_pulse_while_disabled_and_off_cuts_the_pulse_in_progress(bench):
    b = bench.board
    b.stim_configure(50, 300, 0)
    b.stim_amplitude(10000)
    b.stim_start()  # started but not enabled
    bench.loop(1_000_000, keepalive=False)
    assert bench.pulses() == [] and bench.out.emitted == 0
    b.out_enable(True)  # 1 s is a grid point: the first pulse comes now
    bench.loop(1_040_150)  # 150 µs into the third pulse
    b.out_enable(False)
    p = bench.pulses()
    assert [(x.t_us, x.cut) for x in p] == [(1_000_000, False), (1_020_000, False), (1_040_000, True)]
    assert p[-1].q1_nc == pytest.approx(10000 * 150e-3) and p[-1].q2_nc == 0
    b.out_enable(True)  # off stopped the train: re-enabling does not resume it
    bench.loop(2_000_000)
    assert bench.pulses()[-1].t_us == 1_040_000
    assert bench.out.emitted == 3


@pytest.mark.req("SIM-OUT-1")
def test_a_reset_cuts_the_pulse_and_clears_amplitude_and_timing(bench):
    bench.train(10, 450, 100, 40000)
    bench.loop(100_200)
    bench.board.hardware_reset(H.RESET_WATCHDOG)
    assert not bench.board.out_enabled()
    assert list(bench.out.changes) == [(0, True), (100_200, False)]
    assert bench.pulses()[-1].cut and bench.pulses()[-1].t_us == 100_000
    assert bench.sense() == [0, 0, 0, 0]
    with pytest.raises(RuntimeError):
        bench.board.stim_start()  # the PIO program is gone
    bench.board.out_enable(True)
    bench.board.stim_configure(10, 450, 100)
    bench.board.stim_start()  # amplitude 0 after the reset
    bench.loop(150_000)
    assert bench.pulses()[-1].set_ua == 0 and bench.sense()[H.SENSE_UA] == 0


@pytest.mark.req("SIM-OUT-1")
def test_timing_and_amplitude_outside_the_contract_are_refused(bench):
    b = bench.board
    for args in ((0, 100, 0), (100, 5000, 100), (10, 0, 0), (10, 100, -1), (10.5, 100, 0), (True, 100, 0)):
        with pytest.raises(ValueError, match=r"must be an integer|do not fit in a period"):
            b.stim_configure(*args)
    for ua in (-100, 150, b.hw_max_ua + 100, 1000.0):
        with pytest.raises(ValueError, match="amplitude must be"):
            b.stim_amplitude(ua)
    b.stim_configure(100, 450, 100)  # exactly fits: 1000 µs of 10 000
    b.stim_amplitude(b.hw_max_ua)


# -- load -----------------------------------------------------------------------------


@pytest.mark.req("SIM-OUT-2")
def test_a_healthy_stage_is_charge_balanced_pulse_by_pulse(bench):
    bench.train(50, 450, 100, 100000)  # full scale into the default probe: under compliance
    for ua in range(100000, 0, -9900):
        bench.board.stim_amplitude(ua // 100 * 100)
        bench.loop(bench.clock.us + 100_000)
    p = bench.pulses()
    assert len(p) > 50
    assert all(abs(x.net_nc) < 1e-6 * x.q1_nc + 1e-9 for x in p)
    s = bench.sense()
    assert s[H.SENSE_UA] == s[H.SENSE_UA_2] == p[-1].set_ua
    # the electrode voltage: I * Rs plus what the first phase put on Cdl
    i = p[-1].set_ua * 1e-6
    assert s[H.SENSE_MV] >= i * DEFAULT_RS_OHMS * 1000
    assert s[H.SENSE_MV] <= (i * DEFAULT_RS_OHMS + i * 450e-6 / (DEFAULT_CDL_UF * 1e-6)) * 1000 + 1


@pytest.mark.req("SIM-OUT-2")
def test_compliance_caps_the_current_into_a_high_load(bench):
    bench.rig.set_load_ohms(10_000)
    bench.train(50, 300, 50, 20000)
    bench.loop(100_000)
    s = bench.sense()
    assert s[H.SENSE_UA] == s[H.SENSE_UA_2] == int(COMPLIANCE_V / 10_000 * 1e6)  # 6 mA, not 20
    assert s[H.SENSE_MV] == COMPLIANCE_V * 1000
    bench.board.stim_amplitude(5000)  # under compliance: the set current flows
    bench.loop(200_000)
    assert bench.sense()[1:] == [5000, 5000, 50_000]


@pytest.mark.req("SIM-OUT-2")
def test_a_compliance_limited_randles_load_matches_a_fine_step_integration(bench):
    rs, cdl_uf, rct = 550.0, 2.0, 4000.0
    bench.rig.set_electrode(rs, cdl_uf, rct)
    bench.train(50, 450, 100, 100000)  # 55 V at the edge, then Cdl pushes it past 60 V
    bench.loop(20_000)
    got = bench.pulses()[0]
    want = _integrate(100e-3, rs, cdl_uf * 1e-6, rct, 450e-6, 100e-6)
    assert got.q1_nc == pytest.approx(want[0], rel=2e-3)
    assert got.q2_nc == pytest.approx(want[1], rel=2e-3)
    assert got.mv == pytest.approx(COMPLIANCE_V * 1000)
    assert got.ua1 < 100000  # compliance cut the first phase
    assert got.net_nc < -1000  # the second phase, helped by Cdl at first, delivered more: imbalance
    assert got.q2_nc / 450e-6 * 1e-3 == pytest.approx(got.ua2)


def _integrate(amps, rs, cdl, rct, phase, gap, dt=1e-8):
    """(q1, q2) in nC by forward Euler on the same circuit: an independent check of the closed form."""
    x = 0.0
    q = []
    for polarity, dur in ((1, phase), (0, gap), (-1, phase)):
        charge = 0.0
        for _ in range(round(dur / dt)):
            if polarity:
                i = min(amps, (COMPLIANCE_V - polarity * x) / rs)  # in the drive's direction
                charge += i * dt
                x += (polarity * i - x / rct) * dt / cdl
            else:
                x -= x * (1 / rs + 1 / rct) * dt / cdl  # legs grounded
        if polarity:
            q.append(charge * 1e9)
    return q


@pytest.mark.req("SIM-OUT-2")
def test_the_hardware_ceiling_caps_an_over_delivering_source(bench):
    bench.rig.over_current(30)
    bench.train(50, 200, 0, SimBoard.hw_max_ua)
    bench.loop(50_000)
    assert bench.sense()[H.SENSE_UA] == SimBoard.hw_max_ua
    assert max(x.ua1 for x in bench.pulses()) <= SimBoard.hw_max_ua


# -- dynamic enable ---------------------------------------------------------------------


@pytest.mark.req("SIM-OUT-3")
def test_a_lapsed_keepalive_drops_the_output_within_the_hold_time(bench):
    bench.train(100, 450, 100, 20000, at_us=1_000)
    bench.loop(500_000)
    last_keepalive = 500_000
    assert bench.rig.output_on()
    # the firmware hangs: no more keepalives
    bench.loop(last_keepalive + HOLD_US - 1, keepalive=False)
    assert bench.rig.output_on()
    bench.loop(last_keepalive + 10 * HOLD_US, keepalive=False)
    assert not bench.rig.output_on()
    assert list(bench.out.changes)[-1] == (last_keepalive + HOLD_US, False)
    assert list(bench.out.lapses) == [last_keepalive + HOLD_US]
    p = bench.pulses()
    assert p[-1].t_us < last_keepalive + HOLD_US  # nothing after the drop
    assert p[-1].cut == (p[-1].t_us + 1000 > last_keepalive + HOLD_US)
    # a firmware that comes back and only pumps does not get the output back
    bench.loop(bench.clock.us + 100_000)
    assert not bench.board.out_enabled()
    assert bench.pulses()[-1] == p[-1]


@pytest.mark.req("SIM-OUT-3")
def test_the_enable_holds_through_keepalives_and_an_enable_edge_arms_it(bench):
    b = bench.board
    bench.at(3_000)
    b.out_keepalive()  # before enabling: nothing to hold
    b.out_enable(True)
    bench.at(3_000 + HOLD_US - 1)
    assert b.out_enabled()
    b.out_enable(True)  # a static level pumps nothing
    bench.at(3_000 + HOLD_US)
    assert not b.out_enabled()
    b.out_enable(True)
    bench.loop(60_000_000)  # a minute of 5 ms keepalives
    assert b.out_enabled()
    assert list(bench.out.lapses) == [3_000 + HOLD_US]
    assert bench.rig.output_ever_enabled()


# -- faults, as stim_sense shows them --------------------------------------------------------


def _sensed_after(bench, ms):
    bench.loop(bench.clock.us + ms * 1000)
    return bench.sense()


@pytest.mark.req("SIM-OUT-4")
def test_over_and_under_current_show_in_the_sensed_current(bench):
    bench.train(50, 250, 50, 20000)
    healthy = _sensed_after(bench, 100)
    assert healthy[1:3] == [20000, 20000]
    bench.rig.over_current(20)
    over = _sensed_after(bench, 100)
    assert over[1:3] == [24000, 24000]
    assert over[H.SENSE_MV] > healthy[H.SENSE_MV]
    bench.rig.over_current(-50)
    assert _sensed_after(bench, 100)[1:3] == [10000, 10000]
    bench.rig.over_current(0)
    assert _sensed_after(bench, 100)[1:3] == [20000, 20000]


@pytest.mark.req("SIM-OUT-4")
def test_a_stuck_or_drifting_sense_misreads_while_the_load_gets_the_real_current(bench):
    bench.train(50, 250, 50, 20000)
    bench.rig.stick_sense(0)
    s = _sensed_after(bench, 100)
    assert s[1:3] == [0, 0]
    assert s[H.SENSE_MV] > 0  # the voltage channel still sees the pulse
    assert bench.pulses()[-1].ua1 == pytest.approx(20000)
    bench.board.stim_amplitude(40000)
    assert _sensed_after(bench, 100)[1:3] == [0, 0]
    bench.rig.heal_sense()
    bench.rig.drift_sense(10)  # +10 % per minute
    assert _sensed_after(bench, 100)[H.SENSE_UA] == pytest.approx(40000, rel=2e-3)
    after_1 = _sensed_after(bench, 60_000)[H.SENSE_UA]
    after_2 = _sensed_after(bench, 60_000)[H.SENSE_UA]
    assert after_1 == pytest.approx(44000, rel=2e-3)
    assert after_2 == pytest.approx(48000, rel=2e-3)
    assert bench.pulses()[-1].ua1 == pytest.approx(40000)  # only the reading drifts


@pytest.mark.req("SIM-OUT-4")
def test_open_and_short_loads_have_their_signatures(bench):
    bench.train(50, 250, 50, 30000)
    normal = _sensed_after(bench, 100)
    bench.rig.open_load()
    s = _sensed_after(bench, 100)
    assert s[1:3] == [0, 0] and s[H.SENSE_MV] == COMPLIANCE_V * 1000
    bench.rig.short_load()
    s = _sensed_after(bench, 100)
    assert s[1:3] == [30000, 30000] and s[H.SENSE_MV] <= 10
    bench.rig.set_electrode()
    assert _sensed_after(bench, 100)[1:] == normal[1:]


@pytest.mark.req("SIM-OUT-4")
def test_a_stalled_generator_emits_nothing_until_it_recovers(bench):
    bench.train(50, 250, 50, 30000)
    count = _sensed_after(bench, 100)[H.SENSE_PULSES]
    bench.rig.stall_pulses()
    emitted = bench.out.emitted
    assert _sensed_after(bench, 1000)[H.SENSE_PULSES] == count
    assert bench.out.emitted == emitted and bench.rig.output_on()  # enabled, started, silent
    bench.rig.stall_pulses(False)
    t = bench.clock.us
    assert _sensed_after(bench, 100)[H.SENSE_PULSES] == count + 5
    assert bench.pulses()[-5].t_us == t  # back on the original grid


@pytest.mark.req("SIM-OUT-6")
@pytest.mark.parametrize("load", ["probe", "dummy"])
def test_an_unbalanced_second_phase_leaves_net_charge_while_the_first_stays_right(bench, load):
    if load == "dummy":
        bench.board.dummy_load(True)
    trace = bench.out.dummy_trace if load == "dummy" else bench.out.trace
    bench.train(50, 200, 50, 20000)
    bench.loop(100_000)
    assert max(abs(p.net_nc) for p in trace) < 1e-6
    bench.rig.unbalance_phases(-30)
    s = _sensed_after(bench, 100)
    assert s[1:3] == [20000, 14000]
    p = trace[-1]
    assert p.ua1 == pytest.approx(20000) and p.ua2 == pytest.approx(14000)
    assert p.net_nc == pytest.approx(0.3 * 20000e-6 * 200e-6 * 1e9)  # 1.2 µC per pulse stays in
    bench.rig.over_current(10)  # the second phase follows the first: 30 % short of what flows
    assert _sensed_after(bench, 100)[1:3] == [22000, 15400]
    bench.rig.over_current(0)
    bench.rig.unbalance_phases(25)
    assert _sensed_after(bench, 100)[1:3] == [20000, 25000]
    bench.rig.unbalance_phases(0)
    assert _sensed_after(bench, 100)[1:3] == [20000, 20000]
    assert abs(trace[-1].net_nc) < 1e-6


@pytest.mark.req("SIM-OUT-6")
def test_the_phase_fault_comes_from_scenarios_and_bad_sizes_are_refused(bench):
    bench.rig.apply(scn.event(0, "phases_unbalanced", percent=-50))
    bench.train(50, 200, 50, 10000)
    assert _sensed_after(bench, 100)[1:3] == [10000, 5000]
    for fields, message in (
        ({"percent": -100}, "percent must be a number > -100"),
        ({"percent": "half"}, "percent must be a finite number"),
        ({}, "needs field 'percent'"),
    ):
        with pytest.raises(ValueError, match=message):
            scn.event(0, "phases_unbalanced", **fields)
    for bad in (-100, math.nan, True):
        with pytest.raises(ValueError, match="percent must be"):
            bench.rig.unbalance_phases(bad)
    assert _sensed_after(bench, 100)[1:3] == [10000, 5000]  # a refused change leaves the fault as it was


@pytest.mark.req("SIM-OUT-4")
def test_fault_actions_from_scenarios_reach_the_stage_and_bad_arguments_are_refused(bench):
    events = scn.loads(
        """
[[event]]
at_ms = 0
action = "over_current"
percent = 25
[[event]]
at_ms = 0
action = "electrode"
rs_ohms = 800
[[event]]
at_ms = 0
action = "sense_stuck"
ua = 1234
[[event]]
at_ms = 0
action = "stall_pulses"
on = false
"""
    )
    for e in events:
        bench.rig.apply(e)
    bench.train(50, 250, 50, 40000)
    assert _sensed_after(bench, 100)[1:3] == [1234, 1234]
    assert bench.pulses()[-1].ua1 == pytest.approx(50000)
    assert bench.out.load_ohms == 800
    for e in (scn.event(0, "sense_ok"), scn.event(0, "load_open"), scn.event(0, "load_short")):
        bench.rig.apply(e)
    assert bench.out.load_ohms < 1
    assert scn.event(0, "electrode").args == {
        "rs_ohms": DEFAULT_RS_OHMS,
        "cdl_uf": DEFAULT_CDL_UF,
        "rct_ohms": DEFAULT_RCT_OHMS,
    }
    assert scn.event(0, "sense_drift", percent_per_min=-2).args == {"percent_per_min": -2.0}
    bad = [
        ("over_current", {"percent": -100}, "percent must be a number > -100"),
        ("over_current", {}, "needs field 'percent'"),
        ("sense_stuck", {"ua": -1}, "ua must be an integer >= 0"),
        ("sense_stuck", {"ua": 1.5}, "ua must be an integer >= 0"),
        ("sense_drift", {"percent_per_min": math.inf}, "percent_per_min must be a finite number"),
        ("electrode", {"cdl_uf": 0}, "cdl_uf must be a positive number"),
        ("stall_pulses", {"on": 1}, "on must be true or false"),
    ]
    for action, fields, message in bad:
        with pytest.raises(ValueError, match=message):
            scn.event(0, action, **fields)
    for call, message in (
        (lambda: bench.rig.over_current(-120), "percent must be > -100"),
        (lambda: bench.rig.stick_sense(-5), "stuck reading must be an integer >= 0"),
        (lambda: bench.rig.drift_sense(math.nan), "drift must be a finite number"),
        (lambda: bench.rig.set_electrode(rct_ohms=-1), "rct_ohms must be > 0"),
        (lambda: bench.rig.set_load_ohms(0), "load must be > 0"),
    ):
        with pytest.raises(ValueError, match=message):
            call()


# -- reproducible and fast ----------------------------------------------------------------------


def _session(bench, minutes):
    bench.train(50, 450, 100, 0)
    end = minutes * 60_000_000
    ua = 0
    while bench.clock.us < end:
        ua = min(ua + 500, 60000)
        bench.board.stim_amplitude(ua)
        bench.loop(bench.clock.us + 200_000)
        bench.sense()


@pytest.mark.req("SIM-OUT-5")
def test_identical_inputs_give_identical_traces(tmp_path):
    runs = []
    for i in range(2):
        bench = Bench(tmp_path / str(i))
        bench.rig.set_electrode(rs_ohms=900)  # compliance-limited at the top: the hard path
        _session(bench, 0.5)
        runs.append((bench.pulses(), list(bench.out.changes), bench.sense()))
    assert runs[0] == runs[1]
    assert len(runs[0][0]) == 1500


@pytest.mark.req("SIM-OUT-5")
def test_a_ten_minute_50hz_train_delivers_every_pulse(bench):
    # how fast it simulates is measured in benchmarks/, never asserted here
    _session(bench, 10)
    assert bench.sense()[H.SENSE_PULSES] == 30_000
