"""What the device answers to a request: a reply type per RESPONSE body, or a Refusal.

Each reply type reads its own RESPONSE body (`parse`); host/requests.py
names, for every request, the reply type its RESPONSE carries.
"""

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, ClassVar, Literal, NoReturn, Protocol, Self

from host.errors import TonusError
from protocol import errors, faults
from protocol import messages as m

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
    errors.SEQUENCE_JUMP: "use the next sequence number after the device's ('tonus protocol show') "
    "and sign again",
    errors.BUDGET_EXHAUSTED: "all approved sessions are used; the clinician must approve a new protocol",
}


def name_of(names: Sequence[str], i: int) -> str:
    """names[i], or UNKNOWN(i) for a code this host does not know."""
    return names[i] if 0 <= i < len(names) else f"UNKNOWN({i:d})"


def state_of(body: dict[str, Any]) -> str:
    return name_of(m.STATE_NAMES, body["state"])


class Reply:
    """A device answer that is not a refusal; `ok` tells it from a Refusal (and narrows the type)."""

    ok: ClassVar[Literal[True]] = True

    def unwrap(self) -> Self:
        """The reply itself (a Refusal raises DeviceRefused instead)."""
        return self


@dataclass(frozen=True)
class Refusal:
    """The device answered a request with an ERROR."""

    request: str  # the refused request's type name
    code: int
    name: str
    detail: str

    ok: ClassVar[Literal[False]] = False

    def unwrap(self) -> NoReturn:
        raise DeviceRefused(self)

    @classmethod
    def parse(cls, request: str, body: dict[int, Any]) -> "Refusal":
        code = body[0]
        return cls(request, code, errors.name(code), body.get(1, ""))


class DeviceRefused(TonusError):
    def __init__(self, refusal: Refusal) -> None:
        self.refusal = refusal
        r = refusal
        why = _HINTS.get(r.code) or r.detail
        super().__init__(
            "device refused {}: {} ({:d}){}".format(r.request, r.name, r.code, " — " + why if why else "")
        )


class ReplyType(Protocol):
    """A reply class as host/requests.py names it: parse(request, body, rtt) takes the
    request's type name, the RESPONSE body with named fields, and the seconds the answer took."""

    def parse(self, request: str, b: dict[str, Any], rtt: float) -> Reply: ...


@dataclass(frozen=True)
class Hello(Reply):
    version: int
    firmware_version: str
    board: str
    serial: str
    max_payload: int
    firmware_hash: bytes | None = None  # of the image tonus flash deployed; None otherwise

    @classmethod
    def parse(cls, request: str, b: dict[str, Any], rtt: float) -> Self:
        return cls(
            b["version"],
            b["firmware_version"],
            b["board"],
            b["serial"],
            b["max_payload"],
            b.get("firmware_hash"),
        )


@dataclass(frozen=True)
class FaultInfo:
    name: str
    code: int
    latched: bool
    time_ms: int
    count: int
    where: str = ""  # where the exception behind an EXCEPTION or MEMORY fault was raised


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
    def remaining(self) -> int:
        return max(self.sessions - self.used, 0)

    def to_json(self) -> dict[str, Any]:
        return dict(asdict(self), remaining=self.remaining)


def protocol_summary(d: dict[int, Any] | None) -> ProtocolSummary | None:
    """A ProtocolSummary from the device's PINFO map, or None."""
    return None if d is None else _pinfo(d)


def _pinfo(d: dict[int, Any]) -> ProtocolSummary:
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


_LINK_KEYS = (m.LINK_RX_FRAMES, m.LINK_RX_DROPPED, m.LINK_RX_REFUSED, m.LINK_TX_FRAMES, m.LINK_TX_DROPPED)


@dataclass(frozen=True)
class Info(Reply):
    firmware_version: str
    board: str
    serial: str
    state: str
    fault: FaultInfo | None
    protocol: ProtocolSummary | None
    limits: Limits
    uptime_ms: int
    estop_open: bool
    session: SessionInfo | None
    link: LinkCounters

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["protocol"] = self.protocol.to_json() if self.protocol else None
        return out

    @classmethod
    def parse(cls, request: str, b: dict[str, Any], rtt: float) -> Self:
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
                f.get(m.FAULT_WHERE, ""),
            )
        lim = b["limits"]
        s = b["session"]
        session = None
        if s is not None:
            session = SessionInfo(
                s.get(m.SESSION_ELAPSED_MS, 0),
                s.get(m.SESSION_DURATION_MS, 0),
                s.get(m.SESSION_PHASE, 0),
                name_of(m.CUE_NAMES, s.get(m.SESSION_CUE, 0)),
                bool(s.get(m.SESSION_HOST_DRIVEN)),
                s.get(m.SESSION_PAUSED_MS, 0),
            )
        return cls(
            b["firmware_version"],
            b["board"],
            b["serial"],
            state_of(b),
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
            LinkCounters(*(b["link"].get(k, 0) for k in _LINK_KEYS)),
        )


@dataclass(frozen=True)
class Pong(Reply):
    uptime_ms: int
    rtt_s: float  # wall time from sending the PING to its answer

    @classmethod
    def parse(cls, request: str, b: dict[str, Any], rtt: float) -> Self:
        return cls(b["uptime_ms"], rtt)


@dataclass(frozen=True)
class StateReply(Reply):
    """Answer to a session or safety request: the state after it."""

    request: str
    state: str

    @classmethod
    def parse(cls, request: str, b: dict[str, Any], rtt: float) -> Self:
        return cls(request, state_of(b))


@dataclass(frozen=True)
class Ack(Reply):
    request: str

    @classmethod
    def parse(cls, request: str, b: dict[str, Any], rtt: float) -> Self:
        return cls(request)


@dataclass(frozen=True)
class UploadOffset(Reply):
    offset: int

    @classmethod
    def parse(cls, request: str, b: dict[str, Any], rtt: float) -> Self:
        return cls(b["offset"])


@dataclass(frozen=True)
class ProtocolStored(Reply):
    protocol: ProtocolSummary

    @classmethod
    def parse(cls, request: str, b: dict[str, Any], rtt: float) -> Self:
        return cls(_pinfo(b["protocol"]))  # the catalogue requires the map: a stored protocol has one


@dataclass(frozen=True)
class ProtocolShown(Reply):
    protocol: ProtocolSummary | None
    max_sequence: int

    @classmethod
    def parse(cls, request: str, b: dict[str, Any], rtt: float) -> Self:
        return cls(protocol_summary(b["protocol"]), b["max_sequence"])


@dataclass(frozen=True)
class LevelReply(Reply):
    level_ua: int

    @classmethod
    def parse(cls, request: str, b: dict[str, Any], rtt: float) -> Self:
        return cls(b["level_ua"])


@dataclass(frozen=True)
class LogPage(Reply):
    entries: tuple  # {LOG_* key: value} maps, as the device keeps them
    next_seq: int
    oldest_seq: int
    end_seq: int
    damaged: int

    @classmethod
    def parse(cls, request: str, b: dict[str, Any], rtt: float) -> Self:
        return cls(tuple(b["entries"]), b["next_seq"], b["oldest_seq"], b["end_seq"], b["damaged"])


@dataclass(frozen=True)
class Rated(Reply):
    session: int

    @classmethod
    def parse(cls, request: str, b: dict[str, Any], rtt: float) -> Self:
        return cls(b["session"])
