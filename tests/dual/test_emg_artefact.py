"""Artefacts below the clip (firmware/emg_artefact.py, the chain's trust ceiling) on both runtimes.

A resting pelvic floor reads a few µV RMS through an intravaginal probe
(6.26 ± 3.33 µV pre-baseline, Oleksy et al. 2020); the strongest voluntary
contractions stay below ~200 µV RMS (docs/emg.md). An electrode step, a
motion bump or a rail must never turn into a trusted envelope far above
the rest tone around it, on either edge of the contaminated stretch, and no
trusted envelope may ever exceed ENVELOPE_TRUST_MAX_DV (500 µV). Muscle,
however strong, and a slow electrode drift stay trusted.
"""

import math
import sys
from array import array

from dualtest import Lcg, req, skip
from firmware import hal as H
from firmware.emg import FRAME_SAMPLES, EmgInput
from firmware.emg_dsp import ENVELOPE_TRUST_MAX_DV, UNTRUSTED
from protocol.messages import FLAG_ARTEFACT

RATE = 2000
RAIL = 4000000
DC = 150000  # 15 mV electrode offset
REST_AMP = 104  # uniform ±10.4 µV: 6 µV RMS, a healthy rest tone


class RawHal:
    """Every sample at once; EMG_SATURATED when one reads the rail."""

    def __init__(self, x):
        self.emg_rate_hz = RATE
        self.x = x
        self.next = 0
        self.status = 0

    def emg_index(self):
        return self.next

    def emg_read(self, buf):
        n = min(len(buf), len(self.x) - self.next)
        for i in range(n):
            v = self.x[self.next + i]
            if v >= RAIL or v <= -RAIL:
                v = RAIL if v > 0 else -RAIL
                self.status |= H.EMG_SATURATED
            buf[i] = v
        self.next += n
        return n

    def emg_status(self):
        s = self.status
        self.status = 0
        return s


def noise(seed, seconds, amp, dc=DC):
    rnd = Lcg(seed)
    n = seconds * RATE
    x = array("i", [0] * n)
    for i in range(n):
        x[i] = dc + rnd.below(2 * amp + 1) - amp
    return x


def envelopes(x):
    """[(end sample, envelope_dv, flags)] for x through EmgInput as the device runs it."""
    hal = RawHal(x)
    out = []
    emg = EmgInput(hal, 0, window_ms=250, mains_hz=50)
    emg.chain.on_envelope = lambda dv, f: out.append((emg.chain.blocks * FRAME_SAMPLES, dv, f))
    while hal.next < len(x):  # a pass drains a few blocks at most
        emg.pump(0, lambda first, payload, flags: None)
    return out


def trusted(envs, after_s=1):
    return [dv for end, dv, f in envs if end >= after_s * RATE and not f & (UNTRUSTED | FLAG_ARTEFACT)]


