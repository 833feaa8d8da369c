"""Link dispatch on the device: every request answered, bad input contained."""

from dualtest import Lcg, req
from fakehal import Host, booted, greeted, request, run
from protocol import codec, errors, framing
from protocol import messages as m


@req("LINK-HELLO-1", "LINK-MSG-3")
def test_hello_first_then_info():
    hal, ctrl = booted()
    host = Host(hal)
    r = request(hal, ctrl, host, m.INFO)
    assert r[0] == m.ERROR and r[3][0] == errors.HELLO_REQUIRED
    r = request(hal, ctrl, host, m.HELLO, min_version=1, max_version=5)
    assert r[0] == m.RESPONSE
    hello = m.named(r[0], r[2], r[3])
    assert hello["version"] == m.PROTOCOL_VERSION and hello["serial"] == hal.serial
    assert hello["max_payload"] == framing.MAX_PAYLOAD
    info = m.named(m.RESPONSE, m.INFO, request(hal, ctrl, host, m.INFO)[3])
    assert info["state"] == m.IDLE and info["fault"] is None and info["board"] == "fake"
    assert info["limits"][m.LIMIT_HW_MAX_UA] == hal.hw_max_ua


@req("LINK-HELLO-1", "SAF-ESTOP-1")
def test_estop_is_honoured_before_any_hello():
    from protocol import faults

    hal, ctrl = booted()
    host = Host(hal)
    r = request(hal, ctrl, host, m.ESTOP)
    assert r[0] == m.RESPONSE and r[3][0] == m.FAULT_STATE
    assert ctrl.safety.fault == faults.HOST_ESTOP


@req("SAF-HEARTBEAT-1", "LINK-ROBUST-1")
def test_malformed_frames_do_not_count_as_a_live_host():
    hal, ctrl, host = greeted()
    request(hal, ctrl, host, m.SESSION_START, heartbeat_ms=1000)
    for _ in range(12):
        host.send_raw(framing.encode(b"\x81\x00"))  # decodes, but is not a request
        run(hal, ctrl, 100)
    assert ctrl.session.state == m.DONE


@req("LINK-MSG-3")
def test_version_the_device_does_not_speak():
    hal, ctrl = booted()
    host = Host(hal)
    r = request(hal, ctrl, host, m.HELLO, min_version=7, max_version=9)
    assert r[0] == m.ERROR and r[3][0] == errors.VERSION_UNSUPPORTED
    assert request(hal, ctrl, host, m.PING)[3][0] == errors.HELLO_REQUIRED


@req("LINK-ROBUST-1", "SAF-STATE-1")
def test_illegal_requests_get_typed_errors_and_nothing_changes():
    hal, ctrl, host = greeted()
    for mtype, want in (
        (m.SESSION_PAUSE, errors.ILLEGAL_STATE),
        (m.SESSION_RESUME, errors.ILLEGAL_STATE),
        (m.FAULT_CLEAR, errors.ILLEGAL_STATE),
        (m.SESSION_STOP, errors.ILLEGAL_STATE),
    ):
        r = request(hal, ctrl, host, mtype)
        assert r[0] == m.ERROR and r[3][0] == want, m.type_name(mtype)
    assert ctrl.session.state == m.IDLE
    request(hal, ctrl, host, m.SESSION_START)
    run(hal, ctrl, 20)
    r = request(hal, ctrl, host, m.FAULT_CLEAR)
    assert r[3][0] == errors.ILLEGAL_STATE and ctrl.session.state == m.RUNNING


@req("LINK-ROBUST-1", "LINK-MSG-5")
def test_malformed_requests_are_answered_with_their_seq_and_counted():
    hal, ctrl, host = greeted()
    cases = [
        ([m.REQUEST, 900, 999, {}], 900, errors.UNKNOWN_TYPE),
        ([m.REQUEST, 901, m.HELLO, {0: 1}], 901, errors.BAD_FIELD),
        ([m.RESPONSE, 902, m.INFO, {}], 902, errors.BAD_FIELD),
        ([m.REQUEST, 903, m.EMG, {}], 903, errors.BAD_ENVELOPE),
        ([m.EVENT, 904, m.CUE, {0: 1, 1: 1, 2: 1, 3: 1}], 904, errors.BAD_ENVELOPE),
        ({0: 1}, 0, errors.BAD_ENVELOPE),
        ([m.REQUEST, 905, m.SESSION_START, {1: 5}], 905, errors.BAD_FIELD),
    ]
    for msg, seq, code in cases:
        host.send_raw(framing.encode(codec.dumps(msg)))
        run(hal, ctrl, 5)
        r = host.reply(seq)
        assert r is not None and r[0] == m.ERROR and r[3][0] == code, (msg, r)
    host.send_raw(framing.encode(b"\xff\x00"))
    run(hal, ctrl, 5)
    assert host.reply(0)[3][0] == errors.INDEFINITE_LENGTH
    assert ctrl.link.rx_refused == len(cases) + 1
    assert ctrl.session.state == m.IDLE
    assert request(hal, ctrl, host, m.PING)[0] == m.RESPONSE


