"""The Pico board module type-checks against the pinned MicroPython stubs.

It cannot run here (it drives machine and rp2); mypy with the stubs of the
pinned release as its typeshed is what checks every call it makes.
"""

import os
import subprocess
import sys

import pytest

from tools.mpwasm import ROOT, pins

STUBS = ROOT / ".cache" / "mpstubs"
# the modules that run only on the board, and what they import from firmware/
MODULES = (
    "firmware.board_pico",
    "firmware.pico_capture",
    "firmware.pico_output",
    "firmware.board_profile",
    "firmware.pico_main",
    "firmware.pico_pio",
    "firmware.ads1292",
)


def _stubs():
    release = pins()["release"]
    marker = STUBS / ".release"
    if marker.exists() and marker.read_text() == release:
        return
    spec = next(d for d in _deps() if d.startswith("micropython-rp2-rpi_pico-stubs=="))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-compile",
            "--upgrade",
            "--target",
            str(STUBS),
            spec,
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if proc.returncode != 0:
        if os.environ.get("CI") == "true":
            pytest.fail("cannot install the MicroPython stubs: " + proc.stderr[-500:])
        pytest.skip("cannot install the MicroPython stubs: " + proc.stderr[-200:])
    marker.write_text(release)


def _deps():
    import tomllib

    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["project"]["optional-dependencies"]["test"]


@pytest.mark.req("DEV-MP-1", "HW-AFE-1", "HW-PULSE-1")
def test_board_module_typechecks_against_micropython_stubs(tmp_path):
    _stubs()
    cfg = tmp_path / "mypy.ini"
    cfg.write_text(
        "[mypy]\n"
        f"custom_typeshed_dir = {STUBS}\n"
        f"mypy_path = {STUBS}:{ROOT}\n"
        "follow_imports = silent\n"
        "check_untyped_defs = True\n"
        "cache_dir = /dev/null\n"
        # the stubs themselves carry a few errors of their own
        "[mypy-machine,vfs,rp2.*,_mpy_shed.*]\nignore_errors = True\n"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(cfg)] + [a for m in MODULES for a in ("-m", m)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
