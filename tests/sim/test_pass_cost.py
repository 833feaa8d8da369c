"""The simulator with the board's pass costs: long passes, GC pauses, interrupts inside a pass.

Each test reproduces a defect that the atomic 5 ms simulator could not show
(issue 12): a ramp whose steps leave the 100 µA grid when a pass takes
10-20 ms, an output hold that lapses under a 20 ms pass or a GC pause, an
e-stop that lands between the fault-clear's check and its clear, and a host
whose burst of requests stretched one pass past the output's hold (found on
the emulated Pico, where the host's heartbeat PINGs come many to a board
second because the board runs slower than the host's clock).
"""

import pytest
from simhost import LinkHost

from protocol import codec, faults, framing
from protocol import messages as m
from qa import campaign as C
from sim import scenario as scn
from sim.passcost import PROFILES, PassCost, PassProfile

SEEDS = (3, 4)


def costed(profile, seed):
    return C.Bench("stimulation-trial-1min.toml", seed=seed, pass_cost=PassCost(profile, seed))


def stimulate(b, level_ua=20000, run_ms=4000):
    """Start by the button, set a level once the check passed, run; the fault codes reported meanwhile."""
    c = b.connect()
    since = b.us
    b.start()
    assert b.wait_stim(m.STIM_READY, 5000, since_us=since) is not None or b.faults_after(since)
    if not b.faults_after(since):
        c.stim_level(level_ua)
        b.keep_talking(300)  # a host's level lasts while that host talks (SAF-LEVEL-1)
    b.run_for(run_ms)
    return [code for _t, code in b.faults_after(since)]


@pytest.fixture
def benches():
    made = []

    def make(profile, seed):
        b = costed(profile, seed)
        made.append(b)
        return b

    yield make
    for b in made:
        b.close()


@pytest.mark.req("SIM-PASS-1", "SAF-AMPLITUDE-1")
@pytest.mark.parametrize("pass_ms", [10, 13, 17, 20])
def test_a_ramp_at_any_pass_length_commands_only_the_100ua_grid(benches, pass_ms):
    b = benches(PassProfile(pass_us=(pass_ms * 1000, pass_ms * 1000)), pass_ms)
    got = stimulate(b)
    assert got == [], [faults.NAMES.get(c, c) for c in got]
    assert b.sim.crash is None
    commanded = {p.set_ua for p in b.pulses()}
    assert 20000 in commanded
    assert all(ua % 100 == 0 for ua in commanded)
    assert C.ramp_problems(b) == []


@pytest.mark.req("SIM-PASS-1", "SAF-ENABLE-1")
@pytest.mark.parametrize("seed", SEEDS)
def test_20ms_passes_with_gc_pauses_keep_the_output_hold(benches, seed):
    # the board's passes at their longest, and collections as long as the board's longest
    profile = PassProfile(pass_us=(18_000, 20_000), gc_pause_us=(25_300, 40_000))
    b = benches(profile, seed)
    got = stimulate(b, run_ms=5000)
    assert got == [], [faults.NAMES.get(c, c) for c in got]
    assert list(b.out.lapses) == []
    collections = b.sim.pass_cost.collections
    assert collections and all(at == "collect" for _t, _pause, at in collections)


@pytest.mark.req("SIM-PASS-1", "SAF-ENABLE-1")
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("profile", ["emulated-pico-9f234f9", "emulated-pico"])
def test_the_emulated_boards_profile_stimulates_without_a_fault(benches, seed, profile):
    b = benches(PROFILES[profile], seed)
    got = stimulate(b)
    assert got == [], [faults.NAMES.get(c, c) for c in got]


