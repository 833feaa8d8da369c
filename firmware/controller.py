"""The device: boot into the safe state, then one cooperative loop pass per step().

Each pass polls safety, serves the link, drains EMG, advances the session
and the patient's controls. The watchdog is fed only when every one of them
checked in during the pass; an exception anywhere ends in the safe state.
"""

from firmware import demo
from firmware import hal as H
from firmware.emg import EmgInput
from firmware.eventlog import EventLog
from firmware.link import Link
from firmware.safety import Safety
from firmware.session import CLEAR, HEARTBEAT_LOST, PAUSE, RESUME, STOP, Session
from firmware.storage import FAULT_RECORD, Store
from firmware.version import FIRMWARE_VERSION
from protocol import faults, framing
from protocol import messages as m
from protocol.errors import ILLEGAL_STATE, ProtocolError

WDT_TIMEOUT_MS = 2000
_ALL_CHECKED_IN = 0x1F
_LED_FOR_STATE = (H.LED_IDLE, H.LED_RUNNING, H.LED_RUNNING, H.LED_PAUSED, H.LED_DONE, H.LED_FAULT, H.LED_OFF)
_BEEP_MS = 200
_ALARM_MS = 1000


class Controller:
    def __init__(self, hal):
        self.hal = hal
        self.safety = Safety(hal)  # first: the output is disabled before anything else
        self.log = EventLog()
        now = hal.now_ms()
        self.session = Session(self.log, self._state_changed)
        self.store = Store(hal, self.safety)
        self.emg = EmgInput(hal, now)
        self.link = Link(hal, self._handlers(), self.log)
        self.streaming = False
        self._estop_was_open = False
        self._tone_until_ms = 0
        self._led = -1

    # -- boot and loop --------------------------------------------------

    def boot(self):
        hal = self.hal
        now = hal.now_ms()
        cause = hal.reset_cause()
        self.log.add(now, EventLog.BOOT, cause, 0)
        try:
            rec = self.store.load(FAULT_RECORD)
        except OSError:
            rec = False  # unreadable storage is a reason to stay safe
        if rec is not None:
            if isinstance(rec, dict) and rec.get(0) in faults.NAMES:
                self.safety.restore(rec[0], rec.get(1, 0), rec.get(2, 1))
                self.session.restore_fault()
            else:
                self.safety.enter_safe_state(faults.STORAGE)
        elif self.store.corrupt:
            self.safety.enter_safe_state(faults.STORAGE)
        if cause == H.RESET_WATCHDOG:
            self.safety.enter_safe_state(faults.WATCHDOG)
        elif cause == H.RESET_BROWNOUT:
            self.safety.enter_safe_state(faults.BROWNOUT)
        hal.estop_irq(self.safety.estop_irq)
        hal.wdt_start(WDT_TIMEOUT_MS)

    def step(self):
        checked = 0
        try:
            now = self.hal.now_ms()
            self._poll_safety(now)
            checked |= 1
            self.link.poll(now)
            checked |= 2
            self.emg.pump(now, self._emit_block)
            checked |= 4
            self._tick_session(now)
            checked |= 8
            self._patient_io(now)
            checked |= 16
        except MemoryError:
            self.safety.enter_safe_state(faults.MEMORY)
        except Exception:  # any task failing ends in the safe state
            self.safety.enter_safe_state(faults.EXCEPTION)
        if checked == _ALL_CHECKED_IN:
            self.hal.wdt_feed()

    # -- safety ---------------------------------------------------------

    def _poll_safety(self, now):
        s = self.safety
        estop = self.hal.estop_open()
        # the level, not just the IRQ edge: a broken wire at boot reads as stop
        if estop and not self._estop_was_open and s.unreported != faults.ESTOP and s.fault != faults.ESTOP:
            s.enter_safe_state(faults.ESTOP)
        self._estop_was_open = estop
        if self.session.heartbeat_ms and self.session.active():
            if now - self.link.last_rx_ms > self.session.heartbeat_ms:
                s.enter_safe_state(faults.HEARTBEAT_LOST)
        if self.session.active() and self.emg.stalled(now):
            s.enter_safe_state(faults.EMG_STALLED)
        cause = s.take_unreported()
        if cause:
            self._report_fault(cause, now)

    def _report_fault(self, cause, now):
        s = self.safety
        latched = cause == s.fault
        self.log.add(now, EventLog.FAULT, cause, 1 if latched else 0)
        if latched:
            if not s.fault_ms:
                s.fault_ms = now
            try:
                self.store.save(FAULT_RECORD, {0: s.fault, 1: s.fault_ms, 2: s.fault_count})
            except OSError:
                s.enter_safe_state(faults.STORAGE)
                s.take_unreported()
            self.session.fault(now)
            self._tone_until_ms = now + _ALARM_MS
        elif cause == faults.HEARTBEAT_LOST:
            self.session.end(HEARTBEAT_LOST, m.REASON_HEARTBEAT_LOST, now)
        elif s.fault == 0:
            self.session.end(STOP, m.REASON_FAULT, now)
        self.link.push(m.EVENT, m.FAULT, code=cause, time_ms=now)

    # -- session --------------------------------------------------------

    def _checks_ok(self, now):
        # signal assessed after arming: a probe that was loose before counts only once it is in
        return (
            not self.safety.fault
            and not self.hal.estop_open()
            and self.emg.trustworthy(now - self.session.in_state_ms(now))
        )

    def _tick_session(self, now):
        cue = self.session.tick(now, self._checks_ok(now))
        if cue >= 0:
            left = self.session.phase_left_ms(now)
            self.link.push(m.EVENT, m.CUE, phase=self.session.phase & 0xFFFF, cue=cue, time_ms=now, duration_ms=left)
            self._tone_until_ms = now + _BEEP_MS

    def _state_changed(self, prev, nxt, reason, now):
        self.link.push(m.EVENT, m.STATE_CHANGED, from_state=prev, to_state=nxt, reason=reason, time_ms=now)

    def _emit_block(self, first_index, payload, flags):
        if self.streaming:
            self.link.push(
                m.STREAM,
                m.EMG,
                first_index=first_index,
                samples=bytes(payload),
                envelope_dv=self.emg.envelope_dv,
                state=self.session.state,
                flags=flags,
            )

    # -- the patient's buttons, LED and buzzer --------------------------

    def _patient_io(self, now):
        hal = self.hal
        pressed = hal.buttons()
        if pressed & H.BTN_START:
            st = self.session.state
            try:
                if st == m.IDLE or st == m.DONE:
                    self.session.start(demo.DEFAULT_S, 0, m.REASON_BUTTON, now)
                elif st == m.RUNNING:
                    self.session.fire(PAUSE, m.REASON_BUTTON, now)
                elif st == m.PAUSED:
                    self.session.fire(RESUME, m.REASON_BUTTON, now)
                else:
                    self.session.fire(STOP, m.REASON_BUTTON, now)
            except ProtocolError:
                pass  # refused and logged by the session; the LED shows why
        led = _LED_FOR_STATE[self.session.state]
        if led != self._led:
            hal.led(led)
            self._led = led
        if now < self._tone_until_ms:
            hal.buzzer(2000 if self.safety.fault else (880 if self.session.cue == m.CUE_CONTRACT else 440))
        else:
            hal.buzzer(0)

    # -- requests -------------------------------------------------------

    def _handlers(self):
        return {
            m.HELLO: self._hello,
            m.INFO: self._info,
            m.PING: self._ping,
            m.SESSION_START: self._start,
            m.SESSION_PAUSE: self._pause,
            m.SESSION_RESUME: self._resume,
            m.SESSION_STOP: self._stop,
            m.ESTOP: self._estop,
            m.FAULT_CLEAR: self._clear,
            m.STREAM_CONTROL: self._stream,
        }

    def _hello(self, body, now):
        version = m.negotiate(body[0], body[1])
        self.link.greeted = True
        self.link.version = version
        self.streaming = False  # a new host subscribes for itself
        return {
            "version": version,
            "firmware_version": FIRMWARE_VERSION,
            "board": self.hal.board,
            "serial": self.hal.serial,
            "max_payload": framing.MAX_PAYLOAD,
        }

    def _info(self, body, now):
        s = self.safety
        fault = None
        if s.fault:
            fault = {m.FAULT_CODE: s.fault, m.FAULT_LATCHED: True, m.FAULT_TIME_MS: s.fault_ms, m.FAULT_COUNT: s.fault_count}
        ses = self.session
        session = None
        if ses.duration_ms:
            session = {
                m.SESSION_ELAPSED_MS: ses.running_ms(now),
                m.SESSION_DURATION_MS: ses.duration_ms,
                m.SESSION_PHASE: max(ses.phase, 0),
                m.SESSION_CUE: ses.cue,
                m.SESSION_HOST_DRIVEN: ses.heartbeat_ms > 0,
                m.SESSION_PAUSED_MS: ses.paused_ms,
            }
        return {
            "firmware_version": FIRMWARE_VERSION,
            "board": self.hal.board,
            "serial": self.hal.serial,
            "state": ses.state,
            "fault": fault,
            "protocol": None,
            "limits": {
                m.LIMIT_HW_MAX_UA: self.hal.hw_max_ua,
                m.LIMIT_POLICY_MAX_UA: 0,  # no device policy provisioned: no stimulation
                m.LIMIT_MAX_SESSION_S: demo.MAX_S,
                m.LIMIT_EMG_RATE_HZ: self.hal.emg_rate_hz,
            },
            "uptime_ms": now,
            "estop_open": self.hal.estop_open(),
            "session": session,
            "link": self.link.counters(),
        }

    def _ping(self, body, now):
        return {"uptime_ms": now}

    def _start(self, body, now):
        self.session.start(body.get(1, demo.DEFAULT_S), body.get(2, 0), m.REASON_REQUEST, now)
        return {"state": self.session.state}

    def _pause(self, body, now):
        return {"state": self.session.fire(PAUSE, m.REASON_REQUEST, now)}

    def _resume(self, body, now):
        return {"state": self.session.fire(RESUME, m.REASON_REQUEST, now)}

    def _stop(self, body, now):
        return {"state": self.session.fire(STOP, m.REASON_REQUEST, now)}

    def _estop(self, body, now):
        self.safety.enter_safe_state(faults.HOST_ESTOP)
        self._report_fault(self.safety.take_unreported(), now)
        return {"state": self.session.state}

    def _clear(self, body, now):
        if self.session.state != m.FAULT_STATE:
            raise ProtocolError(ILLEGAL_STATE, "no fault to clear")
        refusal = self.safety.may_clear()
        if refusal:
            raise ProtocolError(refusal, "release the emergency stop first")
        cleared = self.safety.fault
        self.store.remove(FAULT_RECORD)
        self.safety.clear()
        self.log.add(now, EventLog.CLEARED, cleared, 0)
        self.session.fire(CLEAR, m.REASON_CLEARED, now)
        return {"state": self.session.state}

    def _stream(self, body, now):
        self.streaming = body[0]
        return {}
