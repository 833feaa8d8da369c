"""What the device keeps of each session and of a latched fault: its compliance-log entry, the
open-session marker that turns a cut-off session into an "interrupted" entry at the next boot,
and the FAULT record that a power cycle does not clear.

Storage is written only with the output off (MICROPYTHON.md: no interrupt
runs while flash is written); a failed write ends in the safe state.
"""

from firmware import hal as H
from firmware.crash_site import CrashSite
from firmware.phase_score import KIND_CODES
from firmware.storage import FAULT_RECORD
from protocol import faults
from protocol import messages as m

MAX_LOGGED_FAULTS = 4
# a session the host's failure ended before this share of its planned time gives its count back
HOST_FAIL_REFUND_PERCENT = 25


class Records:
    def __init__(self, store, therapy, sessionlog, safety, session):
        self._store = store
        self._therapy = therapy
        self._log = sessionlog
        self._safety = safety
        self._session = session
        self._host_time_s = 0  # the host's clock at the session's start, if a host started it
        self._start_ms = 0
        self._faults = []  # the faults of the session under way, at most MAX_LOGGED_FAULTS
        self._fault_saved = -1  # fault_ms of the FAULT record on flash, -1: none written this boot
        self.crash = CrashSite()  # where the exception behind an EXCEPTION or MEMORY fault was raised

    # -- sessions ---------------------------------------------------------

    def session_started(self, doc, host_time_s, now):
        """The session is ARMED, the output still off: mark it open."""
        self._host_time_s = host_time_s
        self._faults = []
        self._start_ms = self._therapy.total_ms(now)
        rec = {m.LOG_START_MS: self._start_ms, m.LOG_PLANNED_MS: self._session.duration_ms}
        if doc is not None:
            rec[m.LOG_PROTOCOL] = doc["id"]
        if self._host_time_s:
            rec[m.LOG_HOST_TIME_S] = self._host_time_s
        try:
            self._therapy.mark_open(now, rec, doc is not None)
        except OSError:
            self._safety.enter_safe_state(faults.STORAGE)

    def fault(self, cause):
        """A fault during the session goes into its entry."""
        if len(self._faults) < MAX_LOGGED_FAULTS:
            self._faults.append(cause)

    def session_over(self, summary, prev, reason, now):
        """The session ended with these scores: its entry, then the open marker dropped."""
        # the budget rule for sessions the patient did not get (docs/security.md)
        refund = prev == m.ARMED or (
            reason == m.REASON_HEARTBEAT_LOST
            and summary[m.SUM_RUN_MS] * 100 < self._session.duration_ms * HOST_FAIL_REFUND_PERCENT
        )
        try:
            if prev != m.ARMED:  # else the checks never passed: nothing was practised
                self._log.add(self._entry(summary))
            # after the entry: a power cut in between finds the entry at boot, never no entry
            self._therapy.close_open(now, refund and self._safety.protocol_verified)
        except OSError:
            self._safety.enter_safe_state(faults.STORAGE)

    def interrupted(self, cause, now):
        """At boot: a session under way when the board last stopped goes into the log as interrupted."""
        rec = self._therapy.open
        if not isinstance(rec, dict):
            return
        lg = self._log
        try:
            last = lg.get(lg.next_seq - 1) if lg.next_seq else None
            if last is not None and last.get(m.LOG_START_MS) == rec.get(m.LOG_START_MS):
                # the entry was stored, the marker not yet dropped: the session is logged already
                self._therapy.close_open(now)
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
            lg.add(e)
            self._therapy.close_open(now)
        except OSError:
            self._safety.enter_safe_state(faults.STORAGE)

    def _entry(self, summary):
        doc = self._therapy.doc if self._safety.protocol_verified else None
        e = {
            m.LOG_START_MS: self._start_ms,
            m.LOG_RUN_MS: summary[m.SUM_RUN_MS],
            m.LOG_PLANNED_MS: self._session.duration_ms,
            m.LOG_PHASES: len(doc["phases"]) if doc is not None else 1,
            m.LOG_MVC_DV: summary[m.SUM_MVC_DV],
            m.LOG_TRIGGERS: summary[m.SUM_TRIGGERS],
            m.LOG_CHARGE_UC: summary[m.SUM_CHARGE_UC],
            m.LOG_MAX_UA: summary[m.SUM_MAX_UA],
            m.LOG_FAULTS: list(self._faults),
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

    # -- the latched fault --------------------------------------------------

    def save_fault(self):
        """The latched fault into the FAULT record, so a power cycle keeps it latched."""
        s = self._safety
        # a fault already latched on flash is not written again: repeated
        # e-stops cost no flash (the count in RAM still grows)
        if self._fault_saved == s.fault_ms:
            return
        rec = {0: s.fault, 1: s.fault_ms, 2: s.fault_count}
        where = self.crash.where()
        if where:
            rec[3] = where
        try:
            self._store.save(FAULT_RECORD, rec)
            self._fault_saved = s.fault_ms
        except OSError:
            s.enter_safe_state(faults.STORAGE)
            s.take_unreported()

    def remove_fault(self):
        """The latch is about to be cleared: the record goes first (a flash write, interrupts wait)."""
        self._store.remove(FAULT_RECORD)
        self._fault_saved = -1
        self.crash.clear()
