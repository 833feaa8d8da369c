"""The bring-up self-test: the board checks itself, one stage per loop pass.

SELFTEST is answered at once; the controller then calls step() on every
loop pass, after draining EMG, so the link, the front end and the watchdog
keep being served while the checks run. The self-test feeds nothing itself:
a stage that hung would starve the watchdog like any other task. When the
last stage is done, notify(passed, checks, now_ms) hands over the
SELFTEST_RESULT body: one map per check (ST_* keys in protocol/messages.py)
with what was measured, the passing range and, if it failed, why.

Stages, in order; a transition not in _TRANSITIONS is refused:
- START: the window opens after a drain, so no sample from before it counts;
- EMG: for WINDOW_MS, the samples that arrive (FRONT_END: the nominal rate
  within RATE_TOLERANCE_PERCENT) and each block's lead-off flag (LEAD_OFF:
  every block flagged with no probe plugged in, none with one);
- LOAD: the dummy load switched in, RELAY_SETTLE_MS for the relay;
- PULSES: TEST_PULSES pulses of TEST_UA into it (CURRENT: the first phase
  within the stimulator's tolerance, the second within that tolerance of
  the first, the voltage within VOLTAGE_TOLERANCE_PERCENT of the current
  times dummy_load_ohm); then amplitude zero, engine stopped, output
  released and the dummy load switched out, whatever happened;
- STORAGE, with the output off: a record written, read back and removed,
  and no record found damaged since boot;
- at the end WATCHDOG: the least time left before the watchdog bites, seen
  at every pass of the test, stays within FEED_MARGIN_MS of its timeout: it
  runs and the loop feeds it. The test lasts twice that margin, so a
  watchdog nobody feeds falls below it.

TEST_UA is 10 mA, not less: there the stimulator's tolerance (max(10 %,
1 mA)) is 10 % and the 10 % voltage window (0.5 V into 500 ohm) is three
times the sense ADC's resolution, so a 20 % sense error fails the check.
The charge, 1 uC per phase for five pulses, is harmless even if the relay
stuck on the electrodes.
"""

from firmware import hal as H
from firmware.stim import tolerance_ua
from protocol import messages as m
from protocol.errors import BUSY, ESTOP_ACTIVE, FAULT_LATCHED, ProtocolError

WINDOW_MS = 200
RATE_TOLERANCE_PERCENT = 5
RELAY_SETTLE_MS = 20  # a small signal relay switches in 5-10 ms
TEST_UA = 10000
TEST_HZ = 50
TEST_PHASE_US = 100
TEST_GAP_US = 20
TEST_PULSES = 5
PULSE_GRACE_MS = 60  # beyond TEST_PULSES periods, before "no pulses"
VOLTAGE_TOLERANCE_PERCENT = 10
FEED_MARGIN_MS = 150  # no loop pass takes this long (a GC pause is under 40 ms)
RECORD = "selftest"  # written and removed again; a leftover from a power cut is ignored

_IDLE = 0
_START = 1
_EMG = 2
_LOAD = 3
_PULSES = 4
_STORAGE = 5
_TRANSITIONS = (
    (_START, _EMG),
    (_EMG, _LOAD),
    (_EMG, _STORAGE),  # no dummy load, or the output may not be used
    (_LOAD, _PULSES),
    (_LOAD, _STORAGE),  # the output could not be enabled
    (_PULSES, _STORAGE),
    (_STORAGE, _IDLE),
)
_CHECKS = (m.CHECK_FRONT_END, m.CHECK_LEAD_OFF, m.CHECK_CURRENT, m.CHECK_WATCHDOG, m.CHECK_STORAGE)
_NEVER_MS = 1 << 29  # more than any watchdog timeout


