"""Run Python on the pinned MicroPython WebAssembly port under Node.

The port is installed from the npm registry into .cache/mpwasm at the
version pinned in pyproject.toml ([tool.tonus.micropython]); nothing else
decides which MicroPython the tests and benchmarks use.
"""

import json
import os
import shutil
import subprocess
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache" / "mpwasm"
RUNNER = Path(__file__).resolve().parent / "mp_run.mjs"
# what the port's in-memory filesystem receives
COPIED = ("protocol", "firmware", "tests/dual", "benchmarks")


class Unavailable(Exception):
    """Node or the pinned port cannot be had on this machine."""


def pins():
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["tool"]["tonus"]["micropython"]


def ensure_port():
    """Path of the pinned port's micropython.mjs, installing it if needed."""
    pin = pins()
    pkg, version = pin["wasm-package"], pin["wasm-version"]
    node = shutil.which("node")
    npm = shutil.which("npm")
    if not node or not npm:
        raise Unavailable("node and npm are needed for the MicroPython WebAssembly port")
    moddir = CACHE / "node_modules" / pkg
    meta = moddir / "package.json"
    if not meta.exists() or json.loads(meta.read_text())["version"] != version:
        CACHE.mkdir(parents=True, exist_ok=True)
        (CACHE / "package.json").write_text('{"name": "tonus-mpwasm", "private": true}\n')
        proc = subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--prefix", str(CACHE), f"{pkg}@{version}"],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if proc.returncode != 0 or not meta.exists():
            raise Unavailable(f"npm install {pkg}@{version} failed: {proc.stderr.strip()[-400:]}")
    return moddir / "micropython.mjs"


def run(code, timeout=600, heap_mb=16):
    """Run `code` on the port with the repo's portable folders on sys.path.

    Returns (exit status, stdout lines). A Python exception in `code` gives a
    non-zero status and its traceback in the output.
    """
    mjs = ensure_port()
    env = dict(os.environ, TONUS_COPY=":".join(COPIED), TONUS_HEAP_MB=str(heap_mb))
    proc = subprocess.run(
        ["node", str(RUNNER), str(mjs), str(ROOT)],
        input=code,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )
    return proc.returncode, (proc.stdout + proc.stderr).splitlines()
