"""The typed client against a scripted link double: matching, retries, refusals, errors."""

import numpy as np
import pytest
from fakedevice import FakeSerial

from host.client import (
    Client,
    Cue,
    DeviceRefused,
    EmgFrame,
    FaultEvent,
    Info,
    Pong,
    Refusal,
    StateChanged,
)
from host.transport import LinkError, Port
from protocol import codec, errors, framing
from protocol import messages as m

TIMEOUT = 0.05  # the double answers at once; a missing answer is a missing answer


@pytest.fixture
def fake():
    return FakeSerial()


@pytest.fixture
def client(fake):
    return Client(Port(fake), timeout=TIMEOUT)


@pytest.mark.req("LINK-MSG-3", "LINK-CLIENT-1")
def test_connecting_says_hello_first_with_the_versions_this_host_speaks(fake, client):
    assert fake.requests[0][:3] == [m.REQUEST, 1, m.HELLO]
    assert fake.requests[0][3] == {0: m.MIN_PROTOCOL_VERSION, 1: m.PROTOCOL_VERSION}
    assert fake.raw_in[0] == 0  # a delimiter ahead of the first frame
    assert client.device.version == m.PROTOCOL_VERSION and client.device.serial == "F00D"


@pytest.mark.req("LINK-CLIENT-1")
def test_a_device_that_speaks_no_common_version_fails_the_connection(fake):
    fake.response = lambda seq, mtype, body: m.error(
        seq, mtype, errors.VERSION_UNSUPPORTED, "device speaks 7..9"
    )
    with pytest.raises(DeviceRefused, match=r"refused HELLO: VERSION_UNSUPPORTED \(33\) — update tonus"):
        Client(Port(fake), timeout=TIMEOUT)


@pytest.mark.req("LINK-CLIENT-1")
def test_info_is_typed_with_named_fields(client):
    i = client.info()
    assert isinstance(i, Info) and i.ok
    assert i.state == "FAULT"
    assert (i.fault.name, i.fault.code, i.fault.latched, i.fault.time_ms, i.fault.count) == (
        "HOST_ESTOP",
        2,
        True,
        1500,
        1,
    )
    assert i.limits.hw_max_ua == 100000 and i.limits.emg_rate_hz == 2000
    assert i.session.cue == "REST" and i.session.host_driven is True and i.session.duration_ms == 60000
    assert i.link.rx_dropped == 1 and i.link.tx_frames == 5
    j = i.to_json()
    # where: only a fault from an exception says where it was raised
    assert j["fault"] == {
        "name": "HOST_ESTOP",
        "code": 2,
        "latched": True,
        "time_ms": 1500,
        "count": 1,
        "where": "",
    }
    assert j["limits"]["max_session_s"] == 3600 and j["protocol"] is None


@pytest.mark.req("LINK-CLIENT-1", "LINK-MSG-2")
def test_replies_are_matched_by_seq_and_what_arrives_between_is_queued(fake, client):
    fake.before_answer = [
        m.build(m.RESPONSE, 4242, m.PING, uptime_ms=1),  # an answer nobody waits for
        m.build(
            m.EVENT,
            0,
            m.STATE_CHANGED,
            from_state=m.IDLE,
            to_state=m.ARMED,
            reason=m.REASON_BUTTON,
            time_ms=7,
        ),
        m.build(m.STREAM, 0, m.EMG, first_index=100, samples=bytes(8), envelope_dv=3, state=m.ARMED, flags=0),
        m.build(m.EVENT, 1, m.CUE, phase=0, cue=m.CUE_REST, time_ms=9, duration_ms=10000),
    ]
    fake.uptime_ms = 5555
    r = client.ping()
    assert isinstance(r, Pong) and r.uptime_ms == 5555
    assert client.stale_replies == 1
    got = [client.poll(0), client.poll(0), client.poll(0)]
    assert got[0] == StateChanged(0, "IDLE", "ARMED", "BUTTON", 7)
    assert isinstance(got[1], EmgFrame) and got[1].first_index == 100 and got[1].count == 2
    assert got[2] == Cue(1, 0, "REST", 9, 10000)
    assert client.poll(0) is None
    assert client.state == "ARMED"


