"""The traceability plugin and `tonus-trace`, run over small fake suites with pytester.

Each test builds a project with its own requirements file and tests, runs
pytest on it in-process with qa.trace_plugin, and reads what the plugin
wrote (results.json, matrix.md, matrix.html, junit.xml) or what it said.
"""

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from host.trace import cli

pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parent.parent

REQUIREMENTS = """
[[requirement]]
id = "S-OK"
title = "Safe and verified"
text = "A safety requirement with a passing test."
source = "fake"
safety = true

[[requirement]]
id = "S-FAIL"
title = "Safe but failing"
text = "A safety requirement whose only test fails."
source = "fake"
safety = true

[[requirement]]
id = "S-SKIP"
title = "Safe but skipped"
text = "A safety requirement whose tests are all skipped."
source = "fake"
safety = true

[[requirement]]
id = "S-NONE"
title = "Safe and untested"
text = "A safety requirement no test names."
source = "fake"
safety = true

[[requirement]]
id = "N-1"
title = "Not safety | with a pipe"
text = "An ordinary requirement."
source = "fake"
safety = false

[[requirement]]
id = "N-UNTESTED"
title = "Ordinary and untested"
text = "Nobody tests this."
source = "fake"
safety = false
"""

# one test per outcome, a two-leg test like tests/dual, and a HIL-style test
SUITE = {
    "tests/conftest.py": """
import pytest

def pytest_addoption(parser):
    parser.addoption("--target", default="sim://fake")

@pytest.fixture(params=["cpython", "micropython"])
def runtime(request):
    return request.param

@pytest.fixture
def target(request):
    return request.config.getoption("--target")

@pytest.fixture
def broken():
    raise RuntimeError("fixture exploded")
""",
    "tests/test_outcomes.py": """
import pytest

@pytest.mark.req("S-OK")
def test_passes():
    pass

@pytest.mark.req("S-FAIL", "N-1")
def test_fails():
    assert 1 + 1 == 3, "arithmetic is broken"

@pytest.mark.req("S-SKIP")
def test_skipped():
    pytest.skip("no rig attached")

@pytest.mark.req("S-SKIP")
@pytest.mark.xfail(reason="known bug 12")
def test_xfails():
    assert False

@pytest.mark.req("N-1")
def test_errors(broken):
    pass

@pytest.mark.req("N-1")
def test_two_legs(runtime):
    pass

@pytest.mark.req("N-1")
def test_on_target(target):
    assert target

def test_names_nothing():
    pass
""",
}


@pytest.fixture
def project(pytester, monkeypatch):
    monkeypatch.delenv("TONUS_ALLOW_UNKNOWN_REQS", raising=False)
    # hypothesis and pytest-benchmark cost more than these tiny suites
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.makefile(".toml", **{"docs/requirements": REQUIREMENTS})
    # --trace-dir: these runs are inside a test, where the plugin writes only when told where
    pytester.makeini(
        "[pytest]\ntestpaths = tests\naddopts = -p qa.trace_plugin --strict-markers --trace-dir build/trace\n"
    )
    return pytester


def write(pytester, files):
    for name, text in files.items():
        path = pytester.path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def trace(pytester, name="results.json"):
    text = (pytester.path / "build" / "trace" / name).read_text()
    return json.loads(text) if name.endswith(".json") else text


def by_nodeid(results):
    return {t["nodeid"]: t for t in results["tests"]}


def gate_passing_suite():
    return {
        "tests/test_ok.py": "\n".join(
            f'@pytest.mark.req("{rid}")\ndef test_{i:d}():\n    pass\n'
            for i, rid in enumerate(("S-OK", "S-FAIL", "S-SKIP", "S-NONE"))
        ).join(("import pytest\n", "")),
    }


