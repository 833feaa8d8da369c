"""Stimulation and EMG-triggered stimulation (ETS) phases: levels, ramps, interlocks.

The pulse engine (PIO on the board) times every pulse; this module decides
the amplitude between pulses and checks what each pulse did. Safety stays
the only owner of the output enable: a trip here calls
safety.enter_safe_state(), which disables the output; this module then
only tidies up (amplitude 0, engine stopped).

Amplitude discipline:
- the limit in force is the smallest of the board's ceiling, the device
  policy, the protocol's and the phase's maximum; the patient's level
  (buttons, or a host within the approved range) never exceeds it;
- the commanded amplitude only ramps, at most the phase's ramp slope and
  never faster than MAX_SLEW_UA_PER_S;
- every transition (pause, resume, reconnect, fault clear, a new phase or
  protocol, each ETS re-arm) brings the command to zero; a pause, a stop or
  a new phase also sets the patient's level back to zero;
- before each phase a check at CHECK_UA measures the electrode impedance;
  an open or high-impedance electrode stops the output, the current is never
  raised to compensate.

Checks per pulse (the sense of the last pulse, every loop pass):
- over-current: measured above commanded + max(10 %, 1 mA);
- charge balance: the two phases' currents differ beyond the tolerance;
- under-current: below commanded - tolerance: open electrode when the
  electrode voltage is near compliance, else a current mismatch;
- a short: the electrode voltage says the load is under MIN_IMPEDANCE_OHM;
- a running engine that produced no pulse for two periods + STALL_GRACE_MS.
"""

from firmware import hal as H
from protocol import faults
from protocol import messages as m

CHECK_UA = 1000  # impedance check current: 1 mA, below perception for most
CHECK_MS = 200
MAX_IMPEDANCE_OHM = 5000  # above this the electrode is not in proper contact
MIN_IMPEDANCE_OHM = 100  # below this the current bypasses the tissue: a short
COMPLIANCE_MARGIN_PERCENT = 90  # electrode voltage this close to compliance means "open"
MAX_SLEW_UA_PER_S = 20000  # no ramp is steeper than 20 mA/s
LEVEL_STEP_UA = 500  # the patient's buttons move in 0.5 mA steps
RESOLUTION_UA = 100
TOLERANCE_PERCENT = 10
TOLERANCE_MIN_UA = 1000
STALL_GRACE_MS = 20
RAMP_DT_MAX_MS = 50  # the longest pass a ramp step accounts for


def tolerance_ua(commanded_ua):
    t = commanded_ua * TOLERANCE_PERCENT // 100
    return t if t > TOLERANCE_MIN_UA else TOLERANCE_MIN_UA