@pytest.mark.req("LINK-CLIENT-1", "LINK-MSG-2")
def test_sequence_numbers_wrap_at_16_bits_and_skip_zero(fake, client):
    client._seq = m.SEQ_MODULO - 2  # reaching the wrap by 65533 requests would only cost time
    for _ in range(3):
        assert client.ping().ok
    # 0 is what the device answers unparsable frames with: never ours
    assert [r[1] for r in fake.requests[-3:]] == [m.SEQ_MODULO - 1, 1, 2]


@pytest.mark.req("LINK-CLIENT-1")
def test_idempotent_requests_are_retried_with_a_new_seq(fake, client):
    fake.drop_next = 1
    assert client.info().ok
    infos = [r for r in fake.requests if r[2] == m.INFO]
    assert len(infos) == 2 and infos[0][1] != infos[1][1]


@pytest.mark.req("LINK-CLIENT-1")
def test_retries_are_bounded(fake, client):
    fake.mute = {m.PING}
    with pytest.raises(LinkError, match="no answer to PING from fake:// after 3 tries"):
        client.ping()
    assert fake.types().count(m.PING) == 3


@pytest.mark.req("LINK-CLIENT-1")
@pytest.mark.parametrize(
    "mtype, method",
    [(m.SESSION_START, "session_start"), (m.SESSION_STOP, "session_stop"), (m.FAULT_CLEAR, "fault_clear")],
)
def test_requests_that_are_unsafe_to_repeat_are_sent_once(fake, client, mtype, method):
    fake.mute = {mtype}
    with pytest.raises(LinkError, match="not resent because repeating it is not safe"):
        getattr(client, method)()
    assert fake.types().count(mtype) == 1


@pytest.mark.req("LINK-CLIENT-1", "SAF-ESTOP-1")
def test_an_unconfirmed_estop_is_raised_and_tells_to_press_the_button(fake, client):
    fake.mute = {m.ESTOP}
    with pytest.raises(LinkError, match=r"ESTOP was not confirmed .* press the emergency stop button"):
        client.estop()
    assert fake.types().count(m.ESTOP) == 1


@pytest.mark.req("LINK-CLIENT-1")
def test_device_refusals_are_values_with_code_and_name(fake, client):
    fake.response = lambda seq, mtype, body: m.error(
        seq, mtype, errors.FAULT_LATCHED, "clear the fault first"
    )
    r = client.session_start(demo_s=30)
    assert isinstance(r, Refusal) and not r.ok
    assert (r.request, r.code, r.name, r.detail) == (
        "SESSION_START",
        41,
        "FAULT_LATCHED",
        "clear the fault first",
    )
    with pytest.raises(DeviceRefused) as e:
        r.unwrap()
    assert str(e.value) == (
        "device refused SESSION_START: FAULT_LATCHED (41) — clear the fault with 'tonus fault clear' "
        "after releasing the e-stop"
    )
    assert fake.types().count(m.SESSION_START) == 1


@pytest.mark.req("LINK-CLIENT-1", "LINK-HELLO-1")
def test_after_a_device_reset_the_client_greets_again_once_and_resubscribes(fake, client):
    assert client.stream(True).ok
    fake.reboot()
    assert client.info().ok
    assert fake.types() == [m.HELLO, m.STREAM_CONTROL, m.INFO, m.HELLO, m.STREAM_CONTROL, m.INFO]


