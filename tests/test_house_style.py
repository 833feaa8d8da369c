"""The tree passes ruff's lint and format checks: ruff pinned, its rules in pyproject.toml ([tool.ruff]).

The MicroPython idioms (printf formatting, zip without strict, try/except/pass,
...) are allowed only where MicroPython runs; a sample module under each
folder shows the rules are the ones each folder gets. Ruff reads the tree in
well under a second, so these run with every test run.
"""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _ruff(*args, source=None):
    return subprocess.run(
        [sys.executable, "-m", "ruff", *args, "--no-cache"],
        input=source,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )


def _findings(path, source):
    """ruff's findings in source as if it were the module at path, with the tree's configuration."""
    proc = _ruff("check", "--output-format", "concise", "--stdin-filename", path, "-", source=source)
    assert proc.returncode in (0, 1), proc.stderr
    return proc.stdout if proc.returncode else ""


@pytest.mark.req("DEV-STYLE-1")
def test_ruff_finds_nothing_in_the_tree():
    proc = _ruff("check", ".")
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.req("DEV-STYLE-1")
def test_the_tree_is_formatted():
    proc = _ruff("format", "--check", ".")
    assert proc.returncode == 0, proc.stdout + proc.stderr


# printf formatting and str.format (f-strings are optional there), zip without strict, try/except/pass
# (no contextlib) and [a] + b (no unpacking in displays): what MicroPython code writes
MICROPYTHON_IDIOMS = """\
def show(a, b):
    try:
        print("%d of %d" % (len(a), len(b)), "{} left".format(len(b) - len(a)))
    except OSError:
        pass
    return [0] + list(zip(a, b))
"""


@pytest.mark.req("DEV-STYLE-1")
@pytest.mark.parametrize("path", ["firmware/x.py", "protocol/x.py", "tests/dual/test_x.py"])
def test_micropython_code_may_use_its_idioms(path):
    assert _findings(path, MICROPYTHON_IDIOMS) == ""


@pytest.mark.req("DEV-STYLE-1")
@pytest.mark.parametrize("path", ["host/x.py", "sim/x.py", "qa/x.py", "tools/x.py", "tests/test_x.py"])
def test_cpython_code_may_not(path):
    found = _findings(path, MICROPYTHON_IDIOMS)
    for rule in ("UP031", "UP032", "SIM105", "B905", "RUF005"):
        assert rule in found, found


@pytest.mark.req("DEV-STYLE-1")
@pytest.mark.parametrize("path", ["firmware/x.py", "host/x.py"])
def test_a_finding_anywhere_is_reported(path):
    assert "F401" in _findings(path, "import os\n")
