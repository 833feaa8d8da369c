"""The Simulator running the real firmware: time, faults, resets, the patient in the loop."""

import time

import pytest
from simhost import LinkHost

from firmware import hal as H
from protocol import faults
from protocol import messages as m
from sim import scenario
from sim.board import serial_for_seed
from sim.flash import Flash, PowerLoss


def state_changes(sim):
    return [(t, ev["to_state"]) for t, mtype, ev in sim.device_events if mtype == m.STATE_CHANGED]


@pytest.mark.req("SIM-RUN-1", "SIM-HAL-1")
def test_real_firmware_answers_hello_as_the_sim_board(greeted):
    sim, host = greeted
    kind, body = host.request(m.INFO)
    assert kind == m.RESPONSE
    assert body[1] == "sim"
    assert body[2] == serial_for_seed(7)
    assert body[3] == m.IDLE
    assert sim.firmware_running
    assert sim.boots == [(0, H.RESET_POWER_ON)]
    assert sim.bad_frames == 0


@pytest.mark.req("SIM-RUN-1")
def test_same_seed_and_inputs_give_the_same_bytes(make_sim, tmp_path):
    def transcript(seed, flash):
        sim = make_sim(seed=seed, flash_dir=tmp_path / flash)
        host = LinkHost(sim)
        host.send(m.HELLO, min_version=1, max_version=m.PROTOCOL_VERSION)
        host.send(m.STREAM_CONTROL, enable=True)
        host.send(m.SESSION_START, demo_s=20)
        out = bytearray()
        for _ in range(60):
            sim.run_for(250)
            out += sim.host_read()
        return bytes(out)

    a = transcript(11, "a")
    assert a == transcript(11, "b")
    assert a != transcript(12, "c")
    assert len(a) > 100_000  # 15 s of EMG frames, not an idle link


@pytest.mark.req("SIM-RUN-1")
def test_ticks_step_the_firmware_every_5_ms_and_time_can_stop_between_ticks(make_sim):
    sim = make_sim()
    sim.run_for(7)
    assert sim.now_ms == 7
    assert sim.next_tick_us == 10_000
    sim.run_for(3)
    assert sim.board.now_ms() == 10
    with pytest.raises(ValueError, match="cannot run for a negative time"):
        sim.run_for(-1)


@pytest.mark.req("SIM-RUN-1", "SIM-ESTOP-1", "SAF-ESTOP-1")
def test_scenario_events_run_at_their_exact_instant_before_the_step(make_sim):
    press_ms = 1002  # between two ticks
    sim = make_sim(scenario=[scenario.event(press_ms, "estop_press")])
    LinkHost(sim).request(m.HELLO, min_version=1, max_version=m.PROTOCOL_VERSION)
    sim.run_for(press_ms - sim.now_ms - 1)
    assert sim.ctrl.safety.fault == 0
    sim.run_for(1)  # to the press instant only: no firmware step has run since the last tick
    assert sim.board.estop_changes[-1] == (press_ms * 1000, True)
    assert sim.ctrl.safety.fault == faults.ESTOP  # the hard IRQ already latched it
    sim.run_for(3)  # the next tick reports it
    (fault_ev,) = [ev for _t, mtype, ev in sim.device_events if mtype == m.FAULT]
    assert fault_ev["code"] == faults.ESTOP
    assert fault_ev["time_ms"] == press_ms + 3
    assert sim.ctrl.session.state == m.FAULT_STATE


