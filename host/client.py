"""The typed client of the tonus link.

One method per request type, every one sent through one exchange path
(`Client._request`) driven by the request table in host/requests.py, which
puts each request beside its reply type (host/replies.py). Replies are
matched by sequence number; events and EMG stream frames (host/events.py)
that arrive in between are queued for poll()/events(). Device refusals come
back as `Refusal` values (`.ok` is False); a broken link, a timeout or a
message that fails validation raises `LinkError` with a hexdump of the
offending bytes.

On a timeout only the requests marked `resend` in host/requests.py are sent
again; that module says why each one may be. A request the device refused with
HELLO_REQUIRED never ran: the client greets the restarted device and asks
once more.

Host-driven sessions need a heartbeat; host/heartbeat.py decides when a PING
is due, and the client sends it from its read path.
"""

import collections
import time
from collections.abc import Iterator
from typing import Any, Self, TextIO, TypeVar, cast

from host import requests as rq
from host.events import (
    EVENTS,
    Advice,
    CheckResult,
    Cue,
    EmgFrame,
    Event,
    FaultEvent,
    SelftestResult,
    SessionSummary,
    StateChanged,
    StimEvent,
)
from host.heartbeat import Heartbeat
from host.replies import (
    Ack,
    DeviceRefused,
    FaultInfo,
    Hello,
    Info,
    LevelReply,
    Limits,
    LinkCounters,
    LogPage,
    Pong,
    ProtocolShown,
    ProtocolStored,
    ProtocolSummary,
    Rated,
    Refusal,
    Reply,
    SessionInfo,
    StateReply,
    UploadOffset,
    protocol_summary,
)
from host.transport import LinkError, Port, open_port
from protocol import codec, errors, framing
from protocol import messages as m
from protocol.errors import ProtocolError

# the replies and events, importable from here as before they had modules of their own
__all__ = [
    "ACTIVE_STATES",
    "Ack",
    "Advice",
    "CheckResult",
    "Client",
    "Cue",
    "DeviceRefused",
    "EmgFrame",
    "FaultEvent",
    "FaultInfo",
    "Hello",
    "Info",
    "LevelReply",
    "Limits",
    "LinkCounters",
    "LogPage",
    "Pong",
    "ProtocolShown",
    "ProtocolStored",
    "ProtocolSummary",
    "Rated",
    "Refusal",
    "Reply",
    "SelftestResult",
    "SessionInfo",
    "SessionSummary",
    "StateChanged",
    "StateReply",
    "StimEvent",
    "UploadOffset",
    "protocol_summary",
]

DEFAULT_TIMEOUT = 1.0
DEFAULT_RETRIES = 2
_TICK = 0.02  # longest single wait for bytes, so heartbeats stay on time
LEVEL_HOLD_HEARTBEAT_MS = 1000  # the device's STIM_HEARTBEAT_MAX_MS
_QUEUE_MAX = 20000  # about 8 minutes of EMG frames nobody reads
ACTIVE_STATES = ("ARMED", "RUNNING", "PAUSED")
R = TypeVar("R", bound=Reply)
_Answer = tuple[int, int, Any, bytes]  # a RESPONSE or ERROR: kind, message type, body, the payload


