"""The device: boot into the safe state, then one cooperative loop pass per step().

Each pass polls safety, serves the link, drains EMG, advances the session
and the patient's controls. The watchdog is fed only when every one of them
checked in during the pass; an exception anywhere ends in the safe state.
"""

from firmware import hal as H
from firmware import timeline
from firmware.biofeedback import KIND_CODES, Biofeedback
from firmware.emg import EmgInput
from firmware.eventlog import EventLog
from firmware.link import Link
from firmware.maintenance import Maintenance, firmware_hash
from firmware.safety import Safety
from firmware.selftest import Selftest
from firmware.session import CLEAR, HEARTBEAT_LOST, PAUSE, RESUME, START, STOP, Session
from firmware.sessionlog import SessionLog
from firmware.stim import Stimulator
from firmware.storage import FAULT_RECORD, POLICY_RECORD, Store, WriteBudget
from firmware.therapy_store import TherapyStore
from firmware.version import FIRMWARE_VERSION
from protocol import codec, faults, framing
from protocol import messages as m
from protocol.errors import BAD_FIELD, BUSY, ILLEGAL_STATE, ProtocolError
from protocol.therapy import STIM_KINDS, uses_stimulation

WDT_TIMEOUT_MS = 2000
MAX_SESSION_S = 3600  # the longest session this firmware runs, whatever a protocol says
DEFAULT_WINDOW_MS = 250  # the envelope's RMS window unless the protocol says otherwise
STIM_HEARTBEAT_MAX_MS = 1000  # a host driving stimulation that falls silent stops it within 1 s
_ALL_CHECKED_IN = 0x1F
_LED_FOR_STATE = (H.LED_IDLE, H.LED_RUNNING, H.LED_RUNNING, H.LED_PAUSED, H.LED_DONE, H.LED_FAULT, H.LED_OFF)
# What the patient hears: a tone at every cue, another when the session is
# over, an alarm on a fault. Public: the patient's instructions (and the
# simulated patient) rely on them.
TONE_CONTRACT_HZ = 880
TONE_RELAX_HZ = 440  # rest or relax: let go
TONE_DONE_HZ = 660
TONE_ALARM_HZ = 2000
# Biofeedback: while the envelope is above the target in a relaxation phase
# the buzzer sounds in this band, higher the further above; silence means
# at or below target. Below the cue tones so the two are never confused.
TONE_FEEDBACK_MIN_HZ = 200
TONE_FEEDBACK_MAX_HZ = 400
# the device advises ending the session (rest tone rising, paused twice)
TONE_ADVICE_HZ = 520
_BEEP_MS = 200
_DONE_MS = 600
_ALARM_MS = 1000
_ADVICE_MS = 1500
MAX_LOGGED_FAULTS = 4
# a session the host's failure ended before this share of its planned time gives its count back
HOST_FAIL_REFUND_PERCENT = 25
# flash writes a host can cause at will (clears of its e-stops, ratings):
# a burst of HOST_WRITE_BURST, then one per HOST_WRITE_REFILL_MS each
HOST_WRITE_BURST = 3
HOST_WRITE_REFILL_MS = 20000
_LOG_REPLY_BYTES = 380  # log entries per reply, leaving room for the envelope in one frame


