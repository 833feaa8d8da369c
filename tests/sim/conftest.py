"""Fixtures of the simulator tests: simulators that are cleaned up, and a greeted host."""

import pytest
from simhost import LinkHost

from protocol import messages as m


@pytest.fixture
def make_sim(tmp_path):
    """Simulator factory; every simulator made is closed after the test."""
    from sim.runner import Simulator

    made = []

    def make(**kw):
        kw.setdefault("flash_dir", tmp_path / "flash")
        s = Simulator(**kw)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


@pytest.fixture
def greeted(make_sim):
    """A simulator whose host has done HELLO: (sim, host)."""
    sim = make_sim(seed=7)
    host = LinkHost(sim)
    kind, _body = host.request(m.HELLO, min_version=1, max_version=m.PROTOCOL_VERSION)
    assert kind == m.RESPONSE
    return sim, host
