"""The session state machine and its transition table, on both runtimes."""

from dualtest import raises, req
from fakehal import booted, greeted, request, run
from firmware import session as S
from firmware import timeline
from firmware.eventlog import EventLog
from protocol import errors
from protocol import messages as m


def _session():
    changes = []
    log = EventLog()
    ses = S.Session(log, lambda a, b, r, t: changes.append((a, b, r, t)))
    return ses, log, changes


@req("SAF-STATE-1")
def test_every_transition_not_in_the_table_is_refused_and_logged():
    for state in range(len(m.STATE_NAMES)):
        for event in range(len(S.EVENT_NAMES)):
            ses, log, changes = _session()
            ses.state = state
            if (state, event) in S.TRANSITIONS:
                assert ses.fire(event, m.REASON_REQUEST, 100) == S.TRANSITIONS[(state, event)]
                assert changes == [(state, ses.state, m.REASON_REQUEST, 100)]
            else:
                want = (
                    errors.FAULT_LATCHED
                    if (state == m.FAULT_STATE and event == S.START)
                    else errors.ILLEGAL_STATE
                )
                raises(want, ses.fire, event, m.REASON_REQUEST, 100)
                assert ses.state == state and changes == []
                assert log.last(1) == [(100, EventLog.REFUSED, state, event)]


@req("SAF-STATE-1")
def test_fault_is_reachable_from_every_state_but_maintenance_and_only_clear_leaves_it():
    for state in range(len(m.STATE_NAMES)):
        has = (state, S.FAULT) in S.TRANSITIONS
        assert has == (state != m.MAINTENANCE)
    leaving = [
        e for (st, e) in S.TRANSITIONS if st == m.FAULT_STATE and S.TRANSITIONS[(st, e)] != m.FAULT_STATE
    ]
    assert leaving == [S.CLEAR]


@req("SES-RUN-1")
def test_running_time_excludes_pauses_and_the_session_finishes_on_time():
    ses, _log, _ch = _session()
    ses.start(timeline.demo(10), 0, m.REASON_REQUEST, 0)
    assert ses.state == m.ARMED
    ses.tick(5, True)
    assert ses.state == m.RUNNING
    ses.fire(S.PAUSE, m.REASON_REQUEST, 4005)
    assert ses.running_ms(60000) == 4000
    ses.fire(S.RESUME, m.REASON_REQUEST, 64005)
    assert ses.paused_ms == 60000
    ses.tick(70004, True)
    assert ses.state == m.RUNNING
    ses.tick(70005, True)
    assert ses.state == m.DONE
    assert ses.elapsed_ms == 10000


@req("SES-RUN-1")
def test_long_pause_ends_the_session_and_failed_checks_disarm():
    ses, _log, changes = _session()
    ses.start(timeline.demo(60), 0, m.REASON_REQUEST, 0)
    ses.tick(0, True)
    ses.fire(S.PAUSE, m.REASON_REQUEST, 1000)
    ses.tick(1000 + S.PAUSE_LIMIT_MS, True)
    assert ses.state == m.PAUSED
    ses.tick(1001 + S.PAUSE_LIMIT_MS, True)
    assert ses.state == m.DONE and changes[-1][2] == m.REASON_PAUSE_TIMEOUT
    ses.start(timeline.demo(60), 0, m.REASON_REQUEST, 500000)
    ses.tick(500000 + S.CHECKS_TIMEOUT_MS + 1, False)
    assert ses.state == m.IDLE and changes[-1][2] == m.REASON_CHECKS_FAILED


@req("SES-RUN-1")
def test_demo_length_is_bounded():
    hal, ctrl, host = greeted()
    for bad in (9, 3601):
        r = request(hal, ctrl, host, m.SESSION_START, demo_s=bad)
        assert r[0] == m.ERROR and r[3][0] == errors.BAD_FIELD
    assert ctrl.session.state == m.IDLE


