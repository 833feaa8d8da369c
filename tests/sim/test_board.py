"""SimBoard against the HAL contract, peripheral by peripheral, without firmware."""

import re
from array import array

import numpy as np
import pytest

from firmware import hal as H
from sim.board import HAL_METHODS, TX_BOUND, WDT_MAX_MS, SimBoard, serial_for_seed
from sim.clock import Clock
from sim.flash import Flash, PowerLoss
from sim.frontend import RING_SAMPLES, EmgFrontEnd
from sim.output import COMPLIANCE_V, OutputStage

RATE = SimBoard.emg_rate_hz


class CountingModel:
    """Sample k of the simulation reads k: shows which samples the ring delivers."""

    def __init__(self):
        self.next = 0
        self.lead_off = False

    def take(self, n):
        out = np.arange(self.next, self.next + n, dtype=np.int32)
        self.next += n
        return out, 0


def make_board(tmp_path, seed=0):
    clock = Clock()
    board = SimBoard(
        clock,
        EmgFrontEnd(CountingModel(), RATE),
        Flash(tmp_path / "flash"),
        OutputStage(SimBoard.hw_max_ua),
        serial_for_seed(seed),
    )
    return clock, board


def advance(clock, board, ms):
    clock.advance_to(clock.us + ms * 1000)
    board.frontend.sync(clock.us)


@pytest.mark.req("SIM-HAL-1")
def test_every_hal_method_is_implemented_and_identity_is_seeded(tmp_path):
    assert set(HAL_METHODS) >= {"now_ms", "emg_read", "out_enable", "estop_irq", "fs_write", "link_write"}
    for name in HAL_METHODS:
        assert getattr(SimBoard, name) is not getattr(H.Hal, name), name
    _clock, board = make_board(tmp_path, seed=3)
    assert board.board == "sim"
    assert board.emg_rate_hz == 2000
    assert board.hw_max_ua > 0
    assert re.fullmatch(r"[0-9A-F]{16}", board.serial)
    assert serial_for_seed(3) == board.serial
    assert serial_for_seed(4) != board.serial


@pytest.mark.req("SIM-HAL-1")
def test_uptime_restarts_at_each_boot(tmp_path):
    clock, board = make_board(tmp_path)
    advance(clock, board, 1234)
    assert board.now_ms() == 1234
    board.hardware_reset(H.RESET_REQUESTED)
    advance(clock, board, 7)
    assert board.now_ms() == 7
    assert board.reset_cause() == H.RESET_REQUESTED


@pytest.mark.req("SIM-RING-1")
def test_ring_delivers_samples_in_order_with_absolute_index(tmp_path):
    clock, board = make_board(tmp_path)
    advance(clock, board, 100)
    assert board.emg_index() == 0
    buf = array("i", [0] * 150)
    view = memoryview(buf)
    assert board.emg_read(view[:50]) == 50
    assert board.emg_index() == 50
    assert board.emg_read(view[50:]) == 100  # only 200 samples are due after 100 ms
    assert list(buf) == list(range(150))
    assert board.emg_read(view) == 50
    assert board.emg_read(view) == 0
    assert board.emg_status() == 0
    plain = [0] * 4  # any indexable buffer works, not only an array
    advance(clock, board, 1)
    assert board.emg_read(plain) == 2
    assert plain[:2] == [200, 201]


@pytest.mark.req("SIM-RING-1", "SIM-EMG-4")
def test_ring_overrun_drops_the_oldest_and_flags_it(tmp_path):
    clock, board = make_board(tmp_path)
    advance(clock, board, 10)
    buf = array("i", [0] * 20)
    board.emg_read(buf)  # index 20
    advance(clock, board, 2000)  # 4000 samples, nobody draining
    assert board.emg_status() & H.EMG_OVERRUN
    assert board.emg_status() == 0  # reported once
    first = board.emg_index()
    assert board.frontend.pending() == RING_SAMPLES
    assert first == 4020 - RING_SAMPLES
    assert board.emg_read(buf) == 20
    assert list(buf) == list(range(first, first + 20))  # index and sample still agree


