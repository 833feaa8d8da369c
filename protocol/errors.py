"""The one error type of the link, and the table of its integer codes.

The same codes travel in error responses, so a host can name a refusal the
device reported. Codes are grouped by the layer that raises them; a code is
never reused for another meaning once released.
"""

# codec (RFC 8949 decoding and encoding)
TRUNCATED = 1
TRAILING_BYTES = 2
NOT_MINIMAL = 3
INDEFINITE_LENGTH = 4
UNSORTED_KEYS = 5
DUPLICATE_KEY = 6
UNSUPPORTED_TYPE = 7
UNSUPPORTED_TAG = 8
TOO_DEEP = 9
TOO_LARGE = 10
INT_RANGE = 11
BAD_UTF8 = 12
BAD_KEY = 13
# framing
BAD_COBS = 20
BAD_CRC = 21
FRAME_TOO_LONG = 22
# message catalogue
BAD_ENVELOPE = 30
UNKNOWN_TYPE = 31
BAD_FIELD = 32
VERSION_UNSUPPORTED = 33
HELLO_REQUIRED = 34
# device refusals
ILLEGAL_STATE = 40
FAULT_LATCHED = 41
ESTOP_ACTIVE = 42
NO_PROTOCOL = 43
BUSY = 44
INTERNAL = 45
# signatures (COSE_Sign1 / Ed25519)
BAD_SIGNATURE = 50
UNKNOWN_KID = 51
BAD_ALG = 52
BAD_COSE = 53
BAD_KEY_ENCODING = 54
# therapy protocol upload and storage
WRONG_DEVICE = 60
ROLLBACK = 61
BUDGET_EXHAUSTED = 62
PROTOCOL_INVALID = 63
UPLOAD_OFFSET = 64
UPLOAD_HASH = 65
UPLOAD_TOO_LARGE = 66
INTERVAL_NOT_ELAPSED = 67
NO_UPLOAD = 68
SEQUENCE_JUMP = 69  # more than therapy.SEQUENCE_STEP_MAX above the highest accepted

# code -> name, for error responses and for people reading them
NAMES = {
    TRUNCATED: "TRUNCATED",
    TRAILING_BYTES: "TRAILING_BYTES",
    NOT_MINIMAL: "NOT_MINIMAL",
    INDEFINITE_LENGTH: "INDEFINITE_LENGTH",
    UNSORTED_KEYS: "UNSORTED_KEYS",
    DUPLICATE_KEY: "DUPLICATE_KEY",
    UNSUPPORTED_TYPE: "UNSUPPORTED_TYPE",
    UNSUPPORTED_TAG: "UNSUPPORTED_TAG",
    TOO_DEEP: "TOO_DEEP",
    TOO_LARGE: "TOO_LARGE",
    INT_RANGE: "INT_RANGE",
    BAD_UTF8: "BAD_UTF8",
    BAD_KEY: "BAD_KEY",
    BAD_COBS: "BAD_COBS",
    BAD_CRC: "BAD_CRC",
    FRAME_TOO_LONG: "FRAME_TOO_LONG",
    BAD_ENVELOPE: "BAD_ENVELOPE",
    UNKNOWN_TYPE: "UNKNOWN_TYPE",
    BAD_FIELD: "BAD_FIELD",
    VERSION_UNSUPPORTED: "VERSION_UNSUPPORTED",
    HELLO_REQUIRED: "HELLO_REQUIRED",
    ILLEGAL_STATE: "ILLEGAL_STATE",
    FAULT_LATCHED: "FAULT_LATCHED",
    ESTOP_ACTIVE: "ESTOP_ACTIVE",
    NO_PROTOCOL: "NO_PROTOCOL",
    BUSY: "BUSY",
    INTERNAL: "INTERNAL",
    BAD_SIGNATURE: "BAD_SIGNATURE",
    UNKNOWN_KID: "UNKNOWN_KID",
    BAD_ALG: "BAD_ALG",
    BAD_COSE: "BAD_COSE",
    BAD_KEY_ENCODING: "BAD_KEY_ENCODING",
    WRONG_DEVICE: "WRONG_DEVICE",
    ROLLBACK: "ROLLBACK",
    BUDGET_EXHAUSTED: "BUDGET_EXHAUSTED",
    PROTOCOL_INVALID: "PROTOCOL_INVALID",
    UPLOAD_OFFSET: "UPLOAD_OFFSET",
    UPLOAD_HASH: "UPLOAD_HASH",
    UPLOAD_TOO_LARGE: "UPLOAD_TOO_LARGE",
    INTERVAL_NOT_ELAPSED: "INTERVAL_NOT_ELAPSED",
    NO_UPLOAD: "NO_UPLOAD",
    SEQUENCE_JUMP: "SEQUENCE_JUMP",
}


def name(code):
    return NAMES.get(code, "UNKNOWN_ERROR")


class ProtocolError(Exception):
    """Every malformed input, on either runtime, raises this and only this.

    Callers branch on `code`, never on the message text (the two runtimes
    format exception messages differently).
    """

    def __init__(self, code, detail=""):
        super().__init__(code, detail)
        self.code = code
        self.detail = detail

    @property
    def name(self):
        return name(self.code)
