"""The firmware on an emulated Pico: the small set CI runs (tools/emulated_pico, docs/emulated-pico.md).

MicroPython v1.28's RPI_PICO firmware boots in rp2040js with this tree
deployed as `tonus flash` deploys it; the host talks to its USB CDC over
socket:// exactly as to a board. Two boards per run: one boots the
application (provisioned with a clinician key made for the run), one is
held in its maintenance boot (START held) for checks through mpremote.
Skipped, saying how to get it, when TONUS_PICO_FIRMWARE does not name the
firmware. Slow by nature (the emulator runs 5-20x slower than real time):
about 2-3 minutes of wall time in all; longer runs live in benchmarks/.
"""

import itertools
import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hil_tests.watch import Watch
from host.client import ACTIVE_STATES, Client, FaultEvent, StimEvent
from host.transport import open_port
from protocol import codec, framing
from protocol import messages as m

image = pytest.importorskip("tools.emulated_pico.image")
from tools.emulated_pico.board import EmulatedPico, approve, provisioning_files  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
STIM_PROTOCOL = ROOT / "examples" / "protocols" / "stimulation-trial-1min.toml"
RELAX_PROTOCOL = ROOT / "examples" / "protocols" / "relaxation-downtraining.toml"
POLICY_UA = 40000
LEVEL_UA = 3000
SLOWDOWN = 25.0  # wall seconds per board second, at most (hil_tests/conftest.py)

pytestmark = pytest.mark.req("HIL-EMU-1")


def _start(**kw):
    try:
        return EmulatedPico.start(**kw)
    except image.Unavailable as e:
        if "TONUS_PICO_FIRMWARE" in str(e):
            pytest.skip(str(e))
        raise


def _client(pico):
    t = 2.0 * SLOWDOWN
    return Client(open_port(pico.url, timeout=t), timeout=t)


@pytest.fixture(scope="module")
def clinician():
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return Ed25519PrivateKey.generate()


@pytest.fixture(scope="module")
def app_board(clinician):
    """The application board, trusting the run's clinician key, under a device policy."""
    with _start(extra_files=provisioning_files(clinician.public_key(), POLICY_UA)) as pico:
        assert pico.wait_event("usb", 120), "the board did not enumerate on USB"
        yield pico


@pytest.fixture
def app(app_board, monkeypatch):
    """A client on the application board, brought to rest."""
    monkeypatch.setattr(Watch, "slowdown", SLOWDOWN)
    with _client(app_board) as c:
        info = c.info().unwrap()
        if info.state in ACTIVE_STATES:
            c.session_stop().unwrap()
        if c.info().unwrap().state == "FAULT":
            c.fault_clear().unwrap()
        yield c
    assert app_board.state()["resets"] == [], "the board reset: {!r}".format(app_board.state()["resets"])


@pytest.fixture(scope="module")
def maintenance_board():
    with _start(hold_start=True) as pico:
        assert pico.wait_event("usb", 120), "the board did not enumerate on USB"
        pico.wait_board_ms(200)
        yield pico


def _start_session(app, app_board):
    """Start a session; a refusal fails with the board's INFO (a fault from an exception says where)."""
    started = app.session_start()
    if not started.ok:
        raise AssertionError((started, app.info().unwrap(), app_board.state()))