class Selftest:
    def __init__(self, hal, safety, session, emg, store, wdt_timeout_ms, notify):
        self._hal = hal
        self._safety = safety
        self._session = session
        self._emg = emg
        self._store = store
        self._wdt_timeout_ms = wdt_timeout_ms
        self._notify = notify  # notify(passed, checks, now_ms): the controller reports it
        self._sense = [0, 0, 0, 0, 0]
        # the stages _START to _STORAGE, in order
        self._stages = (self._start, self._window, self._settle, self._pulses, self._storage)
        self.stage = _IDLE
        self.checks = {}  # CHECK_* -> its result map, as the checks finish
        self._probe = False
        self._t0 = 0  # when the current stage began
        self._n0 = 0
        self._block_ms = -1
        self._blocks = 0
        self._lead_off = 0
        self._ua = 0
        self._wdt_least = _NEVER_MS

    def running(self):
        return self.stage != _IDLE

    def request(self, body, now):
        """The SELFTEST handler: start, or say why not."""
        if self.stage != _IDLE:
            raise ProtocolError(BUSY, "a self-test is running")
        if self._session.active():
            raise ProtocolError(BUSY, "stop the session first")
        if self._hal.estop_open():
            raise ProtocolError(ESTOP_ACTIVE, "release the emergency stop first")
        if self._safety.fault:
            raise ProtocolError(FAULT_LATCHED, "clear the fault first")
        if self._safety.output_on():
            raise ProtocolError(BUSY, "the output is in use")
        self._probe = body.get(0, False)
        self.checks = {}
        for i in range(len(self._sense)):
            self._sense[i] = 0  # nothing of an earlier run is reported as measured now
        self._wdt_least = _NEVER_MS
        self.stage = _START
        return {"started": True}

    def step(self, now):
        """One stage's work for this pass; an exception ends the test with the output off, then propagates."""
        st = self.stage
        if st == _IDLE:
            return
        left = self._hal.wdt_left_ms()
        if left < self._wdt_least:
            self._wdt_least = left
        try:
            nxt = self._stages[st - _START](now)
            if nxt != st:
                if (st, nxt) not in _TRANSITIONS:
                    raise ValueError("self-test: no transition from stage %d to %d" % (st, nxt))
                self.stage = nxt
                self._t0 = now
                if nxt == _IDLE:
                    self._finish(now)
        except Exception:
            self._abort(now)
            raise

    # -- stages: each returns the stage for the next pass ---------------------

    def _start(self, now):
        emg = self._emg
        self._n0 = emg.total
        self._block_ms = emg.block_ms
        self._blocks = 0
        self._lead_off = 0
        return _EMG

    def _window(self, now):
        emg = self._emg
        if emg.block_ms != self._block_ms:
            self._block_ms = emg.block_ms
            self._blocks += 1
            if emg.status & H.EMG_LEAD_OFF:
                self._lead_off += 1
        if now - self._t0 < WINDOW_MS:
            return _EMG
        got = emg.total - self._n0
        expected = (now - self._t0) * self._hal.emg_rate_hz // 1000
        tol = expected * RATE_TOLERANCE_PERCENT // 100
        if got == 0:
            why = m.WHY_NO_SAMPLES
        elif got < expected - tol or got > expected + tol:
            why = m.WHY_OUT_OF_RANGE
        else:
            why = m.WHY_NONE
        self._result(m.CHECK_FRONT_END, why, got, expected - tol, expected + tol)
        want = 0 if self._probe else 100
        if self._blocks:
            pct = self._lead_off * 100 // self._blocks
            self._result(m.CHECK_LEAD_OFF, m.WHY_NONE if pct == want else m.WHY_OUT_OF_RANGE, pct, want, want)
        else:
            self._result(m.CHECK_LEAD_OFF, m.WHY_NO_SAMPLES, 0, want, want)
        return self._load_in()

    def _load_in(self):
        hal = self._hal
        ua = TEST_UA if hal.hw_max_ua > TEST_UA else hal.hw_max_ua
        self._ua = ua
        if hal.dummy_load_ohm <= 0:
            self._current_failed(m.WHY_NO_DUMMY_LOAD)
            return _STORAGE
        if ua <= 0 or not self._may_drive() or self._safety.output_on():
            self._current_failed(m.WHY_NO_OUTPUT)
            return _STORAGE
        hal.dummy_load(True)  # the output is off: the relay never switches under current
        return _LOAD

    def _settle(self, now):
        if now - self._t0 < RELAY_SETTLE_MS:
            return _LOAD
        hal = self._hal
        hal.stim_configure(TEST_HZ, TEST_PHASE_US, TEST_GAP_US)
        if not self._may_drive() or not self._enable():
            self._output_off()
            self._current_failed(m.WHY_NO_OUTPUT)
            return _STORAGE
        hal.stim_amplitude(self._ua)
        hal.stim_start()
        return _PULSES

    def _pulses(self, now):
        s = self._safety
        if not s.output_on() or not self._may_drive():
            # the e-stop, a fault or the keepalive lapsing took it away: Safety already disabled it
            self._output_off()
            self._current_failed(m.WHY_NO_OUTPUT)
            return _STORAGE
        s.keepalive()
        sense = self._sense
        self._hal.stim_sense(sense)
        if sense[H.SENSE_PULSES] >= TEST_PULSES:
            self._output_off()
            self._judge_current()
            return _STORAGE
        if now - self._t0 > TEST_PULSES * 1000 // TEST_HZ + PULSE_GRACE_MS:
            self._output_off()
            self._current_failed(m.WHY_NO_PULSES)
            return _STORAGE
        return _PULSES

    def _storage(self, now):
        store = self._store
        rec = {0: now, 1: b"tonus self-test"}
        why = m.WHY_NONE
        try:
            store.save(RECORD, rec)
            back = store.load(RECORD)
            store.remove(RECORD)
            if back != rec or store.load(RECORD) is not None:
                why = m.WHY_READ_BACK
        except (OSError, ProtocolError):
            why = m.WHY_WRITE
        damaged = store.corrupt
        if why == m.WHY_NONE and damaged:
            why = m.WHY_OUT_OF_RANGE
        self._result(m.CHECK_STORAGE, why, damaged, 0, 0)
        return _IDLE

    # -- the output -------------------------------------------------------------

    def _may_drive(self):
        return not (self._session.active() or self._safety.fault or self._hal.estop_open())

    def _enable(self):
        """Safety's enable for the internal dummy load (no patient on the output)."""
        return self._safety.request_dummy_output()

    def _output_off(self):
        hal = self._hal
        try:
            hal.stim_amplitude(0)
            hal.stim_stop()
        finally:
            try:
                self._safety.release_output()
            finally:
                hal.dummy_load(False)

    # -- results ------------------------------------------------------------------

    def _judge_current(self):
        sense = self._sense
        ua = self._ua
        i1 = sense[H.SENSE_UA]
        i2 = sense[H.SENSE_UA_2]
        tol = tolerance_ua(ua)
        if i1 < ua - tol or i1 > ua + tol:
            why = m.WHY_OUT_OF_RANGE
        elif i1 - i2 > tol or i2 - i1 > tol:
            why = m.WHY_UNEQUAL_PHASES
        else:
            why = m.WHY_NONE
        expect_mv = i1 * self._hal.dummy_load_ohm // 1000  # µA x ohm = µV
        mv_tol = expect_mv * VOLTAGE_TOLERANCE_PERCENT // 100
        mv = sense[H.SENSE_MV]
        if why == m.WHY_NONE and (mv < expect_mv - mv_tol or mv > expect_mv + mv_tol):
            why = m.WHY_VOLTAGE
        r = self._result(m.CHECK_CURRENT, why, i1, ua - tol if ua > tol else 0, ua + tol)
        r[m.ST_UA_2] = i2
        r[m.ST_MV] = mv
        r[m.ST_MV_LOW] = expect_mv - mv_tol
        r[m.ST_MV_HIGH] = expect_mv + mv_tol

    def _current_failed(self, why):
        ua = self._ua
        tol = tolerance_ua(ua)
        sense = self._sense
        r = self._result(m.CHECK_CURRENT, why, sense[H.SENSE_UA], ua - tol if ua > tol else 0, ua + tol)
        r[m.ST_UA_2] = sense[H.SENSE_UA_2]
        r[m.ST_MV] = sense[H.SENSE_MV]

    def _result(self, check, why, value, low, high):
        r = {
            m.ST_CHECK: check,
            m.ST_PASSED: 1 if why == m.WHY_NONE else 0,
            m.ST_VALUE: value,
            m.ST_LOW: low,
            m.ST_HIGH: high,
            m.ST_WHY: why,
        }
        self.checks[check] = r
        return r

    def _finish(self, now, missing=m.WHY_EXCEPTION):
        top = self._wdt_timeout_ms
        low = top - FEED_MARGIN_MS
        least = self._wdt_least
        if least < 0:
            self._result(m.CHECK_WATCHDOG, m.WHY_NOT_ARMED, 0, low, top)
        else:
            ok = low <= least <= top
            self._result(m.CHECK_WATCHDOG, m.WHY_NONE if ok else m.WHY_OUT_OF_RANGE, least, low, top)
        out = []
        passed = True
        for c in _CHECKS:
            r = self.checks.get(c)
            if r is None:
                r = self._result(c, missing, 0, 0, 0)  # never reached: the test was cut short
            passed = passed and r[m.ST_PASSED] == 1
            out.append(r)
        self._notify(passed, out, now)

    def _abort(self, now):
        try:
            self._output_off()
        finally:
            self.stage = _IDLE
            self._finish(now)
