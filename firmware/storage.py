"""Small persistent records: CBOR with a CRC-32, replaced atomically.

The HAL replaces a blob atomically (old or new after a power cut); the CRC
catches what atomicity cannot, such as a worn or half-erased flash page.
Writing is refused while the output is enabled: on an RP2040 a flash write
stops every interrupt, the e-stop's included.
"""

from protocol import record
from protocol.errors import BUSY, ProtocolError

FAULT_RECORD = "fault"
# protocol, anti-rollback counter, session counter and the open-session marker, together
THERAPY_RECORD = "therapy"
KEYS_RECORD = "keys"  # trusted clinician public keys: {kid: public key}, written by provisioning
AUDIT_RECORD = "audit"
POLICY_RECORD = "policy"  # device policy limits, written by provisioning


class WriteBudget:
    """Flash writes a host can ask for at will: a burst, then one per refill_ms."""

    def __init__(self, burst, refill_ms):
        self._burst = burst
        self._refill_ms = refill_ms
        self._credit = burst
        self._since_ms = 0

    def take(self, now_ms):
        """0 if a write may happen now (and count it), else the ms to wait."""
        gained = (now_ms - self._since_ms) // self._refill_ms
        if gained:
            self._credit = min(self._burst, self._credit + gained)
            self._since_ms += gained * self._refill_ms
        if self._credit < 1:
            return self._since_ms + self._refill_ms - now_ms
        if self._credit == self._burst:
            self._since_ms = now_ms  # a full budget starts refilling from its first use
        self._credit -= 1
        return 0


class Store:
    def __init__(self, hal, safety):
        self._hal = hal
        self._safety = safety
        self.corrupt = 0  # records found damaged since boot

    def load(self, name):
        """The record, or None if absent or damaged (damage is counted)."""
        blob = self._hal.fs_read(name)
        if blob is None:
            return None
        try:
            return record.unpack(blob)
        except ProtocolError:
            self.corrupt += 1
            return None

    def save(self, name, obj):
        if self._safety.output_on():
            raise ProtocolError(BUSY, "no storage writes while the output is on")
        self._hal.fs_write(name, record.pack(obj))

    def remove(self, name):
        if self._safety.output_on():
            raise ProtocolError(BUSY, "no storage writes while the output is on")
        self._hal.fs_remove(name)
