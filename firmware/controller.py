"""The device: boot into the safe state, then one cooperative loop pass per step().

Each pass polls safety, serves the link, drains EMG, advances the session
and the patient's controls. The watchdog is fed only when every one of them
checked in during the pass; an exception anywhere ends in the safe state.

The controller is the loop and what ties the parts together (faults to the
session, phases to the stimulator, cues to the host and the patient); each
behaviour has a module of its own: firmware/handlers.py answers requests,
firmware/patient_io.py is the patient's buttons, LED and tones,
firmware/records.py what is kept of sessions and faults.
"""

from firmware import hal as H
from firmware import streamframe as sf
from firmware import timeline
from firmware.biofeedback import Biofeedback
from firmware.emg import EmgInput
from firmware.eventlog import EventLog
from firmware.handlers import Handlers, limits
from firmware.link import Link
from firmware.maintenance import Maintenance, firmware_hash
from firmware.patient_io import PatientIO
from firmware.records import Records
from firmware.safety import Safety
from firmware.selftest import Selftest
from firmware.session import HEARTBEAT_LOST, START, STOP, Session
from firmware.sessionlog import SessionLog
from firmware.stim import Stimulator
from firmware.storage import FAULT_RECORD, POLICY_RECORD, Store
from firmware.therapy_store import TherapyStore
from protocol import codec, faults
from protocol import messages as m
from protocol.errors import BAD_FIELD, BUSY, ProtocolError
from protocol.phase_kinds import STIM_KINDS, uses_stimulation