@pytest.mark.req("DEV-TRACE-1")
def test_results_record_outcome_requirements_and_leg(project):
    write(project, SUITE)
    r = project.runpytest("--no-trace-gate", "--target", "socket://rig:7")
    r.assert_outcomes(passed=5, failed=1, skipped=1, xfailed=1, errors=1)
    tests = by_nodeid(trace(project))
    mod = "tests/test_outcomes.py::"
    want = {
        "test_passes": ("passed", ["S-OK"], "cpython", None),
        "test_fails": ("failed", ["S-FAIL", "N-1"], "cpython", None),
        "test_skipped": ("skipped", ["S-SKIP"], "cpython", None),
        "test_xfails": ("xfailed", ["S-SKIP"], "cpython", None),
        "test_errors": ("error", ["N-1"], "cpython", None),
        "test_two_legs[cpython]": ("passed", ["N-1"], "cpython", None),
        "test_two_legs[micropython]": ("passed", ["N-1"], "micropython", None),
        "test_on_target": ("passed", ["N-1"], "hil", "socket://rig:7"),
        "test_names_nothing": ("passed", [], "cpython", None),
    }
    assert set(tests) == {mod + name for name in want}
    for name, (outcome, reqs, leg, target) in want.items():
        t = tests[mod + name]
        assert (t["outcome"], t["reqs"], t["leg"], t["target"]) == (outcome, reqs, leg, target), name
    assert "arithmetic is broken" in tests[mod + "test_fails"]["message"]
    assert "assert 1 + 1 == 3" in tests[mod + "test_fails"]["details"]
    assert tests[mod + "test_skipped"]["message"] == "no rig attached"
    assert tests[mod + "test_xfails"]["message"] == "known bug 12"
    assert "fixture exploded" in tests[mod + "test_errors"]["message"]


@pytest.mark.req("DEV-TRACE-1")
def test_matrix_lists_every_requirement_with_its_tests_and_result(project):
    write(project, SUITE)
    project.runpytest("--no-trace-gate", "--target", "socket://rig:7")
    md = trace(project, "matrix.md")
    rows = {line.split(" | ")[0].lstrip("| "): line for line in md.splitlines() if line.startswith("| ")}
    assert rows["S-OK"] == (
        "| S-OK | Safe and verified | yes | passed (1 passed) "
        "| `tests/test_outcomes.py::test_passes` passed |"
    )
    assert rows["S-FAIL"].startswith("| S-FAIL | Safe but failing | yes | **FAILED** (1 failed) |")
    assert rows["S-SKIP"].startswith(
        "| S-SKIP | Safe but skipped | yes | **SKIPPED** (1 skipped, 1 xfailed) |"
    )
    assert rows["S-NONE"] == "| S-NONE | Safe and untested | yes | **UNTESTED** |  |"
    assert rows["N-UNTESTED"] == "| N-UNTESTED | Ordinary and untested |  | **UNTESTED** |  |"
    # a pipe in a title does not break the table; both legs of one test share an entry
    assert rows["N-1"].startswith(
        "| N-1 | Not safety \\| with a pipe |  | **FAILED** (1 failed, 1 error, 3 passed) |"
    )
    assert "`tests/test_outcomes.py::test_two_legs` cpython: passed, micropython: passed" in rows["N-1"]
    assert "`tests/test_outcomes.py::test_on_target` @ socket://rig:7: passed" in rows["N-1"]
    assert "HIL target socket://rig:7" in md
    assert "safety requirements without a passing test**: S-FAIL, S-SKIP, S-NONE" in md

    page = trace(project, "matrix.html")
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "<style>" in page and "http" not in page  # nothing fetched from elsewhere
    for rid in ("S-OK", "S-FAIL", "S-SKIP", "S-NONE", "N-1", "N-UNTESTED"):
        assert f"<strong>{rid}</strong>" in page
    assert "Not safety | with a pipe" in page and "socket://rig:7" in page
    assert "assert 1 + 1 == 3" in page  # the failure's traceback


