"""Figures from the emulated Pico: what a main-loop pass costs on MicroPython on an RP2040.

usage: TONUS_PICO_FIRMWARE=... python -m benchmarks.pico_board [--passes N] [--stim-s S] [--session-s S]

Two boards (tools/emulated_pico; board time is the emulated RP2040's, cycle
counted at 125 MHz with zero-wait flash, so a real board is up to ~2x
slower in cold code):

1. In its maintenance boot, a measurement script of our own (written onto
   the board's flash, run with mpremote) builds the firmware's PicoHal and
   Controller as firmware/pico_main.py does, with the link fed from a
   buffer (HELLO, STREAM_CONTROL on) and written to a counter instead of
   USB, so the front end streams at 2 kHz and every frame is built and
   framed. It times N passes of Controller.step() (ticks_us), the heap
   each allocates (gc.mem_alloc, passes without a collection), each task's
   share of the pass, each hal.collect() and each Link.push_emg(), then the
   EMG kernels per sample (plain and viper) and one COSE_Sign1 verify.
   Last it holds the output on with keepalives and the host presses the
   e-stop: the harness times the edge to the enable going low (the
   firmware's own hard IRQ, registered by its Safety).
2. The application, provisioned with a clinician key made for the run: the
   host streams, uploads the stimulation trial, starts a session and sets a
   level; the harness records the time between keepalive edges (the
   longest the output hold must bridge), and from them the pass period
   under stimulation. The host keeps the level alive as host/heartbeat.py
   does, a PING every third of the device's level hold, but on board time
   (a real host's clock is the board's; the emulator's runs 5-25x slower
   than the wall clock, and a host paced on that would flood the board).
3. The application again: a relaxation session (the approved relaxation
   protocol, no stimulation) streaming at 2 kHz to the host for S seconds
   of board time, counting every sample that did not arrive.
Each part is skipped with 0 for its option.
"""

import argparse
import contextlib
import itertools
import json
import subprocess
import sys
import time
from pathlib import Path

from host.client import LEVEL_HOLD_HEARTBEAT_MS
from protocol import codec, framing
from protocol import messages as m

ROOT = Path(__file__).resolve().parent.parent
STIM_PROTOCOL = ROOT / "examples" / "protocols" / "stimulation-trial-1min.toml"
RELAX_PROTOCOL = ROOT / "examples" / "protocols" / "relaxation-downtraining.toml"
COSE_VECTORS = ROOT / "tests" / "dual" / "vectors" / "cose.json"
LEVEL_UA = 3000
LEVEL_PING_MS = LEVEL_HOLD_HEARTBEAT_MS // 3  # as host/heartbeat.py paces the level's hold
SLOWDOWN = 25.0
BIN = Path(sys.executable).parent

