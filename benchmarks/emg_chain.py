"""Cost of the EMG chain per sample on CPython and MicroPython, and its allocations.

usage: python -m benchmarks.emg_chain [--samples N]

Measured: EmgInput.pump (firmware/emg.py) with a fake front end, i.e. the
whole per-sample path of the firmware: 20 Hz high-pass, mains notch, squares,
the 20 Hz RMS envelope and the int32 LE packing of each 50-sample stream
frame. The fake front end fills the block with LCG noise (±2 mV with a 30 mV
offset) while warming up and then only advances its index, so the figure is
the firmware's own cost (on the board, DMA does the copying). Time is wall
time over N samples at 2000 samples/s configuration (ticks_ms on MicroPython:
its WebAssembly port counts whole milliseconds, so N is large), divided by N,
then compared with the 500 µs a sample may take at 2 kHz. Allocation:
gc.mem_alloc() after gc.collect() and a warm-up, before and after 10,000
samples (MicroPython only: CPython allocates for every int).

The WebAssembly port is a correctness proxy, not a speed proxy: it runs this
kind of bytecode ~25x faster than an RP2040 (MICROPYTHON.md), and it has no
native emitters, so it runs the plain kernel, not firmware/emg_viper.py.
"""

import sys

from firmware import emg_dsp
from firmware.emg import EmgInput

MICROPYTHON = sys.implementation.name == "micropython"
BUDGET_US = 500  # one sample period at 2 kHz
STEP = 40  # samples made available per main-loop pass (20 ms at 2 kHz)


class _FrontEnd:
    emg_rate_hz = 2000

    def __init__(self):
        self.next = 0
        self.produced = 0
        self.seed = 1
        self.fill = True

    def emg_index(self):
        return self.next

    def emg_read(self, buf):
        n = min(len(buf), self.produced - self.next)
        if self.fill:
            for i in range(n):
                self.seed = (self.seed * 1103515245 + 12345) & 0x7FFFFFFF
                buf[i] = 300000 + (self.seed >> 8) % 40001 - 20000
        self.next += n
        return n

    def emg_status(self):
        return 0


def _clock():
    import time

    if MICROPYTHON:
        return time.ticks_ms, time.ticks_diff, 1000
    return (lambda: time.perf_counter_ns() // 1000), (lambda a, b: a - b), 1


def _emit(first, payload, flags):
    pass


def _pump(fe, emg, samples):
    for _ in range(samples // STEP):
        fe.produced += STEP
        emg.pump(0, _emit)


def run(samples=100000):
    fe = _FrontEnd()
    emg = EmgInput(fe, 0)
    _pump(fe, emg, 4000)
    fe.fill = False
    growth = None
    if MICROPYTHON:
        import gc

        gc.collect()
        before = gc.mem_alloc()
        _pump(fe, emg, 10000)
        growth = gc.mem_alloc() - before
    now, diff, us_per_tick = _clock()
    t0 = now()
    _pump(fe, emg, samples)
    elapsed_us = diff(now(), t0) * us_per_tick
    return {
        "us_per_sample": elapsed_us / samples,
        "alloc_growth_10k": growth,
        "viper": emg_dsp.FAST,
        "envelope_dv": emg.envelope_dv,
    }


def main():
    import argparse
    import json

    from tools import mpwasm

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=100000)
    args = ap.parse_args()
    cp = run(args.samples)
    status, lines = mpwasm.run(
        "import json\nfrom benchmarks import emg_chain\n"
        f"print('@@' + json.dumps(emg_chain.run({args.samples})))"
    )
    got = [ln for ln in lines if ln.startswith("@@")]
    mp = json.loads(got[-1][2:]) if status == 0 and got else None
    print(
        f"EMG chain per sample (EmgInput.pump: HP + notch + envelope + packing), {args.samples} samples at 2 kHz"
    )
    print(f"{'runtime':34} {'us/sample':>10} {'of 500 us':>10}  kernel")
    print(
        f"{'CPython ' + sys.version.split()[0]:34} {cp['us_per_sample']:10.2f} {cp['us_per_sample'] / BUDGET_US:10.2%}  plain"
    )
    if mp:
        kernel = "viper" if mp["viper"] else "plain"
        print(
            f"{'MicroPython (WebAssembly port)':34} {mp['us_per_sample']:10.2f} {mp['us_per_sample'] / BUDGET_US:10.2%}  {kernel}"
        )
        print(f"ratio MicroPython / CPython: {mp['us_per_sample'] / cp['us_per_sample']:.2f}")
        print(
            f"gc.mem_alloc() growth over 10,000 samples after warm-up (MicroPython): {mp['alloc_growth_10k']} bytes"
        )
        same = "yes" if mp["envelope_dv"] == cp["envelope_dv"] else "NO"
        print(f"same final envelope on both runtimes: {same} ({cp['envelope_dv']} x 0.1 uV)")
    else:
        print("MicroPython: not run: " + "\n".join(lines[-5:]))


if __name__ == "__main__":
    main()
