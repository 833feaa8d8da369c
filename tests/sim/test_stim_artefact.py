"""The stimulation artefact on the simulated board, and the real EMG chain blanking it."""

import numpy as np
import pytest

from firmware import hal as H
from firmware.emg import EmgInput
from firmware.patient_io import TONE_CONTRACT_HZ
from protocol.messages import FLAG_BLANKED, FLAG_GAP, FLAG_LEAD_OFF, FLAG_SATURATED
from sim.board import SimBoard, serial_for_seed
from sim.clock import Clock
from sim.emg_model import FULL_SCALE_DV, MWAVE_LATENCY_US, MWAVE_US, EmgModel, StimArtefact
from sim.flash import Flash
from sim.frontend import EmgFrontEnd
from sim.output import OutputStage, Pulse
from sim.patient import Patient

RATE = SimBoard.emg_rate_hz
TICK_US = 5000
UNTRUSTED = FLAG_LEAD_OFF | FLAG_SATURATED | FLAG_GAP


class Bench:
    """A SimBoard with a patient's EMG and the output stage, and the firmware's EmgInput pumped every 5 ms."""

    def __init__(self, tmp_path, seed=1, blank=True):
        self.clock = Clock()
        self.patient = Patient("healthy", seed, RATE)
        model = EmgModel(self.patient, seed, RATE, motion_per_min=0)
        self.board = SimBoard(
            self.clock,
            EmgFrontEnd(model, RATE),
            Flash(tmp_path / "flash"),
            OutputStage(SimBoard.hw_max_ua),
            serial_for_seed(seed),
        )
        self.blank = blank
        self.hz = 0
        self.updates = []  # (t_us, envelope_dv, flags)
        self.blocks = []  # (first, samples, flags)
        self.emg = EmgInput(
            self.board, 0, on_envelope=lambda dv, f: self.updates.append((self.clock.us, dv, f))
        )

    def run_to(self, t_us):
        b = self.board
        while self.clock.us + TICK_US <= t_us:
            t = self.clock.us + TICK_US
            self.clock.advance_to(t)
            b.frontend.sync(t)
            b.output.sync(t)
            if b.output.enabled:
                b.out_keepalive()
            if self.blank:
                self.emg.blank(self.hz)
            self.emg.pump(b.now_ms(), self._block)

    def _block(self, first, payload, flags):
        self.blocks.append((first, np.frombuffer(bytes(payload), dtype="<i4"), flags))

    def train(self, ua, hz=35, phase_us=250, gap_us=50):
        b = self.board
        b.out_enable(True)
        b.stim_configure(hz, phase_us, gap_us)
        b.stim_amplitude(ua)
        b.stim_start()
        self.hz = hz

    def envelope(self, t0_us, t1_us):
        """Mean envelope (µV) of the updates in [t0, t1), and whether all were trusted."""
        got = [(dv, f) for t, dv, f in self.updates if t0_us <= t < t1_us]
        assert len(got) >= 10
        return np.mean([dv for dv, _f in got]) / 10, all(not f & UNTRUSTED for _dv, f in got)


def _pulse(t_us=1_000_100, ua=15000, mv=7700.0, phase_us=250, gap_us=50):
    end = t_us + 2 * phase_us + gap_us
    return Pulse(t_us, ua, ua, ua, mv, 0.0, 0.0, 0.0, False, phase_us, gap_us, end)


@pytest.mark.req("SIM-ARTEFACT-1")
def test_a_pulse_is_a_biphasic_spike_then_a_short_recovery():
    art = StimArtefact(RATE)
    k0, v, over = art.wave(_pulse(mv=500.0, ua=1000))  # the 1 mA electrode check: 50 mV in, no rail
    assert k0 == 1_000_100 * RATE // 1_000_000
    assert v[0] > 0 and v[1] < 0 and not over.any()
    assert max(abs(v[:2])) < 500_000  # under 50 mV after the sample's averaging
    t_end = (1_000_100 + 550) * RATE / 1e6 - k0  # pulse end, in samples from k0
    quiet = np.abs(v) < 10  # below 1 µV
    assert quiet[int(np.ceil(t_end + 2.6e-3 * RATE)) :].all()  # recovered within ~2.6 ms of the end
    assert not quiet[2]
    # 15 mA into the probe: ~7.7 V, a tenth of it is beyond the ±400 mV range
    k0, v, over = art.wave(_pulse())
    assert over[0] and over[1] and not over[2:].any() and v[0] > 0 > v[1]
    # nothing is drawn for a pulse at 0 µA (the ETS engine idling between bursts)
    _k, v, over = art.wave(_pulse(ua=0, mv=0.0))
    assert not v.any() and not over.any()


