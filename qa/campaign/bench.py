"""A simulated board with a clinician's protocol approved, driven the way a patient and a host would."""

from pathlib import Path

from firmware import hal as H
from host import therapy_file
from host.client import Client
from host.simclinic import approve_on
from host.transport import Port
from protocol import codec, framing, record
from protocol import messages as m
from sim.runner import TICK_MS, Simulator
from sim.urlhandler.protocol_sim import Serial

PROTOCOL_DIR = Path(__file__).resolve().parents[2] / "examples" / "protocols"
HW_MAX_UA = 100000  # sim/board.py: the simulated board's ceiling
_ATTEMPT_EVERY_MS = 10000  # the ETS patient's own contractions
_ATTEMPT_HOLD_MS = 2000


class Bench:
    """One simulator with a stimulation protocol approved and a device policy provisioned."""

    def __init__(
        self,
        protocol,
        seed=0,
        patient="healthy",
        policy_ua=40000,
        flash_dir=None,
        scenario=None,
        pass_cost=None,
    ):
        self.path = PROTOCOL_DIR / protocol if not Path(protocol).is_absolute() else Path(protocol)
        doc, problems = therapy_file.load(self.path)
        if problems:
            raise ValueError(f"{self.path}: {problems}")
        self.doc = doc
        self.stim_phase = next(p for p in doc["phases"] if p["type"] in ("stimulation", "ets"))
        self.ets = self.stim_phase["type"] == "ets"
        self.limit_ua = min(
            HW_MAX_UA, policy_ua, doc["limits"]["amplitude_max_ua"], self.stim_phase["amplitude_max_ua"]
        )
        self.period_us = 1_000_000 // self.stim_phase["frequency_hz"]
        self.pulse_us = 2 * self.stim_phase["pulse_width_us"] + self.stim_phase["interphase_gap_us"]
        self.duration_ms = sum(phase_ms(p) for p in doc["phases"])
        self.sim = Simulator(
            seed=seed, patient=patient, flash_dir=flash_dir, scenario=scenario, pass_cost=pass_cost
        )
        self.rig = self.sim.rig
        self.out = self.sim.board.output
        self.sim.board.flash.write("policy", record.pack({"amplitude_max_ua": policy_ua}))
        approve_on(self.sim, self.path)  # power-cycles: the policy is read at that boot
        self.client: Client | None = None
        self.heartbeat_ms = 0
        self._ping_us = 0  # the host pings this often (0: it does not)
        self.link_up = True
        self._last_ping_us = 0
        self._pings = 0
        self._attempts_from_us = None

    # -- the host -------------------------------------------------------------

    def connect(self):
        """A host on the link (a new HELLO); the client is kept in self.client."""
        self.client = Client(Port(Serial.attached(self.sim), "sim://attached"), timeout=1.0)
        return self.client

    def host(self):
        """The host on the link, connected now if none is."""
        return self.client or self.connect()

    def start(self, heartbeat_ms=0):
        """Start the approved session: over the link with a heartbeat, else with the button."""
        self.heartbeat_ms = heartbeat_ms
        if heartbeat_ms:
            r = self.host().session_start(heartbeat_ms=heartbeat_ms, keep_alive=False)
            self.keep_talking(heartbeat_ms / 3)
            return r
        self.rig.press_button(H.BTN_START)
        self.run_for(TICK_MS)
        return None

    def keep_talking(self, every_ms):
        """The host pings every every_ms from now, until stop_talking() or a cut link: a host-driven
        session's heartbeat, or a host that set the level and keeps it (SAF-LEVEL-1)."""
        self._ping_us = int(every_ms * 1000)
        self._last_ping_us = self.sim.clock.us

    def stop_talking(self):
        self._ping_us = 0

    def cut_link(self):
        self.rig.disconnect_host()
        self.link_up = False

    # -- time -----------------------------------------------------------------

    @property
    def us(self):
        return self.sim.clock.us

    def run_for(self, ms):
        self.run_to(self.us + round(ms * 1000))

    def run_to(self, t_us):
        """Run to t_us, keeping the heartbeat and the ETS patient's attempts going."""
        sim = self.sim
        while sim.clock.us < t_us:
            nxt = t_us
            if self._ping_us and self.link_up:
                nxt = min(nxt, self._last_ping_us + self._ping_us)
            sim.run_for((max(nxt, sim.clock.us + 1) - sim.clock.us) / 1000)
            self._drain()
            self._attempt()
            if self._ping_us and self.link_up and sim.clock.us >= self._last_ping_us + self._ping_us:
                self._ping()

    def _ping(self):
        # sent and not awaited, as the host client's own heartbeat: a device that
        # hangs or resets must not stall the bench
        self._last_ping_us = self.sim.clock.us
        self._pings += 1
        msg = m.build(m.REQUEST, 0xFF00 + self._pings % 0xFF, m.PING)
        self.host().send_raw(framing.encode(codec.dumps(msg)))

    def _drain(self):
        # the device drops what does not fit its transmit buffer, and the
        # simulator only records what was sent: keep reading like a host
        if self.client is None:
            self.sim.host_read(-1)
        else:
            while self.sim.host_pending():
                self.client.poll(0)

    def run_until(self, predicate, timeout_ms, step_ms=TICK_MS):
        end = self.us + timeout_ms * 1000
        while not predicate():
            if self.us >= end:
                return False
            self.run_for(step_ms)
        return True

    # -- the patient -------------------------------------------------------------

    def attempts(self, on=True):
        """The ETS patient contracts on her own every _ATTEMPT_EVERY_MS (from now), or stops."""
        self._attempts_from_us = self.us if on else None

    def _attempt(self):
        start = self._attempts_from_us
        if start is None or self.us < start:
            return
        # the therapist beside her asks for a squeeze and a let-go
        self.rig.patient_contract(_ATTEMPT_HOLD_MS / 1000)
        self._attempts_from_us = self.us + _ATTEMPT_EVERY_MS * 1000

    def set_level(self, ua):
        """The patient's level: over the link when a host drives, else BTN_UP presses until reached."""
        if self.heartbeat_ms:
            return self.host().stim_level(ua)
        for _ in range(200):
            if self.stim_level() >= ua:
                break
            self.rig.press_button(H.BTN_UP)
            self.run_for(TICK_MS)
        return None

    # -- what the device said and did ----------------------------------------------

    def events(self, mtype, since_us=0):
        return [(t, f) for t, ty, f in self.sim.device_events if ty == mtype and t >= since_us]

    def stim_states(self, since_us=0):
        return [(t, f["state"]) for t, f in self.events(m.STIM, since_us)]

    def stim_level(self):
        got = [f["level_ua"] for _t, f in self.events(m.STIM)]
        ctrl = self.sim.ctrl
        return ctrl.stim.level_ua if ctrl is not None else (got[-1] if got else 0)

    def wait_stim(self, state, timeout_ms, since_us=0):
        """Run until the stimulator reported `state` (after since_us); its time, or None."""
        found: list[int] = []

        def seen():
            found[:] = [t for t, s in self.stim_states(since_us) if s == state]
            return bool(found)

        return found[0] if self.run_until(seen, timeout_ms) else None

    def off_after(self, t_us):
        """The first instant at or after t_us the output enable went (or was) off."""
        on = False
        for t, state in self.out.changes:
            if t <= t_us:
                on = state
            elif not state:
                return t
        return None if on else t_us

    def pulses(self, since_us=0):
        return [p for p in self.rig.pulses() if p.t_us >= since_us]

    def faults_after(self, t_us):
        return [(t, f["code"]) for t, f in self.events(m.FAULT, t_us)]

    def running_spans(self):
        """[start, end) of every RUNNING stretch, in simulator µs (a reboot ends one)."""
        spans = []
        start = None
        marks = [(t, "e", f) for t, f in self.events(m.STATE_CHANGED)] + [
            (t, "b", None) for t, _c in self.sim.boots
        ]
        for t, kind, f in sorted(marks, key=lambda x: (x[0], x[1] == "e")):
            if (kind == "b" or f["from_state"] == m.RUNNING) and start is not None:
                spans.append((start, t))
                start = None
            if kind == "e" and f["to_state"] == m.RUNNING:
                start = t
        if start is not None:
            spans.append((start, None))
        return spans

    def close(self):
        if self.client is not None:
            self.client.close()
        self.sim.close()


def phase_ms(p):
    from protocol.therapy import phase_seconds

    return phase_seconds(p) * 1000
