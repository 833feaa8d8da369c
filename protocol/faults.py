"""Fault causes, shared so the host can name what the device latched.

Every fault ends in the safe state (output disabled, amplitude zero). Faults
marked latched here stay until an explicit clear and survive a reset.
"""

ESTOP = 1  # the patient's emergency stop (hardware input)
HOST_ESTOP = 2  # emergency stop requested over the link
EXCEPTION = 3  # an exception escaped a firmware task
WATCHDOG = 4  # the board was reset by its watchdog
HEARTBEAT_LOST = 5  # host-driven session, host silent
MEMORY = 6  # MemoryError
STORAGE = 7  # persistent storage unreadable or failed to write
EMG_STALLED = 8  # front end stopped delivering samples
BROWNOUT = 9  # supply dropped; boot found an unclean shutdown
OVERCURRENT = 10  # measured current above the commanded one beyond tolerance
CURRENT_MISMATCH = 11  # measured current below the commanded one, with the electrode voltage in range
OPEN_ELECTRODE = 12  # impedance too high or electrode voltage near compliance
CHARGE_IMBALANCE = 13  # the two phases of a pulse carried different currents
PULSE_STALLED = 14  # the pulse generator stopped producing pulses
ELECTRODE_SHORT = 15  # impedance too low: the electrodes touch, or the lead is shorted
OUTPUT_LOST = 16  # the output dropped by itself (dynamic enable lapsed: the loop ran late)

NAMES = {
    ESTOP: "ESTOP",
    HOST_ESTOP: "HOST_ESTOP",
    EXCEPTION: "EXCEPTION",
    WATCHDOG: "WATCHDOG",
    HEARTBEAT_LOST: "HEARTBEAT_LOST",
    MEMORY: "MEMORY",
    STORAGE: "STORAGE",
    EMG_STALLED: "EMG_STALLED",
    BROWNOUT: "BROWNOUT",
    OVERCURRENT: "OVERCURRENT",
    CURRENT_MISMATCH: "CURRENT_MISMATCH",
    OPEN_ELECTRODE: "OPEN_ELECTRODE",
    CHARGE_IMBALANCE: "CHARGE_IMBALANCE",
    PULSE_STALLED: "PULSE_STALLED",
    ELECTRODE_SHORT: "ELECTRODE_SHORT",
    OUTPUT_LOST: "OUTPUT_LOST",
}

# causes that need an explicit clear; the others end the session but leave
# the device ready for a new one
LATCHED = (
    ESTOP,
    HOST_ESTOP,
    EXCEPTION,
    WATCHDOG,
    MEMORY,
    STORAGE,
    BROWNOUT,
    OVERCURRENT,
    CURRENT_MISMATCH,
    OPEN_ELECTRODE,
    CHARGE_IMBALANCE,
    PULSE_STALLED,
    ELECTRODE_SHORT,
    OUTPUT_LOST,
)


def name(code):
    return NAMES.get(code, "UNKNOWN_FAULT")
