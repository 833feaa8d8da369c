"""The message catalogue of the link; `link.cddl` is its normative form.

Every payload is one CBOR array  [kind, seq, type, body]:
- kind: REQUEST (host -> device), RESPONSE or ERROR (device -> host, `seq`
  echoes the request), EVENT or STREAM (device-initiated; `seq` counts per
  kind so the host sees gaps).
- type: a message type from CATALOGUE; a response carries its request's type.
- body: a map with small unsigned integer keys, described by the catalogue.
Quantities are integers in fixed units named in the field names (_ua: µA,
_us: µs, _ms: ms, _dv: 0.1 µV); no floats.

The first exchange is HELLO, which negotiates the protocol version; the
device refuses every other request until it has happened.
"""

from protocol.codec import is_int
from protocol.errors import (
    BAD_ENVELOPE,
    BAD_FIELD,
    UNKNOWN_TYPE,
    VERSION_UNSUPPORTED,
    ProtocolError,
)

PROTOCOL_VERSION = 1
MIN_PROTOCOL_VERSION = 1

REQUEST = 0
RESPONSE = 1
ERROR = 2
EVENT = 3
STREAM = 4
KIND_NAMES = ("REQUEST", "RESPONSE", "ERROR", "EVENT", "STREAM")
SEQ_MODULO = 0x10000

# requests (each answered by a RESPONSE of the same type, or an ERROR)
HELLO = 1
INFO = 2
PING = 3
SESSION_START = 4
SESSION_PAUSE = 5
SESSION_RESUME = 6
SESSION_STOP = 7
ESTOP = 8
FAULT_CLEAR = 9
STREAM_CONTROL = 10
STIM_LEVEL = 11  # set the stimulation level within the approved range
LOG_READ = 12  # entries of the compliance log
SESSION_RATE = 13  # the patient's pain/comfort score for a logged session
SELFTEST = 14  # run the board's bring-up checks; SELFTEST_RESULT follows
PROTOCOL_BEGIN = 16  # start or resume an upload of a signed protocol
PROTOCOL_CHUNK = 17
PROTOCOL_COMMIT = 18  # verify, re-validate and store it
PROTOCOL_SHOW = 19
PROTOCOL_REMOVE = 20
MAINTENANCE_ENTER = 21  # output off, then reset into the maintenance boot (tonus flash)
# events
STATE_CHANGED = 64
FAULT = 65
CUE = 66
SUMMARY = 67  # a session ended: its scores (also kept in the device's log)
ADVICE = 68  # the device advises ending the session, and why
STIM = 69  # the stimulator changed state (check passed, burst, rest, level)
SELFTEST_RESULT = 70  # the bring-up checks are done: one result per check
# streams
EMG = 96

# device states; the firmware's transition table lives in firmware/session.py
IDLE = 0
ARMED = 1
RUNNING = 2
PAUSED = 3
DONE = 4
FAULT_STATE = 5
MAINTENANCE = 6
STATE_NAMES = ("IDLE", "ARMED", "RUNNING", "PAUSED", "DONE", "FAULT", "MAINTENANCE")

# why a state changed (STATE_CHANGED "reason")
REASON_BOOT = 0
REASON_REQUEST = 1  # a host request
REASON_BUTTON = 2  # the patient's button on the device
REASON_CHECKS_PASSED = 3  # pre-session checks done, session runs
REASON_FINISHED = 4  # the protocol's time is up
REASON_FAULT = 5
REASON_CLEARED = 6
REASON_PAUSE_TIMEOUT = 7  # paused too long: the session ends
REASON_HEARTBEAT_LOST = 8  # host-driven session, host silent
REASON_CHECKS_FAILED = 9  # pre-session checks did not pass in time
REASON_INTERRUPTED = 10  # a reset or a power loss cut the session (found at the next boot)
REASON_NAMES = (
    "BOOT",
    "REQUEST",
    "BUTTON",
    "CHECKS_PASSED",
    "FINISHED",
    "FAULT",
    "CLEARED",
    "PAUSE_TIMEOUT",
    "HEARTBEAT_LOST",
    "CHECKS_FAILED",
    "INTERRUPTED",
)

