"""The board's EMG filter kernel, compiled for the simulator.

On the RP2040 the chain runs firmware/emg_viper.py's `run` (viper: native
32-bit integers); CPython has no viper, and the plain bytecode kernel
(emg_dsp.run_plain) costs ~1.5 µs a sample, a quarter of a simulated
session's time. Here numba compiles that same viper source: its ints are
64-bit, and emg_dsp's bounds keep every intermediate within ±2**30, so
neither width wraps and the samples, state and envelope equal the plain
kernel's bit for bit (tests/sim/test_emg_kernel.py compares them, and the
session digest in tests/sim/test_speed_paths.py compares whole sessions).
SimBoard offers it to the firmware as hal.Hal.emg_kernel.

Compiled code is cached beside the source (numba's cache, keyed to the
file's stamp), so only the first simulator after a change pays ~1 s.
"""

import ast
from array import array
from pathlib import Path

import firmware
from firmware import emg_dsp

VIPER_SOURCE = Path(firmware.__file__).with_name("emg_viper.py")
_kernel = None


def _python_function(path):
    """emg_viper.run as a plain function: decorator and viper annotations dropped, consts inlined."""
    tree = ast.parse(path.read_text(), str(path))
    consts = {}
    body = []
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Call)
            and getattr(node.value.func, "id", "") == "const"
        ):
            consts[node.targets[0].id] = ast.literal_eval(node.value.args[0])
        elif isinstance(node, ast.FunctionDef) and node.name == "run":
            node.decorator_list = []
            node.returns = None
            for arg in node.args.args:
                arg.annotation = None
            body.append(node)
    if len(body) != 1:
        raise ImportError("%s defines no viper kernel 'run'" % path)
    body = [ast.fix_missing_locations(_ZeroExtendedLoads().visit(body[0]))]
    # numba freezes globals into the compiled code; a cached copy reloads by this module's name
    namespace = dict(consts, __name__=__name__)
    exec(compile(ast.Module(body=body, type_ignores=[]), str(path), "exec"), namespace)  # noqa: S102
    return namespace["run"]


class _ZeroExtendedLoads(ast.NodeTransformer):
    """int(p[i]) of a ptr32 becomes p[i] & 0xFFFFFFFF: a load as a 64-bit port makes it,
    zero-extended, which the kernel sign-extends itself ((w ^ m) - m); numba's loads from
    an array('i') are signed already, and the kernel's own extension would then be wrong."""

    def visit_Call(self, node):
        self.generic_visit(node)
        if isinstance(node.func, ast.Name) and node.func.id == "int" and len(node.args) == 1:
            return ast.BinOp(node.args[0], ast.BitAnd(), ast.Constant(0xFFFFFFFF))
        return node


def kernel():
    """The compiled kernel (built once per process): run(st, co, x, start, end, out)."""
    global _kernel
    if _kernel is None:
        import numba

        run = numba.njit(cache=True, nogil=True)(_python_function(VIPER_SOURCE))
        # compile (or load from the cache) now, for the argument types the firmware passes,
        # rather than inside the first simulated block
        state = array("i", [0] * emg_dsp.STATE_LEN)
        run(state, emg_dsp.coefficients(2000, 50), array("i", [0]), 0, 0, bytearray(4))
        _kernel = run
    return _kernel
