"""The approved protocol on the device: upload, verification, storage, budget.

The signed file, the anti-rollback counter and the session counter live in
ONE record, so a power cut leaves the old state or the new one, never a mix.
A refused upload changes nothing but the audit log. The device re-validates
every protocol against the shared rules and its own limits even when the
signature is good: a signature says who approved it, not that it is safe.

Interval between sessions: the device has no trusted clock, so it counts its
own uptime, carried across boots in the record; time switched off does not
count, which errs towards waiting longer.
"""

import hashlib

from firmware.storage import AUDIT_RECORD, KEYS_RECORD, THERAPY_RECORD
from protocol import codec
from protocol import messages as m
from protocol.errors import (
    BUDGET_EXHAUSTED,
    INTERVAL_NOT_ELAPSED,
    NO_PROTOCOL,
    NO_UPLOAD,
    PROTOCOL_INVALID,
    ROLLBACK,
    SEQUENCE_JUMP,
    UNKNOWN_KID,
    UPLOAD_HASH,
    UPLOAD_OFFSET,
    UPLOAD_TOO_LARGE,
    WRONG_DEVICE,
    ProtocolError,
)

AUDIT_SIZE = 32
# Refusals are what a hostile host can cause at will: they are audited in
# RAM at once (identical ones in a row coalesce into one entry with a count
# as its fifth item) and reach the flash at most once per AUDIT_FLUSH_MS.
AUDIT_FLUSH_MS = 60000
# the encoded summary's ceiling: with it, INFO (the largest reply that
# carries it) fits one frame whatever else it reports (tests/dual prove it)
SUMMARY_MAX_BYTES = 250
AUDIT_ACCEPTED = 1  # code 0, sequence of the new protocol
AUDIT_REFUSED = 2  # code = the refusal
AUDIT_REMOVED = 3
AUDIT_KEYS_CHANGED = 4  # code = number of trusted keys now
# code = why (UNKNOWN_KID: signer no longer trusted; PROTOCOL_INVALID: outside the limits now)
AUDIT_WITHDRAWN = 5


# Modules loaded for one call and dropped after: left loaded after an approval, the
# verifier's pure-Python Ed25519 (~16 KB on the RP2040) and the protocol rules (~17 KB)
# held a heap that sessions need more (on the emulated Pico the session after an
# approval met a MemoryError). Loading them again is small beside a verify's seconds.
_VERIFIER = ("protocol.cose", "protocol.ed25519", "protocol.sha512")
_RULES = ("protocol.therapy", "protocol.electrode")


def _for_this_call(names, fn):
    """fn(), then the modules of names it loaded are gone again (sys.modules and the package)."""
    import sys

    import protocol

    loaded = [name for name in names if name in sys.modules]
    try:
        return fn()
    finally:
        for name in names:
            if name not in loaded and name in sys.modules:
                del sys.modules[name]
                attr = name.split(".")[1]
                if hasattr(protocol, attr):
                    delattr(protocol, attr)  # the package holds its submodules too


def _verify(signed, keys, checkpoint):
    def verify():
        from protocol import cose

        return cose.verify_sign1(signed, keys, checkpoint=checkpoint)

    return _for_this_call(_VERIFIER, verify)


def _check(doc, limits):
    """The rules' problems with doc, and the largest sequence step they allow."""

    def check():
        from protocol import therapy

        return therapy.validate(doc, limits), therapy.SEQUENCE_STEP_MAX

    return _for_this_call(_RULES, check)


