"""The device's answer to every request: one handler per message type, for firmware/link.py.

A handler takes the request's body (checked against the catalogue by the
link) and the time, returns the RESPONSE fields, or raises ProtocolError
for an ERROR with its code. Handlers act through the controller's parts
and never touch the output: starting, pausing or stopping a session goes
through the session's state table, an e-stop through Safety.
"""

from firmware.eventlog import EventLog
from firmware.session import CLEAR, PAUSE, RESUME, STOP
from firmware.storage import WriteBudget
from firmware.version import FIRMWARE_VERSION
from protocol import codec, faults, framing
from protocol import messages as m
from protocol.errors import BAD_FIELD, BUSY, ESTOP_ACTIVE, FAULT_LATCHED, ILLEGAL_STATE, ProtocolError

MAX_SESSION_S = 3600  # the longest session this firmware runs, whatever a protocol says
# flash writes a host can cause at will (clears of its e-stops, ratings):
# a burst of HOST_WRITE_BURST, then one per HOST_WRITE_REFILL_MS each
HOST_WRITE_BURST = 3
HOST_WRITE_REFILL_MS = 20000
_LOG_REPLY_BYTES = 380  # log entries per reply, leaving room for the envelope in one frame


def _within(budget, now, what):
    wait_ms = budget.take(now)
    if wait_ms:
        raise ProtocolError(BUSY, "too many %s: wait %d s" % (what, (wait_ms + 999) // 1000))


class Handlers:
    def __init__(self, ctrl):
        self._c = ctrl
        self._clears = WriteBudget(HOST_WRITE_BURST, HOST_WRITE_REFILL_MS)
        self._ratings = WriteBudget(HOST_WRITE_BURST, HOST_WRITE_REFILL_MS)

    def table(self):
        """Message type -> handler(body, now), made once at boot."""
        c = self._c
        return {
            m.HELLO: self.hello,
            m.INFO: self.info,
            m.PING: self.ping,
            m.SESSION_START: self.start,
            m.SESSION_PAUSE: self.pause,
            m.SESSION_RESUME: self.resume,
            m.SESSION_STOP: self.stop,
            m.ESTOP: self.estop,
            m.FAULT_CLEAR: self.clear,
            m.STREAM_CONTROL: self.stream,
            m.STIM_LEVEL: self.stim_level,
            m.LOG_READ: self.log_read,
            m.SESSION_RATE: self.rate,
            m.MAINTENANCE_ENTER: c.maintenance.enter,
            m.SELFTEST: c.selftest.request,
            m.PROTOCOL_BEGIN: self.upload_begin,
            m.PROTOCOL_CHUNK: self.upload_chunk,
            m.PROTOCOL_COMMIT: self.upload_commit,
            m.PROTOCOL_SHOW: self.protocol_show,
            m.PROTOCOL_REMOVE: self.protocol_remove,
        }

    # -- the link and the device ------------------------------------------

    def hello(self, body, now):
        c = self._c
        version = m.negotiate(body[0], body[1])
        c.link.greeted = True
        c.link.version = version
        c.streaming = False  # a new host subscribes for itself
        if c.session.heartbeat_ms:
            # the host driving the session came back: its level starts from zero again
            # (a host that only watches a stand-alone session changes nothing)
            c.stim.level_ua = 0
        c.host_level_gone(now)  # a level set by the host before this one is not this host's
        reply = {
            "version": version,
            "firmware_version": FIRMWARE_VERSION,
            "board": c.hal.board,
            "serial": c.hal.serial,
            "max_payload": framing.MAX_PAYLOAD,
        }
        if c.firmware_hash is not None:
            reply["firmware_hash"] = c.firmware_hash
        return reply

    def info(self, body, now):
        c = self._c
        s = c.safety
        fault = None
        if s.fault:
            fault = {
                m.FAULT_CODE: s.fault,
                m.FAULT_LATCHED: True,
                m.FAULT_TIME_MS: s.fault_ms,
                m.FAULT_COUNT: s.fault_count,
            }
            where = c.records.crash.where()
            if where:
                fault[m.FAULT_WHERE] = where
        ses = c.session
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
            "board": c.hal.board,
            "serial": c.hal.serial,
            "state": ses.state,
            "fault": fault,
            "protocol": c.therapy.summary(),
            "limits": {
                m.LIMIT_HW_MAX_UA: c.hal.hw_max_ua,
                m.LIMIT_POLICY_MAX_UA: c.policy_max_ua,
                m.LIMIT_MAX_SESSION_S: MAX_SESSION_S,
                m.LIMIT_EMG_RATE_HZ: c.hal.emg_rate_hz,
            },
            "uptime_ms": now,
            "estop_open": c.hal.estop_open(),
            "session": session,
            "link": c.link.counters(),
        }

    def ping(self, body, now):
        return {"uptime_ms": now}

    def stream(self, body, now):
        self._c.streaming = body[0]
        return {}

    # -- the session --------------------------------------------------------

    def start(self, body, now):
        c = self._c
        c.begin_session(body.get(1, 0), body.get(2, 0), m.REASON_REQUEST, now, body.get(0, 0))
        return {"state": c.session.state}

    def pause(self, body, now):
        return {"state": self._c.session.fire(PAUSE, m.REASON_REQUEST, now)}

    def resume(self, body, now):
        return {"state": self._c.session.fire(RESUME, m.REASON_REQUEST, now)}

    def stop(self, body, now):
        return {"state": self._c.session.fire(STOP, m.REASON_REQUEST, now)}

    def stim_level(self, body, now):
        c = self._c
        if c.session.state != m.RUNNING:
            raise ProtocolError(ILLEGAL_STATE, "no session running")
        try:
            return {"level_ua": c.stim.set_level(body[0])}
        except ValueError as e:
            code = BAD_FIELD if c.stim.state not in (m.STIM_OFF, m.STIM_CHECK) else ILLEGAL_STATE
            raise ProtocolError(code, str(e))

    # -- faults -------------------------------------------------------------

    def estop(self, body, now):
        c = self._c
        c.safety.enter_safe_state(faults.HOST_ESTOP)
        c.report_fault(c.safety.take_unreported(), now)
        return {"state": c.session.state}

    def clear(self, body, now):
        c = self._c
        if c.session.state != m.FAULT_STATE:
            raise ProtocolError(ILLEGAL_STATE, "no fault to clear")
        s = c.safety
        refusal = s.may_clear()
        if refusal:
            raise ProtocolError(refusal, "release the emergency stop first")
        # each host e-stop writes the fault record and each clear removes it: a
        # host looping the two would wear the flash (a person's presses cannot)
        if s.fault == faults.HOST_ESTOP:
            _within(self._clears, now, "clears of host e-stops")
        cleared = s.fault
        seen = s.fault_count
        c.records.remove_fault()
        if not s.clear(seen):
            # a fault arrived since the check (the e-stop during the write): it stays
            # latched, in storage too, and is reported
            c.records.save_fault()
            c.poll_safety(now)
            raise ProtocolError(ESTOP_ACTIVE if c.hal.estop_open() else FAULT_LATCHED, "a new fault arrived")
        c.log.add(now, EventLog.CLEARED, cleared, 0)
        c.session.fire(CLEAR, m.REASON_CLEARED, now)
        return {"state": c.session.state}

    # -- the compliance log ---------------------------------------------------

    def log_read(self, body, now):
        lg = self._c.sessionlog
        n = min(m.MAX_LOG_READ, body[1])
        entries = []  # type: list[dict]
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

    def rate(self, body, now):
        c = self._c
        seq, pain = body[0], body[1]
        if pain > m.PAIN_MAX:
            raise ProtocolError(BAD_FIELD, "pain/comfort score is 0..%d" % m.PAIN_MAX)
        if c.session.active():
            raise ProtocolError(BUSY, "rate the session after it ends")
        e = c.sessionlog.get(seq)
        if e is None:
            raise ProtocolError(BAD_FIELD, "session %d is not in the log" % seq)
        if e.get(m.LOG_PAIN) != pain:  # the same score again writes nothing
            _within(self._ratings, now, "ratings")
            c.sessionlog.update(seq, m.LOG_PAIN, pain)
        return {"session": seq}

    # -- approved protocols ---------------------------------------------------

    def _quiet(self):
        # uploads and verification only while no session runs and the output is off
        c = self._c
        if c.session.active() or c.safety.output_on():
            raise ProtocolError(BUSY, "stop the session first")
        if c.maintenance.pending():
            raise ProtocolError(BUSY, "the device is resetting for maintenance")
        if c.selftest.running():
            raise ProtocolError(BUSY, "a self-test is running")

    def upload_begin(self, body, now):
        self._quiet()
        return {"offset": self._c.therapy.begin(body[0], body[1])}

    def upload_chunk(self, body, now):
        self._quiet()
        return {"offset": self._c.therapy.chunk(body[0], body[1])}

    def upload_commit(self, body, now):
        self._quiet()
        c = self._c
        # seconds of big-integer work on the board: feed the watchdog as it goes
        summary = c.therapy.commit(now, c.hal.serial, limits(c.policy_max_ua), c.hal.wdt_feed)
        return {"protocol": summary}

    def protocol_show(self, body, now):
        therapy = self._c.therapy
        return {"protocol": therapy.summary(), "max_sequence": therapy.max_seq}

    def protocol_remove(self, body, now):
        self._quiet()
        self._c.therapy.remove(now)
        return {}


def limits(policy_max_ua):
    """The device's own limits a protocol is checked against, at upload and again at boot."""
    return {"amplitude_max_ua": policy_max_ua, "max_session_s": MAX_SESSION_S}