def _tool(name):
    """A console script of this environment (beside the interpreter), else from PATH."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else (shutil.which(name) or name)


def _mpremote(pico, *args, timeout=300):
    r = subprocess.run(
        [_tool("mpremote"), "connect", pico.url, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert r.returncode == 0, r.stderr[-1500:]
    return r.stdout


@pytest.mark.req("HIL-EMU-1", "LINK-MSG-1")
def test_the_board_boots_and_tonus_info_reads_it(app_board, app):
    app.close()  # the CLI opens the port itself, as a person would
    r = subprocess.run(
        [_tool("tonus"), "--port", app_board.url, "--json", "info"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["board"] == "pico" and info["state"] == "IDLE" and info["fault"] is None
    assert info["serial"] == "0000000000000000"  # rp2040js has no flash unique ID


@pytest.mark.req("HIL-EMU-1", "LINK-MSG-6")
def test_it_streams_at_2khz_without_dropping_a_sample(app_board, app):
    w = Watch(app)
    assert app.stream(True).ok
    frames = w.stream_for(2000)
    assert app.stream(False).ok
    assert sum(f.count for f in frames) >= 4000
    assert all(not f.gap for f in frames)
    assert all(b.first_index == a.end_index for a, b in itertools.pairwise(frames))
    assert app.missed == {3: 0, 4: 0}
    assert app_board.state()["emg"]["underruns"] == 0


@pytest.mark.req("HIL-EMU-1", "SAF-ESTOP-1")
def test_the_estop_button_latches_with_the_output_off(app_board, app):
    w = Watch(app)
    assert app.session_start(demo_s=60).ok
    w.state("RUNNING")
    app_board.press_estop()
    assert w.event(FaultEvent, name="ESTOP").latched
    assert not app_board.state()["out"]["live"]
    info = app.info()
    assert info.state == "FAULT" and info.fault.name == "ESTOP" and info.estop_open
    assert app.fault_clear().name == "ESTOP_ACTIVE"
    app_board.release_estop()
    assert app.fault_clear().state == "IDLE"


@pytest.mark.req("HIL-EMU-1", "SAF-AMPLITUDE-1")
def test_a_stimulation_burst_ramps_from_zero_on_the_grid_and_stops(app_board, app, clinician):
    approve(app, STIM_PROTOCOL, clinician, SLOWDOWN)
    w = Watch(app)
    _start_session(app, app_board)
    ready = w.until(
        lambda e: isinstance(e, FaultEvent) or (isinstance(e, StimEvent) and e.state == "READY"),
        3000,
        "the stimulator READY",
    )
    # the pulse engine as the chip holds it says why, should the check's train stall (docs/emulated-pico.md)
    assert isinstance(ready, StimEvent), (ready.name, app_board.request("engine"))
    asked_ns = app_board.state()["t_ns"]
    assert app.stim_level(LEVEL_UA).level_ua == LEVEL_UA
    # on the board's clock: the trial ramps 3 mA in well under 10 s, however loaded this machine is
    while not [p for p in app_board.request("pulses")["pulses"] if p["set_ua"] == LEVEL_UA]:
        assert app_board.state()["t_ns"] < asked_ns + 10e9, "the level was not reached in 10 s"
        app.poll(0.05)
    stopped = app.session_stop()
    assert stopped.ok, (stopped, app.info().unwrap())  # a refusal here says which fault latched
    app_board.wait_board_ms(200)
    pulses = app_board.request("pulses")["pulses"]
    burst = [p for p in pulses if p["t_ns"] >= asked_ns]  # the impedance check's pulses came before
    amps = [p["set_ua"] for p in burst if p["set_ua"]]
    assert amps[0] < LEVEL_UA and amps[-1] == LEVEL_UA  # ramped up from low to the level asked
    assert amps == sorted(amps)  # never a jump down on the way
    assert all(p["set_ua"] % 100 == 0 for p in pulses)  # the HAL's 100 µA grid, check pulses included
    # 1 kohm load, within compliance: each phase delivers the amplitude set, the DAC never
    # taking a ramp step inside a pulse
    unequal = [p for p in pulses if not p["ua1"] == p["set_ua"] == p["ua2"]]
    assert not unequal, unequal
    dac = app_board.state()["out"]
    assert dac["dac_latches"] >= len(set(amps)) and dac["dac_in_pulse"] == 0, dac
    assert not app_board.state()["out"]["live"]
    app_board.wait_board_ms(200)
    assert len(app_board.request("pulses")["pulses"]) == len(pulses)  # stopped: no pulse since


@pytest.mark.req("HIL-EMU-3", "LINK-MSG-6")
def test_a_relaxation_session_streams_at_2khz_without_dropping_a_sample(app_board, app, clinician):
    # a few seconds here; benchmarks/pico_board.py --session-s runs 20 s and more
    approve(app, RELAX_PROTOCOL, clinician, SLOWDOWN)
    w = Watch(app)
    assert app.stream(True).ok
    _start_session(app, app_board)
    w.state("RUNNING")
    frames = w.stream_for(3000)
    assert app.info().state == "RUNNING"
    assert app.session_stop().ok
    assert app.stream(False).ok
    assert sum(f.count for f in frames) >= 6000
    assert all(not f.gap for f in frames)
    assert all(b.first_index == a.end_index for a, b in itertools.pairwise(frames))
    assert app.missed == {3: 0, 4: 0} and app.dropped_frames == 0
    assert not [e for e in w.events if isinstance(e, FaultEvent)]
    assert app_board.state()["emg"]["underruns"] == 0


@pytest.mark.req("HIL-EMU-1", "SAF-BOOT-2")
def test_a_host_talking_through_a_power_cycle_does_not_stop_the_boot(app_board):
    """The last test of the application board: it power-cycles it (the `app` fixture allows no reset)."""
    pico = app_board
    with socket.create_connection(("127.0.0.1", pico.port)) as host:
        pico.power_cycle()
        assert pico.wait_event("usb", 120), "the board did not enumerate after the power cycle"
        # Ctrl-C bytes, as frames carry them, from the moment USB is up until the application
        # has long taken the link (its boot takes about 1 s of board time)
        until_ms = pico.board_ms() + 2000
        while pico.board_ms() < until_ms:
            host.sendall(b"\x03")
        host.sendall(b"\x00")  # ends the junk as one unreadable frame, as a cut frame ends
    said = pico.console()
    assert b"Traceback" not in said and b">>> " not in said, said.decode("latin1")
    with _client(pico) as c:
        info = c.info().unwrap()
    assert info.state == "IDLE" and info.fault is None
    assert info.limits.policy_max_ua == POLICY_UA  # the provisioned records were read at this boot
    assert [r["why"] for r in pico.state()["resets"]] == ["power"]


@pytest.mark.req("HIL-EMU-2")
def test_the_front_end_delivers_the_codes_that_were_sent(maintenance_board):
    """What the capture PIO program and DMA leave in the firmware's ring is the patient's signal, exactly."""
    script = (
        "import time\n"
        "from firmware.board_pico import PicoHal\n"
        "h = PicoHal()\n"
        "time.sleep_ms(150)\n"
        "c = h._capture\n"
        "n = c.written()\n"
        "w = [c._ring[c._ring_base + ((n - 64 + i) & 2047)] for i in range(64)]\n"
        "print('W', h.afe_ok, ' '.join('%x' % v for v in w))\n"
    )
    out = _mpremote(maintenance_board, "exec", script)
    fields = out.split("W ", 1)[1].split()
    assert fields[0] == "True"
    got = np.array([int(x, 16) for x in fields[1:]], dtype=np.uint32)
    sent = maintenance_board.feed.words()
    assert len(got) == 64 and len(set(got.tolist())) > 32  # a signal, not a constant
    at = [i for i in range(len(sent) - 63) if np.array_equal(sent[i : i + 64], got)]
    assert len(at) == 1, "the ring holds words that were not sent in this order"


@pytest.mark.req("SAF-PULSE-2", "SAF-CHARGE-1")
def test_amplitude_changes_at_any_moment_reach_the_dac_between_pulses(maintenance_board):
    """Steps commanded at uneven moments into a 100 Hz train of the widest pulses never latch inside one."""
    script = (
        "import time\n"
        "from firmware.board_pico import PicoHal\n"
        "h = PicoHal()\n"
        "h.stim_configure(100, 450, 100)\n"  # a pulse takes 1 ms of each 10 ms period
        "h.stim_amplitude(1000)\n"
        "h.stim_start()\n"
        "x = 7\n"
        "for i in range(120):\n"
        "    x = (x * 75 + 74) % 65537\n"  # uneven waits, 0-6.6 ms, that no period divides
        "    time.sleep_us(x // 10)\n"
        "    h.stim_amplitude(1100 if i % 2 == 0 else 1000)\n"
        "h.stim_stop()\n"
        "print('DONE')\n"
    )
    before = maintenance_board.state()["out"]
    assert "DONE" in _mpremote(maintenance_board, "exec", script)
    after = maintenance_board.state()["out"]
    assert after["dac_latches"] - before["dac_latches"] >= 121
    assert after["pulses"] - before["pulses"] >= 30  # the train ran through the steps
    inside = after["dac_in_pulse"] - before["dac_in_pulse"]
    assert inside == 0, f"{inside} of the steps latched inside a pulse"


@pytest.mark.req("SAF-PULSE-1", "EMG-BLANK-1")
def test_each_train_counts_its_own_pulses(maintenance_board):
    """SENSE_PULSES counts from stim_start: a count run on from the last train shifts the blanking windows."""
    script = (
        "import time\n"
        "from firmware.board_pico import PicoHal\n"
        "h = PicoHal()\n"
        "s = [0] * 5\n"
        "for train in range(3):\n"
        "    h.stim_configure(50, 200, 50)\n"
        "    h.stim_amplitude(1000)\n"
        "    h.stim_start()\n"
        "    h.stim_sense(s)\n"
        "    first = s[0]\n"
        "    time.sleep_ms(205)\n"  # 10 periods and a bit
        "    h.stim_sense(s)\n"
        "    print('T', first, s[0])\n"
        "    h.stim_amplitude(0)\n"
        "    h.stim_stop()\n"
        "    time.sleep_ms(30)\n"
    )
    counts = [
        tuple(map(int, line.split()[1:]))
        for line in _mpremote(maintenance_board, "exec", script).splitlines()
        if line.startswith("T ")
    ]
    assert len(counts) == 3 and all(first == 0 and 10 <= n <= 11 for first, n in counts), counts


# stream frames the RP2040 seals: (seq, first_index, envelope, state, flags, stim_ua (< 0: none),
# target_dv (0: none)), every CBOR integer size and both optional fields; samples with zeros
FRAME_CASES = [
    (0, 0, 5000, 0, 0, -1, 0),
    (23, 24, 5001, 1, 24, 2500, 0),
    (300, 70000, 5002, 2, 0xFFFF, -1, 77),
    (65535, 0xFFFFFFFF, 5003, 3, 3, 0, 0),
    (7, 0x100000005, 5004, 4, 256, 300, 9),
]


@pytest.mark.req("HIL-EMU-1", "LINK-MSG-6", "DEV-PERF-1")
def test_stream_frames_sealed_on_the_rp2040_are_the_protocols(maintenance_board):
    """The RP2040's own encoder (viper payload, Thumb-assembly CRC and COBS) frames what the protocol does."""
    samples = [bytes(0 if i % (k + 2) == 0 else (i * 37 + k) & 0xFF for i in range(200)) for k in range(5)]
    script = (
        "from firmware import streamframe as sf\n"
        "from firmware import frame_thumb\n"
        "print('THUMB', sf._seal is frame_thumb.seal)\n"
        "f = sf.EmgFrames(200)\n"
        f"for (seq, first, env, state, flags, stim, target), s in zip({FRAME_CASES!r}, {samples!r}):\n"
        "    h = f.head\n"
        "    h[sf.SEQ] = seq; h[sf.ENVELOPE] = env; h[sf.STATE] = state\n"
        "    h[sf.FLAGS] = flags; h[sf.STIM] = stim; h[sf.TARGET] = target\n"
        "    print('F', bytes(f.encode(first, s)).hex())\n"
    )
    out = _mpremote(maintenance_board, "exec", script)
    assert "THUMB True" in out
    got = [line.split()[1] for line in out.splitlines() if line.startswith("F ")]
    want = []
    for (seq, first, env, state, flags, stim, target), s in zip(FRAME_CASES, samples, strict=True):
        fields = {"first_index": first, "samples": s, "envelope_dv": env, "state": state, "flags": flags}
        if stim >= 0:
            fields["stim_ua"] = stim
        if target:
            fields["target_dv"] = target
        want.append(framing.encode(codec.dumps(m.build(m.STREAM, seq, m.EMG, **fields))).hex())
    assert got == want


@pytest.mark.req("HIL-EMU-2")
def test_the_watchdog_resets_the_whole_chip_and_flash_survives(maintenance_board):
    pico = maintenance_board
    _mpremote(pico, "exec", "f = open('kept.txt', 'w'); f.write('written before the reset'); f.close()")
    while not pico.events.empty():
        pico.events.get_nowait()
    # the watchdog starts and nobody feeds it: the chip resets, USB goes and comes back
    hung = subprocess.Popen(
        [
            _tool("mpremote"),
            "connect",
            pico.url,
            "exec",
            "import machine; machine.WDT(timeout=100)\nwhile True: pass",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    reset = pico.wait_event("reset", 120)
    hung.kill()  # its board is gone; it would wait for an answer for ever
    hung.wait()
    assert reset is not None and reset["why"] == "watchdog"
    assert pico.wait_event("usb", 120), "USB did not come back after the reset"
    out = _mpremote(
        pico,
        "exec",
        "import machine; print(machine.reset_cause() == machine.WDT_RESET); print(open('kept.txt').read())",
    )
    assert out.split() == ["True", "written", "before", "the", "reset"]