@pytest.mark.req("DEV-TRACE-1")
def test_junit_testcases_carry_their_requirements(project):
    write(project, SUITE)
    project.runpytest("--no-trace-gate", "--target", "socket://rig:7")
    root = ET.fromstring(trace(project, "junit.xml"))
    assert root.tag == "testsuites"
    assert [s.get("name") for s in root] == ["cpython", "hil socket://rig:7", "micropython"]
    cases = {c.get("name"): c for c in root.iter("testcase")}
    assert len(cases) == 9
    for suite in root:
        kids = suite.findall("testcase")
        assert int(suite.get("tests")) == len(kids)
        for attr, tag in (("failures", "failure"), ("errors", "error"), ("skipped", "skipped")):
            assert int(suite.get(attr)) == sum(c.find(tag) is not None for c in kids)
    assert (root.get("tests"), root.get("failures"), root.get("errors"), root.get("skipped")) == (
        "9",
        "1",
        "1",
        "2",
    )

    def props(name):
        return [(p.get("name"), p.get("value")) for p in cases[name].find("properties")]

    assert cases["test_fails"].get("classname") == "tests.test_outcomes"
    assert props("test_fails") == [("requirement", "S-FAIL"), ("requirement", "N-1"), ("leg", "cpython")]
    assert "arithmetic is broken" in cases["test_fails"].find("failure").get("message")
    assert cases["test_errors"].find("error") is not None
    assert cases["test_skipped"].find("skipped").get("message") == "no rig attached"
    assert ("leg", "micropython") in props("test_two_legs[micropython]")
    assert ("target", "socket://rig:7") in props("test_on_target")
    assert props("test_names_nothing") == [("leg", "cpython")]
    assert cases["test_passes"].find("failure") is None and cases["test_passes"].find("skipped") is None


@pytest.mark.req("DEV-TRACE-2")
def test_gate_fails_a_whole_run_on_safety_requirements_without_a_passing_test(project):
    # a safety requirement whose test is skipped: every test "passes", only the gate fails the run
    write(
        project,
        {
            "tests/test_s.py": "import pytest\n\n"
            '@pytest.mark.req("S-OK", "S-FAIL", "S-NONE")\ndef test_ok():\n    pass\n\n'
            '@pytest.mark.req("S-SKIP")\n@pytest.mark.parametrize("n", range(7))\n'
            'def test_skipped(n):\n    pytest.skip("no rig attached")\n'
        },
    )
    r = project.runpytest()
    r.assert_outcomes(passed=1, skipped=7)
    assert r.ret == pytest.ExitCode.TESTS_FAILED
    r.stdout.fnmatch_lines(
        [
            "*safety gate failed*",
            "1 safety requirement(s) without a passing test:",
            "  S-SKIP Safe but skipped: all 7 tests skipped:",
        ]
        + [f"      tests/test_s.py::test_skipped[{n:d}]: skipped (no rig attached)" for n in range(5)]
        + ["      and 2 more (see the matrix)"]
    )


@pytest.mark.req("DEV-TRACE-2")
def test_gate_says_what_happened_to_the_tests(project):
    write(project, SUITE)
    r = project.runpytest()
    assert r.ret == pytest.ExitCode.TESTS_FAILED
    r.stdout.fnmatch_lines(
        [
            "3 safety requirement(s) without a passing test:",
            "  S-FAIL Safe but failing: no test passed (1 failed):",
            "      tests/test_outcomes.py::test_fails: failed (AssertionError: arithmetic is broken*",
            "  S-SKIP Safe but skipped: no test passed (1 skipped, 1 xfailed):",
            "      tests/test_outcomes.py::test_skipped: skipped (no rig attached)",
            "      tests/test_outcomes.py::test_xfails: xfailed (known bug 12)",
            "  S-NONE Safe and untested: no test names it",
        ]
    )
    assert "S-OK" not in r.stdout.str().split("safety gate failed")[1]


@pytest.mark.req("DEV-TRACE-2")
def test_gate_passes_when_every_safety_requirement_has_a_passing_test(project):
    write(project, gate_passing_suite())
    write(project, {"tests/test_other.py": "import pytest\n\ndef test_skip():\n    pytest.skip('n/a')\n"})
    r = project.runpytest()
    assert r.ret == pytest.ExitCode.OK
    r.stdout.fnmatch_lines(["traceability: *matrix.md (6 requirements, 2 untested; gate passed)"])