@req("SES-RUN-1")
def test_demo_timeline_cycles_and_ends_exactly():
    t = timeline.demo(42)
    assert t.total_ms() == 42000
    assert t.cues[:4] == [m.CUE_REST, m.CUE_CONTRACT, m.CUE_RELAX, m.CUE_CONTRACT]
    assert t.at(0) == (0, m.CUE_REST, 10000)
    assert t.at(12000) == (1, m.CUE_CONTRACT, 3000)
    assert t.at(41999)[2] == 1


@req("SES-RUN-1")
def test_protocol_timeline_follows_the_phases():
    from therapy_docs import valid

    doc = valid()
    t = timeline.from_protocol(doc)
    from protocol import therapy

    assert t.total_ms() == therapy.session_seconds(doc) * 1000
    assert t.phase_of[0] == 0 and t.phase_of[-1] == 3
    glazer = {"type": "glazer", "phasic_rest_s": 10}
    doc["phases"] = [glazer]
    g = timeline.from_protocol(doc)
    assert g.total_ms() == therapy.phase_seconds(glazer) * 1000
    assert g.cues.count(m.CUE_CONTRACT) == 11  # 5 phasic, 5 tonic, 1 endurance


@req("SES-RUN-1", "LINK-MSG-2")
def test_device_session_streams_cues_and_ends_on_time():
    hal, ctrl, host = greeted()
    assert request(hal, ctrl, host, m.STREAM_CONTROL, enable=True)[0] == m.RESPONSE
    r = request(hal, ctrl, host, m.SESSION_START, demo_s=20)
    assert r[0] == m.RESPONSE and r[3][0] == m.ARMED
    run(hal, ctrl, 30)
    assert ctrl.session.state == m.RUNNING
    run(hal, ctrl, 12000)
    cues = host.of_type(m.EVENT, m.CUE)
    assert [c[3][1] for c in cues] == [m.CUE_REST, m.CUE_CONTRACT]
    frames = host.of_type(m.STREAM, m.EMG)
    firsts = [f[3][0] for f in frames]
    assert firsts == list(range(firsts[0], firsts[0] + 50 * len(firsts), 50))
    assert len(frames) >= 12000 * 2 // 50 - 2
    assert all(0 < f[3][2] < 100 for f in frames[-10:])  # RMS of a ±6 µV uniform signal
    run(hal, ctrl, 8100)
    assert ctrl.session.state == m.DONE
    ends = [e for e in host.of_type(m.EVENT, m.STATE_CHANGED) if e[3][1] == m.DONE]
    assert len(ends) == 1 and ends[0][3][2] == m.REASON_FINISHED
    assert abs(ctrl.session.elapsed_ms - 20000) <= 5
    assert not hal.enable_log  # the output was never enabled


@req("SES-BUTTON-1")
def test_patient_button_starts_pauses_and_resumes():
    from firmware import hal as H

    hal, ctrl = booted()
    hal.pressed = H.BTN_START
    run(hal, ctrl, 5)
    assert ctrl.session.state == m.ARMED
    run(hal, ctrl, 30)  # one EMG block assessed after arming
    assert ctrl.session.state == m.RUNNING and hal.led_mode == H.LED_RUNNING
    hal.pressed = H.BTN_START
    run(hal, ctrl, 5)
    assert ctrl.session.state == m.PAUSED and hal.led_mode == H.LED_PAUSED
    hal.pressed = H.BTN_START
    run(hal, ctrl, 5)
    assert ctrl.session.state == m.RUNNING


@req("EMG-CHAIN-1")
def test_the_mains_notch_follows_the_device_policy():
    from firmware.storage import POLICY_RECORD
    from protocol import record

    _hal, ctrl = booted(files={POLICY_RECORD: record.pack({"amplitude_max_ua": 0, "mains_hz": 60})})
    assert ctrl.emg.chain.mains_hz == 60
    _hal, ctrl = booted()
    assert ctrl.emg.chain.mains_hz == 50
