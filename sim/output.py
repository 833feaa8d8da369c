"""The stimulation output stage: dynamic enable, pulse engine, tissue load, current sense.

What the board's PIO, H-bridge, current source and sense ADC do, in
simulated time, so an interlock test can measure what reached the patient:

- The enable is dynamic: out_enable(True) arms it, and it holds only while
  keepalive() comes at least every OUT_HOLD_MIN_MS (the shortest hold the
  board's parts give: the strictest test of the firmware); a lapse drops it by itself
  (a charge pump that stops being pumped) and stays dropped until the next
  explicit enable. Off stops the pulse train and cuts a pulse in progress:
  a stale amplitude never resumes on its own.
- The pulse engine emits symmetric biphasic constant-current pulses while
  started and enabled (a second-phase fault makes them asymmetric); pulse k
  starts exactly at start + k * 1e6 / f µs (floored to the µs, never
  drifting). Amplitude and timing latch at a pulse's start, like a PIO
  descriptor.
- The load is the electrode-tissue interface as a Randles cell: series
  (spreading) resistance Rs, then the double-layer capacitance Cdl in
  parallel with the charge-transfer resistance Rct. The source holds its
  current while the voltage needed stays under COMPLIANCE_V and then becomes
  a voltage source, so its current decays; into an open electrode it
  collapses to ~0 with the voltage at compliance. Between phases and pulses
  both legs are grounded, so Cdl discharges through Rs || Rct.
- Each pulse is solved in closed form (the circuit is linear per segment),
  so a 30-minute train costs ~100 k small evaluations, not µs steps.
- The board's dummy load (a plain resistor behind a changeover relay) can
  take the electrodes' place: its pulses are sensed like any other but
  reach no patient, so they go to dummy_trace, not trace. A reset releases
  the relay.

Time only moves forward through sync(t_us); every method that changes the
stage takes the current instant and syncs first, so the state is the same
whether the runner syncs every tick or a probe looks an hour later. Load and
fault setters take no time: the caller syncs first (the rig does).

Defaults for an intravaginal probe (two stainless plates of ~6.75 cm²,
protocol/electrode.py): Rs 500 ohm, within the 300-1000 ohm reported for
mucosal electrodes; Cdl 20 µF for the two interfaces in series (metal
double layers are ~10-40 µF/cm², only part of a plate is in contact);
Rct 5 kohm (stainless steel is a poor Faradaic electrode at small
overpotentials). Merrill, Bikson & Jefferys, J Neurosci Methods 141:171
(2005) describe the model.
"""

import math
from collections import deque
from typing import NamedTuple

from firmware import hal as H

COMPLIANCE_V = 60.0  # 100 mA into 600 ohm
DEFAULT_RS_OHMS = 500.0
DEFAULT_CDL_UF = 20.0
DEFAULT_RCT_OHMS = 5000.0
OPEN_OHMS = 1e9  # a probe out of the body or a broken lead
SHORT_OHMS = 0.1  # leads touching: the tissue is bypassed
HISTORY = 10000
_HOLD_US = H.OUT_HOLD_MIN_MS * 1000


class Pulse(NamedTuple):
    """One pulse as it happened (true values, not what the sense reads)."""

    t_us: int  # start of the first phase
    set_ua: int  # amplitude commanded
    ua1: float  # mean current of the first phase, µA
    ua2: float  # mean current of the second phase, µA (0 if cut before it)
    mv: float  # electrode voltage at the end of the first phase (or at the cut), mV
    q1_nc: float  # charge of the first phase, nC
    q2_nc: float  # charge of the second phase, nC
    net_nc: float  # q1 - q2: what stays in the tissue
    cut: bool  # the enable dropped during the pulse
    phase_us: int  # timing as latched; the EMG front end draws the pulse's artefact from it
    gap_us: int
    end_us: int  # end of the second phase, or the cut


def _number(name, v, above=None):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ValueError(f"{name} must be a finite number, not {v!r}")
    if above is not None and v <= above:
        raise ValueError(f"{name} must be > {above}, not {v!r}")
    return float(v)


def _int(name, v, low, high=None):
    if isinstance(v, bool) or not isinstance(v, int) or v < low or (high is not None and v > high):
        bound = f">= {low}" if high is None else f"in {low}..{high}"
        raise ValueError(f"{name} must be an integer {bound}, not {v!r}")
    return v