# patient cues (CUE "cue"): what the patient is asked to do now
CUE_REST = 0
CUE_CONTRACT = 1
CUE_RELAX = 2
CUE_NAMES = ("REST", "CONTRACT", "RELAX")

# INFO "limits" keys
LIMIT_HW_MAX_UA = 0  # board hardware current ceiling
LIMIT_POLICY_MAX_UA = 1  # provisioned device policy
LIMIT_MAX_SESSION_S = 2  # longest session the device runs
LIMIT_EMG_RATE_HZ = 3
# INFO "session" keys
SESSION_ELAPSED_MS = 0  # time RUNNING so far
SESSION_DURATION_MS = 1
SESSION_PHASE = 2
SESSION_CUE = 3
SESSION_HOST_DRIVEN = 4
SESSION_PAUSED_MS = 5
# INFO "link" keys: counters since boot
LINK_RX_FRAMES = 0
LINK_RX_DROPPED = 1  # frames that failed COBS/CRC/size
LINK_RX_REFUSED = 2  # frames answered with an error
LINK_TX_FRAMES = 3
LINK_TX_DROPPED = 4  # frames not sent because the host was not reading
# protocol summary keys (INFO "protocol", PROTOCOL_SHOW/COMMIT "protocol")
PINFO_ID = 0
PINFO_SEQUENCE = 1
PINFO_APPROVED_BY = 2
PINFO_PATIENT = 3
PINFO_PROBE = 4
PINFO_SESSIONS = 5  # sessions the budget allows
PINFO_USED = 6  # sessions started under it
PINFO_HASH = 7  # SHA-256 of the signed file
PINFO_APPROVED_ON = 8
PINFO_MAX_SESSION_S = 9
PINFO_MIN_INTERVAL_S = 10
PINFO_KID = 11
# upload sizes: a chunk plus its envelope fits one frame
# stimulator states (STIM "state")
STIM_OFF = 0
STIM_CHECK = 1  # impedance check at a low current before the phase
STIM_READY = 2  # ETS: armed, waiting for the patient's contraction; stimulation: before the first burst
STIM_RAMP_UP = 3
STIM_ON = 4
STIM_RAMP_DOWN = 5
STIM_REST = 6
STIM_NAMES = ("OFF", "CHECK", "READY", "RAMP_UP", "ON", "RAMP_DOWN", "REST")

# why the device advises ending a session (ADVICE "reason"; SUMMARY "advice")
ADVICE_TONE_RISING = 1  # the rest tone rose beyond the clinician's margin
ADVICE_PAUSED_TWICE = 2  # the patient paused twice
ADVICE_NAMES = ("NONE", "TONE_RISING", "PAUSED_TWICE")

# session summary (SUMMARY "summary"): envelopes in 0.1 µV, times in ms
SUM_TIME_MS = 0  # device uptime when the session ended
SUM_END_REASON = 1  # REASON_* of the end
SUM_ADVICE = 2  # ADVICE_* given during the session, 0 if none
SUM_RUN_MS = 3  # time practised (running, not paused)
SUM_MVC_DV = 4  # maximal voluntary contraction measured (best peak), 0 if none
SUM_BASELINE_DV = 5  # resting baseline measured, 0 if none
SUM_PHASES = 6  # per-phase scores, SC_* keys
SUM_TRIGGERS = 7  # ETS triggers
SUM_CHARGE_UC = 8  # stimulation charge delivered (first phases), µC
SUM_MAX_UA = 9  # largest stimulation amplitude commanded