@pytest.mark.req("DEV-TRACE-2")
@pytest.mark.parametrize(
    "args",
    [
        ["tests/test_a.py"],
        ["tests/test_a.py::test_a"],
        ["-k", "test_a"],
        ["-m", "req"],
        ["--deselect", "tests/test_b.py::test_b"],
        ["--ignore", "tests/test_b.py"],
    ],
)
def test_subset_runs_do_not_gate_unless_asked(project, args):
    write(
        project,
        {
            "tests/test_a.py": "import pytest\n\n@pytest.mark.req('S-OK')\ndef test_a():\n    pass\n",
            "tests/test_b.py": "def test_b():\n    pass\n",
        },
    )
    r = project.runpytest(*args)
    assert r.ret == pytest.ExitCode.OK
    r.stdout.fnmatch_lines(["traceability: *; gate off)"])
    forced = project.runpytest("--trace-gate", *args)
    assert forced.ret == pytest.ExitCode.TESTS_FAILED
    forced.stdout.fnmatch_lines(["  S-NONE Safe and untested: no test names it"])
    assert project.runpytest("--no-trace-gate").ret == pytest.ExitCode.OK


@pytest.mark.req("DEV-TRACE-2")
def test_naming_the_testpaths_is_the_whole_suite(project):
    write(
        project, {"tests/test_a.py": "import pytest\n\n@pytest.mark.req('S-OK')\ndef test_a():\n    pass\n"}
    )
    r = project.runpytest("tests")
    assert r.ret == pytest.ExitCode.TESTS_FAILED
    r.stdout.fnmatch_lines(["  S-NONE Safe and untested: no test names it"])
    assert trace(project)["runs"][0]["whole_suite"]


@pytest.mark.req("DEV-TRACE-1", "DEV-TRACE-2")
def test_runs_in_pieces_add_up_and_a_whole_run_starts_afresh(project):
    suite = gate_passing_suite()["tests/test_ok.py"]
    first, second = suite.split('@pytest.mark.req("S-SKIP")')
    write(
        project,
        {
            "tests/test_one.py": first,
            "tests/test_two.py": 'import pytest\n@pytest.mark.req("S-SKIP")' + second,
        },
    )
    project.runpytest("tests/test_one.py")
    assert cli.main(["--dir", str(project.path / "build" / "trace"), "--check"]) == 1
    project.runpytest("tests/test_two.py")
    results = trace(project)
    assert [run["command"].split(" --basetemp")[0] for run in results["runs"]] == [
        "pytest tests/test_one.py",
        "pytest tests/test_two.py",
    ]
    assert sorted(by_nodeid(results)) == [
        "tests/test_one.py::test_0",
        "tests/test_one.py::test_1",
        "tests/test_two.py::test_2",
        "tests/test_two.py::test_3",
    ]
    assert cli.main(["--dir", str(project.path / "build" / "trace"), "--check"]) == 0
    (project.path / "tests" / "test_two.py").unlink()
    project.runpytest()
    results = trace(project)
    assert len(results["runs"]) == 1 and results["runs"][0]["whole_suite"]
    assert sorted(by_nodeid(results)) == ["tests/test_one.py::test_0", "tests/test_one.py::test_1"]


@pytest.mark.req("DEV-TRACE-1")
def test_unknown_requirement_ids_are_refused_and_keep_the_last_results(project):
    write(project, gate_passing_suite())
    assert project.runpytest().ret == pytest.ExitCode.OK
    before = trace(project)
    write(
        project,
        {
            "tests/test_bad.py": "import pytest\n\n"
            "@pytest.mark.req('S-OK', 'NOPE-1')\ndef test_x():\n    pass\n"
        },
    )
    r = project.runpytest()
    assert r.ret == pytest.ExitCode.USAGE_ERROR
    r.stderr.fnmatch_lines(["*unknown requirement IDs:", "*tests/test_bad.py::test_x: NOPE-1"])
    assert trace(project) == before


@pytest.mark.req("DEV-TRACE-1", "DEV-TRACE-2")
def test_pytest_run_by_a_test_leaves_the_report_alone_but_still_gates(project):
    project.makeini("[pytest]\ntestpaths = tests\naddopts = -p qa.trace_plugin\n")
    write(
        project, {"tests/test_a.py": "import pytest\n\n@pytest.mark.req('S-OK')\ndef test_a():\n    pass\n"}
    )
    r = project.runpytest()
    assert r.ret == pytest.ExitCode.TESTS_FAILED
    r.stdout.fnmatch_lines(["traceability: not written (pytest inside a test: --trace-dir DIR)*gate FAILED)"])
    assert not (project.path / "build").exists()