@pytest.mark.req("LINK-CLIENT-1")
def test_a_device_that_keeps_asking_for_hello_gets_one_more_try_only(fake, client):
    fake.reboot()
    real = fake.response
    fake.response = lambda seq, mtype, body: (
        m.error(seq, mtype, errors.HELLO_REQUIRED) if mtype != m.HELLO else real(seq, mtype, body)
    )
    r = client.ping()
    assert r.name == "HELLO_REQUIRED"
    assert fake.types()[1:] == [m.PING, m.HELLO, m.PING]


@pytest.mark.req("LINK-CLIENT-1")
@pytest.mark.parametrize(
    "payload, why",
    [
        (b"\xa1\x01", "TRUNCATED"),  # not CBOR a message can be
        (codec.dumps([m.RESPONSE, 2, m.PING, {}]), "BAD_FIELD"),  # uptime missing
        (codec.dumps([m.REQUEST, 9, m.PING, {}]), "sent a request"),
        (codec.dumps([m.RESPONSE, 2, m.INFO, {0: 1}]), "BAD_FIELD"),
    ],
)
def test_invalid_messages_from_the_device_raise_with_a_hexdump(fake, client, payload, why):
    fake.before_answer = [framing.encode(payload)]
    with pytest.raises(LinkError, match=why) as e:
        client.ping()
    assert e.value.data == payload
    assert "  0000  " + payload[:1].hex() in str(e.value)


@pytest.mark.req("LINK-CLIENT-1")
def test_a_reply_of_the_wrong_type_for_its_seq_raises(fake, client):
    fake.response = lambda seq, mtype, body: m.build(m.RESPONSE, seq, m.PING, uptime_ms=1)
    with pytest.raises(LinkError, match="answered INFO with a PING response"):
        client.info()


@pytest.mark.req("LINK-CLIENT-1", "LINK-MSG-6")
def test_an_emg_frame_with_a_partial_sample_raises(fake, client):
    fake.before_answer = [
        m.build(m.STREAM, 0, m.EMG, first_index=0, samples=bytes(7), envelope_dv=0, state=m.IDLE, flags=0)
    ]
    with pytest.raises(LinkError, match="partial sample"):
        client.ping()


@pytest.mark.req("LINK-CLIENT-1", "LINK-FRAME-2")
def test_unreadable_frames_are_counted_and_shown_when_the_answer_never_comes(fake, client):
    banner = b"MicroPython v1.28.0 on 2026-01-01; Raspberry Pi Pico with RP2040\r\n>>> "
    fake.before_answer = [b"\x00" + banner + b"\x00"]
    assert client.ping().ok  # noise ahead of an answer costs nothing
    assert client.dropped_frames == 1
    fake.mute = {m.PING}
    fake.before_answer = [banner + b"\x00"]
    with pytest.raises(LinkError) as e:
        client.ping()
    assert "1 unreadable frame(s) arrived meanwhile" in str(e.value)
    assert "|MicroPython v1.2|" in str(e.value)


@pytest.mark.req("LINK-FRAME-2")
def test_an_over_long_frame_is_dropped_up_to_the_next_delimiter(fake, client):
    fake.before_answer = [bytes([7]) * (framing.MAX_ENCODED * 3) + b"\x00"]
    assert client.ping().ok
    assert client.dropped_frames == 1


@pytest.mark.req("LINK-MSG-6", "LINK-CLIENT-1")
def test_emg_samples_unpack_to_signed_ints_as_list_and_array(fake, client):
    samples = [0, 1, -1, 2**31 - 1, -(2**31), 123456, -654321]
    fake.emg(2000, samples, flags=m.FLAG_LEAD_OFF | m.FLAG_GAP)
    f = client.poll(0.1)
    assert f.samples == samples
    a = f.array()
    assert a.dtype == np.dtype("<i4") and a.tolist() == samples
    assert (f.first_index, f.end_index, f.state) == (2000, 2007, "RUNNING")
    assert f.lead_off and f.gap and not f.saturated