SC_PHASE = 0  # protocol phase index
SC_KIND = 1  # 0 demonstration, 1 baseline, 2 relaxation, 3 work/rest, 4 MVC, 5 Glazer, 6 ETS, 7 stimulation
SC_PLANNED_MS = 2
SC_RUN_MS = 3  # practised, trusted or not
SC_UNTRUSTED_MS = 4  # lead-off, saturation or a gap
SC_REST_DV = 5  # mean envelope while resting or relaxing
SC_REST_CV = 6  # its instability: coefficient of variation, 1/1000
SC_WORK_DV = 7  # mean envelope while contracting
SC_PEAK_DV = 8  # mean of the contractions' peaks (Glazer: the phasic peak, mean of the 5 flicks)
SC_BEST_PEAK_DV = 9
SC_TARGET_DV = 10
SC_BELOW_MS = 11  # relaxation: time at or below target
SC_HOLDS = 12  # relaxation: stretches below target lasting the hold time
SC_LONGEST_HOLD_MS = 13
SC_REPS = 14  # work/rest
SC_REPS_HIT = 15  # repetitions that reached the target for 1 s
SC_G_PRE_DV = 16  # Glazer: pre-baseline rest mean
SC_G_PRE_CV = 17
SC_G_TONIC_DV = 18  # mean over the tonic contractions
SC_G_ENDURANCE_DV = 19
SC_G_POST_DV = 20
SC_G_POST_CV = 21

# compliance log entries (LOG_READ "entries")
LOG_SEQ = 0  # session number, counting every session ever logged
LOG_PROTOCOL = 1  # protocol id (text); absent for a demonstration
LOG_START_MS = 2  # device uptime at the start (carried across boots)
LOG_HOST_TIME_S = 3  # the host's Unix time at the start, when a host started it
LOG_RUN_MS = 4  # time practised
LOG_PLANNED_MS = 5
LOG_PHASES_DONE = 6  # phases practised to their end
LOG_PHASES = 7  # phases planned
LOG_REST_DV = 8  # mean rest tone (baseline and relaxation phases)
LOG_MVC_DV = 9
LOG_BELOW_MS = 10  # time at or below the relaxation target
LOG_TRIGGERS = 11  # ETS triggers
LOG_CHARGE_UC = 12  # stimulation charge delivered
LOG_MAX_UA = 13  # largest stimulation amplitude
LOG_FAULTS = 14  # fault codes during the session (list)
LOG_PAIN = 15  # the patient's pain/comfort score 0..10, once rated
LOG_END_REASON = 16  # REASON_*
LOG_ADVICE = 17  # ADVICE_*, 0 if none
PAIN_MAX = 10

UPLOAD_CHUNK = 384
UPLOAD_MAX = 8192
# self-test checks (SELFTEST_RESULT "checks": one UMAP per check, ST_* keys)
CHECK_FRONT_END = 1  # EMG samples over the window, against the nominal rate
CHECK_LEAD_OFF = 2  # % of blocks flagged lead-off: 100 with no probe, 0 with one
CHECK_CURRENT = 3  # first-phase current into the dummy load, µA
CHECK_WATCHDOG = 4  # least time left before the watchdog bites, ms
CHECK_STORAGE = 5  # records found damaged since boot, after a write/read/remove round trip
CHECK_NAMES = ("NONE", "FRONT_END", "LEAD_OFF", "CURRENT", "WATCHDOG", "STORAGE")
ST_CHECK = 0  # CHECK_*
ST_PASSED = 1  # 1 passed, 0 failed
ST_VALUE = 2  # what was measured, in the check's unit
ST_LOW = 3  # the passing range, inclusive
ST_HIGH = 4
ST_WHY = 5  # WHY_*: why it failed, or 0
ST_UA_2 = 6  # CURRENT: second-phase current, µA
ST_MV = 7  # CURRENT: voltage across the dummy load, mV
ST_MV_LOW = 8  # CURRENT: its passing range, from the first-phase current and the load
ST_MV_HIGH = 9
WHY_NONE = 0
WHY_OUT_OF_RANGE = 1  # the value is outside its range
WHY_NO_SAMPLES = 2  # the front end delivered no block to judge
WHY_UNEQUAL_PHASES = 3  # the two phases' currents differ beyond the tolerance
WHY_VOLTAGE = 4  # the load voltage does not match current x dummy load
WHY_NO_PULSES = 5  # the pulse engine produced too few pulses in time
WHY_NO_OUTPUT = 6  # the output could not be enabled, or dropped during the check
WHY_NO_DUMMY_LOAD = 7  # the board has no dummy load
WHY_NOT_ARMED = 8  # the watchdog is not running
WHY_WRITE = 9  # a storage write or remove failed
WHY_READ_BACK = 10  # the record read back differs, or survived its removal
WHY_EXCEPTION = 11  # the check raised: the device is now in its safe state
WHY_NAMES = (
    "",
    "OUT_OF_RANGE",
    "NO_SAMPLES",
    "UNEQUAL_PHASES",
    "VOLTAGE",
    "NO_PULSES",
    "NO_OUTPUT",
    "NO_DUMMY_LOAD",
    "NOT_ARMED",
    "WRITE",
    "READ_BACK",
    "EXCEPTION",
)