@req("LINK-ROBUST-1", "LINK-FRAME-2")
def test_garbage_and_oversize_frames_are_dropped_and_counted():
    hal, ctrl, host = greeted()
    rnd = Lcg(99)
    host.send_raw(bytes(rnd.below(255) + 1 for _ in range(3000)) + b"\x00")
    host.send_raw(b"\x01\x02\x03\x00")
    run(hal, ctrl, 50)
    info = request(hal, ctrl, host, m.INFO)
    link = m.named(m.RESPONSE, m.INFO, info[3])["link"]
    assert link[m.LINK_RX_DROPPED] == 2
    assert ctrl.safety.fault == 0 and ctrl.session.state == m.IDLE


@req("LINK-ROBUST-1")
def test_a_host_that_stops_reading_costs_frames_not_the_device():
    hal, ctrl, host = greeted()
    request(hal, ctrl, host, m.STREAM_CONTROL, enable=True)
    request(hal, ctrl, host, m.SESSION_START)
    hal.host_reading = False
    run(hal, ctrl, 2000)
    assert ctrl.session.state == m.RUNNING and ctrl.link.tx_dropped >= 70
    hal.host_reading = True
    assert request(hal, ctrl, host, m.PING)[0] == m.RESPONSE


@req("SAF-ESTOP-1", "LINK-MSG-2")
def test_host_estop_answers_with_the_fault_state():
    hal, ctrl, host = greeted()
    request(hal, ctrl, host, m.SESSION_START)
    run(hal, ctrl, 20)
    r = request(hal, ctrl, host, m.ESTOP)
    assert r[0] == m.RESPONSE and r[3][0] == m.FAULT_STATE
    info = m.named(m.RESPONSE, m.INFO, request(hal, ctrl, host, m.INFO)[3])
    assert info["fault"][m.FAULT_CODE] == faults_host_estop()
    assert info["fault"][m.FAULT_LATCHED] is True


def faults_host_estop():
    from protocol import faults

    return faults.HOST_ESTOP


@req("LINK-TYPES-1")
def test_a_bool_is_never_taken_for_a_number():
    hal, ctrl, host = greeted()
    for msg in ([m.REQUEST, True, m.PING, {}], [m.REQUEST, 3, True, {}], [True, 4, m.PING, {}]):
        host.send_raw(framing.encode(codec.dumps(msg)))
        run(hal, ctrl, 5)
        got = host.receive()  # every reply parses: nothing echoes a bool as a number
        assert got[-1][0] == m.ERROR and got[-1][1] in (0, 3, 4) and got[-1][2] in (0, m.PING), got[-1]
    host.send_raw(framing.encode(codec.dumps([m.REQUEST, 9, m.STIM_LEVEL, {0: True}])))
    run(hal, ctrl, 5)
    r = host.reply(9)
    assert r[0] == m.ERROR and r[3][0] == errors.BAD_FIELD


@req("LINK-MSG-7")
def test_the_heartbeat_answer_is_the_protocols_byte_for_byte():
    # a PING is answered on a path of its own (firmware/link.py): the frame must be exactly what
    # the general path would send, for every size of seq and uptime
    hal, ctrl, host = greeted()
    for seq in (0, 23, 24, 255, 256, 65535):
        for uptime in (0, 23, 24, 65536, 0x100000005):
            hal.t_ms = uptime
            hal.tx = []
            host.send_raw(framing.encode(codec.dumps(m.build(m.REQUEST, seq, m.PING))))
            ctrl.link.poll(uptime)
            want = framing.encode(codec.dumps(m.build(m.RESPONSE, seq, m.PING, uptime_ms=uptime)))
            assert b"".join(hal.tx) == want, (seq, uptime)
            assert ctrl.link.last_rx_ms == uptime


@req("LINK-MSG-7", "LINK-ROBUST-1")
def test_a_ping_not_written_as_the_protocol_writes_it_is_refused_as_before():
    hal, ctrl, host = greeted()
    # seq 5 in two bytes (not the shortest form), and a PING with a field: the general path refuses
    for payload in (b"\x84\x00\x18\x05\x03\xa0", b"\x84\x00\x05\x03\xa1\x00\x00"):
        hal.tx = []
        host.send_raw(framing.encode(payload))
        run(hal, ctrl, 5)
        (answer,) = host.receive()
        host.inbox.clear()
        assert answer[0] == m.ERROR
    # and before a HELLO a PING is refused like any other request
    hal2, ctrl2 = booted()
    host2 = Host(hal2)
    assert request(hal2, ctrl2, host2, m.PING)[3][0] == errors.HELLO_REQUIRED
