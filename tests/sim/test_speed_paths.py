"""The simulator's fast paths give the results of the code they replace, bit for bit.

The compiled viper kernel against emg_dsp.run_plain, the direct sosfilt
call against scipy's public one, the front end's railed-run bookkeeping
against a scan of the samples read, and a whole seeded session (stream,
events, lead-off, saturation, motion) with every fast path against one
with none: the bytes the host receives are the same.
"""

import hashlib
import random
from array import array

import numpy as np
import pytest
from scipy.signal import butter, lfilter, sosfilt

from firmware import emg_dsp
from firmware import hal as H
from host.client import Client, EmgFrame, StateChanged
from sim import emg_kernel, filters
from sim.emg_model import FULL_SCALE_DV
from sim.frontend import RING_SAMPLES, EmgFrontEnd
from sim.scenario import Event


def _blocks(rng, n):
    """Blocks of EMG-like input with rails, steps and extremes, each with its start."""
    for _ in range(n):
        kind = rng.randrange(4)
        if kind == 0:
            x = [rng.randint(-20000, 20000) + 300000 for _ in range(50)]
        elif kind == 1:
            x = [rng.choice((-4_200_000, 4_200_000, 0)) for _ in range(50)]
        elif kind == 2:
            x = [rng.randint(-(2**31), 2**31 - 1) for _ in range(50)]
        else:
            x = [rng.randint(-4_000_000, 4_000_000) for _ in range(50)]
        yield array("i", x), rng.randrange(50)


@pytest.mark.req("SIM-FAST-1")
@pytest.mark.parametrize("rate,mains", [(2000, 50), (1000, 60)])
def test_the_compiled_viper_kernel_equals_the_plain_one(rate, mains):
    run = emg_kernel.kernel()
    assert run is not None, "firmware/emg_viper.py disagrees with emg_dsp.run_plain"
    co = emg_dsp.coefficients(rate, mains)
    st_a = array("i", [0] * emg_dsp.STATE_LEN)
    st_b = array("i", [0] * emg_dsp.STATE_LEN)
    rng = random.Random(rate + mains)
    for x, start in _blocks(rng, 400):
        out_a = bytearray(200)
        out_b = bytearray(200)
        emg_dsp.run_plain(st_a, co, x, start, 50, out_a)
        run(st_b, co, x, start, 50, out_b)
        assert (out_b, st_b) == (out_a, st_a)
        if rng.random() < 0.1:  # a restart, as Chain.restart does
            for i in range(emg_dsp.STATE_LEN):
                st_a[i] = st_b[i] = 0
        else:  # the envelope's block sums are taken out after each block
            st_a[6] = st_b[6] = st_a[7] = st_b[7] = 0


@pytest.mark.req("SIM-FAST-1")
def test_the_direct_filter_calls_equal_scipys():
    sos = butter(4, (20, 450), btype="bandpass", fs=2000, output="sos")
    b, a = np.array([0.05]), np.array([1.0, -0.95])
    rng = np.random.default_rng(1)
    zs = rng.standard_normal((len(sos), 2))
    zl = rng.standard_normal(1)
    for n in (1, 7, 200):
        x = rng.standard_normal(n) * 1e3
        y_ref, zs_ref = sosfilt(sos, x, zi=zs)
        y, zs_new = filters.sosfilt_chunk(sos, x, zs)
        assert y.tobytes() == y_ref.tobytes() and zs_new.tobytes() == zs_ref.tobytes()
        y_ref, zl_ref = lfilter(b, a, x, zi=zl)
        y, zl_new = filters.lfilter_chunk(b, a, x, zl)
        assert y.tobytes() == y_ref.tobytes() and zl_new.tobytes() == zl_ref.tobytes()
        zs, zl = zs_ref, zl_ref


class _Model:
    """Samples chosen by the test, with runs at the rails."""

    lead_off = False

    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)

    def take(self, n):
        x = self.rng.integers(-FULL_SCALE_DV, FULL_SCALE_DV, n, endpoint=True).astype(np.int32)
        x[self.rng.random(n) < 0.05] = FULL_SCALE_DV
        if self.rng.random() < 0.7:
            x[:] = np.clip(x, -FULL_SCALE_DV + 1, FULL_SCALE_DV - 1)
        return x, H.EMG_SATURATED if np.any(np.abs(x) >= FULL_SCALE_DV) else 0  # as EmgModel reports


@pytest.mark.req("SIM-FAST-1")
def test_saturation_is_reported_for_exactly_the_railed_samples_read():
    fe = EmgFrontEnd(_Model(3), 2000)
    rng = random.Random(3)
    t = 0
    for _ in range(3000):
        t += rng.choice((100, 2500, 20000, 600000))  # also past the ring: an overrun
        fe.sync(t)
        if rng.random() < 0.01:
            fe.restart()
        buf = array("i", [0] * rng.choice((1, 7, 50, RING_SAMPLES)))
        fe.status()
        n = fe.read(buf)
        railed = any(abs(v) >= FULL_SCALE_DV for v in buf[:n])
        assert bool(fe.status() & H.EMG_SATURATED) == railed


def _session_digest():
    """sha256 of every byte the host read in a seeded, streamed session with electrode trouble."""
    scenario = [
        Event(2000, "motion", {"peak_uv": 1500.0}),
        Event(4000, "lead_off", {"on": True}),
        Event(4600, "lead_off", {"on": False}),
        Event(7000, "saturation", {"on": True}),
        Event(7300, "saturation", {"on": False}),
    ]
    from host.transport import Port
    from sim.runner import Simulator
    from sim.urlhandler.protocol_sim import Serial

    h = hashlib.sha256()
    sim = Simulator(seed=5, patient="hypertonic", scenario=scenario)
    try:
        port = Port(Serial.attached(sim))
        read = port.read

        def hashing(timeout):
            data = read(timeout)
            h.update(data)
            return data

        port.read = hashing
        c = Client(port)
        c.stream(True)
        c.session_start(demo_s=12, host_time_s=1_700_000_000).unwrap()
        frames = 0
        while True:
            item = c.poll(5.0)
            assert item is not None
            frames += isinstance(item, EmgFrame)
            if isinstance(item, StateChanged) and item.to_state == "DONE":
                break
    finally:
        sim.close()
    assert frames > 400
    return h.hexdigest()


@pytest.mark.req("SIM-FAST-1")
def test_a_session_with_every_fast_path_sends_the_bytes_of_one_without(monkeypatch):
    fast = _session_digest()
    monkeypatch.setattr(emg_kernel, "kernel", lambda: None)  # the firmware's own plain kernel
    monkeypatch.setattr(filters, "_sosfilt", None)  # scipy's public functions
    monkeypatch.setattr(filters, "_linear_filter", None)
    assert _session_digest() == fast
