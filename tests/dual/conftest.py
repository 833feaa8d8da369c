"""Run every test in this folder on three runtimes: CPython and two MicroPython ports.

Each MicroPython leg runs all modules of this folder once per session and
reports each test as its own pytest item, with the same requirement markers:
`test_x[micropython]` on the pinned WebAssembly port (32-bit, no native
emitters) and `test_x[micropython-unix]` on the unix port from PyPI (64-bit,
viper and native). With CI=true a port that cannot run fails the suite
instead of skipping it.
"""

import json
import os
from pathlib import Path

import pytest

from tools import mpunix, mpwasm

HERE = Path(__file__).resolve().parent
LEGS = {"micropython": mpwasm.run, "micropython-unix": mpunix.run}
RUNTIMES = ("cpython", *LEGS)

_DRIVER = r"""
import sys, io, json, dualtest
for modname in %r:
    try:
        mod = __import__(modname)
    except Exception as e:
        buf = io.StringIO(); sys.print_exception(e, buf)
        print('@@RESULT ' + json.dumps([modname, '*', 'failed', buf.getvalue()]))
        continue
    for name in sorted(dir(mod)):
        if not name.startswith('test_'):
            continue
        fn = getattr(mod, name)
        try:
            fn()
            res = ['passed', '']
        except dualtest.SkipTest as e:
            res = ['skipped', str(e.args[0]) if e.args else '']
        except Exception as e:
            buf = io.StringIO(); sys.print_exception(e, buf)
            res = ['failed', buf.getvalue()]
        print('@@RESULT ' + json.dumps([modname, name] + res))
"""


_RESULTS = pytest.StashKey()


@pytest.fixture(params=RUNTIMES, autouse=True)
def runtime(request):
    if request.param != "cpython":
        request.node.stash[_RESULTS] = request.getfixturevalue("micropython_results")(request.param)
    return request.param


@pytest.fixture(scope="session")
def micropython_results():
    """leg -> its results, each leg run once, when its first test asks."""
    done = {}

    def results(leg):
        if leg not in done:
            done[leg] = _run_leg(LEGS[leg])
        return done[leg]

    return results


def _run_leg(run):
    mods = sorted(p.stem for p in HERE.glob("test_*.py"))
    try:
        status, lines = run(_DRIVER % (mods,))
    except mpwasm.Unavailable as e:
        return {"unavailable": str(e)}
    results = {}
    for line in lines:
        if line.startswith("@@RESULT "):
            mod, name, outcome, detail = json.loads(line[len("@@RESULT ") :])
            results[(mod, name)] = (outcome, detail)
    if status != 0:
        results["crash"] = "\n".join(lines[-30:])
    return results


def pytest_pyfunc_call(pyfuncitem):
    callspec = getattr(pyfuncitem, "callspec", None)
    leg = callspec.params.get("runtime") if callspec is not None else None
    if leg is None or leg == "cpython":
        return None
    results = pyfuncitem.stash[_RESULTS]
    if "unavailable" in results:
        if os.environ.get("CI") == "true":
            pytest.fail(leg + " leg cannot run in CI: " + results["unavailable"])
        pytest.skip(leg + " port unavailable: " + results["unavailable"])
    mod = pyfuncitem.module.__name__.rpartition(".")[2]
    broken = results.get((mod, "*"))
    if broken:
        pytest.fail("module does not import on " + leg + ":\n" + broken[1], pytrace=False)
    got = results.get((mod, pyfuncitem.originalname))
    if got is None:
        pytest.fail("no " + leg + " result (interpreter crash?):\n" + results.get("crash", ""), pytrace=False)
    outcome, detail = got
    if outcome == "skipped":
        pytest.skip("on " + leg + ": " + detail)
    if outcome == "failed":
        pytest.fail("on " + leg + ":\n" + detail, pytrace=False)
    return True
