"""Approved protocols on the device: upload, verify, refuse, store, count. Both runtimes."""

from dualtest import raises, req, unhex, vectors
from fakehal import greeted, request, run
from firmware.storage import AUDIT_RECORD, KEYS_RECORD, POLICY_RECORD, THERAPY_RECORD
from protocol import errors, record
from protocol import messages as m

V = vectors("protocols.json")


def provisioned():
    """Flash as provisioning leaves it: one trusted clinician key and a policy."""
    return {
        KEYS_RECORD: record.pack({unhex(V["kid"]): unhex(V["public_key"])}),
        POLICY_RECORD: record.pack({"amplitude_max_ua": 50000}),
    }


def cose(name):
    return unhex(V["cases"][name]["cose"])


def upload(hal, ctrl, host, data, start=0):
    import hashlib

    r = request(hal, ctrl, host, m.PROTOCOL_BEGIN, size=len(data), sha256=hashlib.sha256(data).digest())
    if r[0] != m.RESPONSE:
        return r
    off = r[3][0]
    assert off == start
    while off < len(data):
        r = request(hal, ctrl, host, m.PROTOCOL_CHUNK, offset=off, data=data[off : off + m.UPLOAD_CHUNK])
        if r[0] != m.RESPONSE:
            return r
        off = r[3][0]
    return request(hal, ctrl, host, m.PROTOCOL_COMMIT)


def shown(hal, ctrl, host):
    r = request(hal, ctrl, host, m.PROTOCOL_SHOW)
    return r[3][0], r[3][1]


@req("PROT-UPLOAD-1", "PROT-VERIFY-1")
def test_a_signed_protocol_is_verified_stored_and_shown():
    hal, ctrl, host = greeted(files=provisioned())
    r = upload(hal, ctrl, host, cose("v1"))
    assert r[0] == m.RESPONSE, r
    info, max_seq = shown(hal, ctrl, host)
    assert info[m.PINFO_ID] == "ets-weak-pf" and info[m.PINFO_SEQUENCE] == 1 and max_seq == 1
    assert info[m.PINFO_KID] == unhex(V["kid"]) and info[m.PINFO_USED] == 0
    assert THERAPY_RECORD in hal.files


@req("PROT-VERIFY-2")
def test_the_verifier_and_the_rules_are_loaded_for_an_upload_only():
    import sys

    import protocol

    names = ("protocol.cose", "protocol.ed25519", "protocol.sha512", "protocol.therapy", "protocol.electrode")
    kept = {n: sys.modules.pop(n) for n in names if n in sys.modules}  # as on a board after boot
    saved = {n: getattr(protocol, n.split(".")[1]) for n in names if hasattr(protocol, n.split(".")[1])}
    for n in saved:
        delattr(protocol, n.split(".")[1])
    try:
        hal, ctrl, host = greeted(files=provisioned())
        for name in ("v1", "tampered"):  # accepted or refused, the verifier and the rules go
            upload(hal, ctrl, host, cose(name))
            assert [n for n in names if n in sys.modules or hasattr(protocol, n.split(".")[1])] == []
        assert shown(hal, ctrl, host)[0][m.PINFO_SEQUENCE] == 1
        assert upload(hal, ctrl, host, cose("v2"))[0] == m.RESPONSE  # loaded again when needed
    finally:
        for n, mod in kept.items():
            sys.modules[n] = mod
        for n, mod in saved.items():
            setattr(protocol, n.split(".")[1], mod)