class OutputStage:
    def __init__(self, hw_max_ua):
        self.hw_max_ua = hw_max_ua
        self.enabled = False
        self.changes: deque[tuple[int, bool]] = deque(maxlen=HISTORY)  # every edge of the enable
        self.lapses: deque[int] = deque(maxlen=HISTORY)  # t_us of drops because keepalive() stopped
        self.trace: deque[Pulse] = deque(maxlen=HISTORY)  # oldest first
        self.emitted = 0  # pulses that reached the load, cut ones included, ever
        self.dummy_trace: deque[Pulse] = deque(maxlen=HISTORY)  # into the dummy load, oldest first
        # (t_us, ohms or None), every switch of the relay
        self.dummy_changes: deque[tuple[int, float | None]] = deque(maxlen=HISTORY)
        self._dummy_ohms: float | None = None  # the dummy load's resistance while it is switched in
        self._hold_until = 0
        # timing: (frequency_hz, phase_us, gap_us) or None before stim_configure
        self._timing: tuple[int, int, int] | None = None
        self._amp_ua = 0
        self._running = False
        self._stopping = False  # stop once the pulse in progress completes
        self._start_us = 0
        self._k = 0  # index of the next pulse not yet latched
        self._pending = None  # (t_us, set_ua, phase_us, gap_us): latched, not yet complete
        self._count = 0  # pulses completed since start()
        self._sense = [0, 0, 0, 0]  # SENSE_* of the last completed pulse, as the ADCs read it
        self.sensed_us = 0  # start of that pulse (the board turns it into SENSE_INDEX)
        # load: Randles cell; cdl 0 means a plain resistor Rs
        self._rs = DEFAULT_RS_OHMS
        self._cdl = DEFAULT_CDL_UF * 1e-6
        self._rct = DEFAULT_RCT_OHMS
        self._x = 0.0  # volts on Cdl, in the first phase's polarity
        self._x_us = 0  # when _x was last brought up to date
        # faults
        self._gain = 1.0  # delivered / commanded current
        self._gain2 = 1.0  # second phase / first phase, as delivered
        self.stalled = False
        self._stuck_ua = None
        self._drift = 0.0  # sense gain error growth, per µs
        self._drift_from_us = 0

    # -- time ---------------------------------------------------------------

    def sync(self, t_us):
        """Bring the stage up to t_us: emit the pulses due, drop a lapsed enable at its instant."""
        if self.enabled and self._hold_until <= t_us:
            self._pulses_until(self._hold_until)
            self.lapses.append(self._hold_until)
            self._disable(self._hold_until)
        self._pulses_until(t_us)

    # -- enable ---------------------------------------------------------------

    def set_enabled(self, on, t_us):
        self.sync(t_us)
        on = bool(on)
        if on == self.enabled:
            return  # re-asserting a static level pumps nothing: only keepalive() holds it
        if on:
            self.enabled = True
            self._hold_until = t_us + _HOLD_US
            self.changes.append((t_us, True))
        else:
            self._disable(t_us)

    def keepalive(self, t_us):
        self.sync(t_us)
        if self.enabled:
            self._hold_until = t_us + _HOLD_US

    def _disable(self, t_us):
        self._cut(t_us)
        self._running = False
        self._stopping = False
        self.enabled = False
        self.changes.append((t_us, False))

    # -- pulse engine -----------------------------------------------------------

    def configure(self, frequency_hz, phase_us, gap_us, t_us):
        f = _int("frequency_hz", frequency_hz, 1)
        ph = _int("phase_us", phase_us, 1)
        gap = _int("gap_us", gap_us, 0)
        if (2 * ph + gap) * f > 1_000_000:
            raise ValueError(f"two {ph} µs phases and a {gap} µs gap do not fit in a period at {f} Hz")
        self.stop(t_us)
        self._timing = (f, ph, gap)

    def start(self, t_us):
        self.sync(t_us)
        if self._timing is None:
            raise RuntimeError("stim_start before stim_configure")
        if self._running and not self._stopping:
            return
        p = self._pending
        self._start_us = t_us if p is None else max(t_us, p[0] + 2 * p[2] + p[3])
        self._k = 0
        self._count = 0
        self._sense[:] = (0, 0, 0, 0)  # no pulse of this train yet
        self._running = True
        self._stopping = False

    def stop(self, t_us):
        self.sync(t_us)
        if self._pending is None:
            self._running = False
        else:
            self._stopping = True

    def set_amplitude(self, ua, t_us):
        self.sync(t_us)
        ua = _int("amplitude", ua, 0, self.hw_max_ua)
        if ua % 100:
            raise ValueError(f"amplitude must be a multiple of 100 µA, not {ua}")
        self._amp_ua = ua

    def sense(self, out, t_us):
        """What the sense ADCs read for the last completed pulse, into out[SENSE_*]."""
        self.sync(t_us)
        for i in range(4):
            out[i] = self._sense[i]

    def in_progress_us(self):
        """Start of the pulse under way (latched, not complete), or None: its effect is not known yet."""
        return None if self._pending is None else self._pending[0]

    def reset(self, t_us):
        """Chip reset: enable pulled down, PIO program gone, amplitude register cleared."""
        self.sync(t_us)
        if self.enabled:
            self._disable(t_us)  # which cuts a pulse in progress
        self._running = False
        self._stopping = False
        self._timing = None
        self._amp_ua = 0
        self._count = 0
        self._sense[:] = (0, 0, 0, 0)
        self.set_dummy(None, t_us)

    @property
    def dummy_ohms(self):
        """The dummy load switched in place of the electrodes, or None."""
        return self._dummy_ohms

    def set_dummy(self, ohms, t_us):
        """Switch the dummy load of `ohms` in place of the electrodes, or back (None)."""
        self.sync(t_us)
        if ohms is not None:
            ohms = _number("dummy load", ohms, 0)
        if ohms != self._dummy_ohms:
            self._dummy_ohms = ohms
            self.dummy_changes.append((t_us, ohms))

    def _pulses_until(self, t_us):
        """Latch pulses that start before t_us, complete those that end by it."""
        timing = self._timing
        while self._running and timing is not None:  # start() runs nothing without a timing
            p = self._pending
            if p is None:
                if self._stopping:
                    self._running = False
                    return
                f, ph, gap = timing
                ts = self._start_us + self._k * 1_000_000 // f
                if ts >= t_us:
                    return
                if not self.enabled or self.stalled:
                    # the grid runs on but nothing comes out: skip every start before t_us
                    d = t_us - self._start_us
                    self._k = max(self._k + 1, -(-d * f // 1_000_000))
                    continue
                p = self._pending = (ts, self._amp_ua, ph, gap)
                self._k += 1
            ts, ua, ph, gap = p
            if ts + 2 * ph + gap > t_us:
                return
            self._pending = None
            self._emit(ts, ua, ph, gap, None)

    def _cut(self, t_us):
        p = self._pending
        if p is not None:
            self._pending = None
            self._emit(p[0], p[1], p[2], p[3], t_us)

    # -- what a pulse does to the load -------------------------------------------

    def _emit(self, ts, set_ua, ph, gap, cut_us):
        """Solve one pulse (cut at cut_us if not None) and record it."""
        end = ts + 2 * ph + gap if cut_us is None else cut_us
        d1 = min(end - ts, ph)
        dg = min(max(end - ts - ph, 0), gap)
        d2 = min(max(end - ts - ph - gap, 0), ph)
        amps = min(set_ua * self._gain, self.hw_max_ua) * 1e-6
        amps2 = min(set_ua * self._gain * self._gain2, self.hw_max_ua) * 1e-6
        dummy = self._dummy_ohms
        if dummy is not None:
            # the source into a resistor: its current, capped by compliance
            i = min(amps, COMPLIANCE_V / dummy)
            q1, q2, volts = i * d1 * 1e-6, min(amps2, COMPLIANCE_V / dummy) * d2 * 1e-6, i * dummy
        else:
            q1, q2, volts = self._into_electrode(amps, amps2, ts, d1, dg, d2)
        ua1 = q1 / (d1 * 1e-6) * 1e6
        ua2 = q2 / (d2 * 1e-6) * 1e6 if d2 else 0.0
        mv = abs(volts) * 1000
        pulse = Pulse(
            ts, set_ua, ua1, ua2, mv, q1 * 1e9, q2 * 1e9, (q1 - q2) * 1e9, cut_us is not None, ph, gap, end
        )
        if dummy is not None:
            self.dummy_trace.append(pulse)
        else:
            self.trace.append(pulse)
            self.emitted += 1
        if cut_us is None:
            self._count += 1
            self.sensed_us = ts
            s = self._sense
            s[H.SENSE_PULSES] = self._count
            s[H.SENSE_UA] = self._read_ua(ua1, ts)
            s[H.SENSE_UA_2] = self._read_ua(ua2, ts)
            s[H.SENSE_MV] = round(mv)

    def _into_electrode(self, amps, amps2, ts, d1, dg, d2):
        """One pulse into the electrode-tissue load: (each phase's charge C, the first's end voltage V)."""
        self._idle(ts)
        q1, x, i_end = self._phase(amps, self._x, d1 * 1e-6)
        volts = i_end * self._rs + x
        self._x = x
        self._x_us = ts + d1
        self._idle(ts + d1 + dg)
        q2 = 0.0
        if d2:
            q2, x, _i = self._phase(amps2, -self._x, d2 * 1e-6)
            self._x = -x
        self._x_us = ts + d1 + dg + d2
        return q1, q2, volts

    def _idle(self, t_us):
        """Cdl discharges through Rs || Rct while both legs are grounded, up to t_us."""
        dt = t_us - self._x_us
        if dt > 0 and self._x:
            if self._cdl:
                tau = self._cdl * self._rs * self._rct / (self._rs + self._rct)
                self._x *= math.exp(-dt * 1e-6 / tau)
            else:
                self._x = 0.0
        self._x_us = t_us

    def _phase(self, amps, x, dur):
        """Drive `amps` for `dur` s with x volts on Cdl (in the drive's polarity).

        Returns (charge C, x at the end, current at the end). The source is
        either constant-current (CC) or, once the voltage it needs reaches
        compliance, a COMPLIANCE_V voltage source (CV); x moves monotonically
        in each, so a phase has at most one CC/CV switch.
        """
        rs, cdl, rct, vc = self._rs, self._cdl, self._rct, COMPLIANCE_V
        if not cdl:
            i = min(amps, vc / rs)
            return i * dur, 0.0, i
        xb = vc - amps * rs  # above this, CC needs more than compliance
        q = 0.0
        cc = x <= xb
        while True:
            if cc:  # x -> amps * Rct
                a = amps * rct
                tau = rct * cdl
                t = dur if a <= xb else min(dur, tau * math.log((a - x) / (a - xb)))
                q += amps * t
                x = a + (x - a) * math.exp(-t / tau)
                i = amps
            else:  # x -> b, current (vc - x) / Rs
                b = vc * rct / (rs + rct)
                tau = cdl * rs * rct / (rs + rct)
                t = dur if b >= xb else min(dur, tau * math.log((x - b) / (xb - b)))
                e = math.exp(-t / tau)
                q += (vc * t - (b * t + (x - b) * tau * (1 - e))) / rs
                x = b + (x - b) * e
                i = (vc - x) / rs
            dur -= t
            if dur <= 0:
                return q, x, i
            x = xb  # the switch happens exactly at the boundary, once: the other mode's target is past it
            cc = not cc

    # -- sense ------------------------------------------------------------------------

    def _read_ua(self, true_ua, t_us):
        """The current ADC's reading of a pulse at t_us (faults applied as it is taken)."""
        if self._stuck_ua is not None:
            return self._stuck_ua
        gain = 1.0 + self._drift * max(t_us - self._drift_from_us, 0)
        return max(0, round(true_ua * gain))

    # -- load (the caller syncs first) ----------------------------------------------

    @property
    def load_ohms(self):
        """The series resistance: what the source sees at a phase's leading edge."""
        return self._rs

    def set_load(self, ohms):
        """A plain resistor instead of the electrode (a bench dummy load, an open or short lead)."""
        self._rs = _number("load", ohms, 0)
        self._cdl = 0.0
        self._x = 0.0

    def set_electrode(self, rs_ohms=DEFAULT_RS_OHMS, cdl_uf=DEFAULT_CDL_UF, rct_ohms=DEFAULT_RCT_OHMS):
        """The Randles electrode-tissue load (the defaults: a probe in place)."""
        rs = _number("rs_ohms", rs_ohms, 0)
        cdl = _number("cdl_uf", cdl_uf, 0)
        rct = _number("rct_ohms", rct_ohms, 0)
        self._rs, self._cdl, self._rct = rs, cdl * 1e-6, rct
        self._x = 0.0

    def current_ua(self, set_ua):
        """Leading-edge current into a discharged load: 0 when disabled, capped by hardware and compliance."""
        if not self.enabled:
            return 0
        compliance_ua = COMPLIANCE_V / self._rs * 1e6
        return int(min(set_ua * self._gain, self.hw_max_ua, compliance_ua))

    # -- faults (the caller syncs first) ------------------------------------------------

    def set_current_error(self, percent):
        """The source delivers `percent` more than commanded (negative: less); 0 heals it."""
        self._gain = 1.0 + _number("percent", percent, -100) / 100

    def set_phase2_error(self, percent):
        """The second phase delivers `percent` more than the first (negative: less); 0 heals it.

        The first phase stays as the source delivers it, so the pulse leaves a
        net charge in the tissue: an H-bridge leg or a recharge path gone bad.
        """
        self._gain2 = 1.0 + _number("percent", percent, -100) / 100

    def set_sense_stuck(self, ua):
        """Both current readings return ua whatever flows; None heals it."""
        self._stuck_ua = None if ua is None else _int("stuck reading", ua, 0)

    def set_sense_drift(self, percent_per_min, t_us):
        """The current-sense gain error grows by percent_per_min from t_us on; 0 heals it."""
        self._drift = _number("drift", percent_per_min) / 100 / 60e6
        self._drift_from_us = t_us

    def set_stalled(self, on):
        """The pulse generator stalls: started, enabled, and no pulse comes out."""
        self.stalled = bool(on)