def next_level(level_ua, limit_ua, up):
    """The level one press of up or down asks for, before the limit: the device's buttons
    and the host's screens step alike."""
    first = first_step_ua(limit_ua)
    if up:
        return first if level_ua < first else (level_ua // LEVEL_STEP_UA + 1) * LEVEL_STEP_UA
    lv = 0 if level_ua <= first else ((level_ua - 1) // LEVEL_STEP_UA) * LEVEL_STEP_UA
    return first if 0 < lv < first else lv


def first_step_ua(limit_ua):
    """The smallest non-zero level: at most 2 % of the maximum (IEC 60601-2-10 201.12.1.101)."""
    step = limit_ua * 2 // 100 // RESOLUTION_UA * RESOLUTION_UA
    if step > LEVEL_STEP_UA:
        return LEVEL_STEP_UA
    return step if step >= RESOLUTION_UA else RESOLUTION_UA


class Stimulator:
    def __init__(self, hal, safety, notify):
        self._hal = hal
        self._safety = safety
        self._notify = notify  # notify(state, now_ms): the controller announces it
        self._sense = [0, 0, 0, 0, 0]
        self.state = m.STIM_OFF
        self.phase = {}  # type: dict  # begin()'s phase; read only while the state is not OFF
        self.limit_ua = 0
        self.level_ua = 0
        self.level_by_host = False  # the level came over the link: it lasts while that host does
        self.cmd_ua = 0  # amplitude commanded to the engine now
        self.impedance_ohm = 0
        self.triggers = 0  # ETS triggers in this phase
        self.triggers_total = 0  # and in the session
        self.pulses = 0  # pulses seen in this phase
        self.max_ua = 0  # largest amplitude commanded in the session
        self.charge_nc = 0  # charge delivered in the session (first phases), nC
        self.block_pulses = 0  # pulses since the controller last looked (stream flag)
        self.block_trigger = False
        self.ets = False  # the phase is EMG-triggered
        self._threshold_dv = 0
        self._since_ms = 0
        self._above_ms = -1
        self._last_pulse_ms = 0
        self._last_tick_ms = 0
        self._period_ms = 0
        self._pw_us = 0
        self._ramp_up = 0  # slope limits in µA per s
        self._ramp_down = 0
        self._ramp_acc = 0  # slope accrued towards the next grid step, µA x ms
        self._charge_pc = 0

    def trigger_dv(self):
        """The running ETS phase's trigger threshold (0.1 µV), 0 outside one."""
        return self._threshold_dv if self.ets and self.state != m.STIM_OFF else 0

    # -- phases ---------------------------------------------------------

    def new_session(self):
        self.triggers_total = 0
        self.max_ua = 0
        self.charge_nc = 0
        self._charge_pc = 0

    def begin(self, phase, limit_ua, mvc_dv, now, session_running):
        """Start a stimulation or ETS phase: configure, then check the electrode.

        session_running is the session's state as the caller sees it: Safety
        refuses the output outside a running session.
        """
        self.end(now)
        self.phase = phase
        self.ets = phase["type"] == "ets"
        self.limit_ua = min(limit_ua, phase["amplitude_max_ua"]) // RESOLUTION_UA * RESOLUTION_UA
        self.level_ua = 0
        self.level_by_host = False
        self.triggers = 0
        self.pulses = 0
        self._threshold_dv = mvc_dv * phase["threshold_percent_mvc"] // 100 if self.ets else 0
        self._period_ms = 1000 // phase["frequency_hz"]
        self._pw_us = phase["pulse_width_us"]
        self._ramp_up = self._slope(phase["ramp_up_ms"])
        self._ramp_down = self._slope(phase["ramp_down_ms"])
        if self.limit_ua <= 0 or (self.ets and self._threshold_dv <= 0):
            return  # nothing may be delivered (no policy, or no MVC to trigger from): stay off
        self._hal.stim_configure(phase["frequency_hz"], phase["pulse_width_us"], phase["interphase_gap_us"])
        if not self._safety.request_output(session_running):
            return
        self._command(CHECK_UA if self.limit_ua > CHECK_UA else self.limit_ua)
        self._hal.stim_start()
        # the train starts now, which may be long after the pass's `now` (a session's start
        # writes its records first in that pass): the stall clock starts with the train
        self._last_pulse_ms = self._hal.now_ms()
        self._set(m.STIM_CHECK, now)

    def end(self, now):
        """Stop at once (phase over, pause, stop, fault): amplitude zero, engine stopped, output released."""
        was = self.state
        self._command(0)
        self._hal.stim_stop()
        self._safety.release_output()
        self.level_ua = 0
        self.level_by_host = False
        self._above_ms = -1
        self.state = m.STIM_OFF
        if was != m.STIM_OFF:
            self._notify(m.STIM_OFF, now)

    def _slope(self, ramp_ms):
        # the phase's ramp from zero to its maximum, never steeper than the absolute bound
        if ramp_ms <= 0:
            return MAX_SLEW_UA_PER_S
        s = self.limit_ua * 1000 // ramp_ms
        return s if s < MAX_SLEW_UA_PER_S else MAX_SLEW_UA_PER_S

    # -- the patient's level ----------------------------------------------

    def set_level(self, ua):
        """A level within the approved range; returns the level in force. Refusal: ValueError."""
        if self.state == m.STIM_OFF or self.state == m.STIM_CHECK:
            raise ValueError("no stimulation phase is running")
        if ua < 0 or ua > self.limit_ua:
            raise ValueError("level outside 0..%d µA" % self.limit_ua)
        self.level_ua = ua // RESOLUTION_UA * RESOLUTION_UA
        self.level_by_host = True
        return self.level_ua

    def host_gone(self):
        """The host that set the level fell silent or was replaced: back to zero (applies at once)."""
        if not self.level_by_host:
            return False
        self.level_ua = 0
        self.level_by_host = False
        return True

    def step_level(self, up):
        if self.state == m.STIM_OFF or self.state == m.STIM_CHECK:
            return
        lv = next_level(self.level_ua, self.limit_ua, up)
        self.level_ua = lv if lv <= self.limit_ua else self.limit_ua  # the buttons stop at the limit
        self.level_by_host = False  # the patient's own buttons: held without a host

    # -- every loop pass -------------------------------------------------------

    def tick(self, now, env_dv, trusted):
        """Advance ramps and bursts; check the last pulses. Called every loop pass while a phase runs."""
        st = self.state
        if st == m.STIM_OFF:
            return
        if not self._safety.output_on():
            if not self._safety.fault:
                # nobody turned it off: the dynamic enable lapsed, the loop ran late
                self._safety.enter_safe_state(faults.OUTPUT_LOST)
            # safety disabled the output (e-stop, fault): tidy up here
            self.end(now)
            return
        self._safety.keepalive()
        dt = now - self._last_tick_ms
        self._last_tick_ms = now
        if not self._check_pulses(now):
            return
        if st == m.STIM_CHECK or st == m.STIM_READY:
            self._arm(now, env_dv, trusted)
        else:
            self._burst(now, dt)

    # tick() is split in three because a call whose state exceeds 11 words (arguments, locals,
    # stack) puts its frame on MicroPython's heap: a search of the heap every loop pass

    def _arm(self, now, env_dv, trusted):
        """The electrode check, then waiting for the burst's start (ETS: the trigger)."""
        if self.state == m.STIM_CHECK:
            if now - self._since_ms >= CHECK_MS and self.pulses:
                if self.impedance_ohm > MAX_IMPEDANCE_OHM:
                    self._trip(faults.OPEN_ELECTRODE, now)
                    return
                if self.impedance_ohm < MIN_IMPEDANCE_OHM:
                    self._trip(faults.ELECTRODE_SHORT, now)
                    return
                self._set(m.STIM_READY, now)
            return
        if not self.ets:
            self._set(m.STIM_RAMP_UP, now)
        elif trusted and self.level_ua and env_dv >= self._threshold_dv:
            if self._above_ms < 0:
                self._above_ms = now
            if now - self._above_ms >= self.phase["hold_ms"]:
                self.triggers += 1
                self.triggers_total += 1
                self.block_trigger = True
                self._above_ms = -1
                self._set(m.STIM_RAMP_UP, now)
        else:
            # untrusted EMG never triggers, and an interrupted contraction starts over
            self._above_ms = -1

    def _burst(self, now, dt):
        """Ramp up, hold, ramp down, rest."""
        st = self.state
        ph = self.phase
        target = self.level_ua
        if st == m.STIM_RAMP_UP:
            self._ramp_to(target, self._ramp_up, dt)
            if self.cmd_ua >= target:
                self._set(m.STIM_ON, now)
        elif st == m.STIM_ON:
            self._ramp_to(target, self._ramp_up, dt)  # the patient may adjust during the burst
            if ph["on_ms"] and now - self._since_ms >= ph["on_ms"] - ph["ramp_up_ms"] - ph["ramp_down_ms"]:
                self._set(m.STIM_RAMP_DOWN, now)
        elif st == m.STIM_RAMP_DOWN:
            self._ramp_to(0, self._ramp_down, dt)
            if self.cmd_ua == 0:
                self._set(m.STIM_REST, now)
        elif st == m.STIM_REST and now - self._since_ms >= (ph["rest_ms"] if self.ets else ph["off_ms"]):
            self._set(m.STIM_READY, now)  # re-armed: from zero again

    def _ramp_to(self, target, slope_ua_per_s, dt):
        """Up at most the slope allows; a level the patient lowered applies at once."""
        cur = self.cmd_ua
        if cur > target and self.state != m.STIM_RAMP_DOWN:
            self._command(target)
            return
        if cur == target:
            self._ramp_acc = 0
            return
        if dt > RAMP_DT_MAX_MS:
            dt = RAMP_DT_MAX_MS  # after a stalled pass the ramp resumes, it does not jump
        # The slope accrues across passes and is spent in whole steps of the
        # output stage's grid (the HAL refuses others): the phase's slope on
        # average, whatever the pass length, never a step off the grid.
        acc = self._ramp_acc + slope_ua_per_s * dt
        step = acc // (1000 * RESOLUTION_UA) * RESOLUTION_UA
        self._ramp_acc = acc - step * 1000
        if step == 0:
            return
        if cur < target:
            cur = cur + step if cur + step < target else target
        else:
            cur = cur - step if cur - step > target else target
        self._command(cur)
        if cur > self.max_ua:
            self.max_ua = cur

    def _command(self, ua):
        if ua != self.cmd_ua:
            self.cmd_ua = ua
            self._hal.stim_amplitude(ua)

    def _set(self, state, now):
        self.state = state
        self._since_ms = now
        self._ramp_acc = 0
        if state == m.STIM_READY or state == m.STIM_REST:
            self._command(0)  # each burst starts from zero
        self._notify(state, now)

    def _check_pulses(self, now):
        """Compare the last pulses with the command; False if a check tripped."""
        s = self._sense
        self._hal.stim_sense(s)
        fresh = s[H.SENSE_PULSES] - self.pulses
        if fresh <= 0:
            if now - self._last_pulse_ms > 2 * self._period_ms + STALL_GRACE_MS:
                self._trip(faults.PULSE_STALLED, now)
                return False
            return True
        self.pulses = s[H.SENSE_PULSES]
        self.block_pulses += fresh
        if now > self._last_pulse_ms:  # a pass's `now` may be older than the train's start
            self._last_pulse_ms = now
        return self._currents_ok(now) and self._load_ok(now, fresh)

    # _check_pulses() in three: a call's state over 11 words would put its frame on the heap

    def _currents_ok(self, now):
        s = self._sense
        cmd = self.cmd_ua
        i1 = s[H.SENSE_UA]
        i2 = s[H.SENSE_UA_2]
        tol = tolerance_ua(cmd)
        if i1 > cmd + tol or i2 > cmd + tol:
            self._trip(faults.OVERCURRENT, now)
            return False
        if i1 - i2 > tol or i2 - i1 > tol:
            self._trip(faults.CHARGE_IMBALANCE, now)
            return False
        if i1 < cmd - tol or i2 < cmd - tol:
            self._too_little(now)
            return False
        return True

    def _too_little(self, now):
        near = self._sense[H.SENSE_MV] * 100 >= self._hal.compliance_mv * COMPLIANCE_MARGIN_PERCENT
        self._trip(faults.OPEN_ELECTRODE if near else faults.CURRENT_MISMATCH, now)

    def _load_ok(self, now, fresh):
        s = self._sense
        i1 = s[H.SENSE_UA]
        if self.state == m.STIM_CHECK:
            # the check current passed the tolerance above; a sense ADC step may read it a little
            # low (999 µA for 1 mA on the board), which must not leave the impedance unmeasured
            if i1 > 0:
                self.impedance_ohm = s[H.SENSE_MV] * 1000 // i1  # mV / µA = kΩ; ×1000 for Ω
        elif i1 >= CHECK_UA and s[H.SENSE_MV] * 1000 // i1 < MIN_IMPEDANCE_OHM:
            self._trip(faults.ELECTRODE_SHORT, now)
            return False
        self._count_charge(fresh * i1)
        return True

    def _count_charge(self, ua):
        # the charge of the first phases (ua: the current of all the fresh pulses); the second
        # carries it back
        self._charge_pc += ua * self._pw_us
        if self._charge_pc >= 1000:
            self.charge_nc += self._charge_pc // 1000
            self._charge_pc %= 1000

    def _trip(self, cause, now):
        self._safety.enter_safe_state(cause)
        self.end(now)