def check_contained(x, label, leak=4):
    """The trusted updates of x stay within (1 + 1/leak) x the clean rest tone's highest."""
    envs = envelopes(x)
    rest = trusted(envelopes(noise(1, len(x) // RATE, REST_AMP)))
    top = max(rest)
    got = trusted(envs)
    assert len(got) > len(rest) // 2, (label, len(got), len(rest))  # the clean stretches stay trusted
    worst = max(got)
    assert worst <= top + top // leak, (label, worst, top)
    assert worst <= ENVELOPE_TRUST_MAX_DV
    return envs


@req("EMG-ARTEFACT-1")
def test_an_electrode_step_of_20_mv_never_reads_as_a_trusted_envelope():
    for size in (200000, -200000, 20000):  # 20 mV either way, and 2 mV
        x = noise(1, 6, REST_AMP)
        for i in range(3 * RATE + 17, len(x)):
            x[i] += size
        envs = check_contained(x, "step %d" % size)
        assert any(f & FLAG_ARTEFACT for _e, _dv, f in envs)


@req("EMG-ARTEFACT-1")
def test_an_electrode_step_that_decays_is_flagged_for_its_fast_part_only():
    x = noise(2, 8, REST_AMP)
    for i in range(2 * RATE, len(x)):
        x[i] += int(200000 * math.exp(-(i - 2 * RATE) / (1.0 * RATE)))  # polarisation: tau 1 s
    check_contained(x, "decaying step")


def bump(seed, peak, ms):
    x = noise(seed, 6, REST_AMP)
    n = ms * RATE // 1000
    start = 3 * RATE + 5
    for k in range(n):
        x[start + k] += int(peak * 0.5 * (1 - math.cos(2 * math.pi * k / n)))
    return x


@req("EMG-ARTEFACT-1")
def test_motion_that_rails_leaks_no_trusted_value_at_either_edge():
    check_contained(bump(3, 5000000, 600), "500 mV bump")  # rails for most of its 600 ms


@req("EMG-ARTEFACT-1")
def test_motion_below_the_rail_leaks_at_most_its_gentle_onset():
    # a bump is flagged once its 25 ms mean moves faster than 10 mV/s; before that (the first
    # ~15-35 ms) and in a bump too gentle to flag, the high-pass passes its curvature as a few µV
    check_contained(bump(3, 50000, 400), "5 mV bump", leak=2)
    check_contained(bump(3, 15000, 300), "1.5 mV bump", leak=2)
    check_contained(bump(3, 5000, 300), "0.5 mV bump", leak=2)


@req("EMG-ARTEFACT-1")
def test_spikes_faster_than_any_motor_unit_are_flagged():
    x = noise(4, 4, REST_AMP)
    for t in (2 * RATE + 3, 2 * RATE + 700, 2 * RATE + 1400):
        x[t] += 60000  # 6 mV for one sample: an electrode pop
    envs = check_contained(x, "pops")
    assert any(f & FLAG_ARTEFACT for _e, _dv, f in envs)


@req("EMG-ARTEFACT-1")
def test_strong_muscle_and_slow_drift_stay_trusted():
    # 150 µV RMS contraction (uniform ±260 µV) on an offset drifting 2 mV/s
    x = noise(5, 6, 2600)
    for i in range(len(x)):
        x[i] += 2000 * 10 * i // RATE
    envs = envelopes(x)
    late = [f for end, _dv, f in envs if end >= RATE // 2]
    assert len(late) > 100 and not any(f & (UNTRUSTED | FLAG_ARTEFACT) for f in late)


@req("EMG-ARTEFACT-1")
def test_no_trusted_envelope_above_the_ceiling_whatever_the_signal():
    # 600 µV RMS (uniform ±1.04 mV): more than any pelvic-floor probe records
    envs = envelopes(noise(6, 3, 10400))
    assert all(f & FLAG_ARTEFACT for end, _dv, f in envs if end >= RATE // 2)
    assert trusted(envs, 0) == [] or max(trusted(envs, 0)) <= ENVELOPE_TRUST_MAX_DV


@req("EMG-ARTEFACT-1")
def test_viper_scan_matches_the_plain_scan():
    from firmware import emg_artefact

    if emg_artefact._scan is emg_artefact.scan_plain:
        skip(
            "this port has no native emitters (%s): firmware/emg_artefact_viper.py cannot load here"
            % sys.platform
        )
    x = noise(8, 1, 3000, dc=-RAIL + 5000)  # negative words: the viper loads must sign-extend
    for i in range(0, len(x), 97):
        x[i] = RAIL if i % 2 else -RAIL
    a = array("i", [0, 0, 0])
    b = array("i", [0, 0, 0])
    prev = -7
    for start in range(0, len(x) - FRAME_SAMPLES, FRAME_SAMPLES):
        block = x[start : start + FRAME_SAMPLES]
        emg_artefact.scan_plain(block, FRAME_SAMPLES, prev, a)
        emg_artefact._scan(block, FRAME_SAMPLES, prev, b)
        assert list(a) == list(b), (start, list(a), list(b))
        prev = a[2]
