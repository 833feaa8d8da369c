"""The session state machine: an explicit transition table.

A transition not in the table is refused with a protocol error code and
logged with its reason; nothing changes state any other way. Time is the
device's monotonic clock from the HAL: a session's running time counts only
while RUNNING, and a pause longer than PAUSE_LIMIT_MS ends it.
"""

from firmware.timeline import Timeline
from protocol import messages as m
from protocol.errors import FAULT_LATCHED, ILLEGAL_STATE, ProtocolError

# events
START = 0
CHECKS_OK = 1
CHECKS_FAILED = 2
PAUSE = 3
RESUME = 4
STOP = 5
FINISH = 6
PAUSE_TIMEOUT = 7
HEARTBEAT_LOST = 8
FAULT = 9
CLEAR = 10
EVENT_NAMES = (
    "START",
    "CHECKS_OK",
    "CHECKS_FAILED",
    "PAUSE",
    "RESUME",
    "STOP",
    "FINISH",
    "PAUSE_TIMEOUT",
    "HEARTBEAT_LOST",
    "FAULT",
    "CLEAR",
)

_ACTIVE = (m.ARMED, m.RUNNING, m.PAUSED)

# (state, event) -> next state
TRANSITIONS = {
    (m.IDLE, START): m.ARMED,
    (m.DONE, START): m.ARMED,
    (m.ARMED, CHECKS_OK): m.RUNNING,
    (m.ARMED, CHECKS_FAILED): m.IDLE,
    (m.ARMED, STOP): m.IDLE,
    (m.RUNNING, PAUSE): m.PAUSED,
    (m.PAUSED, RESUME): m.RUNNING,
    (m.RUNNING, STOP): m.DONE,
    (m.PAUSED, STOP): m.DONE,
    (m.RUNNING, FINISH): m.DONE,
    (m.PAUSED, PAUSE_TIMEOUT): m.DONE,
    (m.ARMED, HEARTBEAT_LOST): m.IDLE,
    (m.RUNNING, HEARTBEAT_LOST): m.DONE,
    (m.PAUSED, HEARTBEAT_LOST): m.DONE,
    (m.IDLE, FAULT): m.FAULT_STATE,
    (m.ARMED, FAULT): m.FAULT_STATE,
    (m.RUNNING, FAULT): m.FAULT_STATE,
    (m.PAUSED, FAULT): m.FAULT_STATE,
    (m.DONE, FAULT): m.FAULT_STATE,
    (m.FAULT_STATE, FAULT): m.FAULT_STATE,
    (m.FAULT_STATE, CLEAR): m.IDLE,
}

PAUSE_LIMIT_MS = 300000
CHECKS_TIMEOUT_MS = 10000


class Session:
    """State, the running session's timeline and its clock."""

    def __init__(self, log, notify):
        self._log = log  # firmware.eventlog.EventLog
        self._notify = notify  # notify(from_state, to_state, reason, now_ms)
        self.state = m.IDLE
        self.duration_ms = 0
        self.elapsed_ms = 0  # running time so far
        self.paused_ms = 0
        self.heartbeat_ms = 0  # 0: stand-alone session, does not depend on the link
        self.timeline = Timeline()  # empty until a session starts
        self.phase = -1
        self.cue = m.CUE_REST
        self._since_ms = 0  # when the current state was entered
        self._run_mark_ms = 0  # start of the current RUNNING stretch

    def check(self, event, now_ms):
        """Raise the refusal fire() would raise, without changing anything else."""
        if (self.state, event) not in TRANSITIONS:
            self.fire(event, 0, now_ms)

    def fire(self, event, reason, now_ms):
        """Apply event; return the new state or raise ProtocolError (logged)."""
        nxt = TRANSITIONS.get((self.state, event))
        if nxt is None:
            self._log.add(now_ms, self._log.REFUSED, self.state, event)
            if self.state == m.FAULT_STATE and event == START:
                raise ProtocolError(FAULT_LATCHED, "clear the fault first")
            raise ProtocolError(
                ILLEGAL_STATE, "%s not allowed in %s" % (EVENT_NAMES[event], m.STATE_NAMES[self.state])
            )
        prev = self.state
        if prev == m.RUNNING:
            self.elapsed_ms += now_ms - self._run_mark_ms
        elif prev == m.PAUSED:
            self.paused_ms += now_ms - self._since_ms
        self.state = nxt
        self._since_ms = now_ms
        if nxt == m.RUNNING:
            self._run_mark_ms = now_ms
        self._log.add(now_ms, self._log.TRANSITION, prev, nxt)
        self._notify(prev, nxt, reason, now_ms)
        return nxt

    def start(self, timeline, heartbeat_ms, reason, now_ms):
        self.fire(START, reason, now_ms)
        self.timeline = timeline
        self.duration_ms = timeline.total_ms()
        self.elapsed_ms = 0
        self.paused_ms = 0
        self.heartbeat_ms = heartbeat_ms
        self.phase = -1

    def running_ms(self, now_ms):
        if self.state == m.RUNNING:
            return self.elapsed_ms + now_ms - self._run_mark_ms
        return self.elapsed_ms

    def active(self):
        return self.state in _ACTIVE

    def in_state_ms(self, now_ms):
        return now_ms - self._since_ms

    def tick(self, now_ms, checks_ok):
        """Time-driven transitions; return the new cue when the phase changed, else -1."""
        st = self.state
        if st == m.ARMED:
            if checks_ok:
                self.fire(CHECKS_OK, m.REASON_CHECKS_PASSED, now_ms)
            elif self.in_state_ms(now_ms) > CHECKS_TIMEOUT_MS:
                self.fire(CHECKS_FAILED, m.REASON_CHECKS_FAILED, now_ms)
                return -1
        elif st == m.PAUSED and self.in_state_ms(now_ms) > PAUSE_LIMIT_MS:
            self.fire(PAUSE_TIMEOUT, m.REASON_PAUSE_TIMEOUT, now_ms)
            return -1
        if self.state != m.RUNNING:
            return -1
        run = self.running_ms(now_ms)
        if run >= self.duration_ms:
            self.fire(FINISH, m.REASON_FINISHED, now_ms)
            return -1
        phase = self.timeline.index(run)
        if phase != self.phase:
            self.phase = phase
            self.cue = self.timeline.cues[phase]
            return self.cue
        return -1

    def phase_left_ms(self, now_ms):
        return self.timeline.at(self.running_ms(now_ms))[2]

    def fault(self, now_ms):
        if self.state != m.FAULT_STATE:
            self.fire(FAULT, m.REASON_FAULT, now_ms)

    def end(self, event, reason, now_ms):
        """End an active session for a cause that does not latch a fault."""
        if self.active():
            self.fire(event, reason, now_ms)

    def restore_fault(self):
        """Boot found a latched fault: come up in FAULT without a transition."""
        self.state = m.FAULT_STATE
