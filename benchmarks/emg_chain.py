"""The EMG chain per sample on CPython (plain and compiled kernel), its allocations on MicroPython.

usage: python -m benchmarks.emg_chain [--samples N] [--repeats R]

Measured: EmgInput.pump (firmware/emg.py) with a fake front end, i.e. the
whole per-sample path of the firmware: 20 Hz high-pass, mains notch,
squares, the 20 Hz RMS envelope and the int32 LE packing of each 50-sample
stream frame. The fake front end fills its block with LCG noise (±2 mV on
a 30 mV offset) while warming up and then only advances its index, so the
figure is the firmware's own cost. Two kernels do the same work on the same
samples: emg_dsp.run_plain (what CPython and the WebAssembly port run) and
firmware/emg_viper.py compiled by numba (what the simulator runs:
sim/emg_kernel.py); both must end on the same envelope. Figures are CPU µs
per sample, min / median of the repeats (benchmarks/cputime.py).

Allocation: gc.mem_alloc() after gc.collect() and a warm-up, before and
after 10,000 samples, on the MicroPython WebAssembly port (CPython
allocates for every int). Its speed is not reported: the port is neither
an RP2040 nor a stand-in for one.

What the chain costs on the RP2040, and its share of the 500 µs a sample
may take at 2 kHz, is measured on the emulated board by
benchmarks/pico_*.py; nothing here estimates it.
"""

import sys

from firmware.emg import EmgInput

MICROPYTHON = sys.implementation.name == "micropython"
STEP = 40  # samples made available per main-loop pass (20 ms at 2 kHz)


class _FrontEnd:
    emg_rate_hz = 2000

    def __init__(self, kernel=None):
        self.emg_kernel = kernel  # the HAL's offer (hal.Hal.emg_kernel)
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


def _emit(first, payload, flags):
    pass


def _pump(fe, emg, samples):
    for _ in range(samples // STEP):
        fe.produced += STEP
        emg.pump(0, _emit)


def warmed(kernel=None):
    """A chain past its warm-up whose front end no longer spends time on samples."""
    fe = _FrontEnd(kernel)
    emg = EmgInput(fe, 0)
    _pump(fe, emg, 4000)
    fe.fill = False
    return fe, emg


def allocation():
    """gc.mem_alloc() growth over 10,000 samples after warm-up, and the envelope (MicroPython)."""
    import gc

    fe, emg = warmed()
    gc.collect()
    before = gc.mem_alloc()
    _pump(fe, emg, 10000)
    return {"alloc_growth_10k": gc.mem_alloc() - before, "envelope_dv": emg.envelope_dv}


def main():
    import argparse
    import json

    from benchmarks import cputime
    from sim import emg_kernel
    from tools import mpwasm

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=20000, help="samples per timed run (default 20000)")
    ap.add_argument("--repeats", type=int, default=cputime.REPEATS)
    args = ap.parse_args()
    samples = args.samples - args.samples % STEP
    kernels = (
        ("plain bytecode (emg_dsp.run_plain)", None),
        ("viper source compiled (numba)", emg_kernel.kernel()),
    )
    print(
        "EMG chain per sample on CPython %s (EmgInput.pump: HP + notch + envelope + packing)"
        % sys.version.split()[0]
    )
    print("CPU µs per sample, min / median of %d runs of %d samples" % (args.repeats, samples))
    figures = []
    envelopes = []
    for label, kernel in kernels:
        fe, emg = warmed(kernel)
        best, median = cputime.per_call(_pump, (fe, emg, samples), args.repeats, number=1)
        figures.append(best)
        envelopes.append(emg.envelope_dv)
        print("  %-40s %s / %s" % (label, cputime.us(best / samples), cputime.us(median / samples)))
    print("ratio plain / compiled (minima): %.1f" % (figures[0] / figures[1]))
    same = "yes" if envelopes[0] == envelopes[1] else "NO"
    print("same final envelope with both kernels: %s (%d x 0.1 uV)" % (same, envelopes[0]))
    status, lines = mpwasm.run(
        "import json\nfrom benchmarks import emg_chain\nprint('@@' + json.dumps(emg_chain.allocation()))"
    )
    got = [ln for ln in lines if ln.startswith("@@")]
    mp = json.loads(got[-1][2:]) if status == 0 and got else None
    if mp:
        print(
            "MicroPython (WebAssembly port, plain kernel): gc.mem_alloc() growth over 10,000 samples"
            " after warm-up: %d B" % mp["alloc_growth_10k"]
        )
    else:
        print("MicroPython: not run: " + "\n".join(lines[-5:]))
    print("RP2040 cost per sample and share of the 2 kHz budget: benchmarks/pico_*.py (emulated RP2040).")


if __name__ == "__main__":
    main()
