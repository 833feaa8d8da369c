"""The typed client of the tonus link.

One method per request type. Replies are matched by sequence number; events
and EMG stream frames that arrive in between are queued for poll()/events().
Device refusals come back as `Refusal` values (`.ok` is False); a broken
link, a timeout or a message that fails validation raises `LinkError` with a
hexdump of the offending bytes.

Only requests that are safe to repeat (HELLO, INFO, PING, STREAM_CONTROL) are
retried on a timeout: a lost SESSION_START reply does not say whether the
session started, and a lost ESTOP reply must reach a person, not a loop.

Host-driven sessions need a heartbeat. It is sent from the read path, not a
thread: a host that stops reading must also stop the heartbeat, so the
device ends the session. It is due when any of three clocks says so: the
wall clock; the device time seen in messages (timestamps, EMG sample
indices); and the time reads waited in vain, which a port may have let the
device run. The in-process simulator runs faster than real time while the
host waits for bytes, so the wall clock alone would be late. A device
paced faster than real time but not in lockstep (`tonus sim --speed 10`)
shows its time only in what it sends: keep the EMG stream on there.
"""

import collections
import struct
import time
from dataclasses import dataclass

from host.errors import TonusError
from host.transport import LinkError, open_port
from protocol import codec, errors, faults, framing
from protocol import messages as m
from protocol.errors import ProtocolError

DEFAULT_TIMEOUT = 1.0
DEFAULT_RETRIES = 2
_TICK = 0.02  # longest single wait for bytes, so heartbeats stay on time
LEVEL_HOLD_HEARTBEAT_MS = 1000  # the device's STIM_HEARTBEAT_MAX_MS
_QUEUE_MAX = 20000  # about 8 minutes of EMG frames nobody reads
_HEARTBEATS_TRACKED = 32
# safe to send again after a timeout: a repeated BEGIN resumes, a repeated
# CHUNK is refused with the expected offset, SHOW only reads
_IDEMPOTENT = (m.HELLO, m.INFO, m.PING, m.STREAM_CONTROL, m.PROTOCOL_BEGIN, m.PROTOCOL_SHOW, m.LOG_READ, m.SESSION_RATE)
ACTIVE_STATES = ("ARMED", "RUNNING", "PAUSED")

_HINTS = {
    errors.FAULT_LATCHED: "clear the fault with 'tonus fault clear' after releasing the e-stop",
    errors.ESTOP_ACTIVE: "release the emergency stop, then run 'tonus fault clear' again",
    errors.VERSION_UNSUPPORTED: "update tonus or the firmware so that both speak one protocol version",
    errors.HELLO_REQUIRED: "the device restarted and refused a new HELLO; reconnect",
    errors.BUSY: "the device is busy; try again in a moment",
    errors.BAD_SIGNATURE: "the file was altered after signing; the device keeps its previous protocol",
    errors.UNKNOWN_KID: "the signing key is not trusted on this device; provision the clinician's public key",
    errors.BAD_ALG: "the file is not an EdDSA-signed tonus protocol",
    errors.BAD_COSE: "the file is not a signed tonus protocol (COSE_Sign1)",
    errors.BAD_KEY_ENCODING: "a trusted key or the signature has the wrong size; provision the key again",
    errors.WRONG_DEVICE: "the protocol names another device; compare its device line with 'tonus info'",
    errors.ROLLBACK: "raise the sequence number above the device's ('tonus protocol show') and sign again",
    errors.SEQUENCE_JUMP: "use the next sequence number after the device's ('tonus protocol show') and sign again",
    errors.BUDGET_EXHAUSTED: "all approved sessions are used; the clinician must approve a new protocol",
}


def _name(names, i):
    return names[i] if 0 <= i < len(names) else "UNKNOWN(%d)" % i


# -- replies ------------------------------------------------------------------


class Reply:
    """A device answer; `ok` tells a response from a refusal."""

    ok = True

    def unwrap(self):
        """The reply itself, or DeviceRefused raised for a refusal."""
        return self


@dataclass(frozen=True)
class Refusal(Reply):
    """The device answered a request with an ERROR."""

    request: str  # the refused request's type name
    code: int
    name: str
    detail: str

    ok = False

    def unwrap(self):
        raise DeviceRefused(self)


class DeviceRefused(TonusError):
    def __init__(self, refusal):
        self.refusal = refusal
        r = refusal
        why = _HINTS.get(r.code) or r.detail
        super().__init__(
            "device refused %s: %s (%d)%s" % (r.request, r.name, r.code, " — " + why if why else "")
        )