class Client:
    """A connection to one device. Greets it (HELLO) on construction."""

    def __init__(
        self,
        port: Port,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
        hello: bool = True,
    ) -> None:
        self.port = port
        self.timeout = timeout
        self.retries = retries
        self.device: Hello | None = None  # the Hello of the last successful greeting
        self.state: str | None = None  # last state the device reported, by name
        # diagnostics
        self.stale_replies = 0  # answers to requests no longer awaited
        self.missed = {m.EVENT: 0, m.STREAM: 0}  # seq gaps per unsolicited kind
        self.overflowed = 0  # queued items discarded because nobody read them
        self._decoder = framing.Decoder(keep_dropped=True)
        self._seq = 0
        self._awaiting: set[int] = set()
        self._replies: dict[int, _Answer] = {}
        self._heartbeat = Heartbeat()
        self._next_seq_of: dict[int, int | None] = {m.EVENT: None, m.STREAM: None}  # seq due next, by kind
        self._queue: collections.deque[Event] = collections.deque()
        self._streaming = False
        if hello:
            self.hello().unwrap()

    @classmethod
    def open(
        cls,
        url: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
        wire_log: TextIO | None = None,
    ) -> "Client":
        """Open `url` (see host.transport.open_port) and greet the device."""
        port = open_port(url, timeout=timeout, wire_log=wire_log)
        try:
            return cls(port, timeout=timeout, retries=retries)
        except BaseException:
            port.close()
            raise

    def close(self) -> None:
        self.port.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def heartbeat_ms(self) -> int:
        """Nonzero while this client keeps a host-driven session alive."""
        return self._heartbeat.period_ms

    @heartbeat_ms.setter
    def heartbeat_ms(self, ms: int) -> None:
        self._heartbeat.period_ms = ms

    # -- requests ---------------------------------------------------------

    def hello(
        self, min_version: int = m.MIN_PROTOCOL_VERSION, max_version: int = m.PROTOCOL_VERSION
    ) -> Hello | Refusal:
        """Negotiate the protocol version. The device stops streaming on every HELLO."""
        # the greeting itself: a HELLO_REQUIRED here is not answered with another HELLO
        req = rq.Hello(min_version=min_version, max_version=max_version)
        r = cast(Hello | Refusal, self._exchange(req, self.timeout))
        if r.ok:
            if not min_version <= r.version <= max_version:
                raise LinkError(
                    f"the device chose protocol version {r.version:d} outside "
                    f"{min_version:d}..{max_version:d}"
                )
            self.device = r
            self._streaming = False
        return r

    def info(self) -> Info | Refusal:
        r = self._request(rq.Info())
        if r.ok:
            self._heartbeat.emg_rate_hz = r.limits.emg_rate_hz or self._heartbeat.emg_rate_hz
            self._saw_state(r.state)
        return r

    def ping(self) -> Pong | Refusal:
        return self._request(rq.Ping())

    def session_start(
        self,
        demo_s: int | None = None,
        heartbeat_ms: int | None = None,
        host_time_s: int | None = None,
        keep_alive: bool = True,
    ) -> StateReply | Refusal:
        """Start a session. With heartbeat_ms the device ends it when the host
        is silent that long; keep_alive makes this client send PINGs for it
        while the caller keeps reading (poll, events, or any request)."""
        fields: dict[str, Any] = {"host_time_s": int(time.time()) if host_time_s is None else host_time_s}
        if demo_s is not None:
            fields["demo_s"] = demo_s
        if heartbeat_ms:
            fields["heartbeat_ms"] = heartbeat_ms
            if keep_alive and not self._heartbeat.emg_rate_hz:
                self.info()  # the sample rate turns EMG indices into device time
        r = self._request(rq.SessionStart(**fields))
        if r.ok and heartbeat_ms and keep_alive:
            self.heartbeat_ms = heartbeat_ms
        return r

    def session_pause(self) -> StateReply | Refusal:
        return self._request(rq.SessionPause())

    def session_resume(self) -> StateReply | Refusal:
        return self._request(rq.SessionResume())

    def session_stop(self) -> StateReply | Refusal:
        return self._request(rq.SessionStop())

    def estop(self) -> StateReply | Refusal:
        return self._request(rq.Estop())

    def fault_clear(self) -> StateReply | Refusal:
        return self._request(rq.FaultClear())

    def stream(self, enable: bool) -> Ack | Refusal:
        r = self._request(rq.StreamControl(enable=bool(enable)))
        if r.ok:
            self._streaming = bool(enable)
        return r

    def stim_level(self, level_ua: int) -> LevelReply | Refusal:
        """Ask for a stimulation level (µA); the device refuses one outside the approved range."""
        r = self._request(rq.StimLevel(level_ua=level_ua))
        if r.ok and not self.heartbeat_ms:
            # the device holds a level only while the host that set it talks (SAF-LEVEL-1):
            # this client keeps the link alive while it reads, until the session ends
            self.heartbeat_ms = LEVEL_HOLD_HEARTBEAT_MS
        return r

    def log_read(self, from_seq: int, max_entries: int = m.MAX_LOG_READ) -> LogPage | Refusal:
        return self._request(rq.LogRead(from_seq=from_seq, max=max_entries))

    def session_rate(self, session: int, pain: int) -> Rated | Refusal:
        """The patient's pain/comfort score (0..10) for logged session number `session`."""
        return self._request(rq.SessionRate(session=session, pain=pain))

    def selftest(
        self, probe_attached: bool = False, timeout: float | None = None
    ) -> SelftestResult | Refusal:
        """Run the board's bring-up checks: a SelftestResult, or a Refusal.

        Events that arrive while the checks run stay queued for poll().
        `timeout`: seconds to wait for the result (10 by default).
        """
        return self._request(rq.Selftest(probe_attached=bool(probe_attached)), result_timeout=timeout)

    def protocol_begin(self, size: int, sha256: bytes) -> UploadOffset | Refusal:
        return self._request(rq.ProtocolBegin(size=size, sha256=sha256))

    def protocol_chunk(self, offset: int, data: bytes) -> UploadOffset | Refusal:
        return self._request(rq.ProtocolChunk(offset=offset, data=data))

    def protocol_commit(self, timeout: float | None = None) -> ProtocolStored | Refusal:
        """Verification takes seconds on a board: wait longer than for other answers."""
        return self._request(rq.ProtocolCommit(), timeout=timeout)

    def protocol_show(self) -> ProtocolShown | Refusal:
        return self._request(rq.ProtocolShow())

    def protocol_remove(self) -> Ack | Refusal:
        return self._request(rq.ProtocolRemove())

    def maintenance(self) -> StateReply | Refusal:
        """Ask the device to reset into its maintenance boot, for `tonus flash`.

        A StateReply (state MAINTENANCE: the reset follows at once), or a
        Refusal while a session runs.
        """
        return self._request(rq.MaintenanceEnter())

    def raw_request(self, msg: object) -> Reply | Refusal:
        """Send any envelope [kind, seq, type, body] unvalidated; return the answer.

        For tests and diagnosis of the device's input checks. The answer is
        matched by msg[1]; a device answers what it cannot parse with seq 0.
        """
        seq = msg[1] if isinstance(msg, list) and len(msg) == 4 and isinstance(msg[1], int) else 0
        mtype = msg[2] if isinstance(msg, list) and len(msg) == 4 and isinstance(msg[2], int) else 0
        try:
            got = self._send_and_wait(codec.dumps(msg), [seq], self.timeout)
        finally:
            self._forget([seq])
        if got is None:
            raise LinkError(f"no answer to a raw request (seq {seq:d}) within {self.timeout:g} s")
        return self._reply(mtype, *got)

    def send_raw(self, data: bytes) -> None:
        """Put bytes on the line as they are (line-noise tests)."""
        self.port.write(data)

    # -- events and stream ------------------------------------------------

    def poll(self, timeout: float = 0.0) -> Event | None:
        """The next event or EMG frame, waiting up to `timeout` seconds; None if none came."""
        deadline = time.monotonic() + timeout
        while not self._queue:
            left = deadline - time.monotonic()
            self._pump(min(max(left, 0.0), _TICK))
            if left <= 0:
                break
        return self._queue.popleft() if self._queue else None

    def events(self, idle_timeout: float | None = None) -> Iterator[Event]:
        """Yield events and EMG frames as they arrive; end after idle_timeout
        seconds without one (None: never)."""
        while True:
            item = self.poll(1.0 if idle_timeout is None else idle_timeout)
            if item is not None:
                yield item
            elif idle_timeout is not None:
                return

    # -- the exchange -----------------------------------------------------

    def _next_seq(self) -> int:
        # 1..65535: the device answers requests it cannot parse with seq 0
        self._seq = self._seq % (m.SEQ_MODULO - 1) + 1
        return self._seq

    def _request(
        self, req: rq.Request[R], timeout: float | None = None, result_timeout: float | None = None
    ) -> R | Refusal:
        """Send req and return its reply, its Result event if it has one, or a Refusal.

        `timeout` overrides the request's min_timeout, `result_timeout` its result_timeout.
        """
        wait = max(self.timeout, timeout or req.min_timeout)
        r = self._exchange(req, wait)
        if not r.ok and r.code == errors.HELLO_REQUIRED:
            # the device restarted since our HELLO and never ran the request:
            # greet it again and ask once more
            was_streaming = self._streaming
            if self.hello().ok:
                if was_streaming and req.TYPE != m.STREAM_CONTROL:
                    self.stream(True)
                r = self._exchange(req, wait)
        # each request class names its reply or result as R: tests/host/test_requests.py holds them so
        result = req.Result
        if r.ok and result is not None:
            result_wait = req.result_timeout if result_timeout is None else result_timeout
            return cast(R, self._await_result(req.name(), result, result_wait))
        return cast(R | Refusal, r)

    def _exchange(self, req: rq.Request[Any], timeout: float) -> Reply | Refusal:
        attempts = 1 + (self.retries if req.resend else 0)
        seqs = []
        dropped_before = self.dropped_frames
        try:
            for _ in range(attempts):
                seq = self._next_seq()
                seqs.append(seq)
                got = self._send_and_wait(
                    codec.dumps(m.build(m.REQUEST, seq, req.TYPE, **req.fields)), seqs, timeout
                )
                if got is not None:
                    return self._reply(req.TYPE, *got)
        finally:
            self._forget(seqs)
        raise self._timeout_error(req, attempts, timeout, self.dropped_frames - dropped_before)

    def _send_and_wait(self, payload: bytes, seqs: list[int], timeout: float) -> tuple[_Answer, float] | None:
        """Send payload awaiting seqs[-1]; (answer, seconds it took) for any of seqs, or None."""
        self._awaiting.add(seqs[-1])
        sent = time.monotonic()
        self._send_payload(payload)
        got = self._wait(seqs, sent + timeout)
        return None if got is None else (got, time.monotonic() - sent)

    def _forget(self, seqs: list[int]) -> None:
        for seq in seqs:
            self._awaiting.discard(seq)
            self._replies.pop(seq, None)

    def _timeout_error(self, req: rq.Request[Any], attempts: int, timeout: float, dropped: int) -> LinkError:
        name = req.name()
        if req.TYPE == m.ESTOP:
            msg = (
                f"ESTOP was not confirmed within {timeout:g} s: press the emergency stop button on the "
                "device now"
            )
        elif attempts == 1:
            msg = (
                f"no answer to {name} within {timeout:g} s; not resent because repeating it is not safe: "
                "check the device state with 'tonus info'"
            )
        else:
            msg = (
                f"no answer to {name} from {self.port.url} after {attempts:d} tries of {timeout:g} s: is "
                "the tonus firmware running?"
            )
        if dropped:
            msg += f"\n{dropped:d} unreadable frame(s) arrived meanwhile; the last one:"
            return LinkError(msg, self.last_dropped)
        return LinkError(msg)

    def _await_result(self, name: str, result: type, timeout: float) -> Event:
        deadline = time.monotonic() + timeout
        while True:
            for item in self._queue:
                if isinstance(item, result):
                    self._queue.remove(item)
                    return item
            left = deadline - time.monotonic()
            if left <= 0:
                raise LinkError(
                    f"{name} started but sent no result within {timeout:g} s: the device may have reset; "
                    "check it with 'tonus info'"
                )
            self._pump(min(left, _TICK))

    def _send_payload(self, payload: bytes) -> None:
        self.port.write(framing.encode(payload))
        self._heartbeat.sent()

    def _wait(self, seqs: list[int], deadline: float) -> _Answer | None:
        while True:
            for seq in seqs:
                if seq in self._replies:
                    return self._replies.pop(seq)
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self._pump(min(left, _TICK))

    def _reply(self, mtype: int, got: _Answer, rtt: float) -> Reply | Refusal:
        kind, rtype, body, payload = got
        if kind == m.ERROR:
            return Refusal.parse(m.type_name(mtype), body)
        req = rq.REQUESTS.get(mtype)
        if rtype != mtype or req is None:
            raise LinkError(
                f"the device answered {m.type_name(mtype)} with a {m.type_name(rtype)} response",
                payload,
            )
        r = req.Reply.parse(m.type_name(mtype), m.named(kind, rtype, body), rtt)
        if isinstance(r, StateReply):
            self._saw_state(r.state)
        elif isinstance(r, Pong):
            self._heartbeat.saw_time(r.uptime_ms)
        return r

    # -- what arrives -----------------------------------------------------

    def _pump(self, timeout: float) -> None:
        data = self.port.read(timeout)
        if data:
            self._feed(data)
        else:
            self._heartbeat.waited(timeout)
        self._keep_alive()

    def _feed(self, data: bytes) -> None:
        for payload in self._decoder.feed(data):
            self._dispatch(payload)

    @property
    def dropped_frames(self) -> int:
        """Frames from the device that failed COBS, CRC or size checks here."""
        return self._decoder.dropped

    @property
    def last_dropped(self) -> bytes:
        return self._decoder.last_dropped

    def _dispatch(self, payload: bytes) -> None:
        try:
            kind, seq, mtype, body = m.parse(codec.loads(payload, framing.MAX_PAYLOAD))
        except ProtocolError as e:
            raise LinkError(
                f"the device sent an invalid message: {e.name} ({e.code:d}) {e.detail}", payload
            ) from e
        if kind == m.REQUEST:
            raise LinkError("the device sent a request", payload)
        if kind in (m.RESPONSE, m.ERROR):
            if seq in self._awaiting:
                self._replies[seq] = (kind, mtype, body, payload)
            elif self._heartbeat.answered(seq):
                if kind == m.RESPONSE:
                    self._heartbeat.saw_time(body[0])
            else:
                self.stale_replies += 1
            return
        expected = self._next_seq_of[kind]
        if expected is not None and seq != expected:
            self.missed[kind] += (seq - expected) % m.SEQ_MODULO
        self._next_seq_of[kind] = (seq + 1) % m.SEQ_MODULO
        if mtype == m.EMG and len(body[1]) % 4:
            raise LinkError(f"EMG frame with a partial sample ({len(body[1])} bytes)", payload)
        item = EVENTS[mtype].parse(seq, m.named(kind, mtype, body))
        if isinstance(item, EmgFrame):
            self._heartbeat.saw_samples(item.first_index, item.end_index)
        else:
            self._heartbeat.saw_time(item.time_ms)
            if isinstance(item, StateChanged):
                self._saw_state(item.to_state)
        if len(self._queue) >= _QUEUE_MAX:
            self._queue.popleft()
            self.overflowed += 1
        self._queue.append(item)

    def _saw_state(self, state: str) -> None:
        self.state = state
        if state not in ACTIVE_STATES:
            self.heartbeat_ms = 0  # the session is over: nothing to keep alive

    def _keep_alive(self) -> None:
        if self._heartbeat.due():
            seq = self._next_seq()
            self._heartbeat.track(seq)
            self._send_payload(codec.dumps(m.build(m.REQUEST, seq, m.PING)))
