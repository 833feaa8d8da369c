"""What the device stores it can report, and trusts only while it should. Both runtimes."""

from dualtest import req, unhex
from fakehal import greeted, request
from firmware.storage import KEYS_RECORD, THERAPY_RECORD
from firmware.therapy_store import SUMMARY_MAX_BYTES
from protocol import codec, errors, framing, record, therapy
from protocol import messages as m
from test_firmware_protocols import V, cose, provisioned, shown, upload
from therapy_docs import valid

_WIDE = "\U0001f600"  # four bytes of UTF-8 in one character


def _widest():
    """A valid protocol whose every reported text is as long in bytes as the rules allow."""
    doc = valid()
    doc["id"] = _WIDE * (therapy.TEXT_BYTES["id"][1] // 4)
    doc["patient"] = _WIDE * (therapy.TEXT_BYTES["patient"][1] // 4)
    doc["approved_by"] = _WIDE * (therapy.TEXT_BYTES["approved_by"][1] // 4)
    doc["device"] = "D" * therapy.TEXT_BYTES["device"][1]
    doc["sequence"] = therapy.SEQUENCE_MAX
    doc["budget"] = {"sessions": 1000, "min_interval_s": 7 * 86400, "max_session_s": 3600}
    return doc


@req("PROT-TEXT-1")
def test_text_limits_are_bytes_and_refuse_controls_and_bidi():
    doc = valid()
    doc["id"] = "\u6cbb" * 40  # 40 characters, 120 bytes
    probs = therapy.validate(doc)
    assert [p for p, _ in probs] == [("id",)] and "bytes" in probs[0][1]
    doc["id"] = "\u6cbb" * 13  # 39 bytes
    assert therapy.validate(doc) == []
    for bad in ("A\x00B", "A\u202eB", "A\u2067B", "A\x1bB", "A\x85B", "A\u200fB"):
        for key in ("id", "patient", "approved_by"):
            doc = valid()
            doc[key] = bad
            assert [p for p, _ in therapy.validate(doc)] == [(key,)], (key, bad)
    doc = valid()
    doc["screening"]["attested_by"] = "X\u202d"
    assert [p for p, _ in therapy.validate(doc)] == [("screening", "attested_by")]
    doc = valid()
    doc["notes"] = "a\nb"
    assert [p for p, _ in therapy.validate(doc)] == [("notes",)]
    doc["notes"] = "x" * 401
    assert [p for p, _ in therapy.validate(doc)] == [("notes",)]


@req("PROT-TEXT-1", "LINK-FRAME-4")
def test_the_device_refuses_a_signed_protocol_it_could_not_report():
    hal, ctrl, host = greeted(files=provisioned())
    for name in ("wide", "bidi"):
        r = upload(hal, ctrl, host, cose(name))
        assert r[0] == m.ERROR and r[3][0] == errors.PROTOCOL_INVALID, (name, r)
        assert THERAPY_RECORD not in hal.files or shown(hal, ctrl, host)[0] is None


@req("LINK-FRAME-4")
def test_every_reply_about_the_widest_protocol_fits_one_frame():
    doc = _widest()
    assert therapy.validate(doc) == []
    _hal, ctrl, _host = greeted()
    t = ctrl.therapy
    t.doc, t.digest, t.kid, t.used = doc, b"\xff" * 32, b"\xff" * 8, 1000
    assert len(codec.dumps(t.summary())) <= SUMMARY_MAX_BYTES
    # the worst of everything else INFO reports
    s = ctrl.safety
    s.fault, s.fault_ms, s.fault_count = 255, 0xFFFFFFFF, 0xFFFF
    ctrl.records.crash.restore("x" * 1000)  # where the exception was raised, as long as it is kept
    ses = ctrl.session
    ses.duration_ms = ses.elapsed_ms = ses.paused_ms = 0xFFFFFFFF
    ses.phase, ses.cue, ses.heartbeat_ms = 15, 255, 0xFFFF
    ln = ctrl.link
    ln.rx_frames = ln.rx_refused = ln.tx_frames = ln.tx_dropped = 0xFFFFFFFF
    for mtype, body in (
        (m.INFO, ctrl.handlers.info({}, 0xFFFFFFFF)),
        (m.PROTOCOL_SHOW, ctrl.handlers.protocol_show({}, 0)),
    ):
        payload = codec.dumps(m.build(m.RESPONSE, 0xFFFF, mtype, **body))
        assert len(payload) <= framing.MAX_PAYLOAD, (mtype, len(payload))
        framing.encode(payload)  # raises when a frame would be too long


@req("PROT-ROLLBACK-2")
def test_one_signature_cannot_use_up_the_sequence_numbers():
    hal, ctrl, host = greeted(files=provisioned())
    r = upload(hal, ctrl, host, cose("leap"))
    assert r[0] == m.ERROR and r[3][0] == errors.SEQUENCE_JUMP
    assert shown(hal, ctrl, host) == (None, 0)
    assert upload(hal, ctrl, host, cose("v1"))[0] == m.RESPONSE


@req("PROT-TRUST-1")
def test_a_revoked_key_stops_the_protocol_it_signed_at_the_next_boot():
    hal, ctrl, host = greeted(files=provisioned())
    assert upload(hal, ctrl, host, cose("v1"))[0] == m.RESPONSE
    files = dict(hal.files)
    files[KEYS_RECORD] = record.pack({})  # re-provisioned without the clinician's key
    hal2, ctrl2, host2 = greeted(files=files)
    assert shown(hal2, ctrl2, host2) == (None, 1)
    r = request(hal2, ctrl2, host2, m.SESSION_START)
    assert ctrl2.therapy.doc is None and ctrl2.safety.protocol_verified is False, r
    assert ctrl2.stim.limit_ua == 0
    # trusting the key again brings the stored protocol back
    files = dict(hal2.files)
    files[KEYS_RECORD] = record.pack({unhex(V["kid"]): unhex(V["public_key"])})
    hal3, ctrl3, host3 = greeted(files=files)
    assert shown(hal3, ctrl3, host3)[0][m.PINFO_SEQUENCE] == 1


@req("PROT-TRUST-1")
def test_a_lowered_policy_stops_a_protocol_it_no_longer_allows():
    from firmware.storage import POLICY_RECORD

    hal, ctrl, host = greeted(files=provisioned())
    assert upload(hal, ctrl, host, cose("v1"))[0] == m.RESPONSE
    files = dict(hal.files)
    files[POLICY_RECORD] = record.pack({"amplitude_max_ua": 10000})  # the protocol asks for 40 mA
    hal2, ctrl2, host2 = greeted(files=files)
    assert shown(hal2, ctrl2, host2) == (None, 1)