@dataclass(frozen=True)
class Hello(Reply):
    version: int
    firmware_version: str
    board: str
    serial: str
    max_payload: int
    firmware_hash: bytes | None = None  # of the image tonus flash deployed; None otherwise


@dataclass(frozen=True)
class FaultInfo:
    name: str
    code: int
    latched: bool
    time_ms: int
    count: int


@dataclass(frozen=True)
class Limits:
    hw_max_ua: int
    policy_max_ua: int
    max_session_s: int
    emg_rate_hz: int


@dataclass(frozen=True)
class SessionInfo:
    elapsed_ms: int
    duration_ms: int
    phase: int
    cue: str
    host_driven: bool
    paused_ms: int


@dataclass(frozen=True)
class LinkCounters:
    rx_frames: int
    rx_dropped: int
    rx_refused: int
    tx_frames: int
    tx_dropped: int


@dataclass(frozen=True)
class Info(Reply):
    firmware_version: str
    board: str
    serial: str
    state: str
    fault: FaultInfo | None
    protocol: "ProtocolSummary | None"
    limits: Limits
    uptime_ms: int
    estop_open: bool
    session: SessionInfo | None
    link: LinkCounters

    def to_json(self):
        from dataclasses import asdict

        out = asdict(self)
        out["protocol"] = self.protocol.to_json() if self.protocol else None
        return out


@dataclass(frozen=True)
class Pong(Reply):
    uptime_ms: int
    rtt_s: float  # wall time from sending the PING to its answer


@dataclass(frozen=True)
class StateReply(Reply):
    """Answer to a session or safety request: the state after it."""

    request: str
    state: str


@dataclass(frozen=True)
class Ack(Reply):
    request: str


@dataclass(frozen=True)
class ProtocolSummary:
    """What the device says about the protocol it holds."""

    id: str
    sequence: int
    approved_by: str
    patient: str
    probe: str
    sessions: int
    used: int
    sha256: str
    approved_on: str
    max_session_s: int
    min_interval_s: int
    kid: str

    @property
    def remaining(self):
        return max(self.sessions - self.used, 0)

    def to_json(self):
        from dataclasses import asdict

        return dict(asdict(self), remaining=self.remaining)


def protocol_summary(d):
    """A ProtocolSummary from the device's PINFO map, or None."""
    if d is None:
        return None
    return ProtocolSummary(
        d.get(m.PINFO_ID, ""),
        d.get(m.PINFO_SEQUENCE, 0),
        d.get(m.PINFO_APPROVED_BY, ""),
        d.get(m.PINFO_PATIENT, ""),
        d.get(m.PINFO_PROBE, ""),
        d.get(m.PINFO_SESSIONS, 0),
        d.get(m.PINFO_USED, 0),
        d.get(m.PINFO_HASH, b"").hex(),
        d.get(m.PINFO_APPROVED_ON, ""),
        d.get(m.PINFO_MAX_SESSION_S, 0),
        d.get(m.PINFO_MIN_INTERVAL_S, 0),
        d.get(m.PINFO_KID, b"").hex(),
    )


@dataclass(frozen=True)
class UploadOffset(Reply):
    offset: int


@dataclass(frozen=True)
class ProtocolStored(Reply):
    protocol: ProtocolSummary


@dataclass(frozen=True)
class ProtocolShown(Reply):
    protocol: ProtocolSummary | None
    max_sequence: int


# -- events and stream frames ------------------------------------------------


@dataclass(frozen=True)
class StateChanged:
    seq: int
    from_state: str
    to_state: str
    reason: str
    time_ms: int


@dataclass(frozen=True)
class FaultEvent:
    seq: int
    code: int
    name: str
    time_ms: int
    detail: str | None

    @property
    def latched(self):
        return self.code in faults.LATCHED


@dataclass(frozen=True)
class Cue:
    seq: int
    phase: int
    cue: str
    time_ms: int
    duration_ms: int
    protocol_phase: int | None = None  # index into the approved protocol's phases


