"""What the patient is cued to do, when: a session as a list of timed segments.

Built once at session start from the approved protocol's phases (or the
built-in demonstration); the session's running time only moves forward, so
a cursor makes each lookup O(1) on the board.
"""

from protocol.messages import CUE_CONTRACT, CUE_RELAX, CUE_REST

DEMO_DEFAULT_S = 120
DEMO_MIN_S = 10
DEMO_MAX_S = 3600
DEMO_BASELINE_S = 10
DEMO_CYCLE = ((CUE_CONTRACT, 5), (CUE_RELAX, 10))


class Timeline:
    def __init__(self):
        self.cues = []
        self.ends_ms = []  # cumulative end time of each segment
        self.phase_of = []  # protocol phase index of each segment
        self._i = 0

    def add(self, cue, seconds, phase):
        if seconds <= 0:
            return
        end = (self.ends_ms[-1] if self.ends_ms else 0) + seconds * 1000
        self.cues.append(cue)
        self.ends_ms.append(end)
        self.phase_of.append(phase)

    def total_ms(self):
        return self.ends_ms[-1] if self.ends_ms else 0

    def index(self, elapsed_ms):
        """The segment index at a running time (every loop pass: no tuple to allocate)."""
        n = len(self.ends_ms)
        while self._i < n - 1 and elapsed_ms >= self.ends_ms[self._i]:
            self._i += 1
        return self._i

    def at(self, elapsed_ms):
        """(segment index, cue, ms left in the segment) at a running time."""
        i = self.index(elapsed_ms)
        return i, self.cues[i], self.ends_ms[i] - elapsed_ms


def demo(seconds):
    t = Timeline()
    t.add(CUE_REST, min(DEMO_BASELINE_S, seconds), 0)
    left = seconds - DEMO_BASELINE_S
    while left > 0:
        for cue, s in DEMO_CYCLE:
            t.add(cue, min(s, left), 0)
            left -= s
            if left <= 0:
                break
    return t


def from_protocol(doc):
    """The cue schedule of a validated protocol document."""
    t = Timeline()
    for p, ph in enumerate(doc["phases"]):
        kind = ph["type"]
        if kind == "baseline":
            t.add(CUE_REST, ph["duration_s"], p)
        elif kind == "relaxation":
            t.add(CUE_RELAX, ph["duration_s"], p)
        elif kind == "mvc":
            for _ in range(ph["attempts"]):
                t.add(CUE_CONTRACT, ph["contraction_s"], p)
                t.add(CUE_REST, ph["rest_s"], p)
        elif kind == "work_rest":
            for _ in range(ph["repetitions"]):
                t.add(CUE_CONTRACT, ph["work_s"], p)
                t.add(CUE_REST, ph["rest_s"], p)
        elif kind == "glazer":
            # Glazer: pre-rest 60 s, 5 phasic (2 s), 5 tonic (10 s on/10 s off),
            # endurance 60 s, post-rest 60 s
            t.add(CUE_REST, 60, p)
            for _ in range(5):
                t.add(CUE_CONTRACT, 2, p)
                t.add(CUE_REST, ph["phasic_rest_s"], p)
            for _ in range(5):
                t.add(CUE_CONTRACT, 10, p)
                t.add(CUE_REST, 10, p)
            t.add(CUE_CONTRACT, 60, p)
            t.add(CUE_REST, 60, p)
        else:
            # ETS and stimulation: the patient rests between her own attempts;
            # their stimulation runs in the pulse engine, not in the cues
            t.add(CUE_REST, ph["duration_s"], p)
    return t
