"""The stimulation output stage: its enable line and the tissue load it drives.

Every change of the enable line is kept with its simulated time, so tests
measure how fast a stop reaches the output. The load is the electrode-tissue
impedance, modelled as a resistor: a constant-current source delivers its set
current only while the voltage it needs stays under the compliance voltage,
which is how an open electrode (a huge load) shows up in the current sense.
The pulse engine that uses it arrives with stimulation.
"""

import math
from collections import deque

COMPLIANCE_V = 60.0  # 100 mA into 600 ohm
DEFAULT_LOAD_OHMS = 1000.0  # an intravaginal probe on mucosa: a few hundred ohm to ~1 kohm
HISTORY = 10000


class OutputStage:
    def __init__(self, hw_max_ua):
        self.hw_max_ua = hw_max_ua
        self.enabled = False
        self.changes = deque(maxlen=HISTORY)  # (t_us, on)
        self.load_ohms = DEFAULT_LOAD_OHMS

    def set_enabled(self, on, t_us):
        on = bool(on)
        if on != self.enabled:
            self.enabled = on
            self.changes.append((t_us, on))

    def set_load(self, ohms):
        ohms = float(ohms)
        if not math.isfinite(ohms) or ohms <= 0:
            raise ValueError(f"load must be a positive number of ohms, not {ohms!r}")
        self.load_ohms = ohms

    def current_ua(self, set_ua):
        """Current through the load for a set current: 0 when disabled, capped by hardware and compliance."""
        if not self.enabled:
            return 0
        compliance_ua = COMPLIANCE_V / self.load_ohms * 1e6
        return int(min(set_ua, self.hw_max_ua, compliance_ua))