@pytest.mark.req("SIM-ARTEFACT-1")
def test_an_m_wave_follows_pulses_above_motor_threshold():
    art = StimArtefact(RATE)
    th = art.threshold_ua(250)
    assert th == pytest.approx(art.threshold_ua(200) * 0.9, rel=0.01)  # wider pulses excite at less current
    lat = MWAVE_LATENCY_US * RATE // 1_000_000
    _k, below, _o = art.wave(_pulse(ua=int(th * 0.95)))
    assert len(below) < lat  # the recovery, and nothing after it
    _k, above, _o = art.wave(_pulse(ua=int(th * 2), mv=16000.0))
    late = above[lat - 1 : lat + MWAVE_US * RATE // 1_000_000 + 1]
    assert 380 < late.max() < 410 and -410 < late.min() < -380  # ±40 µV at full recruitment
    assert np.abs(above[10 : lat - 1]).max() < 1


@pytest.mark.req("SIM-ARTEFACT-1")
def test_sense_index_points_at_the_artefact_in_the_ring(tmp_path):
    bench = Bench(tmp_path, blank=False)
    board = bench.board
    bench.run_to(200_000)
    bench.clock.advance_to(203_000)  # six samples of rest in the ring before the pulse
    bench.train(15000)
    bench.clock.advance_to(207_000)
    board.frontend.sync(bench.clock.us)
    sense = [0] * 5
    board.stim_sense(sense)
    assert sense[H.SENSE_PULSES] == 1
    idx = sense[H.SENSE_INDEX]
    # saturation is reported when the railed samples are read, not when they are converted
    assert not board.emg_status() & H.EMG_SATURATED
    first = board.emg_index()
    buf = [0] * board.frontend.pending()
    board.emg_read(buf)
    assert buf[idx - first] == FULL_SCALE_DV and buf[idx + 1 - first] == -FULL_SCALE_DV
    assert max(abs(v) for v in buf[: idx - first]) < 1000
    assert board.emg_status() & H.EMG_SATURATED
    # a reset restarts the count: the next pulse's index is in the new counting
    board.hardware_reset(H.RESET_REQUESTED)
    bench.emg = EmgInput(board, board.now_ms())
    t = bench.clock.us
    bench.run_to(t + 100_000)
    bench.train(15000)
    bench.run_to(bench.clock.us + 10_000)
    board.stim_sense(sense)
    expected = (board.output.sensed_us - t) * RATE // 1_000_000
    assert sense[H.SENSE_PULSES] == 1 and abs(sense[H.SENSE_INDEX] - expected) <= 1


@pytest.mark.req("EMG-BLANK-1", "EMG-BLANK-2", "SIM-ARTEFACT-1")
def test_blanking_keeps_the_rest_envelope_during_stimulation(tmp_path):
    results = {}
    for name, ua, blank in (("quiet", None, True), ("raw", 15000, False), ("blanked", 15000, True)):
        bench = Bench(tmp_path / name, blank=blank)
        bench.run_to(1_000_000)
        if ua:
            bench.train(ua)
        bench.run_to(5_000_000)
        results[name] = bench.envelope(2_000_000, 5_000_000)
        if name == "blanked":
            flags = [f for first, _s, f in bench.blocks if first >= 2 * RATE]
            assert all(f & FLAG_BLANKED for f in flags[::8]) and not any(f & UNTRUSTED for f in flags)
            assert max(np.abs(s).max() for first, s, _f in bench.blocks if first >= 2 * RATE) < 400  # < 40 µV
    quiet, quiet_ok = results["quiet"]
    raw, raw_ok = results["raw"]
    blanked, blanked_ok = results["blanked"]
    assert quiet_ok and blanked_ok and not raw_ok
    assert 4 < quiet < 8  # the healthy profile's 6.3 µV rest tone, through the chain
    assert raw > 100 * quiet  # without blanking the artefact is all the envelope shows
    assert abs(blanked - quiet) < 1.0, (blanked, quiet)  # within a µV: the held share only


@pytest.mark.req("EMG-BLANK-1", "SIM-ARTEFACT-1")
def test_a_contraction_during_stimulation_is_seen(tmp_path):
    bench = Bench(tmp_path)
    bench.run_to(1_000_000)
    bench.train(15000)
    bench.run_to(2_000_000)
    bench.patient.hear(TONE_CONTRACT_HZ, bench.clock.us)
    bench.run_to(4_000_000)
    rest, rest_ok = bench.envelope(1_500_000, 2_000_000)
    held, held_ok = bench.envelope(3_000_000, 4_000_000)
    assert rest_ok and held_ok
    assert held > 4 * rest, (held, rest)


@pytest.mark.req("SIM-ARTEFACT-1")
def test_above_motor_threshold_the_evoked_response_is_in_the_emg(tmp_path):
    envs = []
    for ua in (15000, 40000):
        bench = Bench(tmp_path / str(ua))
        bench.run_to(1_000_000)
        bench.train(ua)
        bench.run_to(3_000_000)
        envs.append(bench.envelope(2_000_000, 3_000_000))
    (below, ok_below), (above, ok_above) = envs
    assert ok_below and ok_above
    assert above > below + 2  # the M-wave is the muscle's answer, not an artefact: it is not blanked