@pytest.mark.req("LINK-MSG-2")
def test_gaps_in_event_and_stream_numbering_are_counted(fake, client):
    fake.push(m.EVENT, m.FAULT, code=5, time_ms=10)
    fake._seq[m.EVENT] += 3  # three events lost on the way
    fake.push(m.EVENT, m.FAULT, code=1, time_ms=20)
    a, b = client.poll(0.1), client.poll(0.1)
    assert isinstance(a, FaultEvent) and a.name == "HEARTBEAT_LOST" and not a.latched
    assert b.name == "ESTOP" and b.latched
    assert client.missed[m.EVENT] == 3 and client.missed[m.STREAM] == 0


@pytest.mark.req("SAF-HEARTBEAT-1", "LINK-CLIENT-1")
def test_heartbeat_follows_device_time_even_when_the_wall_clock_barely_moves(fake, client):
    assert client.session_start(demo_s=60, heartbeat_ms=300).ok
    assert client.heartbeat_ms == 300
    sent = len(fake.requests)

    def frames(first, n):
        # 50 ms of device time per frame (100 samples at 2 kHz), each read as it comes
        for k in range(first, first + n):
            fake.emg(k * 100, [0] * 100)
            assert isinstance(client.poll(0), EmgFrame)

    frames(0, 5)  # 250 ms
    pings = [r for r in fake.requests[sent:] if r[2] == m.PING]
    assert len(pings) == 2  # one per 100 ms (a third of the heartbeat) of device time
    fake.push(
        m.EVENT, m.STATE_CHANGED, from_state=m.RUNNING, to_state=m.DONE, reason=m.REASON_FINISHED, time_ms=1
    )
    assert isinstance(client.poll(0), StateChanged)
    frames(5, 5)
    assert client.heartbeat_ms == 0
    assert [r for r in fake.requests[sent:] if r[2] == m.PING] == pings  # the session is over


@pytest.mark.req("SAF-HEARTBEAT-1")
def test_heartbeat_is_kept_from_the_wall_clock_while_nothing_arrives(fake, client):
    assert client.session_start(demo_s=60, heartbeat_ms=150).ok
    sent = len(fake.requests)
    assert client.poll(0.25) is None
    n = len(fake.requests[sent:])
    assert all(r[2] == m.PING for r in fake.requests[sent:])
    assert 2 <= n <= 5  # every 50 ms at most, and not forgotten


@pytest.mark.req("SAF-HEARTBEAT-1")
def test_without_keep_alive_the_client_stays_silent(fake, client):
    assert client.session_start(demo_s=60, heartbeat_ms=150, keep_alive=False).ok
    sent = len(fake.requests)
    for k in range(10):
        fake.emg(k * 100, [0] * 100)
    while client.poll(0.02) is not None:
        pass
    assert fake.requests[sent:] == []


@pytest.mark.req("LINK-CLIENT-1")
def test_session_start_sends_the_given_fields_only(fake, client):
    client.session_start(demo_s=45, host_time_s=1_700_000_000)
    assert fake.requests[-1][3] == {0: 1_700_000_000, 1: 45}


@pytest.mark.req("LINK-CLIENT-1")
def test_events_iterates_until_the_device_falls_quiet(fake, client):
    fake.push(m.EVENT, m.CUE, phase=0, cue=m.CUE_REST, time_ms=5, duration_ms=10000)
    fake.emg(0, [1, 2])
    got = list(client.events(idle_timeout=0.05))
    assert [type(x) for x in got] == [Cue, EmgFrame]


@pytest.mark.req("LINK-CLIENT-1")
def test_the_queue_is_bounded_and_counts_what_it_discards(fake, client, monkeypatch):
    monkeypatch.setattr("host.client._QUEUE_MAX", 3)
    for k in range(5):
        fake.emg(k * 2, [0, 0])
    assert client.ping().ok  # frames arrive while the client waits for its answer
    assert client.overflowed == 2
    assert [client.poll(0).first_index for _ in range(3)] == [4, 6, 8]  # the newest are kept
