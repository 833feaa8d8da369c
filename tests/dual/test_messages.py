"""protocol.messages on both runtimes."""

from dualtest import raises, req
from protocol import codec, errors
from protocol import messages as m


def _info(**over):
    v = {
        "firmware_version": "0.1.0",
        "board": "sim",
        "serial": "E66118604B1F2A2B",
        "state": m.IDLE,
        "fault": None,
        "protocol": None,
        "limits": {0: 60000},
        "uptime_ms": 1234,
        "estop_open": False,
        "session": None,
        "link": {m.LINK_RX_FRAMES: 3},
    }
    v.update(over)
    return v


@req("LINK-MSG-2", "LINK-RT-1")
def test_golden_encodings():
    hello = m.build(m.REQUEST, 1, m.HELLO, min_version=1, max_version=3)
    assert codec.dumps(hello).hex() == "84000101a200010103"
    err = m.error(7, m.SESSION_START, errors.FAULT_LATCHED, "clear the fault first")
    assert codec.dumps(err).hex() == "84020704a20018290175636c65617220746865206661756c74206669727374"
    emg = m.build(
        m.STREAM,
        65535,
        m.EMG,
        first_index=2000,
        samples=b"\x01\x00\x00\x00",
        envelope_dv=62,
        state=2,
        flags=0,
    )
    assert codec.dumps(emg).hex() == "840419ffff1860a5001907d001440100000002183e03020400"


@req("LINK-MSG-2", "LINK-MSG-5")
def test_build_and_parse_round_trip_with_names():
    msg = m.build(m.RESPONSE, 42, m.INFO, **_info())
    kind, seq, mtype, body = m.parse(codec.loads(codec.dumps(msg)))
    assert (kind, seq, mtype) == (m.RESPONSE, 42, m.INFO)
    assert m.named(kind, mtype, body) == _info()
    assert m.type_name(mtype) == "INFO"


@req("LINK-MSG-3")
def test_version_negotiation():
    assert m.negotiate(1, 1) == 1
    assert m.negotiate(1, 9) == m.PROTOCOL_VERSION
    assert m.negotiate(0, m.PROTOCOL_VERSION) == m.PROTOCOL_VERSION
    raises(errors.VERSION_UNSUPPORTED, m.negotiate, m.PROTOCOL_VERSION + 1, m.PROTOCOL_VERSION + 5)
    raises(errors.VERSION_UNSUPPORTED, m.negotiate, 0, 0)
    raises(errors.VERSION_UNSUPPORTED, m.negotiate, 3, 2)


@req("LINK-MSG-5")
def test_envelope_shape_is_enforced():
    raises(errors.BAD_ENVELOPE, m.parse, {0: 1})
    raises(errors.BAD_ENVELOPE, m.parse, [0, 1, 2])
    raises(errors.BAD_ENVELOPE, m.parse, [0, 1, 2, {}, 5])
    raises(errors.BAD_ENVELOPE, m.parse, [9, 1, m.INFO, {}])
    raises(errors.BAD_ENVELOPE, m.parse, [True, 1, m.INFO, {}])
    raises(errors.BAD_ENVELOPE, m.parse, [0, 0x10000, m.INFO, {}])
    raises(errors.BAD_ENVELOPE, m.parse, [0, -1, m.INFO, {}])
    raises(errors.BAD_ENVELOPE, m.parse, [0, 1, "INFO", {}])
    raises(errors.BAD_ENVELOPE, m.parse, [0, 1, m.INFO, []])
    raises(errors.UNKNOWN_TYPE, m.parse, [0, 1, 999, {}])
    # a device-initiated type cannot be sent as a request, nor answered
    raises(errors.BAD_ENVELOPE, m.parse, [m.REQUEST, 1, m.EMG, {}])
    raises(errors.BAD_ENVELOPE, m.parse, [m.RESPONSE, 1, m.STATE_CHANGED, {}])
    raises(errors.BAD_ENVELOPE, m.parse, [m.EVENT, 1, m.INFO, {}])


@req("LINK-MSG-5", "LINK-MSG-4")
def test_fields_are_typed_and_ranged():
    raises(errors.BAD_FIELD, m.parse, [0, 1, m.HELLO, {0: 1}])
    raises(errors.BAD_FIELD, m.parse, [0, 1, m.HELLO, {0: 1, 1: 1, 2: 0}])
    raises(errors.BAD_FIELD, m.parse, [0, 1, m.HELLO, {0: -1, 1: 1}])
    raises(errors.BAD_FIELD, m.parse, [0, 1, m.HELLO, {0: 1, 1: 0x10000}])
    raises(errors.BAD_FIELD, m.parse, [0, 1, m.HELLO, {0: True, 1: 1}])
    raises(errors.BAD_FIELD, m.parse, [0, 1, m.STREAM_CONTROL, {0: 1}])
    raises(errors.BAD_FIELD, m.parse, [0, 1, m.INFO, {0: 0}])
    raises(errors.BAD_FIELD, m.build, m.RESPONSE, 1, m.INFO, **_info(state=256))
    raises(errors.BAD_FIELD, m.parse, [m.RESPONSE, 1, m.SESSION_PAUSE, {0: len(m.STATE_NAMES)}])
    raises(errors.BAD_FIELD, m.build, m.RESPONSE, 1, m.INFO, **_info(limits={0: -5}))
    raises(errors.BAD_FIELD, m.build, m.RESPONSE, 1, m.INFO, **_info(serial="x" * 65))
    raises(errors.BAD_FIELD, m.build, m.REQUEST, 1, m.HELLO, min_version=1, max_version=1, colour=3)
    raises(
        errors.BAD_FIELD,
        m.build,
        m.STREAM,
        1,
        m.EMG,
        first_index=0,
        samples=[1, 2],
        envelope_dv=0,
        state=0,
        flags=0,
    )
    raises(errors.BAD_ENVELOPE, m.build, m.REQUEST, 0x10000, m.PING)


@req("LINK-MSG-2", "LINK-MSG-5")
def test_error_responses_name_their_code():
    e = m.error(3, 999, errors.UNKNOWN_TYPE, "x" * 100)
    kind, seq, mtype, body = m.parse(e)
    assert (kind, seq, mtype) == (m.ERROR, 3, 999)
    assert m.named(kind, mtype, body) == {"code": errors.UNKNOWN_TYPE, "detail": "x" * m.MAX_TEXT}
    assert errors.name(body[0]) == "UNKNOWN_TYPE"


@req("LINK-MSG-6")
def test_emg_frame_of_fifty_samples_fits_one_frame():
    import struct

    from protocol import framing

    samples = bytearray(200)
    for i in range(50):
        struct.pack_into("<i", samples, 4 * i, (i - 25) * 40000)
    msg = m.build(
        m.STREAM, 1, m.EMG, first_index=1 << 40, samples=bytes(samples), envelope_dv=1 << 31, state=2, flags=7
    )
    payload = codec.dumps(msg)
    assert len(payload) < framing.MAX_PAYLOAD
    kind, _seq, mtype, body = m.parse(codec.loads(payload))
    back = m.named(kind, mtype, body)
    assert struct.unpack_from("<i", back["samples"], 0)[0] == -25 * 40000
    assert struct.unpack_from("<i", back["samples"], 196)[0] == 24 * 40000
    assert back["first_index"] == 1 << 40
