"""The stimulator: amplitude discipline, ETS and the per-pulse interlocks. Both runtimes.

A fake pulse engine (tests/dual/fakehal.py) delivers pulses at the
configured rate while started and enabled, and its current sense can be
made to lie, so every interlock can be tripped on purpose.
"""

from dualtest import req
from fakehal import FakeHal
from firmware import stim as S
from firmware.safety import Safety
from protocol import faults
from protocol import messages as m

TICK = 5


def _phase(kind="stimulation", **kw):
    ph = {
        "type": kind,
        "duration_s": 600,
        "frequency_hz": 50,
        "pulse_width_us": 250,
        "interphase_gap_us": 50,
        "amplitude_max_ua": 40000,
        "ramp_up_ms": 2000,
        "ramp_down_ms": 1000,
    }
    if kind == "stimulation":
        ph.update({"on_ms": 0, "off_ms": 0})
    else:
        ph.update({"threshold_percent_mvc": 40, "hold_ms": 500, "on_ms": 6000, "rest_ms": 10000})
    ph.update(kw)
    return ph


class Rig:
    def __init__(self, phase=None, limit_ua=30000, mvc_dv=500):
        self.hal = FakeHal()
        self.safety = Safety(self.hal)
        self.safety.protocol_verified = True
        self.states = []
        self.stim = S.Stimulator(self.hal, self.safety, lambda st, t: self.states.append((t, st)))
        self.env = 0
        self.trusted = True
        self.stim.begin(phase or _phase(), limit_ua, mvc_dv, self.hal.t_ms, True)

    def run(self, ms, tick=TICK):
        for _ in range(ms // tick):
            self.hal.advance(tick)
            self.stim.tick(self.hal.t_ms, self.env, self.trusted)

    def at_level(self, ua, settle_ms):
        """Past the check, at the patient's level ua, after settle_ms of ramping."""
        self.ready()
        self.run(50)
        self.stim.set_level(ua)
        self.run(settle_ms)

    def run_until(self, cond, max_ms):
        for _ in range(max_ms // TICK):
            if cond():
                return True
            self.run(TICK)
        return cond()

    def ready(self):
        """Past the electrode check: ETS armed, or a stimulation phase at its (zero) level."""
        assert self.run_until(lambda: self.stim.state != m.STIM_CHECK, S.CHECK_MS + 50)
        assert self.stim.state == m.STIM_READY, m.STIM_NAMES[self.stim.state]


def _off_at(hal):
    offs = [t for t, on in hal.enable_log if not on]
    return offs[-1] if offs else None


@req("SAF-IMPEDANCE-1")
def test_the_electrode_is_checked_at_a_low_current_before_the_phase():
    r = Rig()
    assert r.stim.state == m.STIM_CHECK and r.hal.enabled and r.hal.stim_cmd == S.CHECK_UA
    r.ready()
    assert r.stim.impedance_ohm == 1000
    assert r.hal.stim_cmd == 0  # after the check, from zero
    assert r.hal.keepalives >= S.CHECK_MS // TICK


@req("SAF-IMPEDANCE-1")
def test_a_check_current_the_sense_reads_a_step_low_still_measures_the_impedance():
    # the board's 12-bit sense reads 1000 uA as 999 uA
    r = Rig()
    r.hal.sense_gain_percent = 99
    r.ready()
    assert r.safety.fault == 0 and 950 <= r.stim.impedance_ohm <= 1000


@req("SAF-IMPEDANCE-1")
def test_an_open_electrode_stops_the_output_and_the_current_is_never_raised():
    r = Rig()
    r.hal.load_ohm = 20000
    r.run(S.CHECK_MS + 50)
    assert r.safety.fault == faults.OPEN_ELECTRODE and not r.hal.enabled
    assert max(ua for _t, ua in r.hal.stim_log) == S.CHECK_UA
    assert r.stim.state == m.STIM_OFF and r.hal.stim_cmd == 0


@req("SAF-IMPEDANCE-1")
def test_a_shorted_electrode_trips_at_the_check_and_during_stimulation():
    r = Rig()
    r.hal.load_ohm = 20
    r.run(S.CHECK_MS + 50)
    assert r.safety.fault == faults.ELECTRODE_SHORT and not r.hal.enabled
    r = Rig()
    r.at_level(10000, 2000)
    r.hal.load_ohm = 30
    r.run(100)
    assert r.safety.fault == faults.ELECTRODE_SHORT


@req("SAF-AMPLITUDE-1")
def test_amplitude_ramps_at_a_bounded_slew_and_drops_at_once():
    r = Rig(_phase(ramp_up_ms=2000))
    r.ready()
    r.run(50)
    assert r.stim.state == m.STIM_ON and r.hal.stim_cmd == 0  # no level yet: nothing delivered
    r.stim.set_level(20000)
    r.run(3000)
    log = [ua for _t, ua in r.hal.stim_log]
    # limit 30 mA over a 2 s ramp: 15 mA/s, at most 75 µA per 5 ms pass (100 µA resolution: steps of 100)
    steps = [b - a for a, b in zip(log, log[1:]) if b > a]
    assert steps and max(steps) <= 100
    assert r.hal.stim_cmd == 20000
    r.stim.set_level(5000)
    r.run(TICK)
    assert r.hal.stim_cmd == 5000  # lowering is never slowed down
    assert r.stim.max_ua == 20000


@req("SAF-GRID-1", "SAF-AMPLITUDE-1")
def test_at_any_pass_length_the_ramp_stays_on_the_grid_at_the_phases_slope():
    for tick in (3, 7, 10, 13, 17, 20, 35):
        r = Rig(_phase(ramp_up_ms=2000))  # 30 mA over 2 s: 15 mA/s
        r.ready()
        r.stim.set_level(15000)
        start = r.hal.t_ms
        r.run(1200, tick)
        log = [ua for t, ua in r.hal.stim_log if t > start]
        assert all(ua % S.RESOLUTION_UA == 0 for ua in log), (tick, log)  # FakeHal also refuses
        # the phase's slope, not faster, and not slower by more than one pass and one step
        assert r.hal.stim_cmd == 15000, (tick, r.hal.stim_cmd)
        reached = next(t for t, ua in r.hal.stim_log if ua == 15000) - start
        assert 1000 - tick <= reached <= 1000 + 2 * tick, (tick, reached)


@req("SAF-GRID-1")
def test_the_fake_hal_refuses_what_the_board_refuses():
    hal = FakeHal()
    for bad in (150, -100, hal.hw_max_ua + 100):
        try:
            hal.stim_amplitude(bad)
        except ValueError:
            continue
        raise AssertionError("accepted %d" % bad)
    assert hal.stim_log == []


@req("SAF-AMPLITUDE-1", "SAF-LAYERS-1")
def test_levels_stay_within_the_smallest_limit_and_the_first_step_is_at_most_2_percent():
    r = Rig(_phase(amplitude_max_ua=25000), limit_ua=30000)
    assert r.stim.limit_ua == 25000  # the phase's maximum is smaller than the protocol's
    r.ready()
    try:
        r.stim.set_level(25100)
        raise AssertionError("a level above the limit was accepted")
    except ValueError:
        pass
    assert r.stim.level_ua == 0
    r.stim.step_level(True)
    assert r.stim.level_ua == S.first_step_ua(25000) == 500
    assert S.first_step_ua(10000) == 200 and S.first_step_ua(5000) == 100
    for _ in range(100):
        r.stim.step_level(True)
    assert r.stim.level_ua == 25000
    r.stim.step_level(False)
    assert r.stim.level_ua == 24500
    r = Rig(limit_ua=8000)
    assert r.stim.limit_ua == 8000 and S.first_step_ua(8000) * 50 <= 8000


@req("SAF-AMPLITUDE-1")
def test_every_transition_starts_again_from_zero():
    r = Rig()
    r.at_level(10000, 2000)
    assert r.hal.stim_cmd == 10000
    r.stim.end(r.hal.t_ms)  # pause, stop, fault: the controller ends the phase
    assert r.hal.stim_cmd == 0 and not r.hal.enabled and r.stim.level_ua == 0
    r.stim.begin(_phase(), 30000, 500, r.hal.t_ms, True)  # resume: checked again, level zero
    assert r.stim.state == m.STIM_CHECK and r.stim.level_ua == 0


@req("SAF-CURRENT-1")
def test_over_current_trips_within_one_pulse():
    r = Rig()
    r.at_level(20000, 3000)
    r.hal.sense_gain_percent = 112  # 2.4 mA over: beyond 10 %
    t0 = r.hal.t_ms
    r.run(100)
    assert r.safety.fault == faults.OVERCURRENT
    assert _off_at(r.hal) - t0 <= 1000 // 50  # one period at 50 Hz


@req("SAF-CURRENT-1")
def test_a_current_within_tolerance_does_not_trip():
    r = Rig()
    r.at_level(20000, 3000)
    r.hal.sense_gain_percent = 109
    r.run(500)
    assert r.safety.fault == 0 and r.hal.enabled


@req("SAF-CURRENT-1", "SAF-IMPEDANCE-1")
def test_under_current_is_a_mismatch_or_near_compliance_an_open_electrode():
    r = Rig()
    r.at_level(20000, 3000)
    r.hal.sense_gain_percent = 85
    r.run(100)
    assert r.safety.fault == faults.CURRENT_MISMATCH
    r = Rig()
    r.at_level(20000, 3000)
    r.hal.load_ohm = 4000  # 20 mA would need 80 V: the stage saturates at compliance
    r.run(100)
    assert r.safety.fault == faults.OPEN_ELECTRODE


@req("SAF-CHARGE-1")
def test_unequal_phases_trip_as_a_charge_imbalance():
    r = Rig()
    r.at_level(20000, 3000)
    r.hal.phase2_percent = 85
    r.run(100)
    assert r.safety.fault == faults.CHARGE_IMBALANCE


@req("SAF-PULSE-1")
def test_a_stalled_pulse_generator_trips():
    r = Rig()
    r.ready()
    r.hal.stim_stalled = True
    t0 = r.hal.t_ms
    r.run(200)
    assert r.safety.fault == faults.PULSE_STALLED
    assert _off_at(r.hal) - t0 <= 2 * 20 + S.STALL_GRACE_MS + TICK


@req("SAF-PULSE-1")
def test_a_phase_begun_late_in_a_long_pass_is_not_taken_for_a_stall():
    # a session's start writes its records first: the pass's now is 120 ms old when the train starts
    hal = FakeHal()
    safety = Safety(hal)
    safety.protocol_verified = True
    stim = S.Stimulator(hal, safety, lambda st, t: None)
    pass_began = hal.t_ms
    hal.advance(120)
    stim.begin(_phase(), 30000, 500, pass_began, True)
    hal.advance(1)
    stim.tick(pass_began, 0, True)  # the same pass: its now
    for _ in range((S.CHECK_MS + 50) // TICK):
        hal.advance(TICK)
        stim.tick(hal.t_ms, 0, True)
    assert safety.fault == 0, faults.name(safety.fault)
    assert stim.state not in (m.STIM_OFF, m.STIM_CHECK), m.STIM_NAMES[stim.state]  # past the check


@req("ETS-TRIGGER-1")
def test_ets_triggers_after_the_hold_and_bursts_from_zero():
    r = Rig(_phase("ets", ramp_up_ms=1000, ramp_down_ms=1000, on_ms=4000, rest_ms=5000), mvc_dv=500)
    r.ready()
    r.stim.set_level(20000)
    r.env = 150  # below 40 % of 500
    r.run(2000)
    assert r.stim.state == m.STIM_READY and r.hal.stim_cmd == 0
    r.env = 250
    r.run(400)
    assert r.stim.state == m.STIM_READY  # not held long enough yet
    r.run(150)
    assert r.stim.state == m.STIM_RAMP_UP and r.stim.triggers == 1 and r.stim.block_trigger
    assert r.run_until(lambda: r.stim.state == m.STIM_ON, 1500)
    assert r.hal.stim_cmd == 20000
    assert r.run_until(lambda: r.stim.state == m.STIM_REST, 4000)
    assert r.hal.stim_cmd == 0
    assert r.run_until(lambda: r.stim.state == m.STIM_READY, 5100)
    seen = [st for _t, st in r.states]
    assert seen[:7] == [
        m.STIM_CHECK,
        m.STIM_READY,
        m.STIM_RAMP_UP,
        m.STIM_ON,
        m.STIM_RAMP_DOWN,
        m.STIM_REST,
        m.STIM_READY,
    ]
    assert r.stim.charge_nc > 0


@req("ETS-TRIGGER-1", "EMG-TRUST-1")
def test_ets_never_triggers_on_an_untrusted_signal_or_without_a_level():
    r = Rig(_phase("ets"), mvc_dv=500)
    r.ready()
    r.env = 400
    r.run(2000)
    assert r.stim.triggers == 0  # no level set: nothing to deliver
    r.stim.set_level(10000)
    r.trusted = False  # lead-off or saturation
    r.run(2000)
    assert r.stim.triggers == 0 and r.stim.state == m.STIM_READY
    r.trusted = True
    r.run(600)
    assert r.stim.triggers == 1


@req("SAF-OWNER-1")
def test_a_safety_trip_elsewhere_ends_the_phase_and_nothing_restarts_it():
    r = Rig()
    r.at_level(10000, 1000)
    r.safety.enter_safe_state(faults.ESTOP)
    r.run(TICK)
    assert r.stim.state == m.STIM_OFF and r.hal.stim_cmd == 0 and not r.hal.stim_running
    r.run(1000)
    assert not r.hal.enabled


@req("SAF-ENABLE-1")
def test_an_output_that_drops_by_itself_latches_output_lost():
    r = Rig()
    r.ready()
    r.hal.enabled = False  # the dynamic enable lapsed: nobody in the firmware turned it off
    r.run(TICK)
    assert r.safety.fault == faults.OUTPUT_LOST and r.stim.state == m.STIM_OFF and r.hal.stim_cmd == 0


@req("SAF-NOSTIM-1")
def test_a_phase_begun_outside_a_running_session_gets_no_output():
    r = Rig()
    r.stim.end(r.hal.t_ms)
    r.hal.enable_log.clear()
    r.stim.begin(_phase(), 30000, 500, r.hal.t_ms, False)  # a caller that got the session wrong
    r.run(500)
    assert r.stim.state == m.STIM_OFF and not r.hal.enabled and not r.hal.stim_running
    assert not [e for e in r.hal.enable_log if e[1]]