@pytest.mark.req("SIM-SCN-1", "SIM-RUN-1")
def test_a_scenario_file_drives_the_rig(make_sim, tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(
        "[[event]]\nat_ms = 100\naction = 'button'\nbutton = 'start'\n"
        "[[event]]\nat_ms = 1000\naction = 'lead_off'\n"
        "[[event]]\nat_ms = 1500\naction = 'lead_off'\non = false\n"
        "[[event]]\nat_ms = 2000\naction = 'estop_press'\n"
    )
    sim = make_sim(scenario=path)
    sim.run_for(999)
    assert sim.ctrl.session.state == m.RUNNING  # the button started a session
    sim.run_for(2)
    assert sim.board.frontend.model.lead_off
    sim.run_for(1000)
    assert not sim.board.frontend.model.lead_off
    assert sim.ctrl.safety.fault == faults.ESTOP


@pytest.mark.req("SIM-WDT-1", "SAF-BOOT-1")
def test_a_hung_firmware_is_reset_by_the_watchdog(make_sim):
    sim = make_sim()
    sim.run_for(1000)
    sim.rig.hang_firmware()
    last_feed_us = sim.clock.us  # the tick at 1000 ms fed it
    sim.run_for(1999)
    assert len(sim.boots) == 1
    sim.run_for(1)
    assert sim.boots[-1] == (last_feed_us + 2_000_000, H.RESET_WATCHDOG)
    assert sim.firmware_running
    assert sim.board.reset_cause() == H.RESET_WATCHDOG
    assert sim.ctrl.safety.fault == faults.WATCHDOG
    assert not sim.board.out_enabled()
    sim.run_for(5000)
    assert len(sim.boots) == 2  # the new firmware feeds it again


@pytest.mark.req("SIM-WDT-1")
def test_an_exception_escaping_step_is_a_crash_that_the_watchdog_ends(make_sim):
    sim = make_sim()
    sim.run_for(500)
    first = sim.ctrl

    def crash():
        raise RuntimeError("escaped the main loop")

    first.step = crash
    sim.run_for(5)
    assert isinstance(sim.crash, RuntimeError)
    assert not sim.firmware_running
    sim.run_for(2000)
    assert sim.boots[-1][1] == H.RESET_WATCHDOG
    assert sim.ctrl is not first
    assert sim.crash is None


@pytest.mark.req("SIM-RUN-1", "SAF-EXC-1")
def test_an_injected_hal_failure_ends_in_the_safe_state_not_a_crash(greeted):
    sim, host = greeted
    sim.rig.inject_exception("emg_read")
    sim.run_for(5)
    assert sim.crash is None
    assert sim.ctrl.safety.fault == faults.EXCEPTION
    host.run(100)
    assert [ev["code"] for ev in (b for _t, t2, b in sim.device_events if t2 == m.FAULT)] == [
        faults.EXCEPTION
    ]


@pytest.mark.req("SIM-RUN-1", "SAF-ESTOP-1", "SAF-BOOT-1")
def test_power_cycle_keeps_storage_and_boots_with_the_output_off(make_sim):
    sim = make_sim()
    sim.run_for(100)
    sim.rig.press_estop()
    sim.run_for(100)
    sim.rig.release_estop()
    sim.rig.power_cycle()
    assert sim.boots[-1] == (200_000, H.RESET_POWER_ON)
    assert sim.ctrl.safety.fault == faults.ESTOP  # latched across the power cut
    assert sim.ctrl.session.state == m.FAULT_STATE
    assert not any(on for _t, on in sim.board.output.changes)
    sim.rig.brownout()
    assert sim.board.reset_cause() == H.RESET_BROWNOUT


@pytest.mark.req("SIM-FS-1", "SAF-ESTOP-1")
def test_power_cut_at_every_write_leaves_old_or_new_and_the_device_recovers(make_sim, tmp_path, monkeypatch):
    def workload(sim):
        host = LinkHost(sim)
        host.request(m.HELLO, min_version=1, max_version=m.PROTOCOL_VERSION)
        for _ in range(2):
            sim.rig.press_estop()
            sim.run_for(50)
            sim.rig.release_estop()
            sim.run_for(50)
            host.send(m.FAULT_CLEAR)
            sim.run_for(50)
        sim.rig.press_estop()
        sim.run_for(50)

    real_write = Flash.write
    writes = []  # (blob, bytes before) of every write in an uncut run, the first boot's included

    def recording_write(self, name, data):
        writes.append((name, self.read(name)))
        real_write(self, name, data)

    monkeypatch.setattr(Flash, "write", recording_write)
    workload(make_sim(flash_dir=tmp_path / "reference"))
    assert len(writes) >= 3

    cut = []  # (blob, bytes it holds right after the cut)

    def watched_write(self, name, data):
        try:
            real_write(self, name, data)
        except PowerLoss:
            cut.append((name, self.read(name)))
            raise

    monkeypatch.setattr(Flash, "write", watched_write)
    for n, (name, before) in enumerate(writes, 1):
        cut.clear()
        # a cut set at 0 ms is armed before power-on, so boot-time writes are covered too
        sim = make_sim(
            flash_dir=tmp_path / f"cut{n}", scenario=[scenario.event(0, "power_cut_at_write", write=n)]
        )
        workload(sim)
        assert cut == [(name, before)], n  # the interrupted write left the old blob
        assert [c for _t, c in sim.boots].count(H.RESET_POWER_ON) == 2  # power-on, then after the cut
        assert sim.firmware_running
        assert sim.ctrl.safety.fault == faults.ESTOP  # the last press latched it, whatever came before


@pytest.mark.req("SIM-EMG-3", "SIM-RUN-1")
def test_the_patient_follows_the_cues_the_device_sends(greeted):
    sim, host = greeted
    host.request(m.STREAM_CONTROL, enable=True)
    host.request(m.SESSION_START, demo_s=30)
    host.run(30000)
    cues = [(b[2], b[1]) for *_, b in host.of_type(m.EVENT, m.CUE)]
    frames = [(t, b[2]) for t, *_, b in host.of_type(m.STREAM, m.EMG)]
    assert len(frames) > 1000
    contract = [t for t, cue in cues if cue == m.CUE_CONTRACT]
    assert contract and cues[0][1] == m.CUE_REST
    rest = [e for t, e in frames if cues[0][0] + 3000 <= t <= contract[0]]
    rest_level = sum(rest) / len(rest)
    for t0 in contract:
        t_sim = t0 + sim.board.boot_us // 1000  # cue times are the board's uptime
        early = [e for t, e in frames if t_sim <= t < t_sim + 250]
        held = [e for t, e in frames if t_sim + 2000 <= t < t_sim + 5000]
        assert max(early) < 2 * rest_level  # nobody reacts in under 250 ms
        assert min(held) > 4 * rest_level  # a healthy contraction: ~50 µV against ~6 µV


@pytest.mark.req("SIM-EMG-4", "SIM-RUN-1")
def test_lead_off_reaches_the_stream_flags(greeted):
    sim, host = greeted
    host.request(m.STREAM_CONTROL, enable=True)
    host.run(200)
    sim.rig.set_lead_off(True)
    host.run(200)
    sim.rig.set_lead_off(False)
    host.run(200)
    flags = [b[4] for *_, b in host.of_type(m.STREAM, m.EMG)]
    assert any(f & m.FLAG_LEAD_OFF for f in flags)
    assert not flags[0] & m.FLAG_LEAD_OFF
    assert not flags[-1] & m.FLAG_LEAD_OFF


@pytest.mark.req("SIM-LINK-1", "SIM-RUN-1")
def test_a_host_that_stops_reading_costs_frames_not_a_stalled_device(greeted):
    sim, host = greeted
    host.request(m.STREAM_CONTROL, enable=True)
    sim.rig.disconnect_host()
    sim.run_for(3000)
    assert sim.board.tx_refused > 0
    assert sim.firmware_running and len(sim.boots) == 1
    sim.rig.reconnect_host()
    host.decoder = type(host.decoder)()
    kind, body = host.request(m.INFO)
    assert kind == m.RESPONSE
    assert body[10][m.LINK_TX_DROPPED] > 0


@pytest.mark.req("SIM-CLOCK-1", "SIM-RUN-1")
def test_a_paced_simulator_keeps_to_the_wall_clock(make_sim):
    sim = make_sim(speed=4)
    start = time.monotonic()
    sim.run_for(400)
    elapsed = time.monotonic() - start
    assert elapsed >= 0.095  # 400 ms at 4x: a loaded machine may take longer, never less
    assert sim.now_ms == 400


@pytest.mark.req("SIM-SCN-1", "SIM-ESTOP-1", "SAF-ESTOP-1")
def test_random_estops_each_latch_at_their_instant_and_clear_after_release(make_sim):
    events = scenario.random_estops(seed=21, n=12, span_ms=24000)
    sim = make_sim(scenario=events)
    host = LinkHost(sim)
    host.request(m.HELLO, min_version=1, max_version=m.PROTOCOL_VERSION)
    for press, release in zip(events[::2], events[1::2], strict=True):
        sim.run_for(press.at_ms - sim.now_ms)
        assert sim.board.estop_changes[-1] == (press.at_ms * 1000, True)
        assert sim.ctrl.safety.fault == faults.ESTOP  # at the press instant, by the IRQ
        sim.run_for(release.at_ms - sim.now_ms)
        assert host.request(m.FAULT_CLEAR) == (m.RESPONSE, {0: m.IDLE})
    assert len(sim.boots) == 1


@pytest.mark.req("SIM-EMG-3", "SES-BUTTON-1")
def test_without_a_host_the_patient_follows_the_device_tones():
    from firmware.patient_io import TONE_CONTRACT_HZ
    from sim.runner import Simulator

    with Simulator(seed=3, patient="healthy") as sim:
        sim.run_for(50)
        sim.rig.press_button(H.BTN_START)  # a home session: nobody on the link
        assert sim.run_until(lambda: sim.ctrl.session.state == m.RUNNING, 1000)
        sim.run_for(9000)
        resting = sim.patient.activation
        sim.run_for(3500)  # the demo's first contraction cue came at 10 s
        contracting = sim.patient.activation
        assert any(hz == TONE_CONTRACT_HZ for _t, hz in sim.board.tone_changes)
        assert not [e for e in sim.device_events if e[1] == m.CUE]  # no host: no CUE events at all
        assert contracting > 0.2 > resting


@pytest.mark.req("SAF-MAINT-1", "SIM-WDT-1")
def test_maintenance_boots_a_bare_board_and_the_next_reset_the_application(greeted):
    sim, host = greeted
    kind, body = host.request(m.MAINTENANCE_ENTER)
    assert kind == m.RESPONSE and body[0] == m.MAINTENANCE
    sim.run_for(200)
    assert sim.maintenance_boot and not sim.firmware_running and not sim.board.output.enabled
    assert sim.boots[-1][1] == H.RESET_REQUESTED
    sim.run_for(10000)  # no application: no watchdog armed, nothing resets it
    assert len(sim.boots) == 2
    sim.power_cycle()
    assert sim.firmware_running and not sim.maintenance_boot
    host.request(m.HELLO, min_version=1, max_version=1)
    kind, body = host.request(m.INFO)
    assert body[3] == m.IDLE and body[4] is None  # not a watchdog fault
