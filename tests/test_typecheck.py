"""The tree type-checks: mypy, pinned, with the configuration in pyproject.toml ([tool.mypy]).

The configuration names what is checked (protocol, firmware, host, sim, qa)
and what is not: the board-only modules, which tests/test_board_typecheck.py
checks against the MicroPython stubs. The cache under .cache/mypy makes a
run after a small change take a second or two; a cold run about fifteen.
"""

import re
import subprocess
import sys
import tomllib

import pytest
from test_layering import imports

from tools.mpwasm import ROOT


def _mypy(*args):
    return subprocess.run(
        [sys.executable, "-m", "mypy", *args],
        check=False,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )


@pytest.mark.req("DEV-STYLE-2")
def test_the_tree_type_checks_clean():
    proc = _mypy()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith("Success: no issues found"), proc.stdout


@pytest.mark.req("DEV-STYLE-2")
def test_the_check_covers_every_package_and_leaves_out_only_the_board_modules():
    with open(ROOT / "pyproject.toml", "rb") as f:
        config = tomllib.load(f)
    packages = set(config["tool"]["setuptools"]["packages"]["find"]["include"])
    checked = set(config["tool"]["mypy"]["files"])
    assert {p.rstrip("*") for p in packages} <= checked, "an installed package is not type-checked"
    # what the exclusions leave out is exactly what runs only on the board: the modules that
    # import machine or rp2, the native-code kernels, and the board's /main.py
    excluded, board_only = [], []
    for path in sorted((ROOT / "firmware").rglob("*.py")):
        name = str(path.relative_to(ROOT))
        if any(re.search(x, name) for x in config["tool"]["mypy"]["exclude"]):
            excluded.append(name)
        uses = {module.split(".")[0] for _line, module in imports(path, ROOT / "firmware")}
        native = name.endswith(("_viper.py", "_thumb.py"))
        if uses & {"machine", "rp2"} or native or name == "firmware/board/main.py":
            board_only.append(name)
    assert excluded == board_only
    assert "firmware/board_pico.py" in excluded and "firmware/emg_viper.py" in excluded


@pytest.mark.req("DEV-STYLE-2")
def test_a_type_error_fails_the_check(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text('def f(x: int) -> int:\n    return x\n\n\nf("one")\n')
    proc = _mypy("--cache-dir", str(tmp_path / "cache"), str(bad))
    assert proc.returncode == 1 and "arg-type" in proc.stdout, proc.stdout + proc.stderr