class TherapyStore:
    def __init__(self, store):
        self._store = store
        self.cose = None  # the signed bytes exactly as received
        self.doc = None
        self.kid = b""
        self.digest = b""
        self.max_seq = 0  # highest sequence ever accepted (anti-rollback)
        self.used = 0  # sessions started under the current protocol
        self.base_ms = 0  # uptime of earlier boots
        self.last_start_ms = -1  # total uptime at the last session start
        self.open = None  # the marker of a session under way (a map of LOG_* keys), or None
        self.keys = {}
        self.audit = []
        self._keys_digest = b""
        self._keys_changed = False
        self._audit_saved_ms = -1  # total uptime of the last audit write of a refusal, -1: none yet
        self._audit_dirty = False  # refusals in RAM not yet on flash
        self._up = None
        self._up_size = 0
        self._up_digest = b""
        self._up_n = 0

    # -- boot -----------------------------------------------------------

    def load(self):
        """Read the stored state; False if any record is damaged (stay safe)."""
        before = self._store.corrupt
        rec = self._store.load(THERAPY_RECORD)
        keys = self._store.load(KEYS_RECORD)
        audit = self._store.load(AUDIT_RECORD)
        if self._store.corrupt != before:
            return False
        if isinstance(audit, list):
            self.audit = audit
        if rec is not None:
            try:
                self.max_seq = rec["max_seq"]
                self.used = rec["used"]
                self.base_ms = rec["base_ms"]
                self.last_start_ms = rec["last_ms"]
                self._keys_digest = rec["keys"]
                self.open = rec.get("open")
                if rec["cose"] is not None:
                    self._install(rec["cose"])
            except (KeyError, TypeError, IndexError, AttributeError, ProtocolError):
                return False
        return self._load_keys(keys)

    def recheck(self, limits):
        """Trust decided again at boot, after provisioning may have changed keys or policy.

        A protocol whose signer is no longer trusted, or that the device's
        limits no longer allow, is not installed: it stays on flash (trusting
        its key again restores it) but runs nothing. Audited when the key set
        changed, so a reboot loop does not write flash.
        """
        if self.doc is None:
            return
        why = 0
        if self.kid not in self.keys:
            why = UNKNOWN_KID
        elif _check(self.doc, limits)[0]:
            why = PROTOCOL_INVALID
        if why:
            self._audit(self.base_ms, AUDIT_WITHDRAWN, why, self.doc["sequence"])
            if self._keys_changed:
                self._save_audit()
            self.doc = None
            self.kid = b""
            self.digest = b""

    def _load_keys(self, keys):
        """Trust the provisioned keys; a changed key set is audited once."""
        trusted = {}
        if keys is not None:
            if not isinstance(keys, dict):
                return False
            for kid in keys:
                pub = keys[kid]
                # an entry whose kid does not match its key is ignored, not trusted
                if isinstance(pub, bytes) and len(pub) == 32 and hashlib.sha256(pub).digest()[:8] == kid:
                    trusted[kid] = pub
        self.keys = trusted
        digest = hashlib.sha256(codec.dumps(trusted)).digest()
        self._keys_changed = digest != self._keys_digest
        if self._keys_changed:
            self._keys_digest = digest
            self._save(0)
            self._audit(self.base_ms, AUDIT_KEYS_CHANGED, len(trusted), 0)
            self._save_audit()
        return True

    def _install(self, signed):
        tag = codec.loads(signed)
        self.doc = codec.loads(tag.value[2])
        self.kid = codec.loads(tag.value[0])[4]
        self.cose = signed
        self.digest = hashlib.sha256(signed).digest()

    # -- upload ---------------------------------------------------------

    def begin(self, size, digest):
        """Start an upload, or resume the same one; return the offset to send from."""
        if size < 1 or size > m.UPLOAD_MAX:
            raise ProtocolError(UPLOAD_TOO_LARGE, "a protocol is 1..%d bytes" % m.UPLOAD_MAX)
        if self._up is not None and size == self._up_size and digest == self._up_digest:
            return self._up_n
        self._up = bytearray(size)
        self._up_size = size
        self._up_digest = digest
        self._up_n = 0
        return 0

    def chunk(self, offset, data):
        if self._up is None:
            raise ProtocolError(NO_UPLOAD, "begin an upload first")
        if offset != self._up_n:
            raise ProtocolError(UPLOAD_OFFSET, "expected offset %d" % self._up_n)
        end = offset + len(data)
        if end > self._up_size:
            raise ProtocolError(UPLOAD_TOO_LARGE, "more bytes than announced")
        self._up[offset:end] = data
        self._up_n = end
        return end

    def commit(self, now_ms, serial, limits, checkpoint=None):
        """Verify, re-validate and store the upload; return its summary or raise."""
        if self._up is None or self._up_n != self._up_size:
            raise ProtocolError(NO_UPLOAD, "upload incomplete")
        signed = bytes(self._up)
        self._up = None  # one verdict per upload: a refused file is sent again
        seq = 0
        try:
            if hashlib.sha256(signed).digest() != self._up_digest:
                raise ProtocolError(UPLOAD_HASH, "the file changed in transit")
            kid, payload = _verify(signed, self.keys, checkpoint)
            doc = codec.loads(payload)
            problems, step_max = _check(doc, limits)
            if problems:
                raise ProtocolError(PROTOCOL_INVALID, problems[0][1])
            seq = doc["sequence"]
            if doc["device"] != serial:
                raise ProtocolError(WRONG_DEVICE, "signed for device %s" % doc["device"])
            if seq <= self.max_seq:
                raise ProtocolError(ROLLBACK, "sequence %d is not above %d" % (seq, self.max_seq))
            summary = _summary(doc, 0, hashlib.sha256(signed).digest(), kid)
            if len(codec.dumps(summary)) > SUMMARY_MAX_BYTES:
                # never store what the device could not report in one frame
                raise ProtocolError(PROTOCOL_INVALID, "its texts are too long to report")
            if seq > self.max_seq + step_max:
                raise ProtocolError(
                    SEQUENCE_JUMP, "sequence %d is more than %d above %d" % (seq, step_max, self.max_seq)
                )
        except ProtocolError as e:
            t = self.total_ms(now_ms)
            self._audit(t, AUDIT_REFUSED, e.code, seq)
            if self._audit_saved_ms < 0 or t - self._audit_saved_ms >= AUDIT_FLUSH_MS:
                self._save_audit(t)
            else:
                self._audit_dirty = True  # written with the next audit write or session start
            raise
        prev = (self.cose, self.max_seq, self.used, self.last_start_ms)
        self.cose, self.max_seq, self.used, self.last_start_ms = signed, seq, 0, -1
        try:
            self._save(now_ms)
        except Exception:
            # not stored: the device keeps what it had
            self.cose, self.max_seq, self.used, self.last_start_ms = prev
            raise
        self._install(signed)
        self._audit(self.total_ms(now_ms), AUDIT_ACCEPTED, 0, seq)
        self._save_audit(self.total_ms(now_ms))
        return self.summary()

    def remove(self, now_ms):
        if self.cose is None:
            raise ProtocolError(NO_PROTOCOL, "no protocol stored")
        self.cose = None
        self.doc = None
        self.kid = b""
        self.digest = b""
        self.used = 0
        self._save(now_ms)
        self._audit(self.total_ms(now_ms), AUDIT_REMOVED, 0, self.max_seq)
        self._save_audit(self.total_ms(now_ms))

    # -- sessions -------------------------------------------------------

    def total_ms(self, now_ms):
        return self.base_ms + now_ms

    def check_start(self, now_ms):
        """Raise unless the budget allows a session now."""
        if self.doc is None:
            raise ProtocolError(NO_PROTOCOL, "no protocol stored")
        budget = self.doc["budget"]
        if self.used >= budget["sessions"]:
            raise ProtocolError(BUDGET_EXHAUSTED, "all %d sessions used" % budget["sessions"])
        if self.last_start_ms >= 0:
            wait = self.last_start_ms + budget["min_interval_s"] * 1000 - self.total_ms(now_ms)
            if wait > 0:
                raise ProtocolError(
                    INTERVAL_NOT_ELAPSED, "next session in %d min" % ((wait + 59999) // 60000)
                )

    def mark_open(self, now_ms, marker, counted):
        """Record a session start (the output is off: the device is ARMED).

        The session count and the marker a power cut leaves for the
        compliance log are one record, written once: charged and logged, or
        neither. counted: the session uses the approved protocol's budget.
        """
        prev = (self.used, self.last_start_ms)
        if counted:
            self.used += 1
            self.last_start_ms = self.total_ms(now_ms)
        self.open = marker
        try:
            self._save(now_ms)
        except Exception:
            self.used, self.last_start_ms = prev
            self.open = None
            raise
        if self._audit_dirty:
            self._save_audit(self.total_ms(now_ms))

    def close_open(self, now_ms, refund=False):
        """The session's log entry is stored: drop the marker (and carry the uptime over).

        refund: the session gives its count back (docs/security.md says when).
        """
        self.open = None
        if refund and self.used > 0:
            self.used -= 1
        self._save(now_ms)

    def checkpoint_uptime(self, now_ms):
        """Carry this boot's uptime over to the next (at session ends)."""
        self._save(now_ms)

    def summary(self):
        if self.doc is None:
            return None
        return _summary(self.doc, self.used, self.digest, self.kid)

    # -- persistence ----------------------------------------------------

    def _audit(self, t_ms, event, code, seq):
        last = self.audit[-1] if self.audit else None
        if event == AUDIT_REFUSED and last is not None and last[1:4] == [event, code, seq]:
            if len(last) == 4:
                last.append(1)
            last[4] += 1
            return
        self.audit.append([t_ms, event, code, seq])
        if len(self.audit) > AUDIT_SIZE:
            self.audit = self.audit[-AUDIT_SIZE:]

    def _save(self, now_ms):
        # base_ms on flash includes this boot's uptime so far; in RAM it stays
        # the uptime of earlier boots, so total_ms() does not count twice
        rec = {
            "cose": self.cose,
            "max_seq": self.max_seq,
            "used": self.used,
            "base_ms": self.base_ms + now_ms,
            "last_ms": self.last_start_ms,
            "keys": self._keys_digest,
            "open": self.open,
        }
        self._store.save(THERAPY_RECORD, rec)

    def _save_audit(self, t_ms=-1):
        self._store.save(AUDIT_RECORD, self.audit)
        self._audit_saved_ms = t_ms
        self._audit_dirty = False


def _summary(d, used, digest, kid):
    """What INFO, PROTOCOL_SHOW and the commit reply say about a protocol."""
    return {
        m.PINFO_ID: d["id"],
        m.PINFO_SEQUENCE: d["sequence"],
        m.PINFO_APPROVED_BY: d["approved_by"],
        m.PINFO_PATIENT: d["patient"],
        m.PINFO_PROBE: d["probe"],
        m.PINFO_SESSIONS: d["budget"]["sessions"],
        m.PINFO_USED: used,
        m.PINFO_HASH: digest,
        m.PINFO_APPROVED_ON: d["approved_on"],
        m.PINFO_MAX_SESSION_S: d["budget"]["max_session_s"],
        m.PINFO_MIN_INTERVAL_S: d["budget"]["min_interval_s"],
        m.PINFO_KID: kid,
    }