def _within(budget, now, what):
    wait_ms = budget.take(now)
    if wait_ms:
        raise ProtocolError(BUSY, "too many %s: wait %d s" % (what, (wait_ms + 999) // 1000))


class Controller:
    def __init__(self, hal):
        self.hal = hal
        self.safety = Safety(hal)  # first: the output is disabled before anything else
        self.log = EventLog()
        now = hal.now_ms()
        self.session = Session(self.log, self._state_changed)
        self.store = Store(hal, self.safety)
        self.therapy = TherapyStore(self.store)
        self.sessionlog = SessionLog(self.store)
        self.maintenance = Maintenance(hal, self.safety, self.session, self.store)
        self.firmware_hash = None  # SHA-256 of the image tonus flash deployed
        self._host_time_s = 0  # the host's clock at the session's start, if a host started it
        self._start_ms = 0
        self._session_faults = []
        self.policy_max_ua = 0  # no device policy provisioned: no stimulation
        self.bio = Biofeedback()
        self.stim = Stimulator(hal, self.safety, self._stim_changed)
        self._part = -1  # the protocol phase running, -1 between sessions
        self.emg = EmgInput(hal, now, on_envelope=self._envelope)
        self.selftest = Selftest(
            hal, self.safety, self.session, self.emg, self.store, WDT_TIMEOUT_MS, self._selftest_done
        )
        self.link = Link(hal, self._handlers(), self.log)
        self.streaming = False
        self._estop_was_open = False
        self._tone_until_ms = 0
        self._tone_hz = 0
        self._led = -1
        self.last_summary = None  # scores of the last session practised
        self._fault_saved = -1  # fault_ms of the fault record on flash, -1: none written this boot
        self._clears = WriteBudget(HOST_WRITE_BURST, HOST_WRITE_REFILL_MS)
        self._ratings = WriteBudget(HOST_WRITE_BURST, HOST_WRITE_REFILL_MS)

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
        try:
            stored_ok = self.therapy.load()
            policy = self.store.load(POLICY_RECORD)
            self.sessionlog.load()  # a damaged segment loses its entries, not the log
            self.firmware_hash = firmware_hash(self.store)
        except OSError:
            stored_ok, policy = False, None
        if not stored_ok or not hal.profile_ok:
            # a board without its profile has no trustworthy ceilings or calibration
            self.safety.enter_safe_state(faults.STORAGE)
        if isinstance(policy, dict) and codec.is_int(policy.get("amplitude_max_ua")):
            self.policy_max_ua = min(max(policy["amplitude_max_ua"], 0), hal.hw_max_ua)
        try:
            self.therapy.recheck(self._limits())
        except OSError:
            self.safety.enter_safe_state(faults.STORAGE)
        if isinstance(policy, dict) and policy.get("mains_hz") in (50, 60):
            self.emg.reconfigure(mains_hz=policy["mains_hz"])
        if cause == H.RESET_WATCHDOG:
            self.safety.enter_safe_state(faults.WATCHDOG)
        elif cause == H.RESET_BROWNOUT:
            self.safety.enter_safe_state(faults.BROWNOUT)
        self._log_interrupted(cause)
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
            self.selftest.step(now)
            checked |= 8
            self._patient_io(now)
            self.maintenance.poll(now)
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
        # a level a host set lasts while that host keeps talking, in any session
        if self.stim.level_by_host and now - self.link.last_rx_ms > STIM_HEARTBEAT_MAX_MS:
            self._host_level_gone(now)
        if self.session.active() and self.emg.stalled(now):
            s.enter_safe_state(faults.EMG_STALLED)
        cause = s.take_unreported()
        if cause:
            self._report_fault(cause, now)

    def _host_level_gone(self, now):
        if self.stim.host_gone():
            self.log.add(now, EventLog.LEVEL_DROPPED, self.stim.state, 0)
            self._stim_changed(self.stim.state, now)

    def _report_fault(self, cause, now):
        s = self.safety
        latched = cause == s.fault
        self.log.add(now, EventLog.FAULT, cause, 1 if latched else 0)
        if self.bio.running and len(self._session_faults) < MAX_LOGGED_FAULTS:
            self._session_faults.append(cause)
        if latched:
            if not s.fault_ms:
                s.fault_ms = now
            # a fault already latched on flash is not written again: repeated
            # e-stops cost no flash (the count in RAM still grows)
            if self._fault_saved != s.fault_ms:
                try:
                    self.store.save(FAULT_RECORD, {0: s.fault, 1: s.fault_ms, 2: s.fault_count})
                    self._fault_saved = s.fault_ms
                except OSError:
                    s.enter_safe_state(faults.STORAGE)
                    s.take_unreported()
            self.session.fault(now)
            self._beep(TONE_ALARM_HZ, now, _ALARM_MS)
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
            self.bio.segment(self.session.phase, cue)
            self._phase_changed(now)
            self._announce_cue(cue, self.session.phase_left_ms(now), now)
        st = self.stim
        if self.session.state == m.RUNNING:
            st.tick(now, self.bio.last_dv, self.bio.last_trusted)
        # EMG recorded during stimulation: each pulse's artefact is blanked (firmware/emg.py)
        self.emg.blank(st.phase["frequency_hz"] if st.state != m.STIM_OFF and st.cmd_ua else 0)
        advice = self.bio.advice_pending
        if advice:
            self.bio.advice_pending = 0
            self.log.add(now, EventLog.ADVICE, advice, 0)
            self.link.push(
                m.EVENT,
                m.ADVICE,
                reason=advice,
                time_ms=now,
                rest_dv=self.bio.trend_dv(),
                reference_dv=self.bio.reference_dv(),
            )
            self._beep(TONE_ADVICE_HZ, now, _ADVICE_MS)

    def _phase_changed(self, now):
        doc = self.therapy.doc
        if doc is None:
            return
        part = self.session.timeline.phase_of[self.session.phase]
        if part == self._part:
            return
        self._part = part
        self.stim.end(now)
        ph = doc["phases"][part]
        if ph["type"] in STIM_KINDS:
            self.stim.begin(ph, self._stim_limit_ua(doc), self.bio.mvc_dv, now)

    def _stim_limit_ua(self, doc):
        # limits in layers: board, device policy, protocol (the phase's own maximum applies in stim.begin)
        return min(self.hal.hw_max_ua, self.policy_max_ua, doc["limits"]["amplitude_max_ua"])

    def _stim_changed(self, state, now):
        st = self.stim
        self.link.push(
            m.EVENT,
            m.STIM,
            state=state,
            time_ms=now,
            level_ua=st.level_ua,
            limit_ua=st.limit_ua,
            impedance_ohm=st.impedance_ohm,
            triggers=st.triggers,
        )
        if st.ets and (state == m.STIM_READY or state == m.STIM_REST):
            # ETS paces the patient itself: contract when armed, rest after each burst
            cue = m.CUE_CONTRACT if state == m.STIM_READY else m.CUE_REST
            self.session.cue = cue
            self.bio.cue(cue)
            self._announce_cue(cue, 0, now)  # 0: until the next cue

    def _announce_cue(self, cue, duration_ms, now):
        """The CUE event to the host and the cue tone to the patient."""
        seg = self.session.phase
        if self.therapy.doc is not None:
            part = self.session.timeline.phase_of[seg]
            self.link.push(
                m.EVENT, m.CUE, phase=seg & 0xFFFF, cue=cue, time_ms=now, duration_ms=duration_ms, protocol_phase=part
            )
        else:
            self.link.push(m.EVENT, m.CUE, phase=seg & 0xFFFF, cue=cue, time_ms=now, duration_ms=duration_ms)
        self._beep(TONE_CONTRACT_HZ if cue == m.CUE_CONTRACT else TONE_RELAX_HZ, now, _BEEP_MS)

    def _selftest_done(self, passed, checks, now):
        self.link.push(m.EVENT, m.SELFTEST_RESULT, time_ms=now, passed=passed, checks=checks)

    def _envelope(self, dv, flags):
        if self.session.state == m.RUNNING:
            self.bio.envelope(dv, flags)

    def _session_over(self, prev, reason, now):
        summary = self.bio.finish(reason, self.session.running_ms(now), now)
        st = self.stim
        summary[m.SUM_TRIGGERS] = st.triggers_total
        summary[m.SUM_CHARGE_UC] = st.charge_nc // 1000
        summary[m.SUM_MAX_UA] = st.max_ua
        run_ms = summary[m.SUM_RUN_MS]
        # the budget rule for sessions the patient did not get (docs/security.md)
        refund = prev == m.ARMED or (
            reason == m.REASON_HEARTBEAT_LOST
            and run_ms * 100 < self.session.duration_ms * HOST_FAIL_REFUND_PERCENT
        )
        try:
            if prev != m.ARMED:  # else the checks never passed: nothing was practised
                self.last_summary = summary
                self.link.push(m.EVENT, m.SUMMARY, **m.named(m.EVENT, m.SUMMARY, summary))
                self.sessionlog.add(self._log_entry(summary))
            # after the entry: a power cut in between finds the entry at boot, never no entry
            self.therapy.close_open(now, refund and self.safety.protocol_verified)
        except OSError:
            self.safety.enter_safe_state(faults.STORAGE)

    def _mark_open(self, doc, now):
        # the output is still off (ARMED): storage may be written
        rec = {m.LOG_START_MS: self._start_ms, m.LOG_PLANNED_MS: self.session.duration_ms}
        if doc is not None:
            rec[m.LOG_PROTOCOL] = doc["id"]
        if self._host_time_s:
            rec[m.LOG_HOST_TIME_S] = self._host_time_s
        try:
            self.therapy.mark_open(now, rec, doc is not None)
        except OSError:
            self.safety.enter_safe_state(faults.STORAGE)

    def _log_interrupted(self, cause):
        """A session under way when the board last stopped goes into the log as interrupted."""
        rec = self.therapy.open
        if not isinstance(rec, dict):
            return
        try:
            last = self.sessionlog.get(self.sessionlog.next_seq - 1) if self.sessionlog.next_seq else None
            if last is not None and last.get(m.LOG_START_MS) == rec.get(m.LOG_START_MS):
                # the entry was stored, the marker not yet dropped: the session is logged already
                self.therapy.close_open(self.hal.now_ms())
                return
            e = {
                m.LOG_START_MS: rec.get(m.LOG_START_MS, 0),
                m.LOG_END_REASON: m.REASON_INTERRUPTED,
                m.LOG_FAULTS: [faults.WATCHDOG]
                if cause == H.RESET_WATCHDOG
                else ([faults.BROWNOUT] if cause == H.RESET_BROWNOUT else []),
            }
            for key in (m.LOG_PROTOCOL, m.LOG_HOST_TIME_S, m.LOG_PLANNED_MS):
                if key in rec:
                    e[key] = rec[key]
            self.sessionlog.add(e)
            self.therapy.close_open(self.hal.now_ms())
        except OSError:
            self.safety.enter_safe_state(faults.STORAGE)

    def _log_entry(self, summary):
        doc = self.therapy.doc if self.safety.protocol_verified else None
        e = {
            m.LOG_START_MS: self._start_ms,
            m.LOG_RUN_MS: summary[m.SUM_RUN_MS],
            m.LOG_PLANNED_MS: self.session.duration_ms,
            m.LOG_PHASES: len(doc["phases"]) if doc is not None else 1,
            m.LOG_MVC_DV: summary[m.SUM_MVC_DV],
            m.LOG_TRIGGERS: summary[m.SUM_TRIGGERS],
            m.LOG_CHARGE_UC: summary[m.SUM_CHARGE_UC],
            m.LOG_MAX_UA: summary[m.SUM_MAX_UA],
            m.LOG_FAULTS: list(self._session_faults),
            m.LOG_END_REASON: summary[m.SUM_END_REASON],
            m.LOG_ADVICE: summary[m.SUM_ADVICE],
        }
        if doc is not None:
            e[m.LOG_PROTOCOL] = doc["id"]
        if self._host_time_s:
            e[m.LOG_HOST_TIME_S] = self._host_time_s
        done = 0
        below = 0
        rest = 0
        for p in summary[m.SUM_PHASES]:
            if p[m.SC_RUN_MS] >= p[m.SC_PLANNED_MS]:
                done += 1
            below += p.get(m.SC_BELOW_MS, 0)
            # the rest tone of the relaxation practice, else of a baseline, else of any rest
            if m.SC_REST_DV in p and (not rest or p[m.SC_KIND] == KIND_CODES["relaxation"]):
                rest = p[m.SC_REST_DV]
        e[m.LOG_PHASES_DONE] = done
        e[m.LOG_BELOW_MS] = below
        e[m.LOG_REST_DV] = rest
        return e

    def _beep(self, hz, now, ms):
        self._tone_hz = hz
        self._tone_until_ms = now + ms

    def _state_changed(self, prev, nxt, reason, now):
        if prev == m.RUNNING:
            # pause, stop, finish, fault: the output goes first; resuming starts the phase afresh, from zero
            self.stim.end(now)
            self._part = -1
        elif prev == m.PAUSED and nxt == m.RUNNING:
            self._phase_changed(now)
        self.link.push(m.EVENT, m.STATE_CHANGED, from_state=prev, to_state=nxt, reason=reason, time_ms=now)
        if self.bio.running and (nxt == m.DONE or nxt == m.FAULT_STATE or nxt == m.IDLE):
            self._session_over(prev, reason, now)
        if prev == m.RUNNING or prev == m.PAUSED:
            if nxt == m.DONE:
                self._beep(TONE_DONE_HZ, now, _DONE_MS)
        if nxt == m.PAUSED:
            self._beep(TONE_RELAX_HZ, now, _BEEP_MS)
        if nxt == m.DONE and self.therapy.doc is not None:
            self.therapy.checkpoint_uptime(now)  # the interval to the next session survives a power cut

    def _begin_session(self, demo_s, heartbeat_ms, reason, now, host_time_s=0):
        """Start the approved protocol's session, or the demonstration without one."""
        if self.maintenance.pending():
            raise ProtocolError(BUSY, "the device is resetting for maintenance")
        if self.selftest.running():
            raise ProtocolError(BUSY, "a self-test is running")
        self._host_time_s = host_time_s
        self._session_faults = []
        doc = self.therapy.doc
        if doc is not None:
            if demo_s:
                raise ProtocolError(BAD_FIELD, "the approved protocol decides the session")
            self.session.check(START, now)  # a refused start says why before the budget does
            if heartbeat_ms > STIM_HEARTBEAT_MAX_MS and uses_stimulation(doc):
                raise ProtocolError(
                    BAD_FIELD,
                    "a host driving stimulation needs a heartbeat of at most %d ms" % STIM_HEARTBEAT_MAX_MS,
                )
            self.therapy.check_start(now)
            self._start_ms = self.therapy.total_ms(now)
            plan = timeline.from_protocol(doc)
            self.emg.reconfigure(window_ms=doc.get("emg", {}).get("window_ms", DEFAULT_WINDOW_MS))
            self.session.start(plan, heartbeat_ms, reason, now)
            self.safety.protocol_verified = True  # stimulation only ever comes from a verified protocol
            self.bio.start(doc, plan)
            self.stim.new_session()
            self._mark_open(doc, now)
            return
        demo_s = demo_s or timeline.DEMO_DEFAULT_S
        if demo_s < timeline.DEMO_MIN_S or demo_s > timeline.DEMO_MAX_S:
            raise ProtocolError(
                BAD_FIELD, "demo length %d..%d s" % (timeline.DEMO_MIN_S, timeline.DEMO_MAX_S)
            )
        plan = timeline.demo(demo_s)
        self.emg.reconfigure(window_ms=DEFAULT_WINDOW_MS)
        self._start_ms = self.therapy.total_ms(now)
        self.session.start(plan, heartbeat_ms, reason, now)
        self.safety.protocol_verified = False
        self.bio.start(None, plan)
        self.stim.new_session()
        self._mark_open(None, now)

    def _emit_block(self, first_index, payload, flags):
        st = self.stim
        if st.block_pulses:
            flags |= m.FLAG_STIM
            st.block_pulses = 0
        if st.block_trigger:
            flags |= m.FLAG_TRIGGER
            st.block_trigger = False
        if not self.streaming:
            return
        frame = {
            "first_index": first_index,
            "samples": bytes(payload),
            "envelope_dv": self.emg.envelope_dv,
            "state": self.session.state,
            "flags": flags,
        }
        if st.state != m.STIM_OFF:
            frame["stim_ua"] = st.cmd_ua
        if self.session.state == m.RUNNING:
            # what the patient sees and hears, so a screen can show the same
            target = self.bio.target_dv() or st.trigger_dv()
            if target:
                frame["target_dv"] = target
            if self.bio.feedback_hz(TONE_FEEDBACK_MIN_HZ, TONE_FEEDBACK_MAX_HZ):
                frame["flags"] = flags | m.FLAG_FEEDBACK
        self.link.push(m.STREAM, m.EMG, **frame)

    # -- the patient's buttons, LED and buzzer --------------------------

    def _patient_io(self, now):
        hal = self.hal
        pressed = hal.buttons()
        if pressed & (H.BTN_UP | H.BTN_DOWN) and self.session.state == m.RUNNING:
            self.stim.step_level(pressed & H.BTN_UP)
        if pressed & H.BTN_START:
            st = self.session.state
            try:
                if st == m.IDLE or st == m.DONE:
                    self._begin_session(0, 0, m.REASON_BUTTON, now)
                elif st == m.RUNNING:
                    self.session.fire(PAUSE, m.REASON_BUTTON, now)
                    self.bio.patient_paused()
                elif st == m.PAUSED:
                    self.session.fire(RESUME, m.REASON_BUTTON, now)
                else:
                    self.session.fire(STOP, m.REASON_BUTTON, now)
            except ProtocolError:
                pass  # refused and logged by the session; the LED shows why
        led = _LED_FOR_STATE[self.session.state]
        if self.session.state == m.RUNNING:
            if self.bio.advice:
                led = H.LED_ADVICE
            elif self.bio.feedback_hz(TONE_FEEDBACK_MIN_HZ, TONE_FEEDBACK_MAX_HZ):
                led = H.LED_ABOVE_TARGET  # steady again once at or below the target
        if led != self._led:
            hal.led(led)
            self._led = led
        if now < self._tone_until_ms:
            hz = self._tone_hz
        elif self.session.state == m.RUNNING:
            hz = self.bio.feedback_hz(TONE_FEEDBACK_MIN_HZ, TONE_FEEDBACK_MAX_HZ)
        else:
            hz = 0
        hal.buzzer(hz)

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
            m.STIM_LEVEL: self._stim_level,
            m.LOG_READ: self._log_read,
            m.SESSION_RATE: self._rate,
            m.MAINTENANCE_ENTER: self.maintenance.enter,
            m.SELFTEST: self.selftest.request,
            m.PROTOCOL_BEGIN: self._upload_begin,
            m.PROTOCOL_CHUNK: self._upload_chunk,
            m.PROTOCOL_COMMIT: self._upload_commit,
            m.PROTOCOL_SHOW: self._protocol_show,
            m.PROTOCOL_REMOVE: self._protocol_remove,
        }

    def _hello(self, body, now):
        version = m.negotiate(body[0], body[1])
        self.link.greeted = True
        self.link.version = version
        self.streaming = False  # a new host subscribes for itself
        if self.session.heartbeat_ms:
            # the host driving the session came back: its level starts from zero again
            # (a host that only watches a stand-alone session changes nothing)
            self.stim.level_ua = 0
        self._host_level_gone(now)  # a level set by the host before this one is not this host's
        reply = {
            "version": version,
            "firmware_version": FIRMWARE_VERSION,
            "board": self.hal.board,
            "serial": self.hal.serial,
            "max_payload": framing.MAX_PAYLOAD,
        }
        if self.firmware_hash is not None:
            reply["firmware_hash"] = self.firmware_hash
        return reply

    def _info(self, body, now):
        s = self.safety
        fault = None
        if s.fault:
            fault = {
                m.FAULT_CODE: s.fault,
                m.FAULT_LATCHED: True,
                m.FAULT_TIME_MS: s.fault_ms,
                m.FAULT_COUNT: s.fault_count,
            }
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
            "protocol": self.therapy.summary(),
            "limits": {
                m.LIMIT_HW_MAX_UA: self.hal.hw_max_ua,
                m.LIMIT_POLICY_MAX_UA: self.policy_max_ua,
                m.LIMIT_MAX_SESSION_S: MAX_SESSION_S,
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
        self._begin_session(body.get(1, 0), body.get(2, 0), m.REASON_REQUEST, now, body.get(0, 0))
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
        # each host e-stop writes the fault record and each clear removes it: a
        # host looping the two would wear the flash (a person's presses cannot)
        if self.safety.fault == faults.HOST_ESTOP:
            _within(self._clears, now, "clears of host e-stops")
        cleared = self.safety.fault
        self.store.remove(FAULT_RECORD)
        self._fault_saved = -1
        self.safety.clear()
        self.log.add(now, EventLog.CLEARED, cleared, 0)
        self.session.fire(CLEAR, m.REASON_CLEARED, now)
        return {"state": self.session.state}

    def _stim_level(self, body, now):
        if self.session.state != m.RUNNING:
            raise ProtocolError(ILLEGAL_STATE, "no session running")
        try:
            return {"level_ua": self.stim.set_level(body[0])}
        except ValueError as e:
            code = BAD_FIELD if self.stim.state not in (m.STIM_OFF, m.STIM_CHECK) else ILLEGAL_STATE
            raise ProtocolError(code, str(e))

    def _log_read(self, body, now):
        lg = self.sessionlog
        n = min(m.MAX_LOG_READ, body[1])
        entries = []
        size = 0
        nxt = body[0]
        while len(entries) < n:
            got, after = lg.read(nxt, 1)
            if not got:
                nxt = after
                break
            k = len(codec.dumps(got[0]))
            if entries and size + k > _LOG_REPLY_BYTES:
                break  # the rest in the next request: a reply fits one frame
            entries.append(got[0])
            size += k
            nxt = after
        return {
            "entries": entries,
            "next_seq": nxt,
            "oldest_seq": lg.oldest(),
            "end_seq": lg.next_seq,
            "damaged": lg.damaged,
        }

    def _rate(self, body, now):
        seq, pain = body[0], body[1]
        if pain > m.PAIN_MAX:
            raise ProtocolError(BAD_FIELD, "pain/comfort score is 0..%d" % m.PAIN_MAX)
        if self.session.active():
            raise ProtocolError(BUSY, "rate the session after it ends")
        e = self.sessionlog.get(seq)
        if e is None:
            raise ProtocolError(BAD_FIELD, "session %d is not in the log" % seq)
        if e.get(m.LOG_PAIN) != pain:  # the same score again writes nothing
            _within(self._ratings, now, "ratings")
            self.sessionlog.update(seq, m.LOG_PAIN, pain)
        return {"session": seq}

    def _stream(self, body, now):
        self.streaming = body[0]
        return {}

    # -- approved protocols ---------------------------------------------

    def _quiet(self):
        # uploads and verification only while no session runs and the output is off
        if self.session.active() or self.safety.output_on():
            raise ProtocolError(BUSY, "stop the session first")
        if self.maintenance.pending():
            raise ProtocolError(BUSY, "the device is resetting for maintenance")
        if self.selftest.running():
            raise ProtocolError(BUSY, "a self-test is running")

    def _upload_begin(self, body, now):
        self._quiet()
        return {"offset": self.therapy.begin(body[0], body[1])}

    def _upload_chunk(self, body, now):
        self._quiet()
        return {"offset": self.therapy.chunk(body[0], body[1])}

    def _upload_commit(self, body, now):
        self._quiet()
        limits = self._limits()
        # seconds of big-integer work on the board: feed the watchdog as it goes
        summary = self.therapy.commit(now, self.hal.serial, limits, self.hal.wdt_feed)
        return {"protocol": summary}

    def _limits(self):
        return {"amplitude_max_ua": self.policy_max_ua, "max_session_s": MAX_SESSION_S}

    def _protocol_show(self, body, now):
        return {"protocol": self.therapy.summary(), "max_sequence": self.therapy.max_seq}

    def _protocol_remove(self, body, now):
        self._quiet()
        self.therapy.remove(now)
        return {}