# Runs on the board. %(...)s are filled in by the host. It allocates nothing in
# the timed loop of its own: arrays made before, closures with fixed arity.
BOARD_SCRIPT = r"""
import gc, time, sys
from array import array
ticks_us = time.ticks_us
diff = time.ticks_diff
alloc = gc.mem_alloc
INJECT = %(inject)r
REQUESTS = %(requests)r
N = %(passes)d
gc.collect()
free_at_start = gc.mem_free()  # what main.py starts with: the application has none of the buffers below
# the script's own buffers first, while the heap is in one piece
gc_us = array('i', [0] * (N + 100))
frame_us = array('i', [0] * 1024)
dt = array('i', [0] * N)
da = array('i', [0] * N)
gc.collect()
free_before = gc.mem_free()
# as firmware/pico_main.py boots: a low free run before any module, the HAL's DMA ring before
# the controller's modules, and a free run taken before them; both given back after boot
low_room = bytearray(4096)
from firmware.board_pico import PicoHal
hal = PicoHal()
room = bytearray(16 * 1024)
from firmware.controller import Controller
feed = [0]
def link_read(buf):
    p = feed[0]
    n = len(INJECT) - p
    if n > len(buf):
        n = len(buf)
    for i in range(n):
        buf[i] = INJECT[p + i]
    feed[0] = p + n
    return n
sent = array('i', [0, 0])
def link_write(data):
    sent[0] += len(data)
    sent[1] += 1
    return True
hal.link_read = link_read
hal.link_write = link_write
gc_n = array('i', [0])
collect = hal.collect
def timed_collect(requests):
    t = ticks_us()
    collect(requests)
    if gc_n[0] < len(gc_us):
        gc_us[gc_n[0]] = diff(ticks_us(), t)
        gc_n[0] += 1
hal.collect = timed_collect
ctrl = Controller(hal)
ctrl.boot()
del room
del low_room
gc.collect()
print('FIG free_heap_after_boot_B', free_at_start - (free_before - gc.mem_free()))
print('FIG free_heap_here_B', gc.mem_free())
print('FIG heap_taken_by_firmware_B', free_before - gc.mem_free())
TASKS = ('poll_safety', 'link', 'emg', 'session', 'selftest', 'patient_io', 'maintenance', 'collect')
task_us = array('i', [0] * len(TASKS))
def timed1(k, fn):
    def w(a):
        t = ticks_us()
        r = fn(a)
        task_us[k] += diff(ticks_us(), t)
        return r
    return w
ctrl.poll_safety = timed1(0, ctrl.poll_safety)
ctrl.link.poll = timed1(1, ctrl.link.poll)
pump = ctrl.emg.pump
def timed_pump(now, emit):
    t = ticks_us()
    pump(now, emit)
    task_us[2] += diff(ticks_us(), t)
ctrl.emg.pump = timed_pump
ctrl._tick_session = timed1(3, ctrl._tick_session)
ctrl.selftest.step = timed1(4, ctrl.selftest.step)
ctrl.patient.poll = timed1(5, ctrl.patient.poll)
ctrl.maintenance.poll = timed1(6, ctrl.maintenance.poll)
frame_n = array('i', [0])
push = ctrl.link.push_emg
def timed_push(first_index, samples):  # Link.push_emg's arity: a tuple of *args would allocate
    t = ticks_us()
    r = push(first_index, samples)
    if frame_n[0] < 1024:
        frame_us[frame_n[0]] = diff(ticks_us(), t)
        frame_n[0] += 1
    return r
ctrl.link.push_emg = timed_push
step = ctrl.step
idle = hal.idle
for i in range(50):  # HELLO and STREAM_CONTROL are served, the stream settles
    step()
    idle()
for k in range(len(TASKS)):
    task_us[k] = 0
gc_n[0] = 0
frame_n[0] = 0
i0 = hal.emg_index()
t_start = ticks_us()
for i in range(N):
    a0 = alloc()
    t0 = ticks_us()
    step()
    t1 = ticks_us()
    a1 = alloc()
    dt[i] = diff(t1, t0)
    da[i] = a1 - a0
    idle()
wall = diff(ticks_us(), t_start)
samples = hal.emg_index() - i0
task_us[7] = sum(gc_us[k] for k in range(gc_n[0]))
print('FIG passes', N)
print('FIG board_us', wall)
print('FIG samples', samples)
print('FIG frames_sent', sent[1])
print('FIG overrun_flags', 1 if hal.emg_status() & 4 else 0)
print('PASS_US', ' '.join(str(dt[i]) for i in range(N)))
print('ALLOC_B', ' '.join(str(da[i]) for i in range(N) if da[i] >= 0))  # < 0: a collection ran
print('FIG collections', sum(1 for i in range(N) if da[i] < 0))
print('COLLECT_US', ' '.join(str(gc_us[k]) for k in range(gc_n[0])))
print('FRAME_US', ' '.join(str(frame_us[k]) for k in range(frame_n[0])))
print('TASK_US', ' '.join('%%s=%%d' %% (TASKS[k], task_us[k]) for k in range(len(TASKS))))
hal.wdt_start(8388)  # the longest: the rest is not the main loop
hal.wdt_feed()
# one request answered as the link answers it (a PING on its short path; decode, handler, reply
# framed and written): its time and heap
for name, payload in REQUESTS:
    best = 1 << 30
    most = 0
    for r in range(5):
        gc.collect()
        a0 = alloc()
        t = ticks_us()
        ctrl.link.answer(payload, 0)
        best = min(best, diff(ticks_us(), t))
        most = max(most, alloc() - a0)
    print('FIG request_%%s_us %%d' %% (name, best))
    print('FIG request_%%s_B %%d' %% (name, most))
# a full collection with the firmware's live heap, as the loop's collect point does it
gcp = array('i', [0] * 5)
for r in range(5):
    t = ticks_us()
    gc.collect()
    gcp[r] = diff(ticks_us(), t)
print('GC_US', ' '.join(str(v) for v in gcp))
# EMG kernels on one block, per sample (imported only now: the firmware's heap came first)
from firmware import emg_dsp
from firmware.emg_plain import run_plain  # on a board with viper only this loads it
from protocol import cose
x = array('i', [((i * 7919) %% 4001 - 2000) * 50 + 150000 for i in range(200)])
co = emg_dsp.coefficients(2000, 50)
out = bytearray(800)
kernels = [('plain', run_plain)]
if emg_dsp.FAST:
    from firmware.emg_viper import run as viper_run
    kernels.append(('viper', viper_run))
for name, fn in kernels:
    st = array('i', [0] * emg_dsp.STATE_LEN)
    best = 1 << 30
    for r in range(5):
        t = ticks_us()
        fn(st, co, x, 0, 200, out)
        best = min(best, diff(ticks_us(), t))
    print('FIG emg_%%s_us_per_sample %%.2f' %% (name, best / 200))
hal.wdt_feed()
trusted = {bytes.fromhex(%(kid)r): bytes.fromhex(%(pub)r)}
data = bytes.fromhex(%(cose)r)
t = ticks_us()
cose.verify_sign1(data, trusted, b'', hal.wdt_feed)
print('FIG cose_verify_ms', diff(ticks_us(), t) // 1000)
# the output on, held by keepalives, until the host presses the e-stop: the firmware's own hard IRQ
# (registered by Safety) drops the enable; the harness times the edge to enable-low on the pins
hal.out_enable(True)
t = ticks_us()
while hal.out_enabled() and diff(ticks_us(), t) < 5000000:
    hal.out_keepalive()
    hal.wdt_feed()
    time.sleep_ms(5)
print('FIG estop_dropped', 0 if hal.out_enabled() else 1)
print('DONE')
"""


