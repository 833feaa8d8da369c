"""What a test needs to run unchanged on CPython (pytest) and MicroPython.

Tests in tests/dual are plain functions named test_* taking no arguments.
pytest runs them on CPython; tools/mpwasm runs the same files on the
MicroPython WebAssembly port, and tests/dual/conftest.py reports both legs.
"""

import json
import sys

MICROPYTHON = sys.implementation.name == "micropython"
REQS = {}  # test function name -> requirement IDs, read by the MicroPython leg

try:
    import pytest

    _mark = pytest.mark.req
except ImportError:
    _mark = None


class SkipTest(Exception):
    pass


def skip(reason):
    if _mark is not None:
        pytest.skip(reason)
    raise SkipTest(reason)


def req(*ids):
    """Name the requirement IDs a test verifies (docs/requirements.toml)."""

    def deco(fn):
        REQS[fn.__name__] = ids
        return _mark(*ids)(fn) if _mark is not None else fn

    return deco


def raises(code, fn, *args, **kwargs):
    """Call fn and insist it raises ProtocolError with this code."""
    from protocol.errors import ProtocolError, name

    try:
        fn(*args, **kwargs)
    except ProtocolError as e:
        if e.code != code:
            raise AssertionError("expected %s, got %s (%s)" % (name(code), name(e.code), e.detail))
        return e
    raise AssertionError("expected ProtocolError %s, nothing raised" % name(code))


def _here():
    f = __file__
    i = f.rfind("/")
    return f[:i] if i >= 0 else "."


def vectors(name):
    with open(_here() + "/vectors/" + name) as f:
        return json.load(f)


def unhex(s):
    return bytes.fromhex(s)


class Lcg:
    """A tiny deterministic PRNG: identical sequences on both runtimes."""

    def __init__(self, seed):
        self.state = seed & 0xFFFFFFFF

    def next(self):
        self.state = (self.state * 1103515245 + 12345) & 0x7FFFFFFF
        return self.state

    def below(self, n):
        return self.next() % n
