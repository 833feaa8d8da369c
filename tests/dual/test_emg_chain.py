"""The integer EMG chain (firmware/emg_dsp.py, firmware/emg.py) on both runtimes.

Golden vectors (tests/dual/vectors/emg_chain.json, written by
tools/make_emg_vectors.py) fix the exact streamed samples and envelope
sequence for LCG-made inputs, railed ones included: CPython and MicroPython
must reproduce them bit for bit. On MicroPython the chain must not allocate.
"""

import struct
import sys
from array import array

from dualtest import MICROPYTHON, Lcg, req, skip, vectors
from firmware import emg as emg_mod
from firmware import emg_dsp
from firmware import hal as H
from firmware.emg import EmgInput
from firmware.emg_dsp import BLOCK, ENVELOPE_MAX_DV, LIMIT_DV, Chain
from protocol.messages import FLAG_GAP, FLAG_LEAD_OFF, FLAG_SATURATED

RAIL = 4000000


def signal(seed, segments, rate_hz=2000):
    """Samples (array 'i') from segments [length, kind, amplitude, dc].

    kind "noise": dc + uniform noise in ±amplitude; "tone": dc + a triangle
    wave of the given amplitude at 50 Hz plus small noise; "rail": samples
    at ±RAIL, the sign changing at random (a lead-off or stimulation artefact).
    """
    rnd = Lcg(seed)
    n = 0
    for seg in segments:
        n += seg[0]
    out = array("i", [0] * n)
    period = rate_hz // 50
    i = 0
    for length, kind, amp, dc in segments:
        for k in range(length):
            if kind == "rail":
                v = RAIL if rnd.below(2) else -RAIL
            elif kind == "tone":
                p = (k * 4 * amp) // period % (4 * amp)  # 0 .. 4*amp over one period
                tri = p - amp if p < 2 * amp else 3 * amp - p
                v = dc + tri + rnd.below(21) - 10
            else:
                v = dc + rnd.below(2 * amp + 1) - amp
            out[i] = v
            i += 1
    return out