@dataclass(frozen=True)
class EmgFrame:
    seq: int
    first_index: int
    data: bytes  # int32 little-endian samples, 0.1 µV each
    envelope_dv: int
    state: str
    flags: int
    stim_ua: int = 0  # stimulation current commanded at the end of the block
    target_dv: int = 0  # the running phase's envelope target (0.1 µV), 0 when it has none

    @property
    def count(self):
        return len(self.data) // 4

    @property
    def end_index(self):
        return self.first_index + self.count

    @property
    def samples(self):
        """The samples in 0.1 µV as a list of ints."""
        return list(struct.unpack("<%di" % self.count, self.data))

    def array(self):
        """The samples in 0.1 µV as a numpy int32 array (a view, no copy)."""
        import numpy

        return numpy.frombuffer(self.data, dtype="<i4")

    @property
    def stimulating(self):
        return bool(self.flags & m.FLAG_STIM)

    @property
    def triggered(self):
        return bool(self.flags & m.FLAG_TRIGGER)

    @property
    def lead_off(self):
        return bool(self.flags & m.FLAG_LEAD_OFF)

    @property
    def feedback(self):
        """The device's biofeedback tone sounds: a relaxation phase, above its target."""
        return bool(self.flags & m.FLAG_FEEDBACK)

    @property
    def saturated(self):
        return bool(self.flags & m.FLAG_SATURATED)

    @property
    def gap(self):
        return bool(self.flags & m.FLAG_GAP)


@dataclass(frozen=True)
class SessionSummary:
    """The device's scores for a session that ended (see host/scores.py to read them)."""

    seq: int
    time_ms: int
    end_reason: str
    advice: str | None
    run_ms: int
    mvc_dv: int
    baseline_dv: int
    phases: tuple  # per-phase {SC_* key: value} maps, as the device sent them
    triggers: int = 0  # ETS triggers
    charge_uc: int = 0  # stimulation charge delivered
    max_ua: int = 0  # largest stimulation amplitude


@dataclass(frozen=True)
class StimEvent:
    """The stimulator changed state."""

    seq: int
    state: str
    time_ms: int
    level_ua: int
    limit_ua: int
    impedance_ohm: int | None
    triggers: int | None


@dataclass(frozen=True)
class Advice:
    """The device advises ending the session."""

    seq: int
    reason: str
    time_ms: int
    rest_dv: int
    reference_dv: int


# -- parsing --------------------------------------------------------------------


def _state(body):
    return _name(m.STATE_NAMES, body["state"])


def _hello(mtype, b, rtt):
    return Hello(
        b["version"], b["firmware_version"], b["board"], b["serial"], b["max_payload"], b.get("firmware_hash")
    )


def _info(mtype, b, rtt):
    f = b["fault"]
    fault = None
    if f is not None:
        code = f.get(m.FAULT_CODE, 0)
        fault = FaultInfo(
            faults.name(code),
            code,
            bool(f.get(m.FAULT_LATCHED)),
            f.get(m.FAULT_TIME_MS, 0),
            f.get(m.FAULT_COUNT, 0),
        )
    lim = b["limits"]
    s = b["session"]
    session = None
    if s is not None:
        session = SessionInfo(
            s.get(m.SESSION_ELAPSED_MS, 0),
            s.get(m.SESSION_DURATION_MS, 0),
            s.get(m.SESSION_PHASE, 0),
            _name(m.CUE_NAMES, s.get(m.SESSION_CUE, 0)),
            bool(s.get(m.SESSION_HOST_DRIVEN)),
            s.get(m.SESSION_PAUSED_MS, 0),
        )
    ln = b["link"]
    return Info(
        b["firmware_version"],
        b["board"],
        b["serial"],
        _state(b),
        fault,
        protocol_summary(b["protocol"]),
        Limits(
            lim.get(m.LIMIT_HW_MAX_UA),
            lim.get(m.LIMIT_POLICY_MAX_UA),
            lim.get(m.LIMIT_MAX_SESSION_S),
            lim.get(m.LIMIT_EMG_RATE_HZ),
        ),
        b["uptime_ms"],
        b["estop_open"],
        session,
        LinkCounters(
            *(
                ln.get(k, 0)
                for k in (
                    m.LINK_RX_FRAMES,
                    m.LINK_RX_DROPPED,
                    m.LINK_RX_REFUSED,
                    m.LINK_TX_FRAMES,
                    m.LINK_TX_DROPPED,
                )
            )
        ),
    )


def _pong(mtype, b, rtt):
    return Pong(b["uptime_ms"], rtt)


def _state_reply(mtype, b, rtt):
    return StateReply(m.type_name(mtype), _state(b))


def _ack(mtype, b, rtt):
    return Ack(m.type_name(mtype))


def _offset(mtype, b, rtt):
    return UploadOffset(b["offset"])


def _stored(mtype, b, rtt):
    return ProtocolStored(protocol_summary(b["protocol"]))


@dataclass(frozen=True)
class LevelReply(Reply):
    level_ua: int