@req("PROT-VERIFY-1", "PROT-ROLLBACK-1")
def test_every_refusal_keeps_the_previous_protocol():
    hal, ctrl, host = greeted(files=provisioned())
    upload(hal, ctrl, host, cose("v1"))
    before = hal.files[THERAPY_RECORD]
    for name in ("foreign", "tampered", "unsafe", "stranger"):
        r = upload(hal, ctrl, host, cose(name))
        assert r[0] == m.ERROR and errors.name(r[3][0]) == V["cases"][name]["expect"], (name, r)
        assert hal.files[THERAPY_RECORD] == before
        assert shown(hal, ctrl, host)[0][m.PINFO_SEQUENCE] == 1
    audit = ctrl.therapy.audit  # on flash at most once a minute (STORE-WEAR-1)
    assert [a[1] for a in audit].count(2) == 4  # four refusals on record
    assert upload(hal, ctrl, host, cose("v2"))[0] == m.RESPONSE
    assert [a[1] for a in record.unpack(hal.files[AUDIT_RECORD])].count(2) == 4  # flushed with the next
    r = upload(hal, ctrl, host, cose("v1"))
    assert r[0] == m.ERROR and r[3][0] == errors.ROLLBACK
    assert shown(hal, ctrl, host)[1] == 2


@req("PROT-UPLOAD-1")
def test_upload_resumes_and_refuses_wrong_offsets_and_digests():
    import hashlib

    hal, ctrl, host = greeted(files=provisioned())
    data = cose("v1")
    digest = hashlib.sha256(data).digest()
    request(hal, ctrl, host, m.PROTOCOL_BEGIN, size=len(data), sha256=digest)
    request(hal, ctrl, host, m.PROTOCOL_CHUNK, offset=0, data=data[: m.UPLOAD_CHUNK])
    r = request(hal, ctrl, host, m.PROTOCOL_CHUNK, offset=0, data=data[: m.UPLOAD_CHUNK])
    assert r[0] == m.ERROR and r[3][0] == errors.UPLOAD_OFFSET
    # the connection drops; the host begins again and continues where it was
    assert upload(hal, ctrl, host, data, start=m.UPLOAD_CHUNK)[0] == m.RESPONSE
    bad = bytes(32)
    request(hal, ctrl, host, m.PROTOCOL_BEGIN, size=len(data), sha256=bad)
    for off in range(0, len(data), m.UPLOAD_CHUNK):
        request(hal, ctrl, host, m.PROTOCOL_CHUNK, offset=off, data=data[off : off + m.UPLOAD_CHUNK])
    r = request(hal, ctrl, host, m.PROTOCOL_COMMIT)
    assert r[0] == m.ERROR and r[3][0] == errors.UPLOAD_HASH
    r = request(hal, ctrl, host, m.PROTOCOL_BEGIN, size=m.UPLOAD_MAX + 1, sha256=digest)
    assert r[3][0] == errors.UPLOAD_TOO_LARGE
    assert request(hal, ctrl, host, m.PROTOCOL_COMMIT)[3][0] == errors.NO_UPLOAD


@req("PROT-UPLOAD-1", "SAF-STATE-1")
def test_no_upload_while_a_session_runs():
    hal, ctrl, host = greeted(files=provisioned())
    request(hal, ctrl, host, m.SESSION_START)
    r = request(hal, ctrl, host, m.PROTOCOL_BEGIN, size=10, sha256=bytes(32))
    assert r[0] == m.ERROR and r[3][0] == errors.BUSY


@req("PROT-BUDGET-1")
def test_sessions_are_counted_and_the_interval_enforced():
    hal, ctrl, host = greeted(files=provisioned())
    upload(hal, ctrl, host, cose("v1"))
    r = request(hal, ctrl, host, m.SESSION_START, demo_s=30)
    assert r[0] == m.ERROR and r[3][0] == errors.BAD_FIELD  # the protocol decides, not the host
    assert request(hal, ctrl, host, m.SESSION_START)[0] == m.RESPONSE
    assert shown(hal, ctrl, host)[0][m.PINFO_USED] == 1
    run(hal, ctrl, 100)
    request(hal, ctrl, host, m.SESSION_STOP)
    r = request(hal, ctrl, host, m.SESSION_START)
    assert r[0] == m.ERROR and r[3][0] == errors.INTERVAL_NOT_ELAPSED
    # a reboot does not reset the interval: uptime carries over
    hal2, ctrl2, host2 = greeted(files=hal.files)
    r = request(hal2, ctrl2, host2, m.SESSION_START)
    assert r[0] == m.ERROR and r[3][0] == errors.INTERVAL_NOT_ELAPSED
    hal2.t_ms += 72000 * 1000
    hal2.emg_produced = hal2.emg_next = hal2.t_ms * 2  # skip the idle samples
    assert request(hal2, ctrl2, host2, m.SESSION_START)[0] == m.RESPONSE
    assert shown(hal2, ctrl2, host2)[0][m.PINFO_USED] == 2


