"""The folders import downwards only: host -> sim -> firmware -> protocol, and QA tools beside them.

protocol/ is shared by both ends, firmware/ runs on the board, sim/ runs the
firmware on simulated hardware; none of them may reach up into what drives
them. Imports inside functions count as much as those at the top.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# folder -> top-level packages its modules must never import
FORBIDDEN = {
    "protocol": {"firmware", "sim", "host", "qa"},
    "firmware": {"sim", "host", "qa"},
    "sim": {"host", "qa"},
}


def imports(path, package):
    """(line, module) for every module a file imports, relative imports resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    parts = list(path.relative_to(package.parent).with_suffix("").parts)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = parts[: len(parts) - node.level]
                yield node.lineno, ".".join(base + ([node.module] if node.module else []))
            else:
                yield node.lineno, node.module
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", None)) in ("import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            yield node.lineno, node.args[0].value


def violations(root, folder, forbidden):
    package = root / folder
    found = []
    for path in sorted(package.rglob("*.py")):
        for line, module in imports(path, package):
            if module.split(".")[0] in forbidden:
                found.append(f"{path.relative_to(root)}:{line} imports {module}")
    return found


@pytest.mark.req("ARCH-LAYERS-1")
@pytest.mark.parametrize("folder", sorted(FORBIDDEN))
def test_no_folder_imports_what_drives_it(folder):
    assert list((ROOT / folder).rglob("*.py")), folder
    assert violations(ROOT, folder, FORBIDDEN[folder]) == []


# firmware modules allowed to reach the hardware or the clock directly; the rest go through the HAL
BOARD_ONLY = {
    "machine": {"board_pico.py", "pico_capture.py", "pico_output.py", "pico_main.py"},
    "rp2": {"pico_capture.py", "pico_output.py", "pico_pio.py"},
    "time": {"board_pico.py", "pico_capture.py", "pico_output.py"},
    "utime": set(),
}


@pytest.mark.req("ARCH-LAYERS-1")
def test_only_the_pico_modules_import_machine_rp2_or_time():
    package = ROOT / "firmware"
    users = {name: set() for name in BOARD_ONLY}
    for path in package.rglob("*.py"):
        for _line, module in imports(path, package):
            top = module.split(".")[0]
            if top in users:
                users[top].add(str(path.relative_to(package)))
    assert users == BOARD_ONLY


@pytest.mark.req("ARCH-LAYERS-1")
def test_the_check_sees_imports_in_functions_relative_and_by_name(tmp_path):
    sim = tmp_path / "sim"
    (sim / "inner").mkdir(parents=True)
    (sim / "ok.py").write_text("from protocol import codec\nfrom . import clock\n")
    (sim / "late.py").write_text("def f():\n    from host.client import Client\n")
    (sim / "inner" / "rel.py").write_text("from ...host import client\n")
    (sim / "byname.py").write_text("import importlib\nimportlib.import_module('host.transport')\n")
    assert violations(tmp_path, "sim", {"host"}) == [
        "sim/byname.py:2 imports host.transport",
        "sim/inner/rel.py:1 imports host",
        "sim/late.py:2 imports host.client",
    ]


# lines a module may have, per folder: micropython-lib's modules run 80 to 480 lines; a board
# module costs RAM to import, so firmware/ stays smaller than the CPython folders
SIZE_LIMITS = {"firmware": 400, "host": 600, "sim": 600, "qa": 600}


def oversized(root, limits):
    found = []
    for folder, limit in sorted(limits.items()):
        for path in sorted((root / folder).rglob("*.py")):
            name = str(path.relative_to(root))
            n = len(path.read_text(encoding="utf-8").splitlines())
            if n > limit:
                found.append(f"{name}: {n} lines, over {limit}")
    return found


@pytest.mark.req("ARCH-SIZE-1")
def test_no_module_outgrows_its_folders_limit():
    assert oversized(ROOT, SIZE_LIMITS) == []


@pytest.mark.req("ARCH-SIZE-1")
def test_the_size_check_counts_lines_in_every_subfolder(tmp_path):
    (tmp_path / "host" / "deep").mkdir(parents=True)
    (tmp_path / "host" / "ok.py").write_text("x = 1\n" * 3)
    (tmp_path / "host" / "deep" / "big.py").write_text("x = 1\n" * 4)
    assert oversized(tmp_path, {"host": 3}) == ["host/deep/big.py: 4 lines, over 3"]