def _level(mtype, b, rtt):
    return LevelReply(b["level_ua"])


@dataclass(frozen=True)
class LogPage(Reply):
    entries: tuple  # {LOG_* key: value} maps, as the device keeps them
    next_seq: int
    oldest_seq: int
    end_seq: int
    damaged: int


def _log_page(mtype, b, rtt):
    return LogPage(tuple(b["entries"]), b["next_seq"], b["oldest_seq"], b["end_seq"], b["damaged"])


@dataclass(frozen=True)
class Rated(Reply):
    session: int


def _rated(mtype, b, rtt):
    return Rated(b["session"])


def _shown(mtype, b, rtt):
    return ProtocolShown(protocol_summary(b["protocol"]), b["max_sequence"])


# request type -> parser of its RESPONSE body (named fields)
_REPLY_PARSERS = {
    m.PROTOCOL_BEGIN: _offset,
    m.PROTOCOL_CHUNK: _offset,
    m.PROTOCOL_COMMIT: _stored,
    m.PROTOCOL_SHOW: _shown,
    m.PROTOCOL_REMOVE: _ack,
    m.HELLO: _hello,
    m.INFO: _info,
    m.PING: _pong,
    m.SESSION_START: _state_reply,
    m.SESSION_PAUSE: _state_reply,
    m.SESSION_RESUME: _state_reply,
    m.SESSION_STOP: _state_reply,
    m.ESTOP: _state_reply,
    m.FAULT_CLEAR: _state_reply,
    m.STREAM_CONTROL: _ack,
    m.STIM_LEVEL: _level,
    m.LOG_READ: _log_page,
    m.SESSION_RATE: _rated,
    m.SELFTEST: _ack,
}


def _unsolicited(kind, seq, mtype, b):
    if mtype == m.STATE_CHANGED:
        return StateChanged(
            seq,
            _name(m.STATE_NAMES, b["from_state"]),
            _name(m.STATE_NAMES, b["to_state"]),
            _name(m.REASON_NAMES, b["reason"]),
            b["time_ms"],
        )
    if mtype == m.FAULT:
        return FaultEvent(seq, b["code"], faults.name(b["code"]), b["time_ms"], b.get("detail"))
    if mtype == m.CUE:
        return Cue(
            seq, b["phase"], _name(m.CUE_NAMES, b["cue"]), b["time_ms"], b["duration_ms"], b.get("protocol_phase")
        )
    if mtype == m.SUMMARY:
        return SessionSummary(
            seq,
            b["time_ms"],
            _name(m.REASON_NAMES, b["end_reason"]),
            _name(m.ADVICE_NAMES, b["advice"]) if b["advice"] else None,
            b["run_ms"],
            b["mvc_dv"],
            b["baseline_dv"],
            tuple(b["phases"]),
            b["triggers"],
            b["charge_uc"],
            b["max_ua"],
        )
    if mtype == m.STIM:
        return StimEvent(
            seq,
            _name(m.STIM_NAMES, b["state"]),
            b["time_ms"],
            b["level_ua"],
            b["limit_ua"],
            b.get("impedance_ohm"),
            b.get("triggers"),
        )
    if mtype == m.ADVICE:
        return Advice(seq, _name(m.ADVICE_NAMES, b["reason"]), b["time_ms"], b["rest_dv"], b["reference_dv"])
    if mtype == m.SELFTEST_RESULT:
        return _selftest_result(seq, b)
    return EmgFrame(
        seq,
        b["first_index"],
        b["samples"],
        b["envelope_dv"],
        _name(m.STATE_NAMES, b["state"]),
        b["flags"],
        b.get("stim_ua", 0),
        b.get("target_dv", 0),
    )


# -- the client -------------------------------------------------------------------


