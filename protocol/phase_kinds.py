"""Which protocol phases stimulate: the one rule of protocol/therapy.py every session needs.

The device loads the full rules only to validate a protocol and drops them
after (firmware/therapy_store.py); the session reads this much of them.
"""

STIM_KINDS = ("stimulation", "ets")


def uses_stimulation(doc):
    for ph in doc.get("phases", ()):
        if isinstance(ph, dict) and ph.get("type") in STIM_KINDS:
            return True
    return False