WDT_TIMEOUT_MS = 2000
DEFAULT_WINDOW_MS = 250  # the envelope's RMS window unless the protocol says otherwise
STIM_HEARTBEAT_MAX_MS = 1000  # a host driving stimulation that falls silent stops it within 1 s
_ALL_CHECKED_IN = 0x1F


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
        self.records = Records(self.store, self.therapy, self.sessionlog, self.safety, self.session)
        self.maintenance = Maintenance(hal, self.safety, self.session, self.store)
        self.firmware_hash = None  # SHA-256 of the image tonus flash deployed
        self.policy_max_ua = 0  # no device policy provisioned: no stimulation
        self.bio = Biofeedback()
        self.stim = Stimulator(hal, self.safety, self._stim_changed)
        self.patient = PatientIO(hal, self.session, self.bio, self.stim, self._button_start)
        self._part = -1  # the protocol phase running, -1 between sessions
        self.emg = EmgInput(hal, now, on_envelope=self._envelope)
        self.selftest = Selftest(
            hal, self.safety, self.session, self.emg, self.store, WDT_TIMEOUT_MS, self._selftest_done
        )
        self.handlers = Handlers(self)
        self.link = Link(hal, self.handlers.table(), self.log, len(self.emg.payload))
        self._emit = self._emit_block  # made once: a bound-method lookup in the loop allocates
        self._emg_waited = False  # the last pass answered a request and left the EMG for this one
        self.streaming = False
        self.last_summary = None  # scores of the last session practised

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
                self.records.crash.restore(rec.get(3))
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
            self.therapy.recheck(limits(self.policy_max_ua))
        except OSError:
            self.safety.enter_safe_state(faults.STORAGE)
        if isinstance(policy, dict) and policy.get("mains_hz") in (50, 60):
            self.emg.reconfigure(mains_hz=policy["mains_hz"])
        if cause == H.RESET_WATCHDOG:
            self.safety.enter_safe_state(faults.WATCHDOG)
        elif cause == H.RESET_BROWNOUT:
            self.safety.enter_safe_state(faults.BROWNOUT)
        self.records.interrupted(cause, hal.now_ms())
        hal.estop_irq(self.safety.estop_irq)
        hal.wdt_start(WDT_TIMEOUT_MS)

    def step(self):
        # the tasks are a call of their own: with its try this one fits the 11 words of state
        # MicroPython keeps on the C stack (a larger call's frame goes on the heap)
        checked = 0
        try:
            checked = self._tasks()
        except Exception as e:  # noqa: BLE001 - any task failing ends in the safe state
            self.safety.enter_safe_state(faults.MEMORY if isinstance(e, MemoryError) else faults.EXCEPTION)
            self.records.crash.catch(e)
        if checked == _ALL_CHECKED_IN:
            self.hal.wdt_feed()

    def _tasks(self):
        """Every task once; the check-in bits (all unless a task raised)."""
        now = self.hal.now_ms()
        self.poll_safety(now)
        checked = 1
        answered = self.link.poll(now)
        # a request answered takes up to tens of ms on a board: the output's hold
        # bridges each task of the pass, not the sum of them
        self.safety.keepalive()
        checked |= 2
        # one heavy job a pass: after a request the EMG waits a pass, never two passes running
        self._emg_waited = answered and not self._emg_waited
        if not self._emg_waited:
            self._pump(now)
        checked |= 4
        self._tick_session(now)
        self.selftest.step(now)
        checked |= 8
        self.patient.poll(now)
        self.maintenance.poll(now)
        checked |= 16
        # the one point of the pass for the collector: between two keepalives,
        # so its pause never adds to a pass in the output's hold (hal.OUT_HOLD_MS)
        self.safety.keepalive()
        self.hal.collect(self.link.rx_frames)
        self.safety.keepalive()
        return checked

    def _pump(self, now):
        self.emg.pump(now, self._emit)
        # judged after draining: a long pass (a flash erase) delays the pump, not the ring
        if self.session.active() and self.emg.stalled(now):
            self.safety.enter_safe_state(faults.EMG_STALLED)
            self.report_fault(self.safety.take_unreported(), now)  # ends the session before its tick

    # -- safety ---------------------------------------------------------

    def poll_safety(self, now):
        s = self.safety
        # the level, not just the IRQ edge: a broken wire at boot reads as stop, and an
        # open e-stop whose interrupt was lost or whose latch was cleared latches again
        if self.hal.estop_open() and not s.fault:
            s.enter_safe_state(faults.ESTOP)
        ses = self.session
        if ses.heartbeat_ms and ses.active() and now - self.link.last_rx_ms > ses.heartbeat_ms:
            s.enter_safe_state(faults.HEARTBEAT_LOST)
        # a level a host set lasts while that host keeps talking, in any session
        if self.stim.level_by_host and now - self.link.last_rx_ms > STIM_HEARTBEAT_MAX_MS:
            self.host_level_gone(now)
        cause = s.take_unreported()
        if cause:
            self.report_fault(cause, now)

    def host_level_gone(self, now):
        """The host that set the level is silent or replaced: the level goes back to zero."""
        if self.stim.host_gone():
            self.log.add(now, EventLog.LEVEL_DROPPED, self.stim.state, 0)
            self._stim_changed(self.stim.state, now)

    def report_fault(self, cause, now):
        """Log, keep, act on and announce a safe-state entry (latched or not)."""
        s = self.safety
        latched = cause == s.fault
        self.log.add(now, EventLog.FAULT, cause, 1 if latched else 0)
        if self.bio.running:
            self.records.fault(cause)
        if latched:
            if not s.fault_ms:
                s.fault_ms = now
            self.records.save_fault()
            self.session.fault(now)
            self.patient.alarm(now)
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

    # every pass, so within 11 words of state (else its frame goes on MicroPython's heap)
    def _tick_session(self, now):
        cue = self.session.tick(now, self._checks_ok(now))
        if cue >= 0:
            self._cue_due(cue, now)
        st = self.stim
        if self.session.state == m.RUNNING:
            st.tick(now, self.bio.last_dv, self.bio.last_trusted)
        # EMG recorded during stimulation: each pulse's artefact is blanked (firmware/emg.py)
        self.emg.blank(st.phase["frequency_hz"] if st.state != m.STIM_OFF and st.cmd_ua else 0)
        if self.bio.advice_pending:
            self._advise(now)

    def _cue_due(self, cue, now):
        self.bio.segment(self.session.phase, cue)
        self._phase_changed(now)
        self._announce_cue(cue, self.session.phase_left_ms(now), now)

    def _advise(self, now):
        advice = self.bio.advice_pending
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
        self.patient.advice(now)

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
            running = self.session.state == m.RUNNING
            self.stim.begin(ph, self._stim_limit_ua(doc), self.bio.mvc_dv, now, running)

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
                m.EVENT,
                m.CUE,
                phase=seg & 0xFFFF,
                cue=cue,
                time_ms=now,
                duration_ms=duration_ms,
                protocol_phase=part,
            )
        else:
            self.link.push(m.EVENT, m.CUE, phase=seg & 0xFFFF, cue=cue, time_ms=now, duration_ms=duration_ms)
        self.patient.cue(cue, now)

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
        if prev != m.ARMED:  # else the checks never passed: nothing was practised
            self.last_summary = summary
            self.link.push(m.EVENT, m.SUMMARY, **m.named(m.EVENT, m.SUMMARY, summary))
        self.records.session_over(summary, prev, reason, now)

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
        if nxt == m.DONE and (prev == m.RUNNING or prev == m.PAUSED):
            self.patient.done(now)
        if nxt == m.PAUSED:
            self.patient.paused(now)
        if nxt == m.DONE and self.therapy.doc is not None:
            self.therapy.checkpoint_uptime(now)  # the interval to the next session survives a power cut

    def _button_start(self, now):
        self.begin_session(0, 0, m.REASON_BUTTON, now)

    def begin_session(self, demo_s, heartbeat_ms, reason, now, host_time_s=0):
        """Start the approved protocol's session, or the demonstration without one."""
        if self.maintenance.pending():
            raise ProtocolError(BUSY, "the device is resetting for maintenance")
        if self.selftest.running():
            raise ProtocolError(BUSY, "a self-test is running")
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
            plan = timeline.from_protocol(doc)
            self.emg.reconfigure(window_ms=doc.get("emg", {}).get("window_ms", DEFAULT_WINDOW_MS))
            self.session.start(plan, heartbeat_ms, reason, now)
            self.safety.protocol_verified = True  # stimulation only ever comes from a verified protocol
        else:
            demo_s = demo_s or timeline.DEMO_DEFAULT_S
            if demo_s < timeline.DEMO_MIN_S or demo_s > timeline.DEMO_MAX_S:
                raise ProtocolError(
                    BAD_FIELD, "demo length %d..%d s" % (timeline.DEMO_MIN_S, timeline.DEMO_MAX_S)
                )
            plan = timeline.demo(demo_s)
            self.emg.reconfigure(window_ms=DEFAULT_WINDOW_MS)
            self.session.start(plan, heartbeat_ms, reason, now)
            self.safety.protocol_verified = False
        self.bio.start(doc, plan)
        self.stim.new_session()
        self.records.session_started(doc, host_time_s, now)

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
        # the frame's fields go in place, not as arguments: a wide call's frame goes on the heap
        h = self.link.emg_head
        h[sf.TARGET] = 0
        if self.session.state == m.RUNNING:
            # what the patient sees and hears, so a screen can show the same
            h[sf.TARGET] = self.bio.target_dv() or st.trigger_dv()
            if self.patient.feedback_hz():
                flags |= m.FLAG_FEEDBACK
        h[sf.ENVELOPE] = self.emg.envelope_dv
        h[sf.STATE] = self.session.state
        h[sf.FLAGS] = flags
        h[sf.STIM] = st.cmd_ua if st.state != m.STIM_OFF else -1
        self.link.push_emg(first_index, payload)
