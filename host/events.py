"""What the device sends unprompted: events, EMG stream frames and the self-test's result.

`EVENTS` maps each message type to the class that reads its body; the
client queues the items for poll()/events().
"""

import struct
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Protocol, Self

from host.replies import Reply, name_of
from protocol import faults
from protocol import messages as m

if TYPE_CHECKING:
    import numpy  # imported where the samples are wanted as an array: the CLI starts without it


@dataclass(frozen=True)
class StateChanged:
    seq: int
    from_state: str
    to_state: str
    reason: str
    time_ms: int

    @classmethod
    def parse(cls, seq: int, b: dict[str, Any]) -> Self:
        return cls(
            seq,
            name_of(m.STATE_NAMES, b["from_state"]),
            name_of(m.STATE_NAMES, b["to_state"]),
            name_of(m.REASON_NAMES, b["reason"]),
            b["time_ms"],
        )


@dataclass(frozen=True)
class FaultEvent:
    seq: int
    code: int
    name: str
    time_ms: int
    detail: str | None

    @property
    def latched(self) -> bool:
        return self.code in faults.LATCHED

    @classmethod
    def parse(cls, seq: int, b: dict[str, Any]) -> Self:
        return cls(seq, b["code"], faults.name(b["code"]), b["time_ms"], b.get("detail"))


@dataclass(frozen=True)
class Cue:
    seq: int
    phase: int
    cue: str
    time_ms: int
    duration_ms: int
    protocol_phase: int | None = None  # index into the approved protocol's phases

    @classmethod
    def parse(cls, seq: int, b: dict[str, Any]) -> Self:
        return cls(
            seq,
            b["phase"],
            name_of(m.CUE_NAMES, b["cue"]),
            b["time_ms"],
            b["duration_ms"],
            b.get("protocol_phase"),
        )


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

    @classmethod
    def parse(cls, seq: int, b: dict[str, Any]) -> Self:
        return cls(
            seq,
            b["first_index"],
            b["samples"],
            b["envelope_dv"],
            name_of(m.STATE_NAMES, b["state"]),
            b["flags"],
            b.get("stim_ua", 0),
            b.get("target_dv", 0),
        )

    @property
    def count(self) -> int:
        return len(self.data) // 4

    @property
    def end_index(self) -> int:
        return self.first_index + self.count

    @property
    def samples(self) -> list[int]:
        """The samples in 0.1 µV as a list of ints."""
        return list(struct.unpack(f"<{self.count:d}i", self.data))

    def array(self) -> "numpy.ndarray":
        """The samples in 0.1 µV as a numpy int32 array (a view, no copy)."""
        import numpy

        return numpy.frombuffer(self.data, dtype="<i4")

    @property
    def stimulating(self) -> bool:
        return bool(self.flags & m.FLAG_STIM)

    @property
    def triggered(self) -> bool:
        return bool(self.flags & m.FLAG_TRIGGER)

    @property
    def lead_off(self) -> bool:
        return bool(self.flags & m.FLAG_LEAD_OFF)

    @property
    def feedback(self) -> bool:
        """The device's biofeedback tone sounds: a relaxation phase, above its target."""
        return bool(self.flags & m.FLAG_FEEDBACK)

    @property
    def saturated(self) -> bool:
        return bool(self.flags & m.FLAG_SATURATED)

    @property
    def gap(self) -> bool:
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

    @classmethod
    def parse(cls, seq: int, b: dict[str, Any]) -> Self:
        return cls(
            seq,
            b["time_ms"],
            name_of(m.REASON_NAMES, b["end_reason"]),
            name_of(m.ADVICE_NAMES, b["advice"]) if b["advice"] else None,
            b["run_ms"],
            b["mvc_dv"],
            b["baseline_dv"],
            tuple(b["phases"]),
            b["triggers"],
            b["charge_uc"],
            b["max_ua"],
        )


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

    @classmethod
    def parse(cls, seq: int, b: dict[str, Any]) -> Self:
        return cls(
            seq,
            name_of(m.STIM_NAMES, b["state"]),
            b["time_ms"],
            b["level_ua"],
            b["limit_ua"],
            b.get("impedance_ohm"),
            b.get("triggers"),
        )


@dataclass(frozen=True)
class Advice:
    """The device advises ending the session."""

    seq: int
    reason: str
    time_ms: int
    rest_dv: int
    reference_dv: int

    @classmethod
    def parse(cls, seq: int, b: dict[str, Any]) -> Self:
        return cls(seq, name_of(m.ADVICE_NAMES, b["reason"]), b["time_ms"], b["rest_dv"], b["reference_dv"])


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

    @classmethod
    def parse(cls, d: dict[int, Any]) -> Self:
        code = d.get(m.ST_CHECK, 0)
        why = d.get(m.ST_WHY, m.WHY_NONE)
        return cls(
            name_of(m.CHECK_NAMES, code),
            d.get(m.ST_PASSED) == 1,
            d.get(m.ST_VALUE, 0),
            d.get(m.ST_LOW, 0),
            d.get(m.ST_HIGH, 0),
            _CHECK_UNITS.get(code, ""),
            name_of(m.WHY_NAMES, why) if why else None,
            d.get(m.ST_UA_2),
            d.get(m.ST_MV),
            d.get(m.ST_MV_LOW),
            d.get(m.ST_MV_HIGH),
        )


@dataclass(frozen=True)
class SelftestResult(Reply):
    """SELFTEST_RESULT: every check, in the device's order. It completes a SELFTEST request."""

    seq: int
    time_ms: int
    passed: bool
    checks: tuple  # CheckResult

    @property
    def failed(self) -> "tuple[CheckResult, ...]":
        return tuple(c for c in self.checks if not c.passed)

    def to_json(self) -> dict[str, Any]:
        return {"passed": self.passed, "time_ms": self.time_ms, "checks": [asdict(c) for c in self.checks]}

    @classmethod
    def parse(cls, seq: int, b: dict[str, Any]) -> Self:
        return cls(seq, b["time_ms"], b["passed"], tuple(CheckResult.parse(d) for d in b["checks"]))


Event = StateChanged | FaultEvent | Cue | SessionSummary | StimEvent | Advice | SelftestResult | EmgFrame


class EventType(Protocol):
    """An event class: parse(seq, body) reads the body with named fields."""

    def parse(self, seq: int, b: dict[str, Any]) -> Event: ...


# message type -> the class that reads its body (protocol.messages.parse lets no other type through)
EVENTS: dict[int, EventType] = {
    m.STATE_CHANGED: StateChanged,
    m.FAULT: FaultEvent,
    m.CUE: Cue,
    m.SUMMARY: SessionSummary,
    m.STIM: StimEvent,
    m.ADVICE: Advice,
    m.SELFTEST_RESULT: SelftestResult,
    m.EMG: EmgFrame,
}