def _requests():
    """Payloads of the requests whose cost the board script measures (a PING, the largest answer)."""
    return [
        ("ping", codec.dumps(m.build(m.REQUEST, 90, m.PING))),
        ("info", codec.dumps(m.build(m.REQUEST, 91, m.INFO))),
    ]


def _frames():
    out = b""
    for seq, (mtype, fields) in enumerate(
        ((m.HELLO, {"min_version": 1, "max_version": 1}), (m.STREAM_CONTROL, {"enable": True})), 1
    ):
        out += framing.encode(codec.dumps(m.build(m.REQUEST, seq, mtype, **fields)))
    return out


def _pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, round(p / 100 * (len(v) - 1)))] if v else float("nan")


def _dist(values, unit="µs"):
    if not values:
        return "none"
    return f"p50 {_pct(values, 50)}, p99 {_pct(values, 99)}, max {max(values)} {unit} (n={len(values):d})"


def board_script(passes):
    vec = json.loads(COSE_VECTORS.read_text())
    case = next(c for c in vec["cases"] if c["expect"] == "ok" and not c.get("aad"))
    return BOARD_SCRIPT % {
        "inject": _frames(),
        "requests": _requests(),
        "passes": passes,
        "kid": vec["kid"],
        "pub": vec["public_key"],
        "cose": case["cose"],
    }


