"""What a fresh clone needs: every module imports, every third-party import is declared, and CI
runs exactly the README's test command in an environment of its own."""

import ast
import importlib
import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("host", "sim", "protocol", "firmware", "qa")
# These import `machine`/`rp2`: they run only on a board (tests/test_board_pico_logic.py fakes them).
BOARD_ONLY = {
    "firmware.board_pico",
    "firmware.pico_capture",
    "firmware.pico_output",
    "firmware.pico_main",
    "firmware.pico_pio",
    "firmware.board.main",
    "firmware.frame_thumb",  # Thumb assembly: only the RP2040 port compiles it
}
# Test-only tree parts (and the development tools: vector makers, the emulated Pico) count against
# the test extra, the rest against the runtime dependencies.
TEST_TREES = ("tests", "hil_tests", "benchmarks", "qa", "tools")
MICROPYTHON_ONLY = {"machine", "rp2", "micropython", "uctypes", "utime", "ustruct", "gc"}


def _modules():
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            rel = path.relative_to(ROOT).with_suffix("")
            parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
            name = ".".join(parts)
            # viper code loads only where MicroPython has native emitters (tests/dual runs it there);
            # a package's __main__ is a command, run, not imported
            if name not in BOARD_ONLY and not name.endswith(("_viper", ".__main__")):
                yield name


@pytest.mark.req("DEV-SETUP-1")
@pytest.mark.parametrize("name", list(_modules()))
def test_every_module_imports_in_this_environment(name):
    importlib.import_module(name)


def _declared(reqs):
    return {re.split(r"[\s<>=!~;\[(]", r, maxsplit=1)[0].lower().replace("_", "-") for r in reqs}


def _third_party_imports(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            if top not in sys.stdlib_module_names and top not in MICROPYTHON_ONLY:
                yield top


def _project_sources():
    """The tree's own Python files: not a virtual environment, build output or installed packages."""
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT).parts
        if not any(p.startswith(".") or p in ("build", "node_modules", "site-packages") for p in parts):
            yield path


@pytest.mark.req("DEV-SETUP-1")
def test_every_third_party_import_is_a_declared_dependency():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    # an optional feature's extra may serve the code that imports it only when it is there
    runtime = _declared(project["dependencies"]).union(
        *(_declared(v) for k, v in extras.items() if k != "test")
    )
    test = runtime | _declared(extras["test"])
    sources = list(_project_sources())
    local = {p.name for p in ROOT.iterdir()} | {p.stem for p in sources}
    dists = metadata.packages_distributions()
    undeclared = set()
    for path in sources:
        rel = path.relative_to(ROOT)
        allowed = test if rel.parts[0] in TEST_TREES or rel.name == "conftest.py" else runtime
        for top in _third_party_imports(path):
            if top in local:
                continue
            owners = {d.lower().replace("_", "-") for d in dists.get(top, [])}
            # a module no installed distribution provides cannot be imported here either: the test above fails
            if owners and not owners & allowed:
                undeclared.add("{} imports {} ({})".format(rel, top, ", ".join(sorted(owners))))
    assert not undeclared, "declare these in pyproject.toml:\n" + "\n".join(sorted(undeclared))


def _readme_command(lead):
    text = (ROOT / "README.md").read_text()
    para = text.split(lead, 1)[1]
    commands = [line.strip() for line in para.splitlines() if line.startswith("    ")]
    return commands[0]


@pytest.mark.req("DEV-SETUP-1")
def test_ci_runs_the_readme_test_command_verbatim_in_a_fresh_environment():
    command = _readme_command("Install what the tests need")
    ci = (ROOT / ".ci" / "run").read_text()
    assert command in ci.splitlines()
    # the command makes its own environment; CI starts it from nothing
    assert "python3 -m venv" in command and "rm -rf .venv" in ci.split(command)[0]


@pytest.mark.req("DEV-SETUP-1")
def test_the_readme_main_job_command_uses_its_own_environment():
    command = _readme_command("Run the main job")
    assert command.startswith("python3 -m venv .venv && ") and command.endswith(".venv/bin/tonus demo")