@pytest.mark.req("DEV-TRACE-1")
def test_requirements_file_and_trace_dir_are_options(project):
    write(project, gate_passing_suite())
    (project.path / "docs" / "requirements.toml").rename(project.path / "reqs.toml")
    assert project.runpytest().ret == pytest.ExitCode.USAGE_ERROR
    r = project.runpytest("--requirements", "reqs.toml", "--trace-dir", "out")
    assert r.ret == pytest.ExitCode.OK
    assert (project.path / "out" / "matrix.html").exists()
    assert len(json.loads((project.path / "out" / "results.json").read_text())["requirements"]) == 6


@pytest.mark.req("DEV-TRACE-1", "DEV-TRACE-2")
def test_tonus_trace_renders_and_checks_the_last_results(project, tmp_path, capsys):
    missing = str(tmp_path / "nothing")
    assert cli.main(["--dir", missing]) == 1
    assert "run pytest first" in capsys.readouterr().err
    write(project, SUITE)
    project.runpytest("--no-trace-gate")
    capsys.readouterr()
    d = str(project.path / "build" / "trace")
    assert cli.main(["--dir", d]) == 0
    assert capsys.readouterr().out == trace(project, "matrix.md")
    out = tmp_path / "m.xml"
    assert cli.main(["--dir", d, "--format", "junit", "--out", str(out)]) == 0
    assert out.read_text() == trace(project, "junit.xml")
    assert cli.main(["--dir", d, "--check"]) == 1
    err = capsys.readouterr().err
    assert (
        "S-FAIL" in err
        and "S-SKIP" in err
        and "S-NONE: " not in err
        and "S-NONE Safe and untested: no test names it" in err
    )
    assert cli.main(["--format", "pdf"]) == 2


@pytest.mark.req("DEV-TRACE-1")
def test_micropython_leg_of_the_dual_tests_carries_the_requirement_ids(pytester):
    # the real tests/dual conftest: every leg of each test must name the same requirements
    items, _ = pytester.inline_genitems(
        str(REPO / "tests" / "dual"), "--rootdir", str(REPO), "-p", "no:cacheprovider"
    )
    legs = {}
    for item in items:
        reqs = [i for m in item.iter_markers("req") for i in m.args]
        legs.setdefault((item.module.__name__, item.originalname), {})[item.callspec.params["runtime"]] = reqs
    assert len(legs) > 50
    for name, by_leg in legs.items():
        # the unix port (native emitters) is a third leg where it is installed
        assert set(by_leg) in ({"cpython", "micropython"}, {"cpython", "micropython", "micropython-unix"}), (
            name
        )
        for leg in by_leg:
            assert by_leg[leg] == by_leg["cpython"], (name, leg)


BOARD_REQUIREMENT = """
[[requirement]]
id = "B-1"
title = "Output stage"
text = "Only a board can show it."
source = "fake"
safety = false
board = true
"""


def _hil_suite(kind):
    """A HIL-style suite whose target tells the record what it is, as hil_tests/conftest.py does."""
    return {
        "tests/conftest.py": f"""
import pytest

def pytest_addoption(parser):
    parser.addoption("--target", default="sim://fake")

@pytest.fixture
def target(request):
    request.config.pluginmanager.get_plugin("tonus-trace").record_target({{
        "url": "sim://fake", "kind": "{kind}", "serial": "E6614C", "board": "pico",
        "firmware_version": "0.1.0", "image_sha256": "ab" * 32, "image_from": "reported by the device"}})
    return request.config.getoption("--target")
""",
        "tests/test_hil.py": "import pytest\n\n@pytest.mark.req('B-1', 'S-OK')\ndef test_out(target):\n"
        "    pass\n",
    }


