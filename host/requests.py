"""Every request the host sends, each beside the reply type its RESPONSE carries.

A request class names its message type (`TYPE`), its reply (`Reply`, which
reads the RESPONSE body), whether it may be sent again after a timeout
(`resend`), how long its answer may take at least (`min_timeout`), and for a
request the device completes later, the event that carries the outcome
(`Result`, awaited up to `result_timeout`). An instance holds the fields;
`host.client.Client` sends every request through one exchange path.

A request is resent only if repeating it cannot do twice what it does once:
a lost SESSION_START reply does not say whether the session started, and a
lost ESTOP reply must reach a person, not a loop.
"""

from typing import Any, ClassVar, Generic, TypeVar

from host import events, replies
from protocol import messages as m

# what a request yields when the device accepts it: its reply, or the event that completes it
# (tests/host/test_requests.py holds every class's R to its Reply or Result)
R = TypeVar("R", bound=replies.Reply)


class Request(Generic[R]):
    TYPE: ClassVar[int]
    Reply: ClassVar[replies.ReplyType]
    resend: ClassVar[bool] = False
    min_timeout: ClassVar[float] = 0.0  # seconds
    Result: ClassVar[type | None] = None
    result_timeout: ClassVar[float] = 0.0  # seconds

    def __init__(self, **fields: Any) -> None:
        self.fields = fields

    @classmethod
    def name(cls) -> str:
        return m.type_name(cls.TYPE)


class Hello(Request[replies.Hello]):
    """Negotiate the protocol version; the device stops streaming on every HELLO."""

    TYPE = m.HELLO
    Reply = replies.Hello
    resend = True


class Info(Request[replies.Info]):
    TYPE = m.INFO
    Reply = replies.Info
    resend = True


class Ping(Request[replies.Pong]):
    TYPE = m.PING
    Reply = replies.Pong
    resend = True


class SessionStart(Request[replies.StateReply]):
    TYPE = m.SESSION_START
    Reply = replies.StateReply


class SessionPause(Request[replies.StateReply]):
    TYPE = m.SESSION_PAUSE
    Reply = replies.StateReply


class SessionResume(Request[replies.StateReply]):
    TYPE = m.SESSION_RESUME
    Reply = replies.StateReply


class SessionStop(Request[replies.StateReply]):
    TYPE = m.SESSION_STOP
    Reply = replies.StateReply


class Estop(Request[replies.StateReply]):
    TYPE = m.ESTOP
    Reply = replies.StateReply


class FaultClear(Request[replies.StateReply]):
    TYPE = m.FAULT_CLEAR
    Reply = replies.StateReply


class StreamControl(Request[replies.Ack]):
    TYPE = m.STREAM_CONTROL
    Reply = replies.Ack
    resend = True  # the same switch twice


class StimLevel(Request[replies.LevelReply]):
    TYPE = m.STIM_LEVEL
    Reply = replies.LevelReply


class LogRead(Request[replies.LogPage]):
    TYPE = m.LOG_READ
    Reply = replies.LogPage
    resend = True  # only reads


class SessionRate(Request[replies.Rated]):
    TYPE = m.SESSION_RATE
    Reply = replies.Rated
    resend = True  # the same score for the same session again


class Selftest(Request[events.SelftestResult]):
    """The device answers at once and sends SELFTEST_RESULT when its checks are done,
    about half a second later. Never resent: the checks drive the output stage."""

    TYPE = m.SELFTEST
    Reply = replies.Ack
    Result = events.SelftestResult
    result_timeout = 10.0


class ProtocolBegin(Request[replies.UploadOffset]):
    TYPE = m.PROTOCOL_BEGIN
    Reply = replies.UploadOffset
    resend = True  # a repeated BEGIN resumes the upload


class ProtocolChunk(Request[replies.UploadOffset]):
    TYPE = m.PROTOCOL_CHUNK
    Reply = replies.UploadOffset


class ProtocolCommit(Request[replies.ProtocolStored]):
    """The device verifies the signature: seconds on a board."""

    TYPE = m.PROTOCOL_COMMIT
    Reply = replies.ProtocolStored
    min_timeout = 10.0


class ProtocolShow(Request[replies.ProtocolShown]):
    TYPE = m.PROTOCOL_SHOW
    Reply = replies.ProtocolShown
    resend = True  # only reads


class ProtocolRemove(Request[replies.Ack]):
    TYPE = m.PROTOCOL_REMOVE
    Reply = replies.Ack


class MaintenanceEnter(Request[replies.StateReply]):
    """Output off, then a reset into the maintenance boot (tonus flash). Never resent:
    the device may already be resetting."""

    TYPE = m.MAINTENANCE_ENTER
    Reply = replies.StateReply


# message type -> request class, for every request in the catalogue
REQUESTS = {
    cls.TYPE: cls
    for cls in (
        Hello,
        Info,
        Ping,
        SessionStart,
        SessionPause,
        SessionResume,
        SessionStop,
        Estop,
        FaultClear,
        StreamControl,
        StimLevel,
        LogRead,
        SessionRate,
        Selftest,
        ProtocolBegin,
        ProtocolChunk,
        ProtocolCommit,
        ProtocolShow,
        ProtocolRemove,
        MaintenanceEnter,
    )
}
