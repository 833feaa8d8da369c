"""Every message the catalogue builds validates against protocol/link.cddl."""

import os
from pathlib import Path

import pytest

from protocol import codec, errors
from protocol import messages as m
from tools import zcbor_env
from tools.mpwasm import Unavailable

CDDL = Path(m.__file__).with_name("link.cddl")

# one representative value per field type, at both ends of its range
SAMPLES = {
    m.U8: (0, 255),
    m.U16: (0, 65535),
    m.U32: (0, 2**32 - 1),
    m.U64: (0, 2**64 - 1),
    m.I32: (-(2**31), 2**31 - 1),
    m.BOOL: (False, True),
    m.BYTES: (b"", bytes(200)),
    m.TEXT: ("", "µ" * 32),
    m.UMAP: ({}, {0: 2**64 - 1, 7: 0}),
    m.MAP: ({}, {0: "x", 1: [1, 2]}),
    m.NULL_OR_MAP: (None, {0: 1, 1: True}),
    m.STATE: (m.IDLE, m.MAINTENANCE),
    m.SHA256: (bytes(32), bytes(range(32))),
    m.CHUNK: (b"\x00", bytes(m.UPLOAD_CHUNK)),
    m.UMAPS: ([], [{0: 2**64 - 1, 7: 0}] * m.MAX_PHASES_LISTED),
    m.MAPS: ([], [{0: 1, 1: "id", 14: [1, 2]}] * m.MAX_LOG_READ),
}


def catalogue_messages():
    """Every (kind, type) of the catalogue, with all fields and with required ones only."""
    out = []
    for mtype, (_name, kind, fields, resp) in sorted(m.CATALOGUE.items()):
        shapes = [(kind, fields)]
        if resp is not None:
            shapes.append((m.RESPONSE, resp))
        for k, fs in shapes:
            for which in (0, 1):
                full = {f[1]: SAMPLES[f[2]][which] for f in fs}
                required = {f[1]: SAMPLES[f[2]][which] for f in fs if f[3]}
                out += [m.build(k, which * 65535, mtype, **vals) for vals in (full, required)]
    out.append(m.error(0, 0, errors.BAD_ENVELOPE))
    out.append(m.error(65535, m.INFO, errors.INTERNAL, "µ" * 64))
    return out


@pytest.fixture(scope="module")
def validate():
    try:
        zcbor_env.python()
    except Unavailable as e:
        if os.environ.get("CI") == "true":
            pytest.fail(str(e))
        pytest.skip(str(e))
    return lambda items: zcbor_env.validate(CDDL, "message", [codec.dumps(i) for i in items])


@pytest.mark.req("LINK-MSG-1")
def test_every_catalogue_message_validates(validate):
    msgs = catalogue_messages()
    kinds = {(x[0], x[2]) for x in msgs}
    assert len(kinds) == len(m.CATALOGUE) + sum(1 for v in m.CATALOGUE.values() if v[3] is not None) + 2
    bad = [(msg, why) for msg, why in zip(msgs, validate(msgs), strict=True) if why]
    assert not bad, bad[:3]


BROKEN = [
    [0, 1, m.HELLO, {0: 1}],  # missing field
    [0, 1, m.INFO, {0: 1}],  # unknown field
    [0, 1, m.HELLO, {0: 1, 1: 70000}],  # out of range
    [1, 1, m.SESSION_PAUSE, {0: 9}],  # no such state
    [m.REQUEST, 1, m.EMG, {}],  # a stream type sent as a request
    [0, 70000, m.PING, {}],
    [0, 1, 999, {}],
    [4, 1, m.EMG, {0: 0, 1: [1, 2], 2: 0, 3: 0, 4: 0}],  # samples not packed
    [0, 1, m.PROTOCOL_BEGIN, {0: 10, 1: bytes(31)}],  # digest of the wrong size
    [0, 1, m.PROTOCOL_CHUNK, {0: 0, 1: bytes(m.UPLOAD_CHUNK + 1)}],
    [0, 1, m.PROTOCOL_CHUNK, {0: 0, 1: b""}],
    [
        3,
        1,
        m.SUMMARY,
        {0: 0, 1: 0, 2: 0, 3: 0, 4: 0, 5: 0, 6: [{0: 1}] * 17, 7: 0, 8: 0, 9: 0},
    ],  # too many phases
    [
        3,
        1,
        m.SUMMARY,
        {0: 0, 1: 0, 2: 0, 3: 0, 4: 0, 5: 0, 6: [7], 7: 0, 8: 0, 9: 0},
    ],  # a score that is not a map
]


@pytest.mark.req("LINK-MSG-1", "LINK-MSG-5")
def test_cddl_and_code_refuse_the_same_broken_messages(validate):
    verdicts = validate(BROKEN)
    for msg, why in zip(BROKEN, verdicts, strict=True):
        assert why is not None, f"CDDL accepted {msg}"
        with pytest.raises(errors.ProtocolError):
            m.parse(msg)