@pytest.mark.req("DEV-TRACE-3")
def test_a_run_records_commit_dirty_flag_operator_tools_and_target(project, monkeypatch):
    import subprocess

    project.makefile(".toml", **{"docs/requirements": REQUIREMENTS + BOARD_REQUIREMENT})
    write(project, _hil_suite("board"))
    git = ["git", "-C", str(project.path), "-c", "user.name=QA", "-c", "user.email=qa@example.org"]
    subprocess.run([*git[:3], "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "fake suite"], check=True)
    commit = subprocess.run(
        [*git[:3], "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    monkeypatch.setenv("TONUS_OPERATOR", "A. Tester (QA-7)")
    project.runpytest("--no-trace-gate")
    assert trace(project)["runs"][0]["git"]["dirty"] is False
    with open(project.path / "tests" / "test_hil.py", "a") as f:  # a change not committed
        f.write("# edited\n")
    project.runpytest("--no-trace-gate")
    run = trace(project)["runs"][0]
    assert run["git"] == {"commit": commit, "dirty": True, "branch": run["git"]["branch"]}
    assert run["operator"] == "A. Tester (QA-7)" and run["firmware_version"] is None  # no firmware/ here
    assert run["tools"]["pytest"] == pytest.__version__ and run["tools"]["cbor2"] and run["tools"]["python"]
    assert run["targets"][0]["serial"] == "E6614C" and run["targets"][0]["image_sha256"] == "ab" * 32
    assert by_nodeid(trace(project))["tests/test_hil.py::test_out"]["target_kind"] == "board"
    # the same facts in every rendering an auditor files
    root = ET.fromstring(trace(project, "junit.xml"))
    props = {p.get("name"): p.get("value") for p in root.find("testsuite").find("properties")}
    assert props["commit"].startswith(commit) and "dirty" in props["commit"]
    assert props["operator"] == "A. Tester (QA-7)" and f"pytest {pytest.__version__}" in props["tools"]
    assert "serial E6614C" in props["target"] and "ab" * 32 in props["target"]
    for name in ("matrix.md", "matrix.html"):
        text = trace(project, name)
        assert commit in text and "A. Tester (QA-7)" in text and "serial E6614C" in text


@pytest.mark.req("DEV-TRACE-4")
@pytest.mark.parametrize("kind, fails", [("simulator", True), ("board", False)])
def test_a_requirement_needing_a_board_fails_the_board_gate_when_only_the_simulator_passed_it(
    project, kind, fails, capsys
):
    project.makefile(".toml", **{"docs/requirements": REQUIREMENTS + BOARD_REQUIREMENT})
    write(project, _hil_suite(kind))
    r = project.runpytest("--trace-gate", "--trace-board-gate", "tests/test_hil.py")
    # S-FAIL, S-SKIP, S-NONE have no passing test in this suite: the gate fails on them either way
    out = r.stdout.str()
    assert (
        "B-1 Output stage: needs a pass on a board or an emulated board; it passed only on the simulator"
        in out
    ) is fails
    # without the board gate a simulator pass is a pass; tonus-trace applies the same rule to the record
    assert "B-1" not in (gate_only := project.runpytest("--trace-gate", "tests/test_hil.py")).stdout.str()
    assert gate_only.ret == pytest.ExitCode.TESTS_FAILED
    d = str(project.path / "build" / "trace")
    cli.main(["--dir", d, "--check", "--board"])
    assert ("B-1 Output stage: needs a pass on a board" in capsys.readouterr().err) is fails
    assert "B-1 (%s)" % ("no" if fails else "yes") in trace(project, "matrix.md")


@pytest.mark.req("DEV-TRACE-6")
def test_the_installed_package_works_without_pytest(tmp_path):
    """host/ is what `pip install tonus` installs: nothing in it imports pytest, so tonus-trace runs alone."""
    import subprocess
    import sys

    offenders = [
        str(p)
        for p in (REPO / "host").rglob("*.py")
        if any(
            line.split("#")[0].split()[:2] in (["import", "pytest"], ["from", "pytest"])
            for line in p.read_text().splitlines()
        )
    ]
    assert offenders == []
    code = (
        "import sys; sys.modules['pytest'] = None\n"  # an import of pytest now fails
        "from host.trace import cli\n"
        "sys.exit(cli.main(['--dir', sys.argv[1]]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, cwd=REPO, check=False
    )
    assert done.returncode == 1 and "run pytest first" in done.stderr and "Traceback" not in done.stderr
