"""Safety owner, boot, e-stop, faults and watchdog feeding, on both runtimes."""

from dualtest import MICROPYTHON, req, skip
from fakehal import FakeHal, booted, greeted, request, run
from firmware import hal as H
from firmware.controller import Controller
from firmware.crash_site import WHERE_MAX
from firmware.safety import Safety
from firmware.storage import FAULT_RECORD
from protocol import errors, faults
from protocol import messages as m


@req("SAF-BOOT-1", "SAF-OWNER-1")
def test_boot_disables_the_output_before_anything_else():
    hal = FakeHal()
    hal.enabled = True  # whatever the reset left on the line
    Controller(hal)
    assert hal.enabled is False and hal.enable_log == [(0, False)]  # the very first HAL action


@req("SAF-BOOT-1", "SAF-ESTOP-1")
def test_latched_fault_survives_a_reset():
    hal, ctrl, host = greeted()
    request(hal, ctrl, host, m.ESTOP)
    assert ctrl.safety.fault == faults.HOST_ESTOP and FAULT_RECORD in hal.files
    hal2, ctrl2 = booted(files=hal.files)
    assert ctrl2.safety.fault == faults.HOST_ESTOP
    assert ctrl2.session.state == m.FAULT_STATE and not hal2.enabled


@req("SAF-BOOT-1")
def test_damaged_fault_record_boots_into_a_storage_fault():
    hal, ctrl, host = greeted()
    request(hal, ctrl, host, m.ESTOP)
    blob = bytearray(hal.files[FAULT_RECORD])
    blob[1] ^= 0x40
    _hal2, ctrl2 = booted(files={FAULT_RECORD: bytes(blob)})
    run(_hal2, ctrl2, 5)
    assert ctrl2.safety.fault == faults.STORAGE and ctrl2.session.state == m.FAULT_STATE


@req("SAF-BOOT-1")
def test_watchdog_reset_latches_and_a_requested_reset_does_not():
    hal, ctrl = booted(reset_cause=H.RESET_WATCHDOG)
    run(hal, ctrl, 5)
    assert ctrl.safety.fault == faults.WATCHDOG and ctrl.session.state == m.FAULT_STATE
    hal, ctrl = booted(reset_cause=H.RESET_REQUESTED)
    run(hal, ctrl, 5)
    assert ctrl.safety.fault == 0 and ctrl.session.state == m.IDLE
    assert hal.wdt_timeout > 0 and hal.wdt_fed == 1


@req("SAF-ESTOP-1", "SAF-OWNER-1")
def test_estop_irq_disables_at_once_latches_and_clear_waits_for_release():
    hal, ctrl, host = greeted()
    request(hal, ctrl, host, m.SESSION_START, demo_s=30)
    run(hal, ctrl, 100)
    assert ctrl.session.state == m.RUNNING
    hal.t_ms += 2  # between two loop passes
    hal.press_estop()
    assert ctrl.safety.fault == faults.ESTOP and not hal.enabled  # in the IRQ, before any step
    run(hal, ctrl, 5)
    assert ctrl.session.state == m.FAULT_STATE
    assert [e[3][0] for e in host.of_type(m.EVENT, m.FAULT)] == [faults.ESTOP]
    r = request(hal, ctrl, host, m.SESSION_START)
    assert r[0] == m.ERROR and r[3][0] == errors.FAULT_LATCHED
    r = request(hal, ctrl, host, m.FAULT_CLEAR)
    assert r[0] == m.ERROR and r[3][0] == errors.ESTOP_ACTIVE
    assert ctrl.session.state == m.FAULT_STATE
    hal.estop = False
    r = request(hal, ctrl, host, m.FAULT_CLEAR)
    assert r[0] == m.RESPONSE and r[3][0] == m.IDLE
    assert FAULT_RECORD not in hal.files
    assert request(hal, ctrl, host, m.SESSION_START)[0] == m.RESPONSE


@req("SAF-CLEAR-1", "SAF-ESTOP-1")
def test_an_estop_during_the_clears_flash_write_stays_latched_and_stored():
    hal, ctrl, host = greeted()
    request(hal, ctrl, host, m.ESTOP)
    assert ctrl.safety.fault == faults.HOST_ESTOP
    hal.after_flash = hal.press_estop  # held off by the removal of the fault record
    r = request(hal, ctrl, host, m.FAULT_CLEAR)
    assert r[0] == m.ERROR and r[3][0] == errors.ESTOP_ACTIVE
    assert ctrl.safety.fault and ctrl.session.state == m.FAULT_STATE
    assert FAULT_RECORD in hal.files  # a reset now still finds the latch
    assert faults.ESTOP in [e[3][0] for e in host.of_type(m.EVENT, m.FAULT)]
    r = request(hal, ctrl, host, m.SESSION_START)
    assert r[0] == m.ERROR and r[3][0] == errors.FAULT_LATCHED
    hal.estop = False
    r = request(hal, ctrl, host, m.FAULT_CLEAR)
    assert r[0] == m.RESPONSE and r[3][0] == m.IDLE