# INFO "fault" keys
FAULT_CODE = 0
FAULT_LATCHED = 1
FAULT_TIME_MS = 2
FAULT_COUNT = 3  # faults since the last clear
FAULT_WHERE = 4  # text: where the exception behind an EXCEPTION or MEMORY fault was raised

# field types
U8 = 0
U16 = 1
U32 = 2
U64 = 3
I32 = 4
BOOL = 5
BYTES = 6
TEXT = 7
UMAP = 8  # map of uint -> uint
MAP = 9  # map of uint -> any (structure given by a sub-table)
NULL_OR_MAP = 10
STATE = 11  # one of the device states above
SHA256 = 12  # bytes, exactly 32
CHUNK = 13  # bytes, 1..UPLOAD_CHUNK
UMAPS = 14  # list of UMAP, at most MAX_PHASES_LISTED
MAPS = 15  # list of maps with uint keys, at most MAX_LOG_READ
MAX_LOG_READ = 8
MAX_PHASES_LISTED = 16

_UMAX = {U8: 0xFF, U16: 0xFFFF, U32: 0xFFFFFFFF, U64: 0xFFFFFFFFFFFFFFFF, STATE: len(STATE_NAMES) - 1}
MAX_TEXT = 64

# (key, name, type, required)
_EMPTY = ()
_STATE = ((0, "state", STATE, True),)
_ERROR_BODY = ((0, "code", U16, True), (1, "detail", TEXT, False))

