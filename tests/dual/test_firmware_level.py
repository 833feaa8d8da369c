"""A stimulation level lasts while its host does, or the patient's buttons set it. Both runtimes."""

from dualtest import req
from fakehal import greeted, request, run
from firmware import hal as H
from protocol import messages as m
from test_firmware_protocols import cose, provisioned, upload


def _stimulating():
    """A stand-alone session (no heartbeat) of the stimulation protocol, its output on."""
    hal, ctrl, host = greeted(files=provisioned())
    assert upload(hal, ctrl, host, cose("stim"))[0] == m.RESPONSE
    assert request(hal, ctrl, host, m.SESSION_START)[0] == m.RESPONSE
    run(hal, ctrl, 400)
    assert ctrl.session.state == m.RUNNING and ctrl.stim.state == m.STIM_ON, (
        ctrl.session.state,
        ctrl.stim.state,
    )
    return hal, ctrl, host


@req("SAF-LEVEL-1")
def test_a_level_set_by_a_host_that_leaves_goes_back_to_zero():
    hal, ctrl, host = _stimulating()
    r = request(hal, ctrl, host, m.STIM_LEVEL, level_ua=20000)
    assert r[0] == m.RESPONSE and ctrl.stim.level_ua == 20000
    for _ in range(5):  # a host that stays keeps its level
        run(hal, ctrl, 600)
        request(hal, ctrl, host, m.PING)
    assert ctrl.stim.level_ua == 20000 and ctrl.stim.cmd_ua > 0
    run(hal, ctrl, 1100)  # the host is gone
    assert ctrl.stim.level_ua == 0 and ctrl.stim.cmd_ua == 0
    assert ctrl.session.state == m.RUNNING  # the session goes on; the patient's buttons raise it again
    assert any(e[1] == ctrl.log.LEVEL_DROPPED for e in ctrl.log.last(8))


@req("SAF-LEVEL-1")
def test_a_new_host_does_not_inherit_the_level_of_the_last():
    hal, ctrl, host = _stimulating()
    request(hal, ctrl, host, m.STIM_LEVEL, level_ua=20000)
    request(hal, ctrl, host, m.HELLO, min_version=1, max_version=1)
    assert ctrl.stim.level_ua == 0


@req("SAF-LEVEL-1")
def test_the_patients_buttons_hold_their_level_without_a_host():
    hal, ctrl, _host = _stimulating()
    for _ in range(3):
        hal.pressed = H.BTN_UP
        run(hal, ctrl, 50)
        hal.pressed = 0
        run(hal, ctrl, 50)
    level = ctrl.stim.level_ua
    assert level > 0
    run(hal, ctrl, 3000)
    assert ctrl.stim.level_ua == level and ctrl.stim.cmd_ua > 0
