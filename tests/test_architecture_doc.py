"""docs/architecture.md draws the rooms as they are: it names every module, and every module it names exists.

A module is named by its file name (`handlers.py`) or, for a folder of one
kind, by the folder (`commands/*.py`); package markers (`__init__.py`,
`__main__.py`) need no mention.
"""

import re

import pytest

from tools.mpwasm import ROOT

DOC = ROOT / "docs" / "architecture.md"
FOLDERS = ("protocol", "firmware", "sim", "host", "qa")


def unnamed(root, text):
    found = []
    for folder in FOLDERS:
        for path in sorted((root / folder).rglob("*.py")):
            rel = path.relative_to(root / folder)
            if path.name in ("__init__.py", "__main__.py") or f"{rel.parent}/*.py" in text:
                continue
            if not re.search(r"(?<![\w.])" + re.escape(path.name), text):
                found.append(str(path.relative_to(root)))
    return found


def missing(root, text):
    names = set(re.findall(r"(?<![\w.*])(\w+\.(?:py|cddl))\b", text))
    have = {p.name for folder in (*FOLDERS, "tests", "benchmarks") for p in (root / folder).rglob("*")}
    return sorted(names - have)


@pytest.mark.req("ARCH-DOC-1")
def test_the_architecture_names_every_module():
    assert unnamed(ROOT, DOC.read_text(encoding="utf-8")) == []


@pytest.mark.req("ARCH-DOC-1")
def test_every_module_the_architecture_names_exists():
    assert missing(ROOT, DOC.read_text(encoding="utf-8")) == []


@pytest.mark.req("ARCH-DOC-1")
def test_the_check_sees_a_module_left_out_and_one_made_up(tmp_path):
    (tmp_path / "host" / "commands").mkdir(parents=True)
    (tmp_path / "host" / "named.py").write_text("")
    (tmp_path / "host" / "forgotten.py").write_text("")
    (tmp_path / "host" / "commands" / "info.py").write_text("")
    text = "named.py beside commands/*.py, and gone.py"
    assert unnamed(tmp_path, text) == ["host/forgotten.py"]
    assert missing(tmp_path, text) == ["gone.py"]