# type -> (name, kind of the initiating message, fields, response fields)
CATALOGUE = {
    HELLO: (
        "HELLO",
        REQUEST,
        ((0, "min_version", U16, True), (1, "max_version", U16, True)),
        (
            (0, "version", U16, True),
            (1, "firmware_version", TEXT, True),
            (2, "board", TEXT, True),
            (3, "serial", TEXT, True),
            (4, "max_payload", U16, True),
            (5, "firmware_hash", SHA256, False),  # of the image tonus flash deployed
        ),
    ),
    INFO: (
        "INFO",
        REQUEST,
        _EMPTY,
        (
            (0, "firmware_version", TEXT, True),
            (1, "board", TEXT, True),
            (2, "serial", TEXT, True),
            (3, "state", STATE, True),
            (4, "fault", NULL_OR_MAP, True),
            (5, "protocol", NULL_OR_MAP, True),
            (6, "limits", UMAP, True),
            (7, "uptime_ms", U64, True),
            (8, "estop_open", BOOL, True),
            (9, "session", NULL_OR_MAP, True),
            (10, "link", UMAP, True),
        ),
    ),
    PING: ("PING", REQUEST, _EMPTY, ((0, "uptime_ms", U64, True),)),
    SESSION_START: (
        "SESSION_START",
        REQUEST,
        (
            (0, "host_time_s", U64, False),
            (1, "demo_s", U16, False),  # length of the built-in demonstration
            (2, "heartbeat_ms", U16, False),  # host-driven: stop if silent this long
        ),
        _STATE,
    ),
    SESSION_PAUSE: ("SESSION_PAUSE", REQUEST, _EMPTY, _STATE),
    SESSION_RESUME: ("SESSION_RESUME", REQUEST, _EMPTY, _STATE),
    SESSION_STOP: ("SESSION_STOP", REQUEST, _EMPTY, _STATE),
    ESTOP: ("ESTOP", REQUEST, _EMPTY, _STATE),
    FAULT_CLEAR: ("FAULT_CLEAR", REQUEST, _EMPTY, _STATE),
    STREAM_CONTROL: ("STREAM_CONTROL", REQUEST, ((0, "enable", BOOL, True),), _EMPTY),
    STIM_LEVEL: ("STIM_LEVEL", REQUEST, ((0, "level_ua", U32, True),), ((0, "level_ua", U32, True),)),
    LOG_READ: (
        "LOG_READ",
        REQUEST,
        ((0, "from_seq", U32, True), (1, "max", U8, True)),
        (
            (0, "entries", MAPS, True),
            (1, "next_seq", U32, True),  # where to continue
            (2, "oldest_seq", U32, True),  # the first entry the log still holds
            (3, "end_seq", U32, True),  # one past the newest entry
            (4, "damaged", U8, True),  # segments found unreadable
        ),
    ),
    SESSION_RATE: (
        "SESSION_RATE",
        REQUEST,
        ((0, "session", U32, True), (1, "pain", U8, True)),
        ((0, "session", U32, True),),
    ),
    SELFTEST: (
        "SELFTEST",
        REQUEST,
        ((0, "probe_attached", BOOL, False),),  # what lead-off detection should see; default none
        ((0, "started", BOOL, True),),
    ),
    PROTOCOL_BEGIN: (
        "PROTOCOL_BEGIN",
        REQUEST,
        ((0, "size", U32, True), (1, "sha256", SHA256, True)),
        ((0, "offset", U32, True),),  # where to continue: 0, or resume point
    ),
    PROTOCOL_CHUNK: (
        "PROTOCOL_CHUNK",
        REQUEST,
        ((0, "offset", U32, True), (1, "data", CHUNK, True)),
        ((0, "offset", U32, True),),
    ),
    PROTOCOL_COMMIT: ("PROTOCOL_COMMIT", REQUEST, _EMPTY, ((0, "protocol", MAP, True),)),
    PROTOCOL_SHOW: (
        "PROTOCOL_SHOW",
        REQUEST,
        _EMPTY,
        ((0, "protocol", NULL_OR_MAP, True), (1, "max_sequence", U32, True)),
    ),
    PROTOCOL_REMOVE: ("PROTOCOL_REMOVE", REQUEST, _EMPTY, _EMPTY),
    MAINTENANCE_ENTER: ("MAINTENANCE_ENTER", REQUEST, _EMPTY, _STATE),  # answers MAINTENANCE
    STATE_CHANGED: (
        "STATE_CHANGED",
        EVENT,
        (
            (0, "from_state", STATE, True),
            (1, "to_state", STATE, True),
            (2, "reason", U16, True),
            (3, "time_ms", U64, True),
        ),
        None,
    ),
    FAULT: (
        "FAULT",
        EVENT,
        ((0, "code", U16, True), (1, "time_ms", U64, True), (2, "detail", TEXT, False)),
        None,
    ),
    CUE: (
        "CUE",
        EVENT,
        (
            (0, "phase", U16, True),
            (1, "cue", U8, True),
            (2, "time_ms", U64, True),
            (3, "duration_ms", U32, True),
            (4, "protocol_phase", U8, False),  # index into the approved protocol's phases
        ),
        None,
    ),
    SUMMARY: (
        "SUMMARY",
        EVENT,
        (
            (0, "time_ms", U64, True),
            (1, "end_reason", U16, True),
            (2, "advice", U8, True),
            (3, "run_ms", U64, True),
            (4, "mvc_dv", U32, True),
            (5, "baseline_dv", U32, True),
            (6, "phases", UMAPS, True),
            (7, "triggers", U32, True),
            (8, "charge_uc", U32, True),
            (9, "max_ua", U32, True),
        ),
        None,
    ),
    ADVICE: (
        "ADVICE",
        EVENT,
        (
            (0, "reason", U8, True),
            (1, "time_ms", U64, True),
            (2, "rest_dv", U32, True),
            (3, "reference_dv", U32, True),
        ),
        None,
    ),
    STIM: (
        "STIM",
        EVENT,
        (
            (0, "state", U8, True),
            (1, "time_ms", U64, True),
            (2, "level_ua", U32, True),  # the patient's setting
            (3, "limit_ua", U32, True),  # the smallest of board, policy, protocol and phase limits
            (4, "impedance_ohm", U32, False),  # measured by the check
            (5, "triggers", U32, False),  # ETS triggers so far in this phase
        ),
        None,
    ),
    SELFTEST_RESULT: (
        "SELFTEST_RESULT",
        EVENT,
        ((0, "time_ms", U64, True), (1, "passed", BOOL, True), (2, "checks", UMAPS, True)),
        None,
    ),
    EMG: (
        "EMG",
        STREAM,
        (
            (0, "first_index", U64, True),
            (1, "samples", BYTES, True),  # int32 little-endian, 0.1 µV each
            (2, "envelope_dv", U32, True),
            (3, "state", STATE, True),
            (4, "flags", U16, True),
            (5, "stim_ua", U32, False),  # current commanded at the end of the block, while stimulating
            (6, "target_dv", U32, False),  # the running phase's envelope target (ETS: trigger threshold)
        ),
        None,
    ),
}

