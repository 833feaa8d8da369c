"""The bring-up self-test's checks, failures and output discipline, on both runtimes.

The controller's wiring is the lead's (a handler, a step call); here the
real controller runs its loop and the self-test is stepped right after it,
as the wiring does, so the checks see a drained front end and a fed watchdog.
"""

from dualtest import raises, req
from fakehal import booted, run
from firmware import hal as H
from firmware import selftest as ST
from firmware.controller import WDT_TIMEOUT_MS
from firmware.selftest import Selftest
from protocol import errors, faults
from protocol import messages as m


class Bench:
    """A booted controller, its self-test, and what the self-test reported."""

    def __init__(self, probe_flags=H.EMG_LEAD_OFF):
        hal, ctrl = booted()
        hal.emg_flags = probe_flags  # no probe plugged in: a working detector says lead-off
        run(hal, ctrl, 50)
        self.hal = hal
        self.ctrl = ctrl
        self.reports = []
        self.st = Selftest(hal, ctrl.safety, ctrl.session, ctrl.emg, ctrl.store, WDT_TIMEOUT_MS, self._report)

    def _report(self, passed, checks, now):
        self.reports.append((passed, checks, now))

    def start(self, body=None):
        return self.st.request(body or {}, self.hal.now_ms())

    def run(self, ms=1000, tick=5):
        hal = self.hal
        for _ in range(ms // tick):
            hal.advance(tick)
            self.ctrl.step()
            self.st.step(hal.now_ms())
            if self.reports:
                return

    def result(self, probe_attached=False):
        assert self.start({0: True} if probe_attached else None) == {"started": True}
        self.run()
        assert len(self.reports) == 1, "exactly one report"
        passed, checks, _now = self.reports[0]
        for r in checks:
            m.check_body(m.EVENT, m.SELFTEST_RESULT, {0: 0, 1: passed, 2: [r]})  # each fits the wire
        return passed, {r[m.ST_CHECK]: r for r in checks}

    def assert_output_safe(self):
        hal = self.hal
        assert not hal.enabled and not hal.dummy_on and hal.stim_cmd == 0 and not hal.stim_running
        for _t, _on, enabled in hal.dummy_log:
            assert not enabled, "the relay switched with the output enabled"


def _failed_only(result, check, why):
    """The checks of a result where only `check` failed, for `why`."""
    passed, checks = result
    assert not passed
    for c, r in checks.items():
        if c == check:
            assert r[m.ST_PASSED] == 0 and r[m.ST_WHY] == why, r
        else:
            assert r[m.ST_PASSED] == 1, r
    return checks


@req("SAF-SELFTEST-1", "DEV-SELFTEST-1")
def test_a_healthy_board_passes_every_check_and_measures_each():
    b = Bench()
    passed, checks = b.result()
    assert passed and sorted(checks) == [1, 2, 3, 4, 5]
    fe = checks[m.CHECK_FRONT_END]
    assert fe[m.ST_LOW] <= fe[m.ST_VALUE] <= fe[m.ST_HIGH] and 380 <= fe[m.ST_VALUE] <= 420
    assert checks[m.CHECK_LEAD_OFF][m.ST_VALUE] == 100
    cur = checks[m.CHECK_CURRENT]
    assert cur[m.ST_VALUE] == cur[m.ST_UA_2] == ST.TEST_UA
    assert (cur[m.ST_LOW], cur[m.ST_HIGH]) == (ST.TEST_UA - 1000, ST.TEST_UA + 1000)
    assert cur[m.ST_MV] == ST.TEST_UA * 500 // 1000 and cur[m.ST_MV_LOW] < cur[m.ST_MV] < cur[m.ST_MV_HIGH]
    wd = checks[m.CHECK_WATCHDOG]
    assert (wd[m.ST_LOW], wd[m.ST_HIGH]) == (WDT_TIMEOUT_MS - ST.FEED_MARGIN_MS, WDT_TIMEOUT_MS)
    assert wd[m.ST_LOW] <= wd[m.ST_VALUE] <= WDT_TIMEOUT_MS
    assert checks[m.CHECK_STORAGE][m.ST_VALUE] == 0 and ST.RECORD not in b.hal.files
    # the output was driven into the dummy load, kept alive, then released
    assert [on for _t, on in b.hal.enable_log] == [True, False]
    assert [on for _t, on, _e in b.hal.dummy_log] == [True, False]
    assert b.hal.keepalives >= 3 and b.hal.stim_hz == ST.TEST_HZ
    b.assert_output_safe()
    assert not b.st.running()


@req("DEV-SELFTEST-1")
def test_with_a_probe_attached_lead_off_must_be_clear():
    passed, checks = Bench(probe_flags=0).result(probe_attached=True)
    assert passed and checks[m.CHECK_LEAD_OFF][m.ST_VALUE] == 0


@req("DEV-SELFTEST-1")
def test_lead_off_that_contradicts_the_operator_fails_alone():
    b = Bench(probe_flags=0)  # nothing plugged in, yet the detector says all is connected
    checks = _failed_only(b.result(), m.CHECK_LEAD_OFF, m.WHY_OUT_OF_RANGE)
    assert checks[m.CHECK_LEAD_OFF][m.ST_VALUE] == 0 and checks[m.CHECK_LEAD_OFF][m.ST_LOW] == 100
    b.assert_output_safe()


@req("DEV-SELFTEST-1")
def test_a_silent_front_end_fails_the_rate_and_leaves_nothing_to_judge_lead_off_by():
    b = Bench()
    b.hal.emg_on = False
    passed, checks = b.result()
    assert not passed
    assert (
        checks[m.CHECK_FRONT_END][m.ST_WHY] == m.WHY_NO_SAMPLES and checks[m.CHECK_FRONT_END][m.ST_VALUE] == 0
    )
    assert checks[m.CHECK_LEAD_OFF][m.ST_WHY] == m.WHY_NO_SAMPLES
    for c in (m.CHECK_CURRENT, m.CHECK_WATCHDOG, m.CHECK_STORAGE):
        assert checks[c][m.ST_PASSED] == 1
    b.assert_output_safe()


@req("DEV-SELFTEST-1")
def test_a_front_end_10_percent_slow_fails_alone():
    b = Bench()
    hal = b.hal
    t0, n0 = hal.t_ms, hal.emg_produced

    def slow(ms):  # the front end converts at 1.8 kHz, not the nominal 2 kHz
        hal.t_ms += ms
        hal.emg_produced = n0 + (hal.t_ms - t0) * 1800 // 1000

    hal.advance = slow
    checks = _failed_only(b.result(), m.CHECK_FRONT_END, m.WHY_OUT_OF_RANGE)
    assert checks[m.CHECK_FRONT_END][m.ST_VALUE] < checks[m.CHECK_FRONT_END][m.ST_LOW]


@req("SAF-SELFTEST-1", "DEV-SELFTEST-1")
def test_a_current_sense_20_percent_high_fails_the_current_check():
    b = Bench()
    b.hal.sense_gain_percent = 120
    checks = _failed_only(b.result(), m.CHECK_CURRENT, m.WHY_OUT_OF_RANGE)
    assert checks[m.CHECK_CURRENT][m.ST_VALUE] == ST.TEST_UA * 120 // 100
    b.assert_output_safe()


@req("DEV-SELFTEST-1")
def test_a_voltage_sense_20_percent_high_fails_on_the_load_voltage():
    b = Bench()
    true_sense = b.hal.stim_sense

    def sense(out):
        true_sense(out)
        out[H.SENSE_MV] = out[H.SENSE_MV] * 12 // 10

    b.hal.stim_sense = sense
    _failed_only(b.result(), m.CHECK_CURRENT, m.WHY_VOLTAGE)
    b.assert_output_safe()


@req("SAF-SELFTEST-1", "DEV-SELFTEST-1")
def test_unequal_phases_fail_the_current_check():
    b = Bench()
    b.hal.phase2_percent = 70
    checks = _failed_only(b.result(), m.CHECK_CURRENT, m.WHY_UNEQUAL_PHASES)
    assert checks[m.CHECK_CURRENT][m.ST_UA_2] == ST.TEST_UA * 70 // 100
    b.assert_output_safe()


@req("SAF-SELFTEST-1", "DEV-SELFTEST-1")
def test_an_open_dummy_load_fails_the_current_check():
    b = Bench()
    b.hal.dummy_load_ohm = 1000000000  # the resistor or the relay contact is open
    checks = _failed_only(b.result(), m.CHECK_CURRENT, m.WHY_OUT_OF_RANGE)
    assert (
        checks[m.CHECK_CURRENT][m.ST_VALUE] == 0 and checks[m.CHECK_CURRENT][m.ST_MV] == b.hal.compliance_mv
    )
    b.assert_output_safe()


@req("SAF-SELFTEST-1")
def test_a_stalled_pulse_engine_fails_in_time_and_the_output_is_released():
    b = Bench()
    b.hal.stim_stalled = True
    _failed_only(b.result(), m.CHECK_CURRENT, m.WHY_NO_PULSES)
    b.assert_output_safe()


@req("SAF-SELFTEST-1")
def test_a_board_without_a_dummy_load_never_enables_the_output():
    b = Bench()
    b.hal.dummy_load_ohm = 0
    _failed_only(b.result(), m.CHECK_CURRENT, m.WHY_NO_DUMMY_LOAD)
    assert b.hal.enable_log == [] and b.hal.dummy_log == []


@req("SAF-SELFTEST-1", "SAF-ESTOP-1")
def test_the_estop_during_the_pulses_ends_the_current_check_and_latches():
    b = Bench()
    b.start()
    b.run(ST.WINDOW_MS + ST.RELAY_SETTLE_MS + 20)
    assert b.hal.enabled and b.hal.dummy_on and not b.reports
    b.hal.press_estop()
    b.run()
    passed, checks, _ = b.reports[0]
    checks = {r[m.ST_CHECK]: r for r in checks}
    assert not passed and checks[m.CHECK_CURRENT][m.ST_WHY] == m.WHY_NO_OUTPUT
    assert checks[m.CHECK_STORAGE][m.ST_PASSED] == 1  # the output is off: storage may be written
    assert b.ctrl.safety.fault == faults.ESTOP
    b.assert_output_safe()


@req("DEV-SELFTEST-1")
def test_a_watchdog_that_is_not_running_fails_alone():
    b = Bench()
    b.hal.wdt_timeout = 0
    _failed_only(b.result(), m.CHECK_WATCHDOG, m.WHY_NOT_ARMED)


@req("DEV-SELFTEST-1")
def test_a_watchdog_nobody_feeds_fails():
    b = Bench()
    b.hal.wdt_feed = lambda: None  # the loop's feeding never reaches the hardware
    checks = _failed_only(b.result(), m.CHECK_WATCHDOG, m.WHY_OUT_OF_RANGE)
    assert checks[m.CHECK_WATCHDOG][m.ST_VALUE] < WDT_TIMEOUT_MS - ST.FEED_MARGIN_MS


@req("DEV-SELFTEST-1")
def test_a_failing_storage_write_fails_alone():
    b = Bench()

    def broken(name, data):
        raise OSError(5)

    b.hal.fs_write = broken
    _failed_only(b.result(), m.CHECK_STORAGE, m.WHY_WRITE)
    b.assert_output_safe()


@req("DEV-SELFTEST-1")
def test_storage_that_reads_back_something_else_or_found_damage_fails():
    b = Bench()
    b.hal.fs_read = lambda name: b"\x00" if name == ST.RECORD else None
    checks = _failed_only(b.result(), m.CHECK_STORAGE, m.WHY_READ_BACK)
    b = Bench()
    b.hal.files["old"] = b"\x01\x02"
    assert b.ctrl.store.load("old") is None  # a damaged record, counted by the store
    checks = _failed_only(b.result(), m.CHECK_STORAGE, m.WHY_OUT_OF_RANGE)
    assert checks[m.CHECK_STORAGE][m.ST_VALUE] == 1


@req("SAF-SELFTEST-1")
def test_a_check_that_raises_ends_with_the_output_off_and_still_reports():
    b = Bench()

    def broken():
        raise RuntimeError("engine")

    b.hal.stim_start = broken
    b.start()
    try:
        b.run()
    except RuntimeError:
        pass
    else:
        raise AssertionError("the exception must reach the controller, which enters the safe state")
    b.assert_output_safe()
    passed, checks, _ = b.reports[0]
    checks = {r[m.ST_CHECK]: r for r in checks}
    assert not passed and checks[m.CHECK_CURRENT][m.ST_WHY] == m.WHY_EXCEPTION
    assert checks[m.CHECK_STORAGE][m.ST_WHY] == m.WHY_EXCEPTION  # never reached
    assert checks[m.CHECK_FRONT_END][m.ST_PASSED] == 1
    assert not b.st.running()


@req("SAF-SELFTEST-1")
def test_refused_during_a_session_with_the_estop_open_with_a_fault_and_while_running():
    b = Bench()
    b.ctrl.begin_session(30, 0, m.REASON_REQUEST, b.hal.now_ms())
    assert b.ctrl.session.active()
    raises(errors.BUSY, b.start)
    b = Bench()
    b.hal.estop = True
    raises(errors.ESTOP_ACTIVE, b.start)
    b.hal.press_estop()
    b.run(20)
    b.hal.estop = False
    assert b.ctrl.safety.fault == faults.ESTOP
    raises(errors.FAULT_LATCHED, b.start)
    b = Bench()
    b.start()
    raises(errors.BUSY, b.start)
    assert b.hal.enable_log == [] and b.hal.dummy_log == []