def run_case(case):
    """Feed a case block by block; the streamed samples and [envelope, flags] list."""
    x = signal(case["seed"], case["segments"], case["rate"])
    flags_at = dict(case["flags_at"])
    envs = []
    chain = Chain(case["rate"], case["window"], case["mains"], lambda dv, f: envs.append([dv, f]))
    block = array("i", [0] * BLOCK)
    out = bytearray(4 * BLOCK)
    stream = []
    for b in range(len(x) // BLOCK):
        for j in range(BLOCK):
            block[j] = x[b * BLOCK + j]
        chain.process(block, BLOCK, out, flags_at.get(b, 0))
        stream.extend(struct.unpack("<%di" % BLOCK, out))
    return stream, envs


@req("EMG-CHAIN-3")
def test_golden_vectors_bit_identical():
    doc = vectors("emg_chain.json")
    assert len(doc["cases"]) >= 4
    for case in doc["cases"]:
        stream, envs = run_case(case)
        assert len(stream) == len(case["stream"]), case["name"]
        for i in range(len(stream)):
            if stream[i] != case["stream"][i]:
                raise AssertionError(
                    "%s: sample %d is %d, golden %d" % (case["name"], i, stream[i], case["stream"][i])
                )
        assert envs == case["envelope"], case["name"]


class RingHal:
    """A front end replaying a prepared array; the test moves `produced` and can jump the index."""

    def __init__(self, samples, rate_hz=2000):
        self.emg_rate_hz = rate_hz
        self.samples = samples
        self.produced = 0
        self.next = 0
        self.status = 0

    def emg_index(self):
        return self.next

    def emg_read(self, buf):
        n = min(len(buf), self.produced - self.next)
        src = self.samples
        size = len(src)
        base = self.next
        for i in range(n):
            buf[i] = src[(base + i) % size]
        self.next += n
        return n

    def emg_status(self):
        s = self.status
        self.status = 0
        return s


class Trickle(RingHal):
    """Samples keep arriving while the pass reads them, two per read, as on a board at 2 kHz."""

    reads = 0

    def emg_read(self, buf):
        self.reads += 1
        self.produced += 2
        return RingHal.emg_read(self, buf)


@req("DEV-PERF-1", "EMG-CHAIN-1")
def test_a_pass_reads_once_per_block_and_at_most_its_share_of_blocks():
    hal = Trickle(signal(3, [[4000, "noise", 2000, 0]]))
    emg = EmgInput(hal, 0)
    blocks = []
    hal.produced = 30
    emg.pump(0, lambda first, payload, flags: blocks.append(first))
    # the ring's 30 (+2 that came during the read) do not fill a block: one read, and the pass goes on
    assert hal.reads == 1 and emg.total == 32 and blocks == []
    hal.produced += 20 * BLOCK
    per_pass = []
    for _ in range(12):  # the backlog waited in the ring: caught up over the next passes
        hal.reads = 0
        n = len(blocks)
        emg.pump(0, lambda first, payload, flags: blocks.append(first))
        per_pass.append(len(blocks) - n)
        assert hal.reads == per_pass[-1] or hal.reads == per_pass[-1] + 1  # one read per block
    # one block a pass until the backlog lasted BEHIND_PASSES passes, then more, never past the most
    behind = emg_mod.BEHIND_PASSES
    assert per_pass[:behind] == [emg_mod.BLOCKS_PER_PASS] * behind
    assert per_pass[behind] == emg_mod.MAX_BLOCKS_PER_PASS and max(per_pass) == emg_mod.MAX_BLOCKS_PER_PASS
    assert blocks == [i * BLOCK for i in range(len(blocks))] and len(blocks) >= 20


def _pumped(hal, emg, samples, step=40):
    frames = []
    for _ in range(samples // step):
        hal.produced += step
        emg.pump(0, lambda first, payload, flags: frames.append((first, bytes(payload), flags)))
    return frames


@req("EMG-CHAIN-1")
def test_envelope_updates_at_20_hz_at_both_rates():
    for rate in (1000, 2000):
        got = []
        hal = RingHal(signal(3, [[2000, "noise", 300, 0]], rate), rate)
        emg = EmgInput(hal, 0, on_envelope=lambda dv, f, got=got: got.append(dv))
        frames = _pumped(hal, emg, 2 * rate)  # two seconds
        assert len(frames) == 2 * rate // BLOCK
        assert emg.envelope_count == len(got) == 40, (rate, len(got))
        # uniform noise of ±300 counts has RMS 173; the filters pass most of it
        assert 120 < got[-1] < 190, got[-1]
        assert emg.envelope_dv == got[-1]


@req("EMG-CHAIN-1")
def test_dc_offset_is_removed_from_stream_and_envelope():
    hal = RingHal(signal(5, [[4000, "noise", 50, 1500000]]))  # 150 mV electrode offset
    emg = EmgInput(hal, 0)
    frames = _pumped(hal, emg, 4000)
    samples = []
    for _first, payload, _flags in frames[-20:]:
        samples.extend(struct.unpack("<50i", payload))
    mean = sum(samples) // len(samples)
    assert -3 <= mean <= 3, mean
    assert max(abs(v) for v in samples) < 120
    assert 20 < emg.envelope_dv < 35, emg.envelope_dv  # RMS of ±50 uniform noise: 29


@req("EMG-CHAIN-4")
def test_a_gap_restarts_the_chain_and_the_envelope_waits_for_a_full_window():
    updates = []
    hal = RingHal(signal(7, [[3000, "noise", 200, 40000]]))
    emg = EmgInput(hal, 0, on_envelope=lambda dv, f: updates.append(f))
    _pumped(hal, emg, 1000)
    assert updates[-1] == 0  # 500 ms in: the 250 ms window is full
    before = len(updates)
    hal.next += 333  # the ring overran: 333 samples lost
    hal.produced += 333
    frames = _pumped(hal, emg, 1000)
    assert frames[0][2] & FLAG_GAP
    assert not frames[1][2] & FLAG_GAP
    after = updates[before:]
    # 250 ms window + 100 ms settling = 7 updates of 50 ms: the first 6 come too soon after the gap
    assert [f & FLAG_GAP for f in after[:8]] == [FLAG_GAP] * 6 + [0, 0], after[:8]
    assert emg.trustworthy(0)


@req("EMG-CHAIN-4")
def test_lead_off_flags_its_update_and_the_window_after_it():
    updates = []
    hal = RingHal(signal(9, [[4000, "noise", 200, 0]]))
    emg = EmgInput(hal, 0, window_ms=100, on_envelope=lambda dv, f: updates.append(f))
    _pumped(hal, emg, 600)
    hal.status = H.EMG_LEAD_OFF
    n0 = len(updates)
    frames = _pumped(hal, emg, 600)
    assert frames[0][2] & FLAG_LEAD_OFF and not frames[1][2] & FLAG_LEAD_OFF
    flags = updates[n0:]
    assert flags[0] & FLAG_LEAD_OFF
    # 100 ms window + 100 ms settling = 4 updates: three more are still untrusted, then clean
    assert flags[1:4] == [FLAG_GAP] * 3 and flags[4] == 0, flags


@req("EMG-CHAIN-3", "EMG-CHAIN-4")
def test_railed_input_saturates_without_wrapping():
    x = signal(11, [[500, "noise", 100, 0], [1000, "rail", 0, 0], [1000, "noise", 100, -RAIL]], 2000)
    envs = []
    chain = Chain(2000, 250, 50, lambda dv, f: envs.append((dv, f)))
    out = bytearray(4 * len(x))
    chain.process(x, len(x), out)
    stream = struct.unpack("<%di" % len(x), out)
    assert max(stream) == LIMIT_DV and min(stream) == -LIMIT_DV
    assert all(0 <= dv <= ENVELOPE_MAX_DV for dv, _f in envs)
    assert any(dv == ENVELOPE_MAX_DV for dv, _f in envs)
    # block 11 is the first railed one; before it the chain was still settling from its start
    assert envs[4][1] == FLAG_GAP and envs[5][1] & FLAG_SATURATED
    # back on a quiet (if railed-offset) signal: primed again, no transient
    assert all(abs(v) < 200 for v in stream[-600:])
    assert envs[-1][1] == 0 and envs[-1][0] < 100


@req("EMG-CHAIN-1")
def test_configuration_is_checked():
    for bad in ((500, 250, 50), (2000, 40, 50), (2000, 1050, 50), (2000, 275, 50), (2000, 250, 55)):
        try:
            Chain(*bad)
        except ValueError:
            continue
        raise AssertionError("accepted %r" % (bad,))
    hal = RingHal(signal(1, [[100, "noise", 10, 0]]), 1500)
    try:
        EmgInput(hal, 0)
    except ValueError:
        pass
    else:
        raise AssertionError("accepted 1500 samples/s")
    hal = RingHal(signal(1, [[100, "noise", 10, 0]]), 1000)
    emg = EmgInput(hal, 0)
    emg.reconfigure(window_ms=1000, mains_hz=60)
    assert emg.chain.window_ms == 1000 and emg.chain.mains_hz == 60
    for kw in ({"window_ms": 0}, {"mains_hz": 0}):
        try:
            emg.reconfigure(**kw)
        except ValueError:
            continue
        raise AssertionError("accepted %r" % (kw,))
    assert emg.chain.window_ms == 1000 and emg.chain.mains_hz == 60


@req("EMG-CHAIN-3")
def test_no_heap_allocation_over_10000_samples():
    if not MICROPYTHON:
        skip("gc.mem_alloc() is MicroPython's; CPython allocates for every int")
    import gc

    x = signal(13, [[1500, "noise", 20000, 300000], [300, "rail", 0, 0], [1200, "tone", 3000, 0]], 2000)
    hal = RingHal(x)
    count = [0, 0]

    def emit(first, payload, flags):
        count[0] += 1

    def on_env(dv, flags):
        count[1] += 1

    emg = EmgInput(hal, 0, on_envelope=on_env)
    for _ in range(50):  # warm-up: every path taken once, rails included
        hal.produced += 70
        emg.pump(0, emit)
    gc.collect()
    before = gc.mem_alloc()
    for _ in range(250):
        hal.produced += 40
        emg.pump(0, emit)
    grown = gc.mem_alloc() - before
    assert emg.total == 3500 + 10000
    assert count[1] > 100
    assert grown == 0, "the chain allocated %d bytes over 10,000 samples" % grown


@req("EMG-CHAIN-3")
def test_viper_kernel_matches_the_plain_kernel():
    if not emg_dsp.FAST:
        skip(
            "this port has no native emitters (%s): firmware/emg_viper.py cannot load here"
            % (sys.implementation.name + (" webassembly" if sys.platform == "webassembly" else ""))
        )
    from firmware.emg_viper import run as viper_run

    x = signal(17, [[1000, "noise", 30000, 100000], [400, "rail", 0, 0], [1100, "tone", 5000, -RAIL]], 2000)
    for rate, mains in ((1000, 50), (1000, 60), (2000, 50), (2000, 60)):
        co = emg_dsp.coefficients(rate, mains)
        st_a = array("i", [0] * emg_dsp.STATE_LEN)
        st_b = array("i", [0] * emg_dsp.STATE_LEN)
        out_a = bytearray(4 * len(x))
        out_b = bytearray(4 * len(x))
        for start in range(0, len(x), BLOCK):
            emg_dsp.run_plain(st_a, co, x, start, start + BLOCK, out_a)
            viper_run(st_b, co, x, start, start + BLOCK, out_b)
            assert list(st_a) == list(st_b), (rate, mains, start)
        assert out_a == out_b, (rate, mains)
