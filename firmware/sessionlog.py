"""The compliance log: one entry per session practised, the last 256 or more.

Entries live in SEGMENTS blobs of PER_SEGMENT entries each; entry n goes to
segment (n // PER_SEGMENT) % SEGMENTS. Each blob is replaced atomically by
the HAL and carries a CRC (protocol/record.py), so a power cut loses at most
the entry being written and a damaged blob costs only its own entries: the
log is read around it. Starting a segment overwrites the oldest one, so the
log always holds at least (SEGMENTS - 1) * PER_SEGMENT + 1 = 257 entries
once full. Written only after a session, with the output off.

An entry is a map of LOG_* keys (protocol/messages.py) to integers, the
protocol id (text) and the list of faults.
"""

from protocol import messages as m

SEGMENTS = 17
PER_SEGMENT = 16
MAX_FAULTS = 4
_NAME = "log%d"


class SessionLog:
    def __init__(self, store):
        self._store = store
        self.next_seq = 0  # the number the next entry gets
        self.damaged = 0  # segments found unreadable at boot
        self._seg = -1  # the segment cached in _entries
        self._entries = []

    def load(self):
        """Find where the log continues; damaged segments are counted, not fatal."""
        top = -1
        for i in range(SEGMENTS):
            before = self._store.corrupt
            seg = self._store.load(_NAME % i)
            if self._store.corrupt != before or (seg is not None and not isinstance(seg, list)):
                self.damaged += 1
                continue
            for e in seg or ():
                if isinstance(e, dict) and m.is_int(e.get(m.LOG_SEQ)) and e[m.LOG_SEQ] > top:
                    top = e[m.LOG_SEQ]
        self.next_seq = top + 1

    def add(self, entry):
        """Store a new entry (its LOG_SEQ is assigned here); returns the sequence number."""
        seq = self.next_seq
        entry[m.LOG_SEQ] = seq
        seg = (seq // PER_SEGMENT) % SEGMENTS
        entries = self._segment(seg) if seq % PER_SEGMENT else []
        # a segment being reused holds entries of a lap ago: they go
        kept = [e for e in entries if e[m.LOG_SEQ] // PER_SEGMENT == seq // PER_SEGMENT]
        kept.append(entry)
        self._store.save(_NAME % seg, kept)
        self._seg = seg
        self._entries = kept
        self.next_seq = seq + 1
        return seq

    def get(self, seq):
        for e in self._segment((seq // PER_SEGMENT) % SEGMENTS):
            if e[m.LOG_SEQ] == seq:
                return e
        return None

    def update(self, seq, key, value):
        """Set one field of a stored entry (the patient's rating); False if the entry is gone."""
        seg = (seq // PER_SEGMENT) % SEGMENTS
        entries = self._segment(seg)
        for e in entries:
            if e[m.LOG_SEQ] == seq:
                e[key] = value
                self._store.save(_NAME % seg, entries)
                return True
        return False

    def oldest(self):
        """The lowest sequence number the log may still hold."""
        if self.next_seq == 0:
            return 0
        first = ((self.next_seq - 1) // PER_SEGMENT - (SEGMENTS - 1)) * PER_SEGMENT
        return first if first > 0 else 0

    def read(self, from_seq, limit):
        """Up to limit entries from from_seq on, in order; missing (damaged) ones are skipped."""
        out = []  # type: list[dict]
        seq = from_seq if from_seq > self.oldest() else self.oldest()
        while seq < self.next_seq and len(out) < limit:
            e = self.get(seq)
            if e is not None:
                out.append(e)
            seq += 1
        return out, seq

    def _segment(self, seg):
        if seg != self._seg:
            got = self._store.load(_NAME % seg)
            self._entries = got if isinstance(got, list) else []
            self._seg = seg
        return self._entries
