"""The built-in demonstration protocol: biofeedback cues, no stimulation.

Until a clinician-signed protocol is loaded, this is the only session the
device runs. It alternates rest and contraction cues the way a down-training
session does: a baseline rest, then short contractions each followed by a
longer relaxation.
"""

from protocol.messages import CUE_CONTRACT, CUE_RELAX, CUE_REST

DEFAULT_S = 120
MIN_S = 10
MAX_S = 3600
BASELINE_MS = 10000
# (cue, duration) repeated after the baseline until the session ends
CYCLE = ((CUE_CONTRACT, 5000), (CUE_RELAX, 10000))


def phase_at(elapsed_ms):
    """(phase index, cue, ms left in the phase) at a running time."""
    if elapsed_ms < BASELINE_MS:
        return 0, CUE_REST, BASELINE_MS - elapsed_ms
    t = elapsed_ms - BASELINE_MS
    period = 0
    for _cue, dur in CYCLE:
        period += dur
    n = t // period
    t -= n * period
    index = 1 + n * len(CYCLE)
    for cue, dur in CYCLE:
        if t < dur:
            return index, cue, dur - t
        t -= dur
        index += 1
    return index, CYCLE[0][0], CYCLE[0][1]
