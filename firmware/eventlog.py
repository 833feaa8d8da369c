"""A bounded in-RAM log of what the device did and refused.

Preallocated rings of small integers: adding an entry allocates nothing, so
it is safe on every path, including right after a fault.
"""

SIZE = 64


class EventLog:
    BOOT = 0
    TRANSITION = 1  # a = from state, b = to state
    REFUSED = 2  # a = state, b = refused session event
    FAULT = 3  # a = fault cause, b = latched (1/0)
    LINK_ERROR = 4  # a = protocol error code, b = message type
    CLEARED = 5  # a = fault that was cleared
    ADVICE = 6  # a = ADVICE_* (the device advised ending the session)
    LEVEL_DROPPED = 7  # a = stimulation state: the host that set the level fell silent

    def __init__(self):
        self.time_ms = [0] * SIZE
        self.kind = [0] * SIZE
        self.a = [0] * SIZE
        self.b = [0] * SIZE
        self.count = 0  # entries ever added; the ring holds the last SIZE

    def add(self, time_ms, kind, a, b):
        i = self.count % SIZE
        self.time_ms[i] = time_ms
        self.kind[i] = kind
        self.a[i] = a
        self.b[i] = b
        self.count += 1

    def last(self, n):
        """The newest n entries, oldest first, as (time_ms, kind, a, b)."""
        n = min(n, self.count, SIZE)
        out = []
        for j in range(self.count - n, self.count):
            i = j % SIZE
            out.append((self.time_ms[i], self.kind[i], self.a[i], self.b[i]))
        return out
