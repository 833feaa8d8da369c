"""Simulator: the real firmware on a SimBoard, in simulated time.

Time moves only here. Each tick (5 ms) the simulator runs the scenario
events and watchdog expiries that fall before it at their exact instants,
converts the EMG due by then, and calls the firmware's step() once. Events
at 0 ms run before the power-on boot, so a scenario can set up the bench
(e-stop open, lead off, a power cut at the first write) before the firmware
starts. The firmware is the real firmware/ package; nothing here knows its
internals beyond the entry points in docs/architecture.md.

The simulated patient follows the device the way a patient at home does: by
its own indicators. She hears every change of the device's buzzer (cue
tones, biofeedback tones, silence: sim/patient.py says what each means),
with or without a host on the link. Frames the device writes are decoded
too, and its events kept in device_events for tests.

An exception escaping step() is a crash: the loop stops, nothing feeds the
watchdog, and the watchdog resets the board. A power cut (injected at a
storage write) is a power cycle. Either way the same storage comes back and
a new Controller boots with the output disabled.
"""

import logging
import os
import tempfile
from collections import deque
from typing import Any

from firmware import hal as H
from firmware.controller import Controller
from firmware.maintenance import take_marker
from protocol import codec, framing
from protocol import messages as m
from protocol.errors import ProtocolError
from sim import scenario as scn
from sim.board import BoardReset, SimBoard, serial_for_seed
from sim.clock import Clock
from sim.emg_model import EmgModel
from sim.flash import Flash, PowerLoss
from sim.frontend import EmgFrontEnd
from sim.output import OutputStage
from sim.passcost import INTERRUPTS, CostedHal, PassCost
from sim.patient import Patient
from sim.rig import Rig

log = logging.getLogger("tonus.sim")

TICK_MS = 5
HISTORY = 10000
# The first two bytes of every stream frame's payload, [4, ...]: the
# patient watches cues, not samples, so stream frames are not decoded.
_STREAM_HEAD = bytes((0x84, m.STREAM))


