"""CPU time per call, repeated: what every CPython figure in benchmarks/ is made of.

Figures are CPU seconds of this process (time.process_time), so another
program's load on the machine does not count as ours. Each figure is
`repeats` runs of `number` calls; the minimum is the least disturbed run,
the median the typical one. `number` is chosen so that one run takes about
RUN_S of CPU, well above the clock's resolution.
"""

import statistics
import time

RUN_S = 0.05
REPEATS = 7


def per_call(fn, args=(), repeats=REPEATS, number=None):
    """(min, median) CPU seconds per call of fn(*args)."""
    if number is None:
        number = calibrate(fn, args)
    runs = []
    for _ in range(repeats):
        t0 = time.process_time()
        for _ in range(number):
            fn(*args)
        runs.append((time.process_time() - t0) / number)
    return min(runs), statistics.median(runs)


def calibrate(fn, args=()):
    """Calls that take about RUN_S of CPU together."""
    fn(*args)  # warm up
    number = 1
    while True:
        t0 = time.process_time()
        for _ in range(number):
            fn(*args)
        spent = time.process_time() - t0
        if spent >= RUN_S / 4:
            return max(1, round(number * RUN_S / spent))
        number *= 4


def us(seconds):
    return "%9.2f" % (seconds * 1e6)
