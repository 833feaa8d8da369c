"""The controller scores sessions, announces the score and advises stopping. Both runtimes."""

from dualtest import req
from fakehal import greeted, request, run
from firmware import hal as H
from firmware.patient_io import TONE_ADVICE_HZ
from protocol import messages as m


def _running_demo(seconds=60):
    hal, ctrl, host = greeted()
    request(hal, ctrl, host, m.STREAM_CONTROL, enable=False)
    request(hal, ctrl, host, m.SESSION_START, demo_s=seconds)
    run(hal, ctrl, 300)
    assert ctrl.session.state == m.RUNNING
    return hal, ctrl, host


@req("EMG-SCORE-1")
def test_a_session_that_ran_is_scored_and_announced_once():
    hal, ctrl, host = _running_demo(30)
    run(hal, ctrl, 31000)
    assert ctrl.session.state == m.DONE
    sums = host.of_type(m.EVENT, m.SUMMARY)
    assert len(sums) == 1
    body = sums[0][3]
    assert body[1] == m.REASON_FINISHED and body[2] == 0
    assert 29900 <= body[3] <= 30000  # practised time
    phase = body[6][0]
    assert phase[m.SC_KIND] == 0 and phase[m.SC_PLANNED_MS] == 30000
    # the fake front end's samples are uniform in +-6 µV: RMS 3.5 µV, after the high-pass a little less
    assert 25 <= phase[m.SC_REST_DV] <= 40
    assert ctrl.last_summary == body


@req("EMG-SCORE-1")
def test_a_session_stopped_early_is_scored_over_the_time_practised():
    hal, ctrl, host = _running_demo(60)
    run(hal, ctrl, 12000)
    r = request(hal, ctrl, host, m.SESSION_STOP)
    assert r[0] == m.RESPONSE
    body = host.of_type(m.EVENT, m.SUMMARY)[0][3]
    assert body[1] == m.REASON_REQUEST
    assert 12000 <= body[3] <= 12400
    # scored over the envelope updates of the time practised (20 Hz)
    assert abs(body[6][0][m.SC_RUN_MS] - body[3]) <= 100 and body[6][0][m.SC_PLANNED_MS] == 60000


@req("EMG-SCORE-1")
def test_checks_that_never_pass_give_no_score():
    hal, ctrl, host = greeted()
    hal.emg_flags = H.EMG_LEAD_OFF
    request(hal, ctrl, host, m.SESSION_START, demo_s=30)
    run(hal, ctrl, 11000)
    assert ctrl.session.state == m.IDLE
    assert host.of_type(m.EVENT, m.SUMMARY) == []


@req("EMG-PACED-1")
def test_pausing_twice_advises_ending_with_a_tone_and_an_event():
    hal, ctrl, host = _running_demo(120)
    for n in range(2):
        hal.pressed = H.BTN_START
        run(hal, ctrl, 1000)
        assert ctrl.session.state == m.PAUSED
        # the first pause is just a pause; the second brings the advice tone
        assert (hal.tone == TONE_ADVICE_HZ) == (n == 1)
        hal.pressed = H.BTN_START
        run(hal, ctrl, 1000)
        assert ctrl.session.state == m.RUNNING
    advice = host.of_type(m.EVENT, m.ADVICE)
    assert [a[3][0] for a in advice] == [m.ADVICE_PAUSED_TWICE]
    assert hal.led_mode == H.LED_ADVICE  # the LED says so too, for a patient without a computer
    hal.pressed = H.BTN_START
    run(hal, ctrl, 100)
    request(hal, ctrl, host, m.SESSION_STOP)
    body = host.of_type(m.EVENT, m.SUMMARY)[0][3]
    assert body[2] == m.ADVICE_PAUSED_TWICE