class Simulator:
    tick_ms = TICK_MS

    def __init__(self, seed=0, patient="healthy", scenario=None, flash_dir=None, speed=0, pass_cost=None):
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be an integer >= 0, not {seed!r}")
        self.seed = seed
        self.clock = Clock(speed)
        rate = SimBoard.emg_rate_hz
        self.patient = Patient(patient, seed, rate)
        model = EmgModel(self.patient, seed, rate)
        if isinstance(scenario, (str, os.PathLike)):
            events = scn.load(scenario)
        else:
            events = sorted(scenario or (), key=_at)
        self._tmp = None
        if flash_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="tonus-sim-flash-")
            flash_dir = self._tmp.name
        self.board = SimBoard(
            self.clock,
            EmgFrontEnd(model, rate),
            Flash(flash_dir),
            OutputStage(SimBoard.hw_max_ua),
            serial_for_seed(seed),
        )
        self.rig = Rig(self)
        # a board profile (sim/passcost.py): passes take time, the heap fills, interrupts land inside passes
        self.pass_cost = PassCost(pass_cost, seed) if isinstance(pass_cost, str) else pass_cost
        self._hal = (
            self.board if self.pass_cost is None else CostedHal(self.board, self.pass_cost, self._in_pass)
        )
        self._next_pass_us = None  # when passes cost time: when the next one starts
        self._events = deque(events)
        self._decoder = framing.Decoder()
        self._between_frames = True  # the decoder holds no part of a frame
        self._heard = 0  # buzzer tone changes the patient has heard
        # (t_us, type, fields by name): EVENT frames sent
        self.device_events: deque[tuple[int, int, dict[str, Any]]] = deque(maxlen=HISTORY)
        self.bad_frames = 0  # frames from the device that did not parse: a firmware bug
        self.boots = []  # (t_us, reset cause)
        self.crash = None  # the exception that escaped step(), until the next boot
        self._hung = False
        self.maintenance_boot = False  # the last boot found the maintenance marker: no application
        self.ctrl: Controller | None = None
        self._timers_until(0)  # events at 0 ms set the bench up before power-on
        if self.ctrl is None:  # unless one of them already powered the board up
            self._boot(H.RESET_POWER_ON)
        self.clock.anchor()  # setting up took wall time that simulated time need not catch up

    # -- time -----------------------------------------------------------------

    @property
    def now_ms(self):
        """Simulated time since the simulator started (the board's uptime restarts at each boot)."""
        return self.clock.us // 1000

    @property
    def next_tick_us(self):
        tick = self.tick_ms * 1000
        return (self.clock.us // tick + 1) * tick

    def run_for(self, ms):
        if ms < 0:
            raise ValueError("cannot run for a negative time")
        self._advance_to(self.clock.us + round(ms * 1000))

    def run_until(self, predicate, timeout_ms):
        """Run tick by tick until predicate() is true (True) or timeout_ms passed (False)."""
        end = self.clock.us + round(timeout_ms * 1000)
        while not predicate():
            if self.clock.us >= end:
                return False
            self._advance_to(min(self.next_tick_us, end))
        return True

    def advance_until_output(self, max_ms):
        """Run until the device has output for the host, or max_ms passed; True if it has."""
        return self.run_until(self._output_pending, max_ms)

    def schedule(self, event):
        """Add a scenario event (sim.scenario.event) still to come, in time order."""
        if event.at_ms * 1000 < self.clock.us:
            raise ValueError(f"event at {event.at_ms} ms is in the past (now {self.clock.us} us)")
        events = sorted((*self._events, event), key=_at)
        self._events = deque(events)

    def _output_pending(self):
        return self.board.host_pending() > 0

    def catch_up(self):
        """A paced simulator runs up to the instant the wall clock has reached."""
        if self.clock.speed:
            due = self.clock.due_us()
            if due > self.clock.us:
                self._advance_to(due)

    def _advance_to(self, target_us):
        tick = self.tick_ms * 1000
        while self.clock.us < target_us:
            boundary = (self.clock.us // tick + 1) * tick
            if self._next_pass_us is not None and self._next_pass_us >= self.clock.us:
                # passes that cost time set their own pace
                boundary = self._next_pass_us
            end = min(boundary, target_us)
            self.clock.pace(end)
            self._timers_until(end)
            self._move(end)
            if end == boundary:
                self._step()

    def _timers_until(self, end_us):
        """Scenario events and watchdog expiry up to end_us, each at its own instant, in order."""
        board = self.board
        while True:
            t_event = self._events[0].at_ms * 1000 if self._events else None
            t_wdt = board.wdt_deadline_us
            if t_event is not None and t_event <= end_us and (t_wdt is None or t_event <= t_wdt):
                self._move(t_event)
                self.rig.apply(self._events.popleft())
            elif t_wdt is not None and t_wdt <= end_us:
                self._move(t_wdt)
                log.warning("watchdog reset at %d ms", self.now_ms)
                self._boot(H.RESET_WATCHDOG)
            else:
                return

    def _in_pass(self, end_us, held):
        """Time moves inside a pass to end_us: interrupts due land at their instant, or all at end_us
        if the board holds them off (a flash write); other events wait for the pass to end."""
        events = self._events
        while events and events[0].at_ms * 1000 <= end_us and events[0].action in INTERRUPTS:
            if not held:
                self._move(events[0].at_ms * 1000)
            else:
                self._move(end_us)
            self.rig.apply(events.popleft())
        self._move(end_us)

    def _move(self, us):
        if us > self.clock.us:
            self.clock.advance_to(us)
        self.board.frontend.sync(self.clock.us)
        self.board.output.sync(self.clock.us)

    # -- the firmware -----------------------------------------------------------

    @property
    def firmware_running(self):
        """The firmware's loop runs: booted, not crashed, not hung."""
        return self.ctrl is not None and self.crash is None and not self._hung

    def _boot(self, cause):
        while True:
            self.boots.append((self.clock.us, cause))
            log.info("boot at %d ms, reset cause %d", self.now_ms, cause)
            self.crash = None
            self._hung = False
            self.ctrl = None
            self.board.hardware_reset(cause)
            # main.py on the board: a maintenance marker means a bare REPL, no application
            self.maintenance_boot = take_marker(self.board)
            if self.maintenance_boot:
                log.info("maintenance boot: the application does not start")
                return
            try:
                ctrl = Controller(self._hal)
                self.ctrl = ctrl
                ctrl.boot()
            except PowerLoss:
                pass
            except Exception as e:  # noqa: BLE001 - a firmware bug, kept as a crash
                self._crashed(e)
            self._observe()
            if not self.board.flash.take_power_cut():
                return
            cause = H.RESET_POWER_ON

    def _step(self):
        self._next_pass_us = None
        ctrl = self.ctrl
        if ctrl is None or not self.firmware_running:
            return
        cost = self.pass_cost
        t0 = self.clock.us
        if cost is not None:
            cost.begin(t0)
        try:
            ctrl.step()
        except PowerLoss:
            pass
        except BoardReset:
            self._boot(H.RESET_REQUESTED)
            return
        except Exception as e:  # noqa: BLE001 - a firmware bug, kept as a crash
            self._crashed(e)
        if cost is not None:
            # the next pass starts when this one ends, and not before a tick has passed
            self._in_pass(self.clock.us + cost.end(self.clock.us), False)
            self._next_pass_us = max(t0 + self.tick_ms * 1000, self.clock.us)
        self._observe()
        self._listen()
        if self.board.flash.take_power_cut():
            log.warning("power cut at %d ms", self.now_ms)
            self._boot(H.RESET_POWER_ON)

    def _crashed(self, e):
        self.crash = e
        log.error("firmware crashed at %d ms; the watchdog will reset it", self.now_ms, exc_info=e)

    def _observe(self):
        for chunk in self.board.take_written():
            # a whole stream frame, recognised by its first payload bytes (COBS keeps
            # them in place: neither is zero), is not decoded at all
            if self._between_frames and chunk[1:3] == _STREAM_HEAD and chunk.find(0) == len(chunk) - 1:
                continue
            self._between_frames = chunk[-1:] == b"\x00"
            for payload in self._decoder.feed(chunk):
                self._device_said(payload)

    def _device_said(self, payload):
        try:
            kind, _seq, mtype, body = m.parse(codec.loads(payload, framing.MAX_PAYLOAD))
        except ProtocolError as e:
            self.bad_frames += 1
            log.error("the device sent an invalid frame (%s): %s", e.name, payload.hex())
            return
        if kind != m.EVENT:
            return
        t = self.clock.us
        self.device_events.append((t, mtype, m.named(kind, mtype, body)))

    def _listen(self):
        """The patient hears every change of the buzzer since the last tick, silence included."""
        board = self.board
        new = board.tone_count - self._heard
        self._heard = board.tone_count
        if new <= 0:
            return
        changes = board.tone_changes
        for i in range(max(len(changes) - new, 0), len(changes)):
            t, hz = changes[i]
            self.patient.hear(hz, t)

    def reset(self, cause=H.RESET_REQUESTED):
        self._boot(cause)

    def power_cycle(self):
        self._boot(H.RESET_POWER_ON)

    def hang(self):
        if self.ctrl is None:
            raise ValueError("no firmware runs before power-on")
        self._hung = True

    # -- the host's end of the link ---------------------------------------------

    def host_write(self, data):
        """Bytes of data the device's receive ring took (it holds RX_RING at most)."""
        return self.board.host_write(bytes(data))

    def host_room(self):
        return self.board.host_room()

    def host_read(self, max_bytes=-1):
        return self.board.host_read(max_bytes)

    def host_pending(self):
        return self.board.host_pending()

    # -- lifetime -----------------------------------------------------------------

    def close(self):
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _at(e):
    return e.at_ms