# Stream flags (EMG "flags")
FLAG_LEAD_OFF = 1
FLAG_SATURATED = 2
FLAG_GAP = 4
FLAG_STIM = 8  # pulses were delivered during the block
FLAG_TRIGGER = 16  # an ETS trigger fired during the block
FLAG_BLANKED = 32  # samples around pulses were blanked (stimulation artefact)
FLAG_FEEDBACK = 64  # relaxation above target: the biofeedback tone sounds
FLAG_ARTEFACT = 128  # a step, slope or amplitude no pelvic-floor muscle makes (firmware/emg_artefact.py)


def type_name(mtype):
    entry = CATALOGUE.get(mtype)
    return entry[0] if entry else "UNKNOWN"


def _fields(kind, mtype):
    # an error may answer a request whose type the device does not know
    if kind == ERROR:
        return _ERROR_BODY
    entry = CATALOGUE.get(mtype)
    if entry is None:
        raise ProtocolError(UNKNOWN_TYPE, "unknown message type %d" % mtype)
    if kind == RESPONSE:
        if entry[1] != REQUEST:
            raise ProtocolError(BAD_ENVELOPE, "%s has no response" % entry[0])
        return entry[3]
    if kind != entry[1]:
        raise ProtocolError(BAD_ENVELOPE, "%s is not a %s" % (entry[0], KIND_NAMES[kind]))
    return entry[2]