@req("PROT-BUDGET-1")
def test_without_a_protocol_there_is_no_budget_to_start_from():
    hal, ctrl, _host = greeted(files=provisioned())
    raises(errors.NO_PROTOCOL, ctrl.therapy.check_start, hal.t_ms)


@req("PROT-BUDGET-1")
def test_remove_keeps_the_rollback_counter():
    hal, ctrl, host = greeted(files=provisioned())
    upload(hal, ctrl, host, cose("v2"))
    assert request(hal, ctrl, host, m.PROTOCOL_REMOVE)[0] == m.RESPONSE
    info, max_seq = shown(hal, ctrl, host)
    assert info is None and max_seq == 2
    assert upload(hal, ctrl, host, cose("v1"))[3][0] == errors.ROLLBACK
    assert request(hal, ctrl, host, m.PROTOCOL_REMOVE)[3][0] == errors.NO_PROTOCOL


@req("PROT-POWER-1")
def test_power_cut_at_every_flash_write_of_an_upload_leaves_old_or_new():
    hal, ctrl, host = greeted(files=provisioned())
    upload(hal, ctrl, host, cose("v1"))
    base = dict(hal.files)
    writes_before = hal.fs_writes
    upload(hal, ctrl, host, cose("v2"))
    n = hal.fs_writes - writes_before
    assert n >= 1
    for cut in range(n + 1):
        hal, ctrl, host = greeted(files=dict(base))
        hal.cut_at = hal.fs_writes + cut
        upload(hal, ctrl, host, cose("v2"))
        # power comes back: boot from whatever reached the flash
        hal2, ctrl2, host2 = greeted(files=dict(hal.files))
        info, max_seq = shown(hal2, ctrl2, host2)
        assert ctrl2.safety.fault == 0, cut
        assert (info[m.PINFO_SEQUENCE], max_seq) in ((1, 1), (2, 2)), (cut, info, max_seq)


@req("PROT-POWER-1", "SAF-BOOT-1")
def test_a_damaged_protocol_record_boots_safe_not_unlimited():
    hal, ctrl, host = greeted(files=provisioned())
    upload(hal, ctrl, host, cose("v1"))
    files = dict(hal.files)
    blob = bytearray(files[THERAPY_RECORD])
    blob[40] ^= 0xFF
    files[THERAPY_RECORD] = bytes(blob)
    hal2, ctrl2, host2 = greeted(files=files)
    from protocol import faults

    assert ctrl2.safety.fault == faults.STORAGE
    r = request(hal2, ctrl2, host2, m.SESSION_START)
    assert r[0] == m.ERROR and r[3][0] == errors.FAULT_LATCHED


@req("SAF-HEARTBEAT-1")
def test_a_host_driving_stimulation_must_keep_a_heartbeat_of_at_most_one_second():
    hal, ctrl, host = greeted(files=provisioned())
    assert upload(hal, ctrl, host, cose("v1"))[0] == m.RESPONSE
    r = request(hal, ctrl, host, m.SESSION_START, heartbeat_ms=2000)
    assert r[0] == m.ERROR and r[3][0] == errors.BAD_FIELD and "1000 ms" in r[3][1]
    assert ctrl.session.state == m.IDLE and ctrl.therapy.used == 0  # refused before counting
    r = request(hal, ctrl, host, m.SESSION_START, heartbeat_ms=1000)
    assert r[0] == m.RESPONSE and ctrl.session.state == m.ARMED