@req("SAF-CLEAR-1")
def test_a_clear_refuses_when_a_fault_lands_inside_it():
    hal = FakeHal()
    s = Safety(hal)
    s.enter_safe_state(faults.HOST_ESTOP)
    seen = s.fault_count
    assert s.may_clear() == 0
    s.estop_irq()  # between the check and the clear
    assert s.clear(seen) is False and s.fault == faults.HOST_ESTOP
    # the interrupt lands inside clear(), once the latch already read 0
    hal.estop = False
    s.clear(s.fault_count)
    assert s.fault == 0
    s.enter_safe_state(faults.HOST_ESTOP)
    seen = s.fault_count
    read = hal.estop_open

    def irq_now():
        hal.estop_open = read
        hal.press_estop()
        return True

    hal.irq = s.estop_irq
    hal.estop_open = irq_now
    assert s.clear(seen) is False and s.fault == faults.ESTOP


@req("SAF-CLEAR-1", "SAF-ESTOP-1")
def test_an_open_estop_latches_by_its_level_when_the_edge_was_lost():
    hal, ctrl, _host = greeted()
    hal.estop = True  # no interrupt: the edge came while it was disabled
    run(hal, ctrl, 5)
    assert ctrl.safety.fault == faults.ESTOP and ctrl.session.state == m.FAULT_STATE


@req("SAF-ESTOP-1")
def test_estop_held_at_boot_reads_as_stop():
    hal = FakeHal()
    hal.estop = True  # a broken loop wire looks exactly like this
    ctrl = Controller(hal)
    ctrl.boot()
    run(hal, ctrl, 5)
    assert ctrl.safety.fault == faults.ESTOP and ctrl.session.state == m.FAULT_STATE


@req("SAF-NOSTIM-1")
def test_no_output_without_a_verified_protocol():
    hal, ctrl, host = greeted()
    request(hal, ctrl, host, m.SESSION_START)
    run(hal, ctrl, 50)
    assert ctrl.session.state == m.RUNNING
    assert ctrl.safety.request_output(True) is False
    assert not hal.enabled and not [e for e in hal.enable_log if e[1]]


@req("SAF-EXC-1")
def test_exception_in_a_task_ends_in_the_safe_state_and_starves_the_watchdog():
    hal, ctrl = booted()
    run(hal, ctrl, 10)
    fed = hal.wdt_fed

    def broken(buf):
        raise ValueError("front end returned garbage")

    hal.emg_read = broken
    run(hal, ctrl, 5)
    assert ctrl.safety.fault == faults.EXCEPTION and not hal.enabled
    assert hal.wdt_fed == fed  # that pass did not check in


@req("SAF-EXC-1")
def test_memory_error_latches_memory_fault():
    hal, ctrl = booted()

    def starved(buf):
        raise MemoryError()

    hal.emg_read = starved
    run(hal, ctrl, 5)
    assert ctrl.safety.fault == faults.MEMORY


@req("SAF-EXC-2")
def test_a_memory_fault_says_where_until_it_is_cleared():
    hal, ctrl, host = greeted()

    def starved(buf):
        raise MemoryError("memory allocation failed, allocating 4096 bytes")

    read = hal.emg_read
    hal.emg_read = starved
    run(hal, ctrl, 5)
    hal.emg_read = read
    where = ctrl.records.crash.where()
    # the exception, then the innermost frame (module:line function), then its callers
    assert where.startswith("MemoryError at test_firmware_safety:") and len(where) <= WHERE_MAX
    assert where.split(" < ")[0].endswith(" starved")
    info = m.named(m.RESPONSE, m.INFO, request(hal, ctrl, host, m.INFO)[3])
    assert info["fault"][m.FAULT_CODE] == faults.MEMORY and info["fault"][m.FAULT_WHERE] == where
    ctrl2 = booted(files=hal.files)[1]  # the FAULT record keeps it
    assert ctrl2.safety.fault == faults.MEMORY and ctrl2.records.crash.where() == where
    request(hal, ctrl, host, m.FAULT_CLEAR)
    assert ctrl.safety.fault == 0 and ctrl.records.crash.where() == ""
    info = m.named(m.RESPONSE, m.INFO, request(hal, ctrl, host, m.INFO)[3])
    assert info["fault"] is None


