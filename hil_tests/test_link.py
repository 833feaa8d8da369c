"""The link as a host sees it: handshake, INFO, refusals of bad input, line noise."""

import json
import random
from itertools import pairwise

import pytest

from hil_tests.watch import Watch
from host.client import Hello, Pong, Refusal
from protocol import codec, framing
from protocol import messages as m

pytestmark = pytest.mark.req("HIL-TARGET-1")


@pytest.mark.req("LINK-MSG-3")
def test_hello_agrees_on_the_highest_version_both_speak(client):
    assert client.device.version == m.PROTOCOL_VERSION
    r = client.hello(min_version=m.MIN_PROTOCOL_VERSION, max_version=m.PROTOCOL_VERSION + 5)
    assert isinstance(r, Hello) and r.version == m.PROTOCOL_VERSION
    assert r.max_payload >= 64 and r.serial and r.firmware_version
    assert client.ping().ok


@pytest.mark.req("LINK-MSG-3", "LINK-ROBUST-1")
def test_a_version_the_device_does_not_speak_is_refused(client):
    r = client.hello(min_version=m.PROTOCOL_VERSION + 1, max_version=m.PROTOCOL_VERSION + 9)
    assert isinstance(r, Refusal) and r.name == "VERSION_UNSUPPORTED"
    assert client.ping().ok  # the earlier agreement stands


@pytest.mark.needs("rig")
@pytest.mark.req("LINK-HELLO-1", "LINK-ROBUST-1")
def test_after_boot_every_request_but_hello_and_estop_is_refused(target, client):
    target.rig.power_cycle()
    seq = 100
    for mtype in (m.INFO, m.PING, m.SESSION_START, m.STREAM_CONTROL):
        body = {0: True} if mtype == m.STREAM_CONTROL else {}
        r = client.raw_request([m.REQUEST, seq, mtype, body])
        assert isinstance(r, Refusal) and r.name == "HELLO_REQUIRED", m.type_name(mtype)
        seq += 1
    r = client.raw_request([m.REQUEST, seq, m.HELLO, {0: m.MIN_PROTOCOL_VERSION, 1: m.PROTOCOL_VERSION}])
    assert isinstance(r, Hello)
    info = client.info()
    assert info.state == "IDLE" and info.fault is None  # the refused START did nothing


@pytest.mark.needs("rig")
@pytest.mark.req("LINK-HELLO-1", "SAF-ESTOP-1")
def test_an_emergency_stop_needs_no_greeting(target, client):
    target.rig.power_cycle()
    r = client.raw_request([m.REQUEST, 200, m.ESTOP, {}])
    assert r.ok and r.state == "FAULT"
    assert client.info().fault.name == "HOST_ESTOP"


@pytest.mark.req("LINK-CLIENT-1")
def test_info_tells_identity_state_limits_and_counters(client):
    a = client.info()
    assert a.ok and a.serial == client.device.serial and a.board == client.device.board
    assert a.firmware_version == client.device.firmware_version
    assert a.state in ("IDLE", "DONE") and a.fault is None and a.estop_open is False
    assert a.limits.hw_max_ua > 0 and a.limits.emg_rate_hz > 0 and a.limits.max_session_s > 0
    assert a.limits.policy_max_ua == 0  # no device policy provisioned: no stimulation
    assert a.protocol is None
    b = client.info()
    assert b.uptime_ms > a.uptime_ms
    assert b.link.rx_frames > a.link.rx_frames and b.link.tx_frames > a.link.tx_frames


@pytest.mark.req("LINK-ROBUST-1", "LINK-MSG-5")
@pytest.mark.parametrize(
    "msg, code",
    [
        ([m.REQUEST, 901, 999, {}], "UNKNOWN_TYPE"),
        ([m.REQUEST, 902, m.HELLO, {0: 1}], "BAD_FIELD"),  # max_version missing
        ([m.REQUEST, 903, m.PING, {7: 1}], "BAD_FIELD"),  # a field PING does not have
        ([m.REQUEST, 904, m.SESSION_START, {1: 5}], "BAD_FIELD"),  # a demo shorter than the device allows
        ([m.REQUEST, 905, m.STREAM_CONTROL, {0: 1}], "BAD_FIELD"),  # not a bool
        ([m.RESPONSE, 906, m.INFO, {}], "BAD_FIELD"),  # a host does not send responses
        ([m.EVENT, 907, m.CUE, {0: 1, 1: 1, 2: 1, 3: 1}], "BAD_ENVELOPE"),
        ([m.REQUEST, 908, m.EMG, {}], "BAD_ENVELOPE"),  # a stream type as a request
        ([m.REQUEST, 909, m.PING], "BAD_ENVELOPE"),  # three elements
    ],
)
def test_malformed_requests_get_typed_errors_and_the_device_carries_on(client, msg, code):
    before = client.info()
    r = client.raw_request(msg)
    assert isinstance(r, Refusal) and r.name == code
    after = client.info()
    assert after.link.rx_refused == before.link.rx_refused + 1
    assert after.state == before.state and after.fault is None
    assert client.ping().ok


@pytest.mark.req("LINK-ROBUST-1", "LINK-FRAME-2", "LINK-CRC-1")
def test_line_noise_and_oversize_frames_are_dropped_and_counted(client):
    rnd = random.Random(7)
    good = framing.encode(codec.dumps(m.build(m.REQUEST, 500, m.PING)))
    junk = [
        bytes(rnd.randrange(1, 256) for _ in range(100)) + b"\x00",  # noise
        good[:-3] + bytes([good[-3] ^ 0x55]) + good[-2:],  # one byte changed: CRC fails
        good[: len(good) // 2] + b"\x00",  # cut short
        b"\x01" * (framing.MAX_ENCODED + 40) + b"\x00",  # longer than any frame may be
    ]
    before = client.info()
    for chunk in junk:
        client.send_raw(chunk)
    assert client.ping().ok
    after = client.info()
    assert after.link.rx_dropped == before.link.rx_dropped + len(junk)
    assert after.link.rx_refused == before.link.rx_refused
    assert after.state == before.state and after.fault is None
    assert client.stale_replies == 0  # nothing of the junk was taken for a request


@pytest.mark.req("LINK-CLIENT-1", "LINK-MSG-2", "LINK-MSG-6")
def test_replies_are_matched_while_events_and_frames_stream(client):
    w = Watch(client)
    assert client.stream(True).ok
    assert client.session_start(demo_s=30).ok
    w.state("RUNNING")
    uptimes = []
    for _ in range(20):
        r = client.ping()
        assert isinstance(r, Pong)
        uptimes.append(r.uptime_ms)
        w.stream_for(25)
    assert uptimes == sorted(uptimes) and uptimes[-1] > uptimes[0]
    frames = w.frames
    assert len(frames) >= 20 and all(f.count == 50 for f in frames)
    assert all(b.first_index == a.end_index for a, b in pairwise(frames))
    assert client.missed == {m.EVENT: 0, m.STREAM: 0}
    assert client.session_stop().ok


@pytest.mark.req("UX-CLI-1")
def test_the_cli_reports_info_and_refusals(target, capsys):
    from host.cli import main

    target.release()  # the CLI opens the port itself
    assert main(["--port", target.url, "--json", "info"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert {"firmware_version", "board", "serial", "state", "fault", "protocol", "limits"} <= info.keys()
    assert main(["--port", target.url, "session", "pause"]) == 4
    assert capsys.readouterr().err.startswith("tonus: device refused SESSION_PAUSE: ILLEGAL_STATE (40)")