class Client:
    """A connection to one device. Greets it (HELLO) on construction."""

    def __init__(self, port, *, timeout=DEFAULT_TIMEOUT, retries=DEFAULT_RETRIES, hello=True):
        self.port = port  # host.transport.Port
        self.timeout = timeout
        self.retries = retries
        self.device = None  # the Hello of the last successful greeting
        self.state = None  # last state the device reported, by name
        self.heartbeat_ms = 0  # nonzero while this client keeps a host-driven session alive
        # diagnostics
        self.stale_replies = 0  # answers to requests no longer awaited
        self.missed = {m.EVENT: 0, m.STREAM: 0}  # seq gaps per unsolicited kind
        self.overflowed = 0  # queued items discarded because nobody read them
        self._decoder = framing.Decoder(keep_dropped=True)
        self._seq = 0
        self._awaiting = set()
        self._replies = {}
        self._heartbeats = {}  # seq of a heartbeat PING -> None, oldest first
        self._next_seq_of = {m.EVENT: None, m.STREAM: None}
        self._queue = collections.deque()
        self._streaming = False
        self._emg_rate_hz = 0
        # device time: newest timestamp seen, and the EMG sample count
        self._dev_ms = None
        self._emg_end = None
        self._tx_wall = time.monotonic()
        self._tx_dev_ms = None
        self._tx_emg_end = None
        self._idle_since_tx = 0.0  # seconds reads waited without data since the last send
        if hello:
            self.hello().unwrap()

    @classmethod
    def open(cls, url, *, timeout=DEFAULT_TIMEOUT, retries=DEFAULT_RETRIES, wire_log=None):
        """Open `url` (see host.transport.open_port) and greet the device."""
        port = open_port(url, timeout=timeout, wire_log=wire_log)
        try:
            return cls(port, timeout=timeout, retries=retries)
        except BaseException:
            port.close()
            raise

    def close(self):
        self.port.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- requests ---------------------------------------------------------

    def hello(self, min_version=m.MIN_PROTOCOL_VERSION, max_version=m.PROTOCOL_VERSION):
        """Negotiate the protocol version. The device stops streaming on every HELLO."""
        r = self._exchange(m.HELLO, {"min_version": min_version, "max_version": max_version})
        if r.ok:
            if not min_version <= r.version <= max_version:
                raise LinkError(
                    "the device chose protocol version %d outside %d..%d"
                    % (r.version, min_version, max_version)
                )
            self.device = r
            self._streaming = False
        return r

    def info(self):
        r = self._request(m.INFO, {})
        if r.ok:
            self._emg_rate_hz = r.limits.emg_rate_hz or self._emg_rate_hz
            self._saw_state(r.state)
        return r

    def ping(self):
        return self._request(m.PING, {})

    def session_start(self, demo_s=None, heartbeat_ms=None, host_time_s=None, keep_alive=True):
        """Start a session. With heartbeat_ms the device ends it when the host
        is silent that long; keep_alive makes this client send PINGs for it
        while the caller keeps reading (poll, events, or any request)."""
        fields = {"host_time_s": int(time.time()) if host_time_s is None else host_time_s}
        if demo_s is not None:
            fields["demo_s"] = demo_s
        if heartbeat_ms:
            fields["heartbeat_ms"] = heartbeat_ms
            if keep_alive and not self._emg_rate_hz:
                self.info()  # the sample rate turns EMG indices into device time
        r = self._request(m.SESSION_START, fields)
        if r.ok and heartbeat_ms and keep_alive:
            self.heartbeat_ms = heartbeat_ms
        return r

    def session_pause(self):
        return self._request(m.SESSION_PAUSE, {})

    def session_resume(self):
        return self._request(m.SESSION_RESUME, {})

    def session_stop(self):
        return self._request(m.SESSION_STOP, {})

    def estop(self):
        return self._request(m.ESTOP, {})

    def fault_clear(self):
        return self._request(m.FAULT_CLEAR, {})

    def stream(self, enable):
        r = self._request(m.STREAM_CONTROL, {"enable": bool(enable)})
        if r.ok:
            self._streaming = bool(enable)
        return r

    def stim_level(self, level_ua):
        """Ask for a stimulation level (µA); the device refuses one outside the approved range."""
        r = self._request(m.STIM_LEVEL, {"level_ua": level_ua})
        if r.ok and not self.heartbeat_ms:
            # the device holds a level only while the host that set it talks (SAF-LEVEL-1):
            # this client keeps the link alive while it reads, until the session ends
            self.heartbeat_ms = LEVEL_HOLD_HEARTBEAT_MS
        return r

    def log_read(self, from_seq, max_entries=m.MAX_LOG_READ):
        return self._request(m.LOG_READ, {"from_seq": from_seq, "max": max_entries})

    def session_rate(self, session, pain):
        """The patient's pain/comfort score (0..10) for logged session number `session`."""
        return self._request(m.SESSION_RATE, {"session": session, "pain": pain})

    def protocol_begin(self, size, sha256):
        return self._request(m.PROTOCOL_BEGIN, {"size": size, "sha256": sha256})

    def protocol_chunk(self, offset, data):
        return self._request(m.PROTOCOL_CHUNK, {"offset": offset, "data": data})

    def protocol_commit(self, timeout=None):
        """Verification takes seconds on a board: wait longer than for other answers."""
        saved = self.timeout
        self.timeout = max(saved, timeout or 10.0)
        try:
            return self._request(m.PROTOCOL_COMMIT, {})
        finally:
            self.timeout = saved

    def protocol_show(self):
        return self._request(m.PROTOCOL_SHOW, {})

    def protocol_remove(self):
        return self._request(m.PROTOCOL_REMOVE, {})

    def raw_request(self, msg):
        """Send any envelope [kind, seq, type, body] unvalidated; return the answer.

        For tests and diagnosis of the device's input checks. The answer is
        matched by msg[1]; a device answers what it cannot parse with seq 0.
        """
        seq = msg[1] if isinstance(msg, list) and len(msg) == 4 and isinstance(msg[1], int) else 0
        mtype = msg[2] if isinstance(msg, list) and len(msg) == 4 and isinstance(msg[2], int) else 0
        self._awaiting.add(seq)
        sent = time.monotonic()
        try:
            self._send_payload(codec.dumps(msg))
            got = self._wait([seq], sent + self.timeout)
        finally:
            self._awaiting.discard(seq)
        if got is None:
            raise LinkError("no answer to a raw request (seq %d) within %g s" % (seq, self.timeout))
        return self._reply(mtype, got, time.monotonic() - sent)

    def send_raw(self, data):
        """Put bytes on the line as they are (line-noise tests)."""
        self.port.write(data)

    # -- events and stream ------------------------------------------------

    def poll(self, timeout=0.0):
        """The next event or EMG frame, waiting up to `timeout` seconds; None if none came."""
        deadline = time.monotonic() + timeout
        while not self._queue:
            left = deadline - time.monotonic()
            self._pump(min(max(left, 0.0), _TICK))
            if left <= 0:
                break
        return self._queue.popleft() if self._queue else None

    def events(self, idle_timeout=None):
        """Yield events and EMG frames as they arrive; end after idle_timeout
        seconds without one (None: never)."""
        while True:
            item = self.poll(1.0 if idle_timeout is None else idle_timeout)
            if item is not None:
                yield item
            elif idle_timeout is not None:
                return

    # -- the machinery ----------------------------------------------------

    def _next_seq(self):
        # 1..65535: the device answers requests it cannot parse with seq 0
        self._seq = self._seq % (m.SEQ_MODULO - 1) + 1
        return self._seq

    def _request(self, mtype, fields):
        r = self._exchange(mtype, fields)
        if not r.ok and r.code == errors.HELLO_REQUIRED:
            # the device restarted since our HELLO and never ran the request:
            # greet it again and ask once more
            was_streaming = self._streaming
            if self.hello().ok:
                if was_streaming and mtype != m.STREAM_CONTROL:
                    self.stream(True)
                r = self._exchange(mtype, fields)
        return r

    def _exchange(self, mtype, fields):
        attempts = 1 + (self.retries if mtype in _IDEMPOTENT else 0)
        seqs = []
        dropped_before = self.dropped_frames
        try:
            for _ in range(attempts):
                seq = self._next_seq()
                msg = m.build(m.REQUEST, seq, mtype, **fields)
                seqs.append(seq)
                self._awaiting.add(seq)
                sent = time.monotonic()
                self._send_payload(codec.dumps(msg))
                got = self._wait(seqs, sent + self.timeout)
                if got is not None:
                    return self._reply(mtype, got, time.monotonic() - sent)
        finally:
            for seq in seqs:
                self._awaiting.discard(seq)
                self._replies.pop(seq, None)
        raise self._timeout_error(mtype, attempts, self.dropped_frames - dropped_before)

    def _timeout_error(self, mtype, attempts, dropped):
        name = m.type_name(mtype)
        if mtype == m.ESTOP:
            msg = (
                "ESTOP was not confirmed within %g s: press the emergency stop button on the device now"
                % self.timeout
            )
        elif attempts == 1:
            msg = (
                "no answer to %s within %g s; not resent because repeating it is not safe: "
                "check the device state with 'tonus info'" % (name, self.timeout)
            )
        else:
            msg = "no answer to %s from %s after %d tries of %g s: is the tonus firmware running?" % (
                name,
                self.port.url,
                attempts,
                self.timeout,
            )
        if dropped:
            msg += "\n%d unreadable frame(s) arrived meanwhile; the last one:" % dropped
            return LinkError(msg, self.last_dropped)
        return LinkError(msg)

    def _send_payload(self, payload):
        self.port.write(framing.encode(payload))
        self._tx_wall = time.monotonic()
        self._tx_dev_ms = self._dev_ms
        self._tx_emg_end = self._emg_end
        self._idle_since_tx = 0.0

    def _wait(self, seqs, deadline):
        while True:
            for seq in seqs:
                if seq in self._replies:
                    return self._replies.pop(seq)
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self._pump(min(left, _TICK))

    def _reply(self, mtype, got, rtt):
        kind, rtype, body, payload = got
        if kind == m.ERROR:
            code = body[0]
            return Refusal(m.type_name(mtype), code, errors.name(code), body.get(1, ""))
        if rtype != mtype or mtype not in _REPLY_PARSERS:
            raise LinkError(
                "the device answered %s with a %s response" % (m.type_name(mtype), m.type_name(rtype)),
                payload,
            )
        r = _REPLY_PARSERS[mtype](mtype, m.named(kind, rtype, body), rtt)
        if isinstance(r, StateReply):
            self._saw_state(r.state)
        elif isinstance(r, Pong):
            self._saw_time(r.uptime_ms)
        return r

    def _pump(self, timeout):
        data = self.port.read(timeout)
        if data:
            self._feed(data)
        else:
            self._idle_since_tx += timeout
        self._keep_alive()

    def _feed(self, data):
        for payload in self._decoder.feed(data):
            self._dispatch(payload)

    @property
    def dropped_frames(self):
        """Frames from the device that failed COBS, CRC or size checks here."""
        return self._decoder.dropped

    @property
    def last_dropped(self):
        return self._decoder.last_dropped

    def _dispatch(self, payload):
        try:
            kind, seq, mtype, body = m.parse(codec.loads(payload, framing.MAX_PAYLOAD))
        except ProtocolError as e:
            raise LinkError(
                "the device sent an invalid message: %s (%d) %s" % (e.name, e.code, e.detail), payload
            ) from e
        if kind == m.REQUEST:
            raise LinkError("the device sent a request", payload)
        if kind in (m.RESPONSE, m.ERROR):
            if seq in self._awaiting:
                self._replies[seq] = (kind, mtype, body, payload)
            elif seq in self._heartbeats:
                del self._heartbeats[seq]
                if kind == m.RESPONSE:
                    self._saw_time(body[0])
            else:
                self.stale_replies += 1
            return
        expected = self._next_seq_of[kind]
        if expected is not None and seq != expected:
            self.missed[kind] += (seq - expected) % m.SEQ_MODULO
        self._next_seq_of[kind] = (seq + 1) % m.SEQ_MODULO
        if mtype == m.EMG and len(body[1]) % 4:
            raise LinkError("EMG frame with a partial sample (%d bytes)" % len(body[1]), payload)
        item = _unsolicited(kind, seq, mtype, m.named(kind, mtype, body))
        if isinstance(item, EmgFrame):
            if self._tx_emg_end is None:
                self._tx_emg_end = item.first_index  # device time counts from the first frame seen
            self._emg_end = item.end_index
        else:
            self._saw_time(item.time_ms)
            if isinstance(item, StateChanged):
                self._saw_state(item.to_state)
        if len(self._queue) >= _QUEUE_MAX:
            self._queue.popleft()
            self.overflowed += 1
        self._queue.append(item)

    def _saw_time(self, ms):
        if self._tx_dev_ms is None:
            self._tx_dev_ms = ms  # device time counts from the first timestamp seen
        if self._dev_ms is None or ms > self._dev_ms:
            self._dev_ms = ms

    def _saw_state(self, state):
        self.state = state
        if state not in ACTIVE_STATES:
            self.heartbeat_ms = 0  # the session is over: nothing to keep alive

    def _device_ms_since_tx(self):
        since = 0
        if self._dev_ms is not None and self._tx_dev_ms is not None:
            since = self._dev_ms - self._tx_dev_ms
        if self._emg_end is not None and self._tx_emg_end is not None and self._emg_rate_hz:
            since = max(since, (self._emg_end - self._tx_emg_end) * 1000 // self._emg_rate_hz)
        return since

    def _keep_alive(self):
        if not self.heartbeat_ms:
            return
        due = self.heartbeat_ms / 3  # two heartbeats may be late before the device gives up
        wall_ms = (time.monotonic() - self._tx_wall) * 1000
        if max(wall_ms, self._idle_since_tx * 1000, self._device_ms_since_tx()) < due:
            return
        seq = self._next_seq()
        self._heartbeats[seq] = None
        if len(self._heartbeats) > _HEARTBEATS_TRACKED:
            del self._heartbeats[next(iter(self._heartbeats))]
        self._send_payload(codec.dumps(m.build(m.REQUEST, seq, m.PING)))

    def maintenance(self):
        """Ask the device to reset into its maintenance boot, for `tonus flash`.

        A StateReply (state MAINTENANCE: the reset follows at once), or a
        Refusal while a session runs. Never resent, since the device may
        already be resetting; the answer is parsed here because the reply
        table above does not list MAINTENANCE_ENTER.
        """
        mtype = m.MAINTENANCE_ENTER
        seq = self._next_seq()
        self._awaiting.add(seq)
        try:
            self._send_payload(codec.dumps(m.build(m.REQUEST, seq, mtype)))
            got = self._wait([seq], time.monotonic() + self.timeout)
        finally:
            self._awaiting.discard(seq)
            self._replies.pop(seq, None)
        if got is None:
            raise self._timeout_error(mtype, 1, 0)
        kind, rtype, body, payload = got
        if kind == m.ERROR:
            return Refusal(m.type_name(mtype), body[0], errors.name(body[0]), body.get(1, ""))
        if rtype != mtype:
            raise LinkError(
                "the device answered %s with a %s response" % (m.type_name(mtype), m.type_name(rtype)),
                payload,
            )
        r = _state_reply(mtype, m.named(kind, rtype, body), 0.0)
        self._saw_state(r.state)
        return r

    def selftest(self, probe_attached=False, timeout=10.0):
        """Run the board's bring-up checks: a SelftestResult, or a Refusal.

        The device answers at once and reports when its checks are done,
        about half a second later; events that arrive meanwhile stay queued
        for poll(). Never resent: the checks drive the output stage.
        """
        r = self._request(m.SELFTEST, {"probe_attached": bool(probe_attached)})
        if not r.ok:
            return r
        deadline = time.monotonic() + timeout
        while True:
            for item in self._queue:
                if isinstance(item, SelftestResult):
                    self._queue.remove(item)
                    return item
            left = deadline - time.monotonic()
            if left <= 0:
                raise LinkError(
                    "the self-test started but sent no result within %g s: the device may have reset; "
                    "check it with 'tonus info'" % timeout
                )
            self._pump(min(left, _TICK))


# -- the self-test's result --------------------------------------------------------

# the unit of each check's measured value and range
_CHECK_UNITS = {
    m.CHECK_FRONT_END: "samples",
    m.CHECK_LEAD_OFF: "%",
    m.CHECK_CURRENT: "µA",
    m.CHECK_WATCHDOG: "ms",
    m.CHECK_STORAGE: "damaged records",
}


@dataclass(frozen=True)
class CheckResult:
    """One bring-up check: what was measured, the passing range, and why it failed."""

    check: str  # CHECK_NAMES, e.g. "FRONT_END"
    passed: bool
    value: int
    low: int  # passing range, inclusive
    high: int
    unit: str
    why: str | None  # WHY_NAMES of a failure, e.g. "NO_SAMPLES"
    ua_2: int | None = None  # CURRENT: second-phase current
    mv: int | None = None  # CURRENT: voltage across the dummy load
    mv_low: int | None = None
    mv_high: int | None = None


@dataclass(frozen=True)
class SelftestResult(Reply):
    """SELFTEST_RESULT: every check, in the device's order."""

    seq: int
    time_ms: int
    passed: bool
    checks: tuple  # CheckResult

    @property
    def failed(self):
        return tuple(c for c in self.checks if not c.passed)

    def to_json(self):
        from dataclasses import asdict

        return {"passed": self.passed, "time_ms": self.time_ms, "checks": [asdict(c) for c in self.checks]}


def _selftest_result(seq, b):
    checks = []
    for d in b["checks"]:
        code = d.get(m.ST_CHECK, 0)
        why = d.get(m.ST_WHY, m.WHY_NONE)
        checks.append(
            CheckResult(
                _name(m.CHECK_NAMES, code),
                d.get(m.ST_PASSED) == 1,
                d.get(m.ST_VALUE, 0),
                d.get(m.ST_LOW, 0),
                d.get(m.ST_HIGH, 0),
                _CHECK_UNITS.get(code, ""),
                _name(m.WHY_NAMES, why) if why else None,
                d.get(m.ST_UA_2),
                d.get(m.ST_MV),
                d.get(m.ST_MV_LOW),
                d.get(m.ST_MV_HIGH),
            )
        )
    return SelftestResult(seq, b["time_ms"], b["passed"], tuple(checks))