def _valid(ftype, v):
    if ftype in _UMAX:
        return is_int(v) and 0 <= v <= _UMAX[ftype]
    if ftype == I32:
        return is_int(v) and -0x80000000 <= v <= 0x7FFFFFFF
    if ftype == BOOL:
        return v is True or v is False
    if ftype == BYTES:
        return isinstance(v, bytes)
    if ftype == SHA256:
        return isinstance(v, bytes) and len(v) == 32
    if ftype == CHUNK:
        return isinstance(v, bytes) and 1 <= len(v) <= UPLOAD_CHUNK
    if ftype == TEXT:
        return isinstance(v, str) and len(v) <= MAX_TEXT
    if ftype == UMAP:
        if not isinstance(v, dict):
            return False
        for k in v:
            if not (_valid(U32, k) and _valid(U64, v[k])):
                return False
        return True
    if ftype == UMAPS:
        if not isinstance(v, list) or len(v) > MAX_PHASES_LISTED:
            return False
        for item in v:
            if not _valid(UMAP, item):
                return False
        return True
    if ftype == MAPS:
        if not isinstance(v, list) or len(v) > MAX_LOG_READ:
            return False
        for item in v:
            if not isinstance(item, dict):
                return False
            for k in item:
                if not _valid(U32, k):
                    return False
        return True
    if ftype == MAP:
        return isinstance(v, dict)
    if ftype == NULL_OR_MAP:
        return v is None or isinstance(v, dict)
    return False


def check_body(kind, mtype, body):
    """Raise ProtocolError unless body matches the catalogue exactly."""
    fields = _fields(kind, mtype)
    if not isinstance(body, dict):
        raise ProtocolError(BAD_ENVELOPE, "body is not a map")
    known = 0
    for key, fname, ftype, required in fields:
        if key in body:
            known += 1
            if not _valid(ftype, body[key]):
                raise ProtocolError(BAD_FIELD, "%s: bad %s" % (type_name(mtype), fname))
        elif required:
            raise ProtocolError(BAD_FIELD, "%s: %s missing" % (type_name(mtype), fname))
    if known != len(body):
        raise ProtocolError(BAD_FIELD, "%s: unknown field" % type_name(mtype))


def build(kind, seq, mtype, **values):
    """An envelope with named fields mapped to their keys; validated."""
    fields = _fields(kind, mtype)
    body = {}
    for key, fname, _ftype, _required in fields:
        if fname in values:
            body[key] = values.pop(fname)
    if values:
        raise ProtocolError(BAD_FIELD, "%s: unknown field %s" % (type_name(mtype), min(values)))
    check_body(kind, mtype, body)
    if not (0 <= seq < SEQ_MODULO):
        raise ProtocolError(BAD_ENVELOPE, "sequence number out of range")
    return [kind, seq, mtype, body]


def error(seq, mtype, code, detail=""):
    body = {0: code}
    if detail:
        body[1] = detail[:MAX_TEXT]
    return [ERROR, seq, mtype, body]


def parse(msg):
    """Check a decoded envelope; return (kind, seq, type, body)."""
    if not isinstance(msg, list) or len(msg) != 4:
        raise ProtocolError(BAD_ENVELOPE, "a message is [kind, seq, type, body]")
    kind, seq, mtype, body = msg
    if not _valid(U8, kind) or kind > STREAM:
        raise ProtocolError(BAD_ENVELOPE, "bad kind")
    if not _valid(U16, seq):
        raise ProtocolError(BAD_ENVELOPE, "bad sequence number")
    if not _valid(U16, mtype):
        raise ProtocolError(BAD_ENVELOPE, "bad type")
    check_body(kind, mtype, body)
    return kind, seq, mtype, body


def named(kind, mtype, body):
    """The body with field names for keys, for people and host code."""
    out = {}
    for key, fname, _ftype, _required in _fields(kind, mtype):
        if key in body:
            out[fname] = body[key]
    return out


def negotiate(min_version, max_version):
    """The version both ends speak, or ProtocolError."""
    hi = max_version if max_version < PROTOCOL_VERSION else PROTOCOL_VERSION
    lo = min_version if min_version > MIN_PROTOCOL_VERSION else MIN_PROTOCOL_VERSION
    if lo > hi:
        raise ProtocolError(
            VERSION_UNSUPPORTED,
            "device speaks %d..%d" % (MIN_PROTOCOL_VERSION, PROTOCOL_VERSION),
        )
    return hi
