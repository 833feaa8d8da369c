"""The compliance log: at least 250 sessions, power-cut safe, read around damage. Both runtimes."""

from dualtest import req
from fakehal import FakeHal, greeted, request, run
from firmware import sessionlog as L
from firmware.safety import Safety
from firmware.storage import Store
from protocol import errors
from protocol import messages as m


def _log(files=None):
    hal = FakeHal(files=files)
    store = Store(hal, Safety(hal))
    log = L.SessionLog(store)
    log.load()
    return hal, store, log


def _entry(i):
    return {m.LOG_RUN_MS: 1000 * i, m.LOG_PROTOCOL: "relax-downtrain", m.LOG_FAULTS: []}


@req("UX-LOG-1")
def test_the_log_keeps_at_least_250_sessions_in_order_across_boots():
    hal, _store, log = _log()
    for i in range(300):
        assert log.add(_entry(i)) == i
    capacity = (L.SEGMENTS - 1) * L.PER_SEGMENT + 1
    assert capacity >= 250
    held, _ = log.read(0, 400)
    assert len(held) >= capacity and [e[m.LOG_SEQ] for e in held] == list(range(300 - len(held), 300))
    assert log.oldest() == 300 - len(held)
    # a new boot finds where it left off
    _hal, _s, again = _log(hal.files)
    assert again.next_seq == 300 and again.read(0, 400)[0] == held
    assert len(hal.files) == L.SEGMENTS  # never more blobs than segments


@req("UX-LOG-1")
def test_a_power_cut_while_writing_loses_at_most_that_entry():
    hal, _store, log = _log()
    for i in range(20):
        log.add(_entry(i))
    hal.cut_at = hal.fs_writes  # the next flash write never happens
    try:
        log.add(_entry(20))
        raise AssertionError("the write should have failed")
    except OSError:
        pass
    _hal, _s, again = _log(hal.files)
    assert again.next_seq == 20
    assert [e[m.LOG_SEQ] for e in again.read(0, 50)[0]] == list(range(20))


@req("UX-LOG-1")
def test_a_damaged_segment_costs_only_its_own_entries():
    hal, _store, log = _log()
    for i in range(40):
        log.add(_entry(i))
    blob = bytearray(hal.files["log1"])
    blob[5] ^= 0xFF  # entries 16..31
    hal.files["log1"] = bytes(blob)
    _hal, _s, again = _log(hal.files)
    assert again.damaged == 1 and again.next_seq == 40
    seqs = [e[m.LOG_SEQ] for e in again.read(0, 50)[0]]
    assert seqs == list(range(16)) + list(range(32, 40))


@req("UX-LOG-1")
def test_rating_updates_the_entry_in_place():
    hal, _store, log = _log()
    for i in range(3):
        log.add(_entry(i))
    assert log.update(1, m.LOG_PAIN, 4)
    _hal, _s, again = _log(hal.files)
    assert again.get(1)[m.LOG_PAIN] == 4 and m.LOG_PAIN not in again.get(0)
    assert not again.update(7, m.LOG_PAIN, 4)


@req("UX-LOG-1")
def test_sessions_are_logged_read_page_by_page_and_rated_over_the_link():
    hal, ctrl, host = greeted()
    for _ in range(5):
        request(hal, ctrl, host, m.SESSION_START, demo_s=10, host_time_s=1795000000)
        run(hal, ctrl, 10500)
        assert ctrl.session.state == m.DONE
    seen = []
    seq = 0
    while True:
        r = request(hal, ctrl, host, m.LOG_READ, from_seq=seq, max=m.MAX_LOG_READ)
        body = r[3]
        seen += body[0]
        if body[1] >= body[3]:
            break
        seq = body[1]
    assert [e[m.LOG_SEQ] for e in seen] == [0, 1, 2, 3, 4]
    e = seen[0]
    assert e[m.LOG_HOST_TIME_S] == 1795000000 and e[m.LOG_END_REASON] == m.REASON_FINISHED
    assert 9900 <= e[m.LOG_RUN_MS] <= 10100 and e[m.LOG_PHASES_DONE] == 1 and e[m.LOG_FAULTS] == []
    r = request(hal, ctrl, host, m.SESSION_RATE, session=4, pain=2)
    assert r[0] == m.RESPONSE and ctrl.sessionlog.get(4)[m.LOG_PAIN] == 2
    r = request(hal, ctrl, host, m.SESSION_RATE, session=4, pain=11)
    assert r[0] == m.ERROR and r[3][0] == errors.BAD_FIELD
    r = request(hal, ctrl, host, m.SESSION_RATE, session=9, pain=1)
    assert r[0] == m.ERROR and r[3][0] == errors.BAD_FIELD


@req("UX-LOG-1")
def test_a_fault_ending_a_session_is_logged_with_it():
    hal, ctrl, host = greeted()
    request(hal, ctrl, host, m.SESSION_START, demo_s=30)
    run(hal, ctrl, 2000)
    request(hal, ctrl, host, m.ESTOP)
    e = ctrl.sessionlog.get(0)
    assert e[m.LOG_END_REASON] == m.REASON_FAULT and e[m.LOG_FAULTS] == [2]
