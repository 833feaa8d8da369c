"""Stimulation-artefact blanking in the EMG chain (firmware/emg.py Blanker, EmgInput.blank) on both runtimes.

The front end here (PulsedHal) times pulses as the boards do: pulse k of a
train started at t0 begins at t0 + floor(k * 1e6 / hz) µs, in sample
floor(t * rate / 1e6); stim_sense reports it once it is over. Each pulse
rails the input for its first samples and leaves a decaying tail.
"""

import struct
from array import array

from dualtest import MICROPYTHON, Lcg, req, skip
from firmware import hal as H
from firmware.emg import BLANK_AFTER_US, BLANK_BEFORE_US, FRAME_SAMPLES, Blanker, EmgInput
from protocol.messages import FLAG_BLANKED, FLAG_GAP, FLAG_LEAD_OFF, FLAG_SATURATED

RAIL = 4000000
UNTRUSTED = FLAG_LEAD_OFF | FLAG_SATURATED | FLAG_GAP


def pulse_index(t0_us, k, hz, rate):
    return (t0_us + k * 1000000 // hz) * rate // 1000000


class PulsedHal:
    """Noise of ±amp around dc, a pulse train from t0_us whose artefacts rail the input; EMG_SATURATED."""

    def __init__(self, seed, n, amp=300, dc=0, rate=2000, hz=0, t0_us=0, pulses=0, art=RAIL, rail_at=-1):
        self.emg_rate_hz = rate
        rnd = Lcg(seed)
        x = array("i", [0] * n)
        for i in range(n):
            x[i] = dc + rnd.below(2 * amp + 1) - amp
        self.clean = array("i", x)
        self.hz = hz
        self.t0_us = t0_us
        self.pulses = pulses
        self.starts = []
        for k in range(pulses):
            p = pulse_index(t0_us, k, hz, rate)
            if p >= n:
                break
            self.starts.append(p)
            tail = (art, -art, -art // 8, -art // 64, -art // 512, -art // 4096)
            for j in range(len(tail)):
                if p + j < n:
                    v = x[p + j] + tail[j]
                    x[p + j] = min(max(v, -RAIL), RAIL)
        if rail_at >= 0:
            x[rail_at] = -RAIL  # a saturation that is not the stimulator's
        self.samples = x
        self.produced = 0
        self.next = 0
        self.status = 0

    def emg_index(self):
        return self.next

    def emg_read(self, buf):
        n = min(len(buf), self.produced - self.next)
        for i in range(n):
            v = self.samples[self.next + i]
            buf[i] = v
            if v >= RAIL or v <= -RAIL:
                self.status |= H.EMG_SATURATED
        self.next += n
        return n

    def emg_status(self):
        s = self.status
        self.status = 0
        return s

    def stim_sense(self, out):
        # a pulse is sensed once over (~1 ms: two samples after its start)
        done = 0
        for p in self.starts:
            if p + 2 < self.produced:
                done += 1
        out[H.SENSE_PULSES] = done
        out[H.SENSE_INDEX] = self.starts[done - 1] if done else 0


def pumped(hal, emg, step=40, hz=None):
    """Feed every sample; emg.blank(hz) before each pump when hz is given. [(first, samples, flags)]."""
    frames = []

    def emit(first, payload, flags):
        frames.append((first, struct.unpack("<%di" % FRAME_SAMPLES, payload), flags))

    while hal.produced < len(hal.samples):
        hal.produced = min(hal.produced + step, len(hal.samples))
        if hz is not None:
            emg.blank(hz)
        emg.pump(0, emit)
    return frames


def windows(starts, before, after, first, n):
    """Indices (in first..first+n-1) a correct blanker holds."""
    out = []
    for i in range(first, first + n):
        for p in starts:
            if p - before <= i <= p + after:
                out.append(i)
                break
    return out


@req("EMG-BLANK-1")
def test_predicted_pulses_match_the_boards_timing_within_a_sample():
    for rate in (1000, 2000):
        for hz in (1, 3, 7, 35, 50, 99, 100):
            t0 = 123457
            last_k = 40
            last = pulse_index(t0, last_k, hz, rate)
            for m in range(-last_k, 30):
                true = pulse_index(t0, last_k + m, hz, rate)
                predicted = last + (2 * m * rate + hz) // (2 * hz)
                assert -1 <= predicted - true <= 1, (rate, hz, m, predicted, true)


@req("EMG-BLANK-1")
def test_windows_hold_the_last_clean_sample_exactly_where_predicted():
    rate = 2000
    b = Blanker(rate)
    b.configure(50, 500, 4000)  # 1 sample before, 8 after; pulses every 40 samples
    x = array("i", range(1000, 1050))
    b.held = 999
    # the last sensed pulse at 1030 (its 3rd): the one at 990 ended before the block, 1070 is after it
    n = b.apply(x, 1000, 50, 1030, 3)
    assert n == 10 and b.peak == 1038
    for i in range(50):
        assert x[i] == (1028 if 29 <= i <= 38 else 1000 + i), (i, x[i])
    # a window across the block edge: held to the block's end, then on from the held value
    x = array("i", range(2000, 2050))
    b.held = 1999
    assert b.apply(x, 2000, 50, 1966, 5) == 10 + 5  # predicted: 2006 (2005..2014) and 2046 (2045..)
    assert x[4] == 2004 and x[5] == x[14] == 2004 and x[15] == 2015
    assert x[44] == 2044 and x[45] == x[49] == 2044
    nxt = array("i", range(2050, 2100))
    b.held = x[49]
    assert b.apply(nxt, 2050, 50, 2046, 6) == 5 + 10  # ..2054, then 2086 (2085..2094)
    assert [nxt[i] for i in range(6)] == [2044, 2044, 2044, 2044, 2044, 2055]
    assert nxt[35] == nxt[44] == 2084 and nxt[45] == 2095
    # a window opening just before the block: its first sample holds the previous block's last
    x = array("i", range(3000, 3050))
    b.held = 2999
    assert b.apply(x, 3000, 50, 2960, 9) == 9 + 10  # 3000 (2999..3008), 3040 (3039..3048)
    assert x[0] == x[8] == 2999 and x[9] == 3009


@req("EMG-BLANK-1")
def test_no_window_before_the_train_began_nor_after_it_stopped():
    b = Blanker(2000)
    b.configure(50, 500, 4000)
    x = array("i", range(50))
    # the train's first pulse is at 45: the period puts one at 5, but the train had not begun
    assert b.apply(x, 0, 50, 45, 1) == 6
    assert x[5] == 5 and x[43] == 43 and x[44] == x[49] == 43
    x = array("i", range(50))
    assert b.apply(x, 0, 50, 45, 2) == 10 + 6  # as the second pulse, the one at 5 is the first
    assert x[4] == x[13] == 3
    b.configure(0, 500, 4000)  # the train stopped after its pulse at 45 ...
    x = array("i", range(50, 100))
    b.held = 43
    assert b.active() and b.apply(x, 50, 50, 45, 2) == 4  # ... its window ends at 53; 85 is not predicted
    assert list(x) == [43] * 4 + list(range(54, 100)) and not b.active()  # its window is behind: done
    # a stopped train's last pulses are still blanked in samples not yet processed
    b.configure(50, 500, 4000)
    b.configure(0, 500, 4000)
    x = array("i", range(50))
    assert b.apply(x, 0, 50, 70, 3) == 10 and x[29] == 28 and x[40] == 40
    assert b.active()  # 70 lies ahead: the next block still looks
    for bad in ((-1, 0, 0), (50, -1, 0), (50, 0, -1)):
        try:
            b.configure(*bad)
        except ValueError:
            continue
        raise AssertionError("accepted %r" % (bad,))


@req("EMG-BLANK-1", "EMG-BLANK-2")
def test_blanked_blocks_are_flagged_and_carry_no_artefact():
    n = 8000
    # the first pulse mid-block: it is sensed before its block is complete (not so its sample before)
    hal = PulsedHal(21, n, amp=100, hz=35, t0_us=1012000, pulses=200)
    emg = EmgInput(hal, 0)
    frames = pumped(hal, emg, hz=35)
    assert len(frames) == n // FRAME_SAMPLES
    held = 0
    for first, samples, flags in frames:
        inside = windows(hal.starts, 1, 8, first, FRAME_SAMPLES)
        held += len(inside)
        assert bool(flags & FLAG_BLANKED) == bool(inside), (first, flags)
        assert not flags & UNTRUSTED, (first, flags)
        assert max(abs(v) for v in samples) < 1000, first  # ±100 noise; the artefact is ±400 mV
    assert held > 1000
    assert emg.trustworthy(0) and emg.chain.envelope_flags & UNTRUSTED == 0
    assert 30 < emg.envelope_dv < 60, emg.envelope_dv  # ±100 uniform: RMS 58, less the held share


@req("EMG-BLANK-1", "EMG-BLANK-2")
def test_without_blanking_the_artefact_rails_the_chain():
    hal = PulsedHal(21, 8000, amp=100, hz=35, t0_us=1012000, pulses=200)
    updates = []
    emg = EmgInput(hal, 0, on_envelope=lambda dv, f: updates.append((dv, f)))
    frames = pumped(hal, emg)
    railed = [f for first, _s, f in frames if first >= 2000 and f & FLAG_SATURATED]
    assert len(railed) > 100 and not any(f & FLAG_BLANKED for _a, _s, f in frames)
    # two blocks per update, a pulse every 57 samples: no update during the train is trusted
    assert all(f & UNTRUSTED for _dv, f in updates[21:])


@req("EMG-BLANK-2")
def test_saturation_outside_the_windows_still_counts():
    hal = PulsedHal(23, 6000, amp=100, hz=35, t0_us=1000000, pulses=200, rail_at=4020)
    assert 4020 not in windows(hal.starts, 1, 8, 4020, 1)
    updates = []
    emg = EmgInput(hal, 0, on_envelope=lambda dv, f: updates.append(f))
    frames = pumped(hal, emg, hz=35)
    for first, _s, flags in frames:
        if first == 4000:
            assert flags & FLAG_SATURATED and flags & FLAG_BLANKED, flags
        else:
            assert not flags & FLAG_SATURATED, (first, flags)
    # the rail restarted the chain: the next updates wait for a full window again
    assert any(f & FLAG_SATURATED for f in updates) and any(f & FLAG_GAP for f in updates[-20:])


@req("EMG-BLANK-1")
def test_no_stimulation_no_change():
    # golden behaviour for unblanked input: blanking armed without a pulse, or off, changes nothing
    runs = []
    for hz in (None, 0, 50):
        hal = PulsedHal(25, 3000, amp=2000, dc=150000)
        emg = EmgInput(hal, 0)
        frames = pumped(hal, emg, hz=hz)
        runs.append((frames, emg.envelope_dv))
    assert runs[0] == runs[1] == runs[2]
    assert not any(f & FLAG_BLANKED for _a, _s, f in runs[0][0])


@req("EMG-BLANK-1")
def test_defaults_cover_the_longest_pulse_and_its_recovery():
    assert BLANK_BEFORE_US >= 1000000 // 2000  # one sample at 2 kHz: a prediction may be one late
    assert BLANK_AFTER_US >= 2 * 450 + 100 + 2500


@req("EMG-BLANK-1", "EMG-CHAIN-3")
def test_blanking_allocates_nothing():
    if not MICROPYTHON:
        skip("gc.mem_alloc() is MicroPython's; CPython allocates for every int")
    import gc

    hal = PulsedHal(27, 9000, amp=100, hz=50, t0_us=100000, pulses=500, rail_at=6000)
    count = [0]

    def emit(first, payload, flags):
        if flags & FLAG_BLANKED:
            count[0] += 1

    emg = EmgInput(hal, 0)
    for _ in range(40):  # warm-up
        hal.produced += 40
        emg.blank(50)
        emg.pump(0, emit)
    gc.collect()
    before = gc.mem_alloc()
    for _ in range(180):
        hal.produced += 40
        emg.blank(50)
        emg.pump(0, emit)
    grown = gc.mem_alloc() - before
    assert count[0] > 100
    assert grown == 0, "blanking allocated %d bytes over 7,200 samples" % grown