@pytest.mark.req("SIM-EMG-4")
def test_stalled_front_end_delivers_nothing_then_resumes_on_time(tmp_path):
    clock, board = make_board(tmp_path)
    advance(clock, board, 10)
    board.emg_read(array("i", [0] * 20))
    board.frontend.stalled = True
    advance(clock, board, 500)
    assert board.emg_index() == 20
    assert board.emg_read(array("i", [0] * 20)) == 0
    board.frontend.stalled = False
    advance(clock, board, 5)
    buf = array("i", [0] * 20)
    assert board.emg_read(buf) == 10
    assert board.emg_index() == 30  # no jump: the front end simply produced nothing
    assert buf[0] == 1020  # the signal stayed on simulated time


@pytest.mark.req("SIM-ESTOP-1")
def test_estop_calls_the_irq_handler_at_the_press_instant(tmp_path):
    clock, board = make_board(tmp_path)
    calls = []
    board.estop_irq(lambda pin: calls.append(clock.us))
    clock.advance_to(1_234_567)
    assert not board.estop_open()
    board.set_estop(True)
    assert calls == [1_234_567]
    assert board.estop_open()
    board.set_estop(True)  # already open: no new edge
    clock.advance_to(2_000_000)
    board.set_estop(False)  # closing the loop is not an interrupt
    assert calls == [1_234_567]
    assert not board.estop_open()
    assert list(board.estop_changes) == [(1_234_567, True), (2_000_000, False)]


@pytest.mark.req("SIM-ESTOP-1")
def test_a_raising_estop_handler_is_disabled_for_good(tmp_path):
    _clock, board = make_board(tmp_path)
    calls = []

    def handler(pin):
        calls.append(pin)
        raise ValueError("bug in the IRQ")

    board.estop_irq(handler)
    board.set_estop(True)
    board.set_estop(False)
    board.set_estop(True)
    assert len(calls) == 1
    assert len(board.irq_errors) == 1
    assert board.estop_open()  # the level is still readable by polling


@pytest.mark.req("SIM-WDT-1")
def test_watchdog_deadline_moves_with_feeding_and_is_capped(tmp_path):
    clock, board = make_board(tmp_path)
    board.wdt_feed()  # not started: nothing to feed
    assert board.wdt_deadline_us is None
    clock.advance_to(1_000_000)
    board.wdt_start(2000)
    assert board.wdt_deadline_us == 3_000_000
    clock.advance_to(2_500_000)
    board.wdt_feed()
    assert board.wdt_deadline_us == 4_500_000
    board.wdt_start(60000)
    assert board.wdt_deadline_us == 2_500_000 + WDT_MAX_MS * 1000
    board.hardware_reset(H.RESET_WATCHDOG)
    assert board.wdt_deadline_us is None  # a new boot starts it again


@pytest.mark.req("SIM-LINK-1")
def test_link_write_never_blocks_and_drops_when_the_host_does_not_read(tmp_path):
    _clock, board = make_board(tmp_path)
    frame = bytes(range(1, 101))
    sent = 0
    while board.link_write(frame):
        sent += 1
    assert sent == TX_BOUND // len(frame)
    assert board.tx_refused == 1
    assert board.host_read(250) == (frame * 3)[:250]
    assert board.link_write(frame)  # room again once the host reads
    buf = bytearray(8)
    assert board.link_read(buf) == 0
    board.host_write(b"\x01\x02\x03")
    assert board.link_read(buf) == 3
    assert buf[:3] == b"\x01\x02\x03"


@pytest.mark.req("SIM-LINK-1")
def test_a_disconnected_host_sees_nothing_and_a_new_one_starts_fresh(tmp_path):
    _clock, board = make_board(tmp_path)
    board.link_write(b"old")
    board.disconnect_host()
    assert board.host_pending() == 0
    assert board.host_read(-1) == b""
    board.host_write(b"lost")
    assert board.link_read(bytearray(8)) == 0
    assert board.link_write(b"still accepted")  # the device is not blocked
    board.connect_host()
    assert board.host_read(-1) == b""  # stale output is not delivered
    board.link_write(b"new")
    assert board.host_read(-1) == b"new"