@pytest.mark.req("SIM-PASS-1", "SAF-ESTOP-1")
@pytest.mark.parametrize("press_after_ms", [2, 5, 12])
def test_an_estop_during_the_fault_clears_flash_write_stays_latched(benches, press_after_ms):
    b = benches(PassProfile(pass_us=(1500, 2500), flash_us=25_000), press_after_ms)
    c = b.connect()
    b.rig.press_estop()
    b.run_for(100)
    b.rig.release_estop()
    b.run_for(100)
    assert c.info().fault.name == "ESTOP"
    # the clear is read by the next pass; the e-stop opens while its flash write runs
    sim = b.sim
    start = max(sim.next_tick_us, sim.clock.us)
    sim.schedule(scn.event(start // 1000 + press_after_ms, "estop_press"))
    reply = c.fault_clear()
    assert getattr(reply, "name", None) in ("ESTOP_ACTIVE", "FAULT_LATCHED"), reply
    b.run_for(100)
    info = c.info()
    assert info.state == "FAULT" and info.fault.name == "ESTOP" and info.fault.latched
    refused = c.session_start(keep_alive=False)
    assert getattr(refused, "name", None) == "FAULT_LATCHED"


@pytest.mark.req("SIM-PASS-1", "SIM-RUN-1")
def test_the_same_seed_gives_the_same_run(make_sim):
    def run(seed):
        sim = make_sim(seed=seed, pass_cost="emulated-pico-9f234f9", flash_dir=None)
        sim.schedule(scn.event(700, "estop_press"))
        sim.run_for(3000)
        cost = sim.pass_cost
        return cost.passes, cost.longest_pass_us, list(cost.collections), list(sim.board.estop_changes)

    first = run(5)
    assert first == run(5)
    assert first != run(6)
    passes, _longest, collections, _ = first
    assert 3000 // 9 < passes < 3000 // 5  # passes of 1.6-8.5 ms, never closer than the 5 ms tick
    assert collections and all(600 <= pause <= 14000 for _t, pause, _at in collections)


@pytest.mark.req("SIM-PASS-1", "SIM-ESTOP-1")
def test_an_interrupt_lands_inside_a_pass_at_its_instant(make_sim):
    sim = make_sim(seed=2, pass_cost=PassCost(PassProfile(pass_us=(4000, 4000)), 2))
    sim.run_for(1000)
    handled = []
    irq = sim.board._estop_handler
    sim.board.estop_irq(lambda pin: handled.append(sim.clock.us) or irq(pin))
    start = sim.clock.us
    sim.schedule(scn.event(start // 1000 + 7, "estop_press"))
    sim.run_for(20)
    passes = sim.pass_cost.passes
    assert handled == [(start // 1000 + 7) * 1000]  # at its instant, not at a pass boundary
    assert sim.ctrl.safety.fault == faults.ESTOP and passes > 0


@pytest.mark.req("SIM-PASS-1")
def test_a_flash_write_holds_interrupts_off_until_it_ends(make_sim):
    sim = make_sim(seed=2, pass_cost=PassCost(PassProfile(pass_us=(2000, 2000), flash_us=45_000), 2))
    sim.run_for(500)
    handled = []
    irq = sim.board._estop_handler
    sim.board.estop_irq(lambda pin: handled.append(sim.clock.us) or irq(pin))
    write = sim.board.fs_write
    spans = []

    def timed(name, data):
        write(name, data)
        spans.append(sim.clock.us)

    sim.board.fs_write = timed
    host = LinkHost(sim)
    host.request(m.HELLO, min_version=1, max_version=m.PROTOCOL_VERSION)
    t = sim.clock.us
    host.send(m.ESTOP)  # latches HOST_ESTOP and writes the fault record
    sim.schedule(scn.event(t // 1000 + 5 + 10, "estop_press"))  # inside the write of the next pass
    sim.run_for(100)
    assert spans, "the fault record was written"
    assert handled and handled[0] >= spans[0] + 45_000 - 1000  # after the write, not inside it


@pytest.mark.req("SIM-PASS-1", "DEV-PERF-1")
def test_a_slow_flash_write_at_the_start_is_not_an_emg_stall(benches):
    # a 4 KiB erase may take 400 ms (W25Q16JV maximum): the loop stops, the DMA ring does not
    b = benches(PassProfile(pass_us=(2000, 3000), flash_us=300_000), 9)
    got = stimulate(b, run_ms=2000)
    assert got == [], [faults.NAMES.get(c, c) for c in got]


@pytest.mark.req("SIM-PASS-1", "SAF-ENABLE-1", "LINK-FLOOD-1")
@pytest.mark.parametrize("seed", SEEDS)
def test_a_burst_of_requests_during_stimulation_keeps_the_output_hold(benches, seed):
    # the board's figures: each answered request costs ~7 ms and 1.1 KB; 12 PINGs at once
    # (what fits one 128 B read) answered in one pass would take ~80 ms on top of the pass,
    # and their garbage would run the heap out inside a pass
    b = benches(PROFILES["emulated-pico"], seed)
    c = b.connect()
    since = b.us
    b.start()
    assert b.wait_stim(m.STIM_READY, 5000, since_us=since) is not None, b.faults_after(since)
    assert c.stim_level(5000).ok
    burst = b"".join(framing.encode(codec.dumps(m.build(m.REQUEST, 0xFE00 + k, m.PING))) for k in range(12))
    for _ in range(100):  # 3 s: a burst every 30 ms, far more than the link answers
        c.send_raw(burst)
        b.run_for(30)
    got = [code for _t, code in b.faults_after(since)]
    assert got == [], [faults.NAMES.get(code, code) for code in got]
    assert list(b.out.lapses) == []
    assert 5000 in {p.set_ua for p in b.pulses(since)}
    collections = b.sim.pass_cost.collections
    assert collections and all(at == "collect" for _t, _pause, at in collections)