@req("SAF-EXC-2")
def test_only_the_exception_that_latched_is_kept():
    hal, ctrl = booted()

    def broken(buf):
        raise ValueError("front end returned garbage")

    hal.emg_read = broken
    run(hal, ctrl, 20)  # raised in every pass
    assert ctrl.safety.fault == faults.EXCEPTION
    where = ctrl.records.crash.where()
    assert where.startswith("ValueError at test_firmware_safety:") and where.split(" < ")[0].endswith(
        " broken"
    )


@req("SAF-OWNER-1")
def test_enter_safe_state_is_idempotent_and_allocation_free():
    hal, ctrl = booted()
    s = ctrl.safety
    s.enter_safe_state(faults.ESTOP)
    s.enter_safe_state(faults.HOST_ESTOP)
    assert s.fault == faults.ESTOP and s.fault_count == 2 and not hal.enabled
    if not MICROPYTHON:
        skip("CPython boxes ints; the MicroPython leg checks with heap_lock")
    import micropython

    micropython.heap_lock()
    try:
        s.enter_safe_state(faults.ESTOP)
        s.estop_irq(None)
    finally:
        micropython.heap_unlock()
    assert s.fault_count == 4


@req("SAF-HEARTBEAT-1")
def test_host_driven_session_ends_when_the_host_falls_silent():
    hal, ctrl, host = greeted()
    request(hal, ctrl, host, m.SESSION_START, heartbeat_ms=1000)
    for _ in range(5):
        run(hal, ctrl, 600)
        request(hal, ctrl, host, m.PING)
    assert ctrl.session.state == m.RUNNING
    run(hal, ctrl, 1010)
    assert ctrl.session.state == m.DONE
    assert ctrl.safety.fault == 0  # a lost host ends the session, it is not a latched fault
    ev = host.of_type(m.EVENT, m.STATE_CHANGED)
    assert ev[-1][3][2] == m.REASON_HEARTBEAT_LOST


@req("SAF-HEARTBEAT-1")
def test_standalone_session_does_not_depend_on_the_link():
    hal, ctrl, host = greeted()
    request(hal, ctrl, host, m.SESSION_START, demo_s=30)
    run(hal, ctrl, 20000)
    assert ctrl.session.state == m.RUNNING


@req("SES-RUN-1")
def test_stalled_front_end_stops_the_session():
    hal, ctrl, host = greeted()
    request(hal, ctrl, host, m.SESSION_START)
    run(hal, ctrl, 100)
    hal.emg_on = False
    run(hal, ctrl, 300)
    assert ctrl.session.state == m.DONE and ctrl.safety.fault == 0
    assert faults.EMG_STALLED in [e[3][0] for e in host.of_type(m.EVENT, m.FAULT)]


@req("SES-RUN-1")
def test_lead_off_keeps_the_session_from_starting():
    hal, ctrl, host = greeted()
    hal.emg_flags = H.EMG_LEAD_OFF
    request(hal, ctrl, host, m.SESSION_START)
    run(hal, ctrl, 2000)
    assert ctrl.session.state == m.ARMED
    hal.emg_flags = 0
    run(hal, ctrl, 100)
    assert ctrl.session.state == m.RUNNING


@req("SAF-SELFTEST-1", "SAF-OWNER-1")
def test_the_dummy_load_output_needs_the_relay_switched_and_nothing_latched():
    from firmware.safety import Safety

    hal = FakeHal()
    s = Safety(hal)
    assert not s.request_dummy_output() and not hal.enabled  # the electrodes are still connected
    hal.dummy_load(True)
    assert s.request_dummy_output() and hal.enabled
    hal.estop = True
    assert not s.request_dummy_output() and not hal.enabled
    hal.estop = False
    s.enter_safe_state(faults.OVERCURRENT)
    assert not s.request_dummy_output() and not hal.enabled


@req("SAF-EXC-2")
def test_catching_where_allocates_nothing_on_micropython():
    if not MICROPYTHON:
        skip("CPython allocates for every int; the MicroPython legs check with heap_lock")
    import micropython

    from firmware.crash_site import CrashSite

    site = CrashSite()

    def starved():
        raise MemoryError("memory allocation failed, allocating 4096 bytes")

    try:
        starved()
    except MemoryError as e:
        micropython.heap_lock()  # as the heap may be when the loop's handler runs
        try:
            site.catch(e)
        finally:
            micropython.heap_unlock()
    # written whole: "MemoryError" comes from the traceback's last line
    where = site.where()
    assert where.startswith("MemoryError at test_firmware_safety:") and where.split(" < ")[0].endswith(
        " starved"
    )
