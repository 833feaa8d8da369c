"""The budget, the compliance log and the audit survive power cuts and hostile hosts. Both runtimes."""

import binascii

from dualtest import raises, req
from fakehal import greeted, request, run
from firmware.storage import AUDIT_RECORD
from protocol import codec, errors, record
from protocol import messages as m
from test_firmware_protocols import cose, provisioned, upload


@req("REC-ATOMIC-1")
def test_a_record_is_its_cbor_then_its_crc_and_a_damaged_one_is_refused():
    rec = {"cose": bytes(range(256)) * 3, "used": 7, "open": None, "keys": b"\x01" * 32}
    blob = record.pack(rec)
    body = codec.dumps(rec)
    assert bytes(blob) == body + (binascii.crc32(body) & 0xFFFFFFFF).to_bytes(4, "little")
    assert record.unpack(bytes(blob)) == rec
    for i in (0, len(body) // 2, len(blob) - 1):
        damaged = bytearray(blob)
        damaged[i] ^= 0x10
        raises(errors.BAD_CRC, record.unpack, bytes(damaged))


def _practised(files):
    """Boot from these files: (sessions charged, compliance-log entries)."""
    _hal, ctrl, _host = greeted(files=dict(files))
    return ctrl.therapy.used, ctrl.sessionlog.next_seq, ctrl


@req("REC-ATOMIC-1")
def test_a_power_cut_at_any_write_of_a_session_charges_it_only_with_a_log_entry():
    hal, ctrl, host = greeted(files=provisioned())
    assert upload(hal, ctrl, host, cose("v1"))[0] == m.RESPONSE
    base = dict(hal.files)
    before = hal.fs_writes
    assert request(hal, ctrl, host, m.SESSION_START)[0] == m.RESPONSE
    run(hal, ctrl, 200)
    request(hal, ctrl, host, m.SESSION_STOP)
    n = hal.fs_writes - before
    assert n >= 2 and _practised(hal.files)[:2] == (1, 1)
    for cut in range(n):
        hal, ctrl, host = greeted(files=dict(base))
        hal.cut_at = hal.fs_writes + cut
        request(hal, ctrl, host, m.SESSION_START)
        run(hal, ctrl, 200)
        request(hal, ctrl, host, m.SESSION_STOP)
        used, logged, _ = _practised(hal.files)
        # charged and logged, or neither; never logged twice
        assert used == logged and used in (0, 1), (cut, used, logged)


@req("REC-ATOMIC-1")
def test_a_session_whose_entry_was_stored_is_not_logged_again_at_boot():
    hal, ctrl, host = greeted(files=provisioned())
    upload(hal, ctrl, host, cose("v1"))
    request(hal, ctrl, host, m.SESSION_START)
    run(hal, ctrl, 200)
    marker = ctrl.therapy.open
    request(hal, ctrl, host, m.SESSION_STOP)
    assert ctrl.therapy.open is None
    # the entry reached the flash, the marker's removal did not
    from firmware.storage import THERAPY_RECORD

    rec = record.unpack(hal.files[THERAPY_RECORD])
    rec["open"] = marker
    files = dict(hal.files)
    files[THERAPY_RECORD] = record.pack(rec)
    used, logged, ctrl2 = _practised(files)
    assert (used, logged) == (1, 1) and ctrl2.therapy.open is None


@req("STORE-WEAR-1")
def test_a_hostile_host_cannot_make_the_device_write_flash_at_will():
    hal, ctrl, host = greeted(files=provisioned())
    assert upload(hal, ctrl, host, cose("v1"))[0] == m.RESPONSE
    before = hal.fs_writes
    for _ in range(30):
        r = upload(hal, ctrl, host, cose("stranger"))
        assert r[0] == m.ERROR and r[3][0] == errors.UNKNOWN_KID
    for _ in range(30):
        request(hal, ctrl, host, m.ESTOP)
        request(hal, ctrl, host, m.FAULT_CLEAR)
    writes = hal.fs_writes - before
    assert writes <= 12, writes
    # nothing refused goes unrecorded: the audit counts every refusal
    hal.advance(120000)
    run(hal, ctrl, 10)
    upload(hal, ctrl, host, cose("stranger"))
    audit = record.unpack(hal.files[AUDIT_RECORD])
    refused = [a for a in audit if a[1] == 2]
    assert sum(a[4] if len(a) > 4 else 1 for a in refused) == 31, audit


def _host_driven(hal, ctrl, host, silent_after_ms):
    assert request(hal, ctrl, host, m.SESSION_START, heartbeat_ms=1000)[0] == m.RESPONSE
    for _ in range(silent_after_ms // 500):
        run(hal, ctrl, 500)
        request(hal, ctrl, host, m.PING)
    run(hal, ctrl, 1100)  # the host is gone
    assert ctrl.session.state == m.DONE


@req("REC-HOSTFAIL-1")
def test_a_session_the_host_failed_early_is_logged_as_such_and_not_charged():
    hal, ctrl, host = greeted(files=provisioned())
    assert upload(hal, ctrl, host, cose("v1"))[0] == m.RESPONSE
    _host_driven(hal, ctrl, host, 3000)
    e = ctrl.sessionlog.get(0)
    assert e[m.LOG_END_REASON] == m.REASON_HEARTBEAT_LOST and e[m.LOG_RUN_MS] > 0
    used, logged, _ = _practised(hal.files)
    assert (used, logged) == (0, 1)  # logged, and the session given back
    # the interval still counts from its start
    r = request(hal, ctrl, host, m.SESSION_START, heartbeat_ms=1000)
    assert r[0] == m.ERROR and r[3][0] == errors.INTERVAL_NOT_ELAPSED


@req("REC-HOSTFAIL-1")
def test_a_session_the_host_failed_late_is_charged():
    from firmware import records

    hal, ctrl, host = greeted(files=provisioned())
    assert upload(hal, ctrl, host, cose("v1"))[0] == m.RESPONSE
    ctrl.therapy.doc["phases"] = ctrl.therapy.doc["phases"][:1]  # a 60 s session keeps this test short
    _host_driven(hal, ctrl, host, 60000 * records.HOST_FAIL_REFUND_PERCENT // 100 + 500)
    assert ctrl.sessionlog.get(0)[m.LOG_END_REASON] == m.REASON_HEARTBEAT_LOST
    assert _practised(hal.files)[:2] == (1, 1)


@req("STORE-WEAR-1")
def test_refusals_held_back_reach_the_flash_with_the_next_session_start():
    hal, ctrl, host = greeted(files=provisioned())
    assert upload(hal, ctrl, host, cose("v1"))[0] == m.RESPONSE
    for _ in range(3):
        upload(hal, ctrl, host, cose("stranger"))

    def refused_on_flash():
        return sum(a[4] if len(a) > 4 else 1 for a in record.unpack(hal.files[AUDIT_RECORD]) if a[1] == 2)

    assert refused_on_flash() == 0  # within a minute of the last audit write: held in RAM
    assert request(hal, ctrl, host, m.SESSION_START)[0] == m.RESPONSE
    assert refused_on_flash() == 3


@req("STORE-WEAR-1")
def test_ratings_cost_a_bounded_number_of_flash_writes():
    hal, ctrl, host = greeted()
    request(hal, ctrl, host, m.SESSION_START, demo_s=10)
    run(hal, ctrl, 200)
    request(hal, ctrl, host, m.SESSION_STOP)
    before = hal.fs_writes
    answers = [request(hal, ctrl, host, m.SESSION_RATE, session=0, pain=i % 2)[0] for i in range(20)]
    # three changes written, then every further change refused (the same score again is a no-op)
    assert hal.fs_writes - before == 3 and answers.count(m.ERROR) == 9
    assert request(hal, ctrl, host, m.SESSION_RATE, session=0, pain=0)[0] == m.RESPONSE  # unchanged: no write
    hal.advance(20000)
    assert request(hal, ctrl, host, m.SESSION_RATE, session=0, pain=7)[0] == m.RESPONSE
    assert ctrl.sessionlog.get(0)[m.LOG_PAIN] == 7