@pytest.mark.req("SIM-FS-1")
def test_storage_blobs_are_replaced_and_removed(tmp_path):
    _clock, board = make_board(tmp_path)
    assert board.fs_read("fault") is None
    board.fs_write("fault", b"one")
    board.fs_write("fault", bytearray(b"two"))
    assert board.fs_read("fault") == b"two"
    board.fs_remove("fault")
    board.fs_remove("fault")
    assert board.fs_read("fault") is None
    assert board.flash.writes == 2
    for bad in ("", "../x", "a/b", ".hidden", "x.new"):
        with pytest.raises(OSError, match="bad blob name"):
            board.fs_write(bad, b"x")


@pytest.mark.req("SIM-FS-1")
def test_power_cut_in_a_write_leaves_the_old_blob(tmp_path):
    _clock, board = make_board(tmp_path)
    board.fs_write("therapy", b"old" * 100)
    board.flash.cut_power_at_write(2)
    with pytest.raises(PowerLoss):
        board.fs_write("therapy", b"new" * 100)
    assert board.flash.take_power_cut()
    assert not board.flash.take_power_cut()
    assert board.fs_read("therapy") == b"old" * 100
    assert (board.flash.dir / "therapy.new").stat().st_size == 150  # the half-written side file
    board.fs_write("therapy", b"new" * 100)  # after the reboot, writing works again
    assert board.fs_read("therapy") == b"new" * 100
    with pytest.raises(ValueError, match="is not in the future"):
        board.flash.cut_power_at_write(3)  # already happened


@pytest.mark.req("SIM-FS-1")
def test_storage_writes_while_the_output_is_on_are_counted(tmp_path):
    _clock, board = make_board(tmp_path)
    board.out_enable(True)
    board.fs_write("fault", b"x")
    board.out_enable(False)
    board.fs_write("fault", b"y")
    assert board.fs_writes_while_output_on == 1


@pytest.mark.req("SIM-HAL-1")
def test_output_changes_are_timed_and_the_load_limits_current(tmp_path):
    clock, board = make_board(tmp_path)
    clock.advance_to(1000)
    board.out_enable(True)
    board.out_enable(True)
    clock.advance_to(1500)
    board.out_enable(False)
    assert list(board.output.changes) == [(1000, True), (1500, False)]
    out = board.output
    assert out.current_ua(20000) == 0  # disabled
    out.set_enabled(True, clock.us)
    assert out.current_ua(20000) == 20000
    out.set_load(1000)
    assert out.current_ua(10**6) == int(COMPLIANCE_V / out.load_ohms * 1e6)  # compliance-limited
    out.set_load(300)
    assert out.current_ua(10**6) == board.hw_max_ua  # a low load: the hardware ceiling
    out.set_load(1e6)  # an open electrode
    assert out.current_ua(20000) == int(COMPLIANCE_V / 1e6 * 1e6)
    with pytest.raises(ValueError, match="load must be > 0"):
        out.set_load(0)
    board.hardware_reset(H.RESET_POWER_ON)
    assert not board.out_enabled()


@pytest.mark.req("SIM-HAL-1")
def test_buttons_latch_until_read_and_indicators_keep_history(tmp_path):
    clock, board = make_board(tmp_path)
    board.press(H.BTN_START)
    board.press(H.BTN_UP)
    assert board.buttons() == H.BTN_START | H.BTN_UP
    assert board.buttons() == 0
    with pytest.raises(ValueError, match="is not a combination of BTN_"):
        board.press(8)
    clock.advance_to(10_000)
    board.led(H.LED_RUNNING)
    board.led(H.LED_RUNNING)
    board.buzzer(880)
    clock.advance_to(20_000)
    board.buzzer(0)
    assert list(board.led_changes) == [(10_000, H.LED_RUNNING)]
    assert list(board.tone_changes) == [(10_000, 880), (20_000, 0)]


@pytest.mark.req("SIM-HAL-1")
def test_injected_failure_raises_once_then_the_method_works(tmp_path):
    clock, board = make_board(tmp_path)
    advance(clock, board, 5)
    board.inject_failure("emg_index", RuntimeError("boom"))
    with pytest.raises(RuntimeError):
        board.emg_index()
    assert board.emg_index() == 0
    with pytest.raises(ValueError, match="is not a HAL method"):
        board.inject_failure("not_a_method", RuntimeError())
