"""When a host-driven session's keep-alive PING is due.

The client asks from its read path, not a thread: a host that stops reading
must also stop the heartbeat, so the device ends the session. A PING is due
when any of three clocks says a third of the device's heartbeat has passed
since the host last sent anything (two heartbeats may be late before the
device gives up): the wall clock; the device time seen in messages
(timestamps, EMG sample indices); and the time reads waited in vain, which
a port may have let the device run. The in-process simulator runs faster
than real time while the host waits for bytes, so the wall clock alone
would be late. A device paced faster than real time but not in lockstep
(`tonus sim --speed 10`) shows its time only in what it sends: keep the EMG
stream on there.
"""

import time

_TRACKED = 32  # heartbeat PINGs whose answers are still recognised


class Heartbeat:
    def __init__(self) -> None:
        self.period_ms = 0  # the session's heartbeat; 0 while nothing is kept alive
        self.emg_rate_hz = 0  # turns EMG sample indices into device time
        self._pings: dict[int, None] = {}  # seq of a heartbeat PING -> None, oldest first
        # device time: newest timestamp seen, and the EMG sample count
        self._dev_ms: int | None = None
        self._emg_end: int | None = None
        # the same at the host's last send
        self._tx_wall = time.monotonic()
        self._tx_dev_ms: int | None = None
        self._tx_emg_end: int | None = None
        self._idle_since_tx = 0.0  # seconds reads waited without data since the last send

    def sent(self) -> None:
        """The host sent something: every clock starts again."""
        self._tx_wall = time.monotonic()
        self._tx_dev_ms = self._dev_ms
        self._tx_emg_end = self._emg_end
        self._idle_since_tx = 0.0

    def waited(self, seconds: float) -> None:
        """A read waited this long and got nothing."""
        self._idle_since_tx += seconds

    def saw_time(self, ms: int) -> None:
        if self._tx_dev_ms is None:
            self._tx_dev_ms = ms  # device time counts from the first timestamp seen
        if self._dev_ms is None or ms > self._dev_ms:
            self._dev_ms = ms

    def saw_samples(self, first_index: int, end_index: int) -> None:
        if self._tx_emg_end is None:
            self._tx_emg_end = first_index  # device time counts from the first frame seen
        self._emg_end = end_index

    def due(self) -> bool:
        if not self.period_ms:
            return False
        wall_ms = (time.monotonic() - self._tx_wall) * 1000
        return max(wall_ms, self._idle_since_tx * 1000, self._device_ms_since_tx()) >= self.period_ms / 3

    def track(self, seq: int) -> None:
        """A heartbeat PING went out with this seq."""
        self._pings[seq] = None
        if len(self._pings) > _TRACKED:
            del self._pings[next(iter(self._pings))]

    def answered(self, seq: int) -> bool:
        """True (once) if seq is a heartbeat PING's: its answer is not a stale reply."""
        return self._pings.pop(seq, False) is None

    def _device_ms_since_tx(self) -> int:
        since = 0
        if self._dev_ms is not None and self._tx_dev_ms is not None:
            since = self._dev_ms - self._tx_dev_ms
        if self._emg_end is not None and self._tx_emg_end is not None and self.emg_rate_hz:
            since = max(since, (self._emg_end - self._tx_emg_end) * 1000 // self.emg_rate_hz)
        return since
