"""The board's EMG filter kernel, compiled for the simulator.

On the RP2040 the chain runs firmware/emg_viper.py's `run` (viper: native
32-bit integers); CPython has no viper, and the plain bytecode kernel
(emg_dsp.run_plain) costs ~1.5 µs a sample, a quarter of a simulated
session's time. Here numba compiles that same viper source. Its ints are
64-bit, and emg_dsp's bounds keep every intermediate within ±2**30, so
nothing wraps in either width; only the loads of 32-bit words differ
between machines: an RP2040 reads the word itself, a 64-bit machine
extends it, with zeros (as MicroPython's 64-bit ports do, and as a source
that sign-extends its loads expects) or with the sign. The kernel is built
with the extension under which the source gives emg_dsp.run_plain's
samples, state and envelope on a probe of railed, negative and ordinary
blocks, i.e. what it gives on the board; if neither does, the simulator
runs the plain kernel and says why. tests/sim/test_speed_paths.py compares
the two kernels at length, and whole sessions. SimBoard offers the kernel
to the firmware as hal.Hal.emg_kernel.

Compiled code is cached beside the source (numba's cache, keyed to the
file's stamp), so only the first simulator after a change pays ~1 s.
"""

import ast
import functools
import logging
from array import array
from pathlib import Path

import numpy as np

import firmware
from firmware import emg_dsp

VIPER_SOURCE = Path(firmware.__file__).with_name("emg_viper.py")
log = logging.getLogger("tonus.sim")


def _python_function(path):
    """emg_viper.run as a plain function: decorator and viper annotations dropped, consts inlined."""
    tree = ast.parse(path.read_text(), str(path))
    consts = {}
    body: list[ast.stmt] = []
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Call)
            and getattr(node.value.func, "id", "") == "const"
        ):
            target = node.targets[0]
            if isinstance(target, ast.Name):
                consts[target.id] = ast.literal_eval(node.value.args[0])
        elif isinstance(node, ast.FunctionDef) and node.name == "run":
            node.decorator_list = []
            node.returns = None
            for arg in node.args.args:
                arg.annotation = None
            body.append(node)
    if len(body) != 1:
        raise ImportError(f"{path} defines no viper kernel 'run'")
    # numba freezes globals into the compiled code; a cached copy reloads by this module's name.
    # viper's int(word) is a machine word: a signed 64-bit one here, whatever the load's type
    namespace = dict(consts, __name__=__name__, int=np.int64)
    exec(compile(ast.Module(body=body, type_ignores=[]), str(path), "exec"), namespace)
    return namespace["run"]


def _words(a):
    """The 32-bit words of a as unsigned: loads extend them with zeros."""
    return memoryview(a).cast("B").cast("I")


def _zero_extended(run):
    def kernel(st, co, x, start, end, out):
        return run(_words(st), _words(co), _words(x), start, end, out)

    return kernel


def _probe_blocks():
    """Blocks that reach the rails, negative states and restarts, with their starts."""
    seed = 12345
    for kind in range(24):
        x = array("i", [0] * emg_dsp.BLOCK)
        for i in range(emg_dsp.BLOCK):
            seed = (seed * 1103515245 + 12345) & 0x7FFFFFFF
            if kind % 3 == 0:
                x[i] = (seed % 8_400_001) - 4_200_000
            elif kind % 3 == 1:
                x[i] = (4_500_000, -4_500_000, 0)[seed % 3]
            else:
                x[i] = 300000 + seed % 40001 - 20000
        yield x, kind % 5


def agrees(kernel):
    """Does kernel give emg_dsp.run_plain's samples, state and envelope on the probe blocks?"""
    for rate, mains in ((2000, 50), (1000, 60)):
        co = emg_dsp.coefficients(rate, mains)
        st_a = array("i", [0] * emg_dsp.STATE_LEN)
        st_b = array("i", [0] * emg_dsp.STATE_LEN)
        for x, start in _probe_blocks():
            out_a = bytearray(4 * emg_dsp.BLOCK)
            out_b = bytearray(4 * emg_dsp.BLOCK)
            emg_dsp.run_plain(st_a, co, x, start, emg_dsp.BLOCK, out_a)
            kernel(st_b, co, x, start, emg_dsp.BLOCK, out_b)
            if out_a != out_b or st_a != st_b:
                return False
            for s in (st_a, st_b):  # the block's sums of squares are taken out, as Chain does
                s[emg_dsp._S_H] = s[emg_dsp._S_L] = 0
    return True


@functools.cache
def kernel():
    """The compiled kernel (built once per process): run(st, co, x, start, end, out); None if it disagrees."""
    import numba

    run = numba.njit(cache=True, nogil=True)(_python_function(VIPER_SOURCE))
    compiled = next((k for k in (_zero_extended(run), run) if agrees(k)), None)
    if compiled is None:
        log.warning("%s disagrees with emg_dsp.run_plain: the simulator runs the plain kernel", VIPER_SOURCE)
    return compiled
