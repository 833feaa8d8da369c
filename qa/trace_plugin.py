"""pytest plugin: requirement IDs on tests, the traceability matrix, and the safety gate.

The root conftest.py registers it, so every pytest run in this repository
(`pytest`, `pytest tests/...`, `pytest hil_tests --target PORT`):

- refuses requirement IDs that docs/requirements.toml does not list
  (TONUS_ALLOW_UNKNOWN_REQS=1 only warns, for tests drafted before their
  requirement);
- records each test's outcome, the IDs it names and its runtime leg
  (cpython; micropython for the second leg of tests/dual; hil for tests
  using the `target` fixture, with the --target URL);
- writes results.json, matrix.md, matrix.html and junit.xml to --trace-dir
  (default build/trace). A run of the whole suite starts the results afresh;
  any other run replaces the results of the tests it ran and keeps the rest,
  so a suite run in pieces adds up to one matrix. A pytest run by a test
  writes only with an explicit --trace-dir;
- fails the run when a safety requirement has no passing test (the gate). It
  is on for a whole-suite run, where a missing test means a missing test and
  not a narrower selection; --trace-gate / --no-trace-gate force it.
"""

import contextlib
import os
import re
import shlex
import sys
import time

import pytest

from host.trace import provenance, render
from host.trace.matrix import (
    ERROR,
    FAILED,
    PASSED,
    SKIPPED,
    XFAILED,
    XPASSED,
    Results,
    TraceError,
    gate_report,
    load_requirements,
)

_MESSAGE_MAX = 300
_DETAILS_MAX = 8000


def pytest_addoption(parser):
    g = parser.getgroup("trace", "requirement traceability")
    g.addoption("--trace-dir", metavar="DIR", help="where to write the matrix and results (ini trace_dir)")
    g.addoption(
        "--trace-gate",
        action="store_true",
        default=None,
        help="fail the run when a safety requirement has no passing test (default: only for the whole suite)",
    )
    g.addoption(
        "--no-trace-gate", action="store_false", dest="trace_gate", help="never apply the safety gate"
    )
    g.addoption(
        "--trace-board-gate",
        action="store_true",
        default=False,
        help="the gate also fails requirements marked board = true that passed on no board or emulated board",
    )
    g.addoption("--requirements", metavar="FILE", help="the requirements file (ini requirements)")
    parser.addini(
        "requirements", "requirements file, relative to the rootdir", default="docs/requirements.toml"
    )
    parser.addini(
        "trace_dir", "traceability output directory, relative to the rootdir", default="build/trace"
    )


def pytest_configure(config):
    if not any(m.split(":")[0].split("(")[0].strip() == "req" for m in config.getini("markers")):
        config.addinivalue_line("markers", "req(*ids): requirement IDs that the test verifies")
    config.pluginmanager.register(TracePlugin(config), "tonus-trace")


def _path(config, option, ini):
    given = config.getoption(option)
    return os.path.abspath(given) if given else os.path.join(str(config.rootpath), config.getini(ini))


def _firmware_version(root):
    """The firmware version of the tree under test (firmware/version.py), read, not imported."""
    try:
        text = (root / "firmware" / "version.py").read_text()
    except OSError:
        return None
    found = re.search(r'FIRMWARE_VERSION\s*=\s*"([^"]*)"', text)
    return found.group(1) if found else None


def _leg(item):
    callspec = getattr(item, "callspec", None)
    if callspec is not None and callspec.params.get("runtime") == "micropython":
        return "micropython"  # tests/dual/conftest.py's second leg
    if "target" in getattr(item, "fixturenames", ()):
        return "hil"
    return "cpython"


def _whole_suite_args(config):
    """Did pytest collect what a bare `pytest` in the rootdir collects?"""
    source = config.args_source
    if source == pytest.Config.ArgsSource.TESTPATHS:
        return True
    root = config.rootpath
    if source == pytest.Config.ArgsSource.INVOCATION_DIR:
        return config.invocation_params.dir == root
    testpaths = config.getini("testpaths") or ["."]
    want = {(root / p).resolve() for p in testpaths}
    got = {(config.invocation_params.dir / a).resolve() for a in config.args}
    return want == got


def _selects(config):
    """The options that narrow a run to some of the tests it collects."""
    opt = config.option
    return bool(
        getattr(opt, "keyword", "")
        or getattr(opt, "markexpr", "")
        or getattr(opt, "lf", False)
        or getattr(opt, "deselect", None)
        or getattr(opt, "ignore", None)
        or getattr(opt, "ignore_glob", None)
        or getattr(opt, "stepwise", False)
    )


def _message(report):
    longrepr = report.longrepr
    if isinstance(longrepr, tuple):  # a skip: (path, line, reason)
        text = longrepr[2]
    else:
        crash = getattr(longrepr, "reprcrash", None)
        text = crash.message if crash is not None else str(longrepr or "")
    text = text.strip()
    text = text.removeprefix("Skipped: ")
    return text[:_MESSAGE_MAX]