def measure_passes(passes, root):
    from tools.emulated_pico.board import EmulatedPico

    script = board_script(passes)
    with EmulatedPico.start(
        hold_start=True, extra_files={"bench_pico.py": script.encode()}, root=root
    ) as pico:
        pico.wait_event("usb", 120)
        pico.wait_board_ms(200)
        proc = subprocess.Popen(
            [str(BIN / "mpremote"), "connect", pico.url, "exec", "import bench_pico"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        # the script ends by holding the output on: press the e-stop once it is
        while proc.poll() is None and not pico.state()["out"]["live"]:
            if pico.state()["resets"]:  # mpremote would wait for its board for ever
                proc.kill()
                resets = pico.state()["resets"]
                raise SystemExit(f"the board reset during the measurement: {resets!r}")
            time.sleep(0.5)
        if proc.poll() is None:
            pico.wait_board_ms(20)
            pico.press_estop()
        stdout, stderr = proc.communicate(timeout=3600)
        latency = pico.state()["out"]["estop_to_off_ns"]
        r = subprocess.CompletedProcess(
            proc.args, proc.returncode, stdout + f"\nFIG estop_to_off_ns {latency}\n", stderr
        )
        if "DONE" not in r.stdout:
            raise SystemExit(
                f"the measurement script failed on the board:\n{r.stdout[-3000:]}\n{r.stderr[-2000:]}"
            )
        return r.stdout


def report_passes(out):
    figs, lists = {}, {}
    for line in out.splitlines():
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "FIG":
            figs[parts[1]] = parts[2]
        elif parts[0] in ("PASS_US", "ALLOC_B", "GC_US", "COLLECT_US", "FRAME_US", "TASK_US"):
            lists[parts[0]] = parts[1:]
    num = {k: [int(x) for x in v] for k, v in lists.items() if k != "TASK_US"}
    tasks = {kv.split("=")[0]: int(kv.split("=")[1]) for kv in lists.get("TASK_US", [])}
    busy = sum(num["PASS_US"]) or 1
    board_us = int(figs["board_us"])
    print(
        f"streaming at 2 kHz to a host, no stimulation ({figs['passes']} passes, "
        f"{board_us / 1e6:.2f} s of board time):"
    )
    print("  pass (Controller.step):       {}".format(_dist(num["PASS_US"])))
    print("  CPU busy in step():           %.1f %% of board time" % (100 * busy / board_us))
    print(
        f"  samples streamed:             {figs['samples']} in {figs['frames_sent']} frames; "
        f"ring overrun: {'yes' if figs['overrun_flags'] == '1' else 'no'}"
    )
    alloc = num["ALLOC_B"]
    print(
        f"  heap allocated per pass:      {_dist(alloc, 'B')} "
        f"(mean {sum(alloc) / len(alloc) if alloc else float('nan'):.0f} B)"
    )
    print(
        f"  free heap after boot:         {figs['free_heap_after_boot_B']} B "
        f"(the heap main.py starts with, less the {figs['heap_taken_by_firmware_B']} B the "
        f"firmware's imports and objects took; {figs['free_heap_here_B']} B here, beside this "
        "script's buffers)"
    )
    print(
        f"  hal.collect() per pass:       {_dist(num['COLLECT_US'])}; "
        f"passes with a collection: {figs['collections']}"
    )
    print("  GC pause (gc.collect, live):  {}".format(_dist(num["GC_US"])))
    print("  stream frame send (push_emg): {}".format(_dist(num["FRAME_US"])))
    print(
        "  CPU share per task:           "
        + ", ".join(f"{k} {100 * v / busy:.1f} %" for k, v in sorted(tasks.items(), key=lambda kv: -kv[1]))
    )
    for k in ("emg_plain_us_per_sample", "emg_viper_us_per_sample"):
        if k in figs:
            print(
                f"  EMG kernel {k.split('_')[1]:<6}             {figs[k]} µs/sample "
                f"({float(figs[k]) / 5:.1f} % of the 500 µs at 2 kHz)"
            )
    for k in ("ping", "info"):
        print(
            f"  request answered ({k.upper():<4}):      {figs[f'request_{k}_us']} µs, "
            f"{figs[f'request_{k}_B']} B allocated"
        )
    print("  COSE_Sign1 (Ed25519) verify:  {} ms".format(figs["cose_verify_ms"]))
    ns = figs.get("estop_to_off_ns", "None")
    print(
        "  e-stop edge to enable low:    %s (the firmware's hard IRQ, output held by keepalives)"
        % ("%.1f µs" % (int(ns) / 1000) if ns != "None" else "never")
    )


def pass_periods(gaps_us):
    """Pass periods (µs) from the gaps between keepalive edges while the output is on:
    (periods without a collection, periods that hold one).

    The loop toggles after its link task, in the stimulator's tick, and on both sides of its
    collect point; those two come closest (the collect point's pass counter and one output
    read-back, the shortest gap of all, the same every pass) unless a collection runs
    between them, and every other pair of the pass holds a task: at least twice as far
    apart. The second of each such pair ends a pass; a pass with a collection (a gap of
    20 ms or more) merges with the next.
    """
    plain, collected = [], []
    start = None
    t = longest = 0.0
    marker = 2 * min(gaps_us, default=0)
    for g in gaps_us:
        t += g
        longest = max(longest, g)
        if g <= marker:
            if start is not None:
                (collected if longest >= 20_000 else plain).append(round(t - start))
            start, longest = t, 0.0
    return plain, collected


@contextlib.contextmanager
def _application(protocol):
    """(board, client): the application on an emulated board trusting a key made here, protocol
    approved with it, a session started while streaming at 2 kHz."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from host.client import Client
    from host.transport import open_port
    from tools.emulated_pico.board import EmulatedPico, approve, provisioning_files

    key = Ed25519PrivateKey.generate()
    with EmulatedPico.start(extra_files=provisioning_files(key.public_key(), 40000)) as pico:
        pico.wait_event("usb", 120)
        t = 2.0 * SLOWDOWN
        with Client(open_port(pico.url, timeout=t), timeout=t) as c:
            approve(c, protocol, key, SLOWDOWN)
            assert c.stream(True).ok
            started = c.session_start()
            assert started.ok, started
            yield pico, c


def measure_stimulation(stim_s):
    from host.client import FaultEvent, StimEvent

    with _application(STIM_PROTOCOL) as (pico, c):
        deadline = time.monotonic() + 600
        while True:
            ev = c.poll(0.1)
            if isinstance(ev, StimEvent) and ev.state == "READY":
                break
            if isinstance(ev, FaultEvent) or time.monotonic() > deadline:
                print(
                    "streaming at 2 kHz with stimulation: not measured, the session %s"
                    % (f"latched {ev.name}" if ev else "never reached READY")
                )
                return
        assert c.stim_level(LEVEL_UA).ok
        pico.request("keepalive_intervals")
        pings = _hold_level(pico, c, stim_s)
        gaps = [ns / 1000 for ns in pico.request("keepalive_intervals")["ns"]]
        s = pico.state()
        pulses = pico.request("pulses")["pulses"]
        resets = pico.state()["resets"]
    print(
        f"streaming at 2 kHz with stimulation ({stim_s} s of board time, {len(pulses):d} pulses, "
        f"last at {pulses[-1]['set_ua'] if pulses else 0:d} µA):"
    )
    plain, collected = pass_periods(gaps)
    print(
        f"  requests answered:            {pings:d} PINGs, one pass each, of "
        f"{len(plain) + 2 * len(collected):d} passes (the level's heartbeat every "
        f"{LEVEL_PING_MS:d} ms of board time)"
    )
    print(f"  pass period, no collection:   {_dist(plain)}")
    print(f"  two passes and a collection:  {_dist(collected)}")
    print(f"  keepalive gap (output hold):  {_dist([round(g) for g in gaps])}")
    print(f"  output-stage lapses:          {s['out']['lapses']:d}; resets: {len(resets):d}")


def _hold_level(pico, c, seconds):
    """Read the stream for `seconds` of board time, the level's heartbeat PING paced on board
    time; how many PINGs were sent."""
    c.heartbeat_ms = 0  # the client's own heartbeat runs on the wall clock: this one on the board's
    now = pico.state()["t_ns"]
    t_end = now + seconds * 1e9
    next_ping = now + LEVEL_PING_MS * 1e6
    pings = 0
    while now < t_end:
        if now >= next_ping:
            assert c.ping().ok
            pings += 1
            next_ping = now + LEVEL_PING_MS * 1e6
        c.poll(0.05)
        now = pico.state()["t_ns"]
    return pings


def measure_session(session_s):
    from host.client import EmgFrame

    with _application(RELAX_PROTOCOL) as (pico, c):
        t0 = pico.state()["t_ns"]
        frames, events = [], []
        while pico.state()["t_ns"] < t0 + session_s * 1e9:
            item = c.poll(0.1)
            while item is not None:
                (frames if isinstance(item, EmgFrame) else events).append(item)
                item = c.poll(0)
        state = c.info().unwrap().state
        assert c.session_stop().ok
        assert c.stream(False).ok
        board_s = (pico.state()["t_ns"] - t0) / 1e9
        s = pico.state()
    frames = [f for f in frames if f.state == "RUNNING"] or frames
    samples = sum(f.count for f in frames)
    holes = sum(
        b.first_index - a.end_index for a, b in itertools.pairwise(frames) if b.first_index != a.end_index
    )
    print(
        f"a relaxation session streaming at 2 kHz ({board_s:.1f} s of board time, state {state} at the end):"
    )
    print(
        f"  samples received:             {samples:d} in {len(frames):d} frames "
        f"({samples / board_s:.0f} per board second)"
    )
    print(
        f"  samples missing:              {holes:d} (frames lost {c.missed[m.STREAM]:d}, "
        f"with a gap flag {sum(1 for f in frames if f.gap):d}, unreadable {c.dropped_frames:d}); "
        f"front-end underruns {s['emg']['underruns']:d}; resets {len(s['resets']):d}"
    )
    faults = [e for e in events if type(e).__name__ == "FaultEvent"]
    print(f"  faults:                       {', '.join(f.name for f in faults) or 'none'}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--passes", type=int, default=500)
    ap.add_argument("--stim-s", type=float, default=3.0)
    ap.add_argument("--session-s", type=float, default=20.0)
    ap.add_argument(
        "--root", type=Path, default=ROOT, help="the tree whose firmware/ and protocol/ are deployed"
    )
    args = ap.parse_args(argv)
    from tools.emulated_pico import image

    try:
        image.firmware_path()
    except image.Unavailable as e:
        raise SystemExit(str(e)) from None
    if args.passes:
        report_passes(measure_passes(args.passes, args.root))
    if args.stim_s:
        measure_stimulation(args.stim_s)
    if args.session_s:
        measure_session(args.session_s)


if __name__ == "__main__":
    main()
