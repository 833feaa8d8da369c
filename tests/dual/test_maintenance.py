"""Maintenance for tonus flash, and 0x03 bytes on the link. Both runtimes."""

from dualtest import raises, req
from fakehal import FakeHal, Host
from firmware import maintenance, timeline
from firmware.eventlog import EventLog
from firmware.link import Link
from firmware.safety import Safety
from firmware.session import Session
from firmware.storage import Store
from protocol import codec, errors, framing, record
from protocol import messages as m


def parts(**kw):
    hal = FakeHal(**kw)
    safety = Safety(hal)
    log = EventLog()
    session = Session(log, lambda *a: None)
    store = Store(hal, safety)
    return hal, safety, session, store, maintenance.Maintenance(hal, safety, session, store)


@req("SAF-MAINT-1")
def test_granted_maintenance_turns_the_output_off_marks_the_next_boot_and_resets_after_the_answer():
    hal, _safety, _session, _store, maint = parts()
    hal.t_ms = 5000
    hal.out_enable(True)  # whatever left it on, maintenance turns it off
    assert maint.enter({}, 5000) == {"state": m.MAINTENANCE}
    assert not hal.enabled and maint.pending()
    assert record.unpack(hal.files[maintenance.MARKER]) == {0: 5000}
    maint.poll(5000 + maintenance.RESET_DELAY_MS - 1)
    assert hal.resets == []  # the answer has not left yet
    hal.t_ms = 5000 + maintenance.RESET_DELAY_MS
    maint.poll(hal.t_ms)
    assert hal.resets == [5000 + maintenance.RESET_DELAY_MS] and not hal.enabled


@req("SAF-MAINT-1")
def test_maintenance_is_refused_during_a_session_and_changes_nothing():
    hal, _safety, session, _store, maint = parts()
    session.start(timeline.demo(timeline.DEMO_DEFAULT_S), 0, m.REASON_REQUEST, 0)
    assert session.active()
    raises(errors.BUSY, maint.enter, {}, 10)
    assert maintenance.MARKER not in hal.files and not maint.pending()
    maint.poll(10000)
    assert hal.resets == [] and session.state == m.ARMED


@req("SAF-MAINT-1")
def test_a_marker_that_cannot_be_written_refuses_maintenance():
    hal, _safety, _session, _store, maint = parts()
    hal.cut_at = 0  # the flash write fails
    raises(errors.INTERNAL, maint.enter, {}, 10)
    assert not maint.pending()


@req("SAF-MAINT-1")
def test_the_marker_is_taken_once_so_the_reset_after_flashing_boots_the_application():
    hal, _safety, _session, _store, maint = parts()
    maint.enter({}, 1)
    assert maintenance.take_marker(hal) is True
    assert maintenance.take_marker(hal) is False
    assert maintenance.MARKER not in hal.files


@req("UX-FLASH-2")
def test_the_firmware_hash_is_read_from_the_record_tonus_flash_writes():
    digest = bytes(range(32))
    _hal, _safety, _session, store, _maint = parts(
        files={maintenance.FIRMWARE_RECORD: record.pack({0: digest})}
    )
    assert maintenance.firmware_hash(store) == digest
    _hal, _safety, _session, store, _maint = parts()
    assert maintenance.firmware_hash(store) is None
    damaged = bytearray(record.pack({0: digest}))
    damaged[3] ^= 1
    _hal, _safety, _session, store, _maint = parts(files={maintenance.FIRMWARE_RECORD: bytes(damaged)})
    assert maintenance.firmware_hash(store) is None and store.corrupt == 1


def _link(hal, maint):
    handlers = {m.MAINTENANCE_ENTER: maint.enter, m.PING: lambda body, now: {"uptime_ms": now}}
    link = Link(hal, handlers, EventLog())
    link.greeted = True  # HELLO is firmware/handlers.py's; these tests are about the two requests
    return link


@req("SAF-MAINT-1", "LINK-MSG-1")
def test_maintenance_over_the_link_answers_maintenance_before_the_reset():
    hal, _safety, _session, _store, maint = parts()
    link = _link(hal, maint)
    host = Host(hal)
    seq = host.send(m.MAINTENANCE_ENTER)
    link.poll(100)
    reply = host.reply(seq)
    assert reply == (m.RESPONSE, seq, m.MAINTENANCE_ENTER, {0: m.MAINTENANCE})
    maint.poll(100 + maintenance.RESET_DELAY_MS)
    assert len(hal.resets) == 1


@req("LINK-REPL-1", "LINK-FRAME-1")
def test_frames_full_of_0x03_are_decoded_and_answered():
    hal, _safety, _session, _store, maint = parts()
    link = _link(hal, maint)
    host = Host(hal)
    host.seq = 0x0302  # the next request has seq 0x0303, type PING (3): 0x03 bytes in the frame
    frame = framing.encode(codec.dumps(m.build(m.REQUEST, 0x0303, m.PING)))
    assert frame.count(b"\x03") >= 3
    seq = host.send(m.PING)
    link.poll(3)
    assert host.reply(seq) == (m.RESPONSE, 0x0303, m.PING, {0: 3})
    blob = b"\x03" * 300
    assert framing.decode(framing.encode(blob)) == blob


@req("SAF-MAINT-1")
def test_the_controller_grants_maintenance_only_between_sessions_and_starts_nothing_after():
    from fakehal import greeted, request, run

    hal, ctrl, host = greeted()
    request(hal, ctrl, host, m.SESSION_START, demo_s=30)
    r = request(hal, ctrl, host, m.MAINTENANCE_ENTER)
    assert r[0] == m.ERROR and r[3][0] == errors.BUSY and maintenance.MARKER not in hal.files
    request(hal, ctrl, host, m.SESSION_STOP)
    run(hal, ctrl, 20)
    r = request(hal, ctrl, host, m.MAINTENANCE_ENTER)
    assert r[0] == m.RESPONSE and r[3][0] == m.MAINTENANCE and maintenance.MARKER in hal.files
    r = request(hal, ctrl, host, m.SESSION_START, demo_s=30)
    assert r[0] == m.ERROR and r[3][0] == errors.BUSY
    run(hal, ctrl, maintenance.RESET_DELAY_MS + 10)
    assert len(hal.resets) >= 1 and not hal.enabled


@req("UX-FLASH-2", "LINK-HELLO-1")
def test_hello_reports_the_deployed_image_hash():
    from fakehal import greeted

    digest = bytes(range(32))
    hal, ctrl, host = greeted(files={maintenance.FIRMWARE_RECORD: record.pack({0: digest})})
    r = host.reply(host.send(m.HELLO, min_version=1, max_version=1)) or None
    from fakehal import request

    r = request(hal, ctrl, host, m.HELLO, min_version=1, max_version=1)
    assert r[3][5] == digest
    hal2, ctrl2, host2 = greeted()
    assert 5 not in request(hal2, ctrl2, host2, m.HELLO, min_version=1, max_version=1)[3]