class TracePlugin:
    def __init__(self, config):
        self.config = config
        self.requirements_file = _path(config, "--requirements", "requirements")
        self.dir = _path(config, "--trace-dir", "trace_dir")
        # pytest run by a test (a CLI test running `pytest hil_tests`) must not
        # overwrite the outer run's report unless told where to write
        self.nested = "PYTEST_CURRENT_TEST" in os.environ and not config.getoption("--trace-dir")
        self.started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        self.deselected = False
        self.items = {}  # nodeid -> test record, filled as reports arrive
        self.requirements = None
        self.results = None
        self.verdict = None
        self.gate = None
        self.targets = []  # what hil_tests/conftest.py says each target was (record_target)

    def record_target(self, facts):
        """A HIL target's facts for the run's record (host.trace.provenance.target_facts)."""
        if facts not in self.targets:
            self.targets.append(facts)

    # -- collection

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, config, items):
        try:
            self.requirements = load_requirements(self.requirements_file)
        except TraceError as e:
            raise pytest.UsageError(str(e)) from None
        known = {r["id"] for r in self.requirements}
        unknown = set()
        for item in items:
            for mark in item.iter_markers("req"):
                if not mark.args:
                    unknown.add(f"{item.nodeid}: req marker without IDs")
                unknown.update(f"{item.nodeid}: {i}" for i in mark.args if i not in known)
        if unknown and os.environ.get("TONUS_ALLOW_UNKNOWN_REQS") == "1":
            # a developer drafting tests before their requirement is written down
            print("\nwarning: unknown requirement IDs:\n  " + "\n  ".join(sorted(unknown)))
        elif unknown:
            raise pytest.UsageError("unknown requirement IDs:\n  " + "\n  ".join(sorted(unknown)))

    def pytest_deselected(self, items):
        if items:
            self.deselected = True

    def pytest_collection_finish(self, session):
        target = self._target()
        for item in session.items:
            reqs = []
            for mark in item.iter_markers("req"):
                reqs += [i for i in mark.args if i not in reqs]
            leg = _leg(item)
            self.items[item.nodeid] = {
                "nodeid": item.nodeid,
                "leg": leg,
                "target": target if leg == "hil" else None,
                "reqs": reqs,
                "outcome": None,
                "duration": 0.0,
                "message": "",
                "details": "",
                "run": 0,
            }

    def _target(self):
        try:
            return self.config.getoption("--target")
        except ValueError:  # hil_tests/conftest.py is not loaded in this run
            return None

    # -- results

    def pytest_runtest_logreport(self, report):
        t = self.items.get(report.nodeid)
        if t is None:
            return
        t["duration"] += report.duration
        xfail = hasattr(report, "wasxfail")
        if report.when == "call" or (report.when == "setup" and not report.passed):
            if report.passed:
                outcome = XPASSED if xfail else PASSED
            elif report.skipped:
                outcome = XFAILED if xfail else SKIPPED
            else:
                outcome = FAILED if report.when == "call" else ERROR
            t["outcome"] = outcome
        elif report.when == "teardown" and report.failed and t["outcome"] in (None, PASSED, XPASSED):
            t["outcome"] = ERROR
        else:
            return
        if xfail:
            t["message"] = report.wasxfail[:_MESSAGE_MAX]
        elif not report.passed:
            t["message"] = _message(report)
        if report.failed:
            t["details"] = report.longreprtext[-_DETAILS_MAX:]

    def _whole_suite(self):
        return _whole_suite_args(self.config) and not _selects(self.config) and not self.deselected

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session, exitstatus):
        ran = [t for t in self.items.values() if t["outcome"] is not None]
        if not ran or self.requirements is None:
            return  # nothing ran (collection failed, --collect-only): keep the last results
        whole = self._whole_suite()
        args = self.config.invocation_params.args
        kind = self.targets[-1]["kind"] if self.targets else None
        for t in ran:
            if t["leg"] == "hil":
                t["target_kind"] = kind
        root = self.config.rootpath
        run = {
            "command": "pytest" + (" " + shlex.join(args) if args else ""),
            "started": self.started,
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "whole_suite": whole,
            "python": "{:d}.{:d}.{:d}".format(*sys.version_info[:3]),
            "target": self._target() if any(t["leg"] == "hil" for t in ran) else None,
            "operator": provenance.operator(),
            "git": provenance.git_state(root),
            "firmware_version": _firmware_version(root),
            "tools": provenance.tool_versions(),
            "targets": self.targets,
        }
        results = Results(self.requirements, [run], ran)
        if not self.nested:
            if not whole:
                # a TraceError: no earlier results, or unreadable ones: this run alone
                with contextlib.suppress(TraceError):
                    results = results.after(Results.load(self.dir))
            results.save(self.dir)
            for fmt in render.FORMATS:
                with open(os.path.join(self.dir, render.FILES[fmt]), "w", encoding="utf-8") as f:
                    f.write(render.render(results, fmt))
        self.results = results
        gate = self.config.getoption("trace_gate")
        self.gate = whole if gate is None else gate
        if self.gate:
            self.verdict = gate_report(results, board=self.config.getoption("trace_board_gate"))
            if self.verdict and session.exitstatus == pytest.ExitCode.OK:
                session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter):
        if self.results is None:
            return
        tr = terminalreporter
        rows = self.results.rows()
        untested = sum(not r.tests for r in rows)
        where = (
            "not written (pytest inside a test: --trace-dir DIR)"
            if self.nested
            else os.path.relpath(os.path.join(self.dir, render.FILES["md"]))
        )
        line = "traceability: {} ({:d} requirements, {:d} untested; gate {})".format(
            where, len(rows), untested, "off" if not self.gate else ("FAILED" if self.verdict else "passed")
        )
        tr.write_line(line)
        if self.verdict:
            tr.write_sep("=", "safety gate failed", red=True, bold=True)
            tr.write_line(self.verdict, red=True)
