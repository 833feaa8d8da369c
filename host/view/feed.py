"""The link thread of `tonus view`: the one owner of the client.

It reads the device all the time (which also sends the heartbeat that keeps
a host-driven session alive), writes every item to the recording first,
then hands a message to the hub for the pages. Commands from the pages are
queued and run here, between two reads, so the client is never used from
two threads; an emergency stop goes before anything else in the queue.
"""

import queue
import threading
import time

from firmware.patient_io import TONE_FEEDBACK_MAX_HZ, TONE_FEEDBACK_MIN_HZ
from firmware.stim import next_level
from host.client import ACTIVE_STATES, DeviceRefused, EmgFrame
from host.errors import TonusError
from host.recording import Marker
from host.transport import LinkError
from host.view.state import ViewState, dumps

TICK_S = 0.02  # longest wait for the device before queued commands run
MARKER_MAX = 200  # characters in a marker's note
_END_WAIT_S = 3.0


class Feed:
    def __init__(self, client, hub, recorder=None, plan=None, heartbeat_ms=1000, demo_s=None):
        self.client = client
        self.hub = hub
        self.recorder = recorder
        self.heartbeat_ms = heartbeat_ms
        self.demo_s = demo_s
        self.view = ViewState(client.info().unwrap(), plan)
        if recorder is not None:
            self.view.recording = recorder.path
        self.error = None  # what ended the link thread, if not a stop
        self.on_frame = None  # called with (frame, message) in the link thread (benchmarks)
        self._commands: queue.SimpleQueue[dict] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread = None

    # -- from other threads ---------------------------------------------

    def start(self):
        self.client.stream(True).unwrap()
        self._thread = threading.Thread(target=self._run, name="tonus-link", daemon=True)
        self._thread.start()

    def submit(self, command):
        """Queue a command (a dict from a page); its answer is published as an "r" message."""
        self._commands.put(command)

    @property
    def alive(self):
        return self._thread is not None and self._thread.is_alive()

    def stop(self):
        """End the link thread; a session this computer keeps alive is stopped first."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def hello(self):
        """The first message a page gets."""
        return dumps(
            {
                "t": "h",
                "rate_hz": self.view.rate_hz,
                "status": self.view.status(),
                "tone": {"min_hz": TONE_FEEDBACK_MIN_HZ, "max_hz": TONE_FEEDBACK_MAX_HZ},
            }
        )

    def status_message(self):
        """The status now, as an event without words."""
        return dumps(self.view.event_message("status", None, self.view.device_ms))

    # -- the link thread --------------------------------------------------

    def _run(self):
        try:
            while not self._stop.is_set():
                self._run_commands()
                item = self.client.poll(TICK_S)
                if item is not None:
                    self._take(item)
            self._wind_down()
        except (LinkError, TonusError) as e:
            self.error = e
            self._say(f"the link to the device failed: {e}")
        except Exception as e:  # noqa: BLE001 - a bug: the command raises it; the pages and the recording say so
            self.error = e
            self._say(f"the live view stopped on an error: {e!r}")
        finally:
            self._close_recording(
                "the live view closed" if self.error is None else f"link failed: {self.error}"
            )

    def _take(self, item):
        if self.recorder is not None:
            try:
                self.recorder(item)
            except TonusError as e:
                self.recorder = None
                self.view.recording_error = str(e)
                self._say(f"the recording stopped: {e}")
        msg = self.view.feed(item)
        if isinstance(item, EmgFrame):
            msg["h"] = round(time.time() * 1000, 1)
            if self.on_frame is not None:
                self.on_frame(item, msg)
            self.hub.publish(dumps(msg), droppable=True)
        else:
            self.hub.publish(dumps(msg))

    def _say(self, text):
        self.hub.publish(dumps(self.view.event_message("note", text, self.view.device_ms)))

    def _run_commands(self):
        pending = []
        while True:
            try:
                pending.append(self._commands.get_nowait())
            except queue.Empty:
                break
        pending.sort(key=lambda c: c.get("cmd") != "estop")  # stable: the rest keep their order
        for cmd in pending:
            name = cmd.get("cmd")
            try:
                ok, text = self._execute(name, cmd)
            except LinkError as e:
                ok, text = False, str(e)
                if name != "estop":
                    raise
            self.hub.publish(dumps({"t": "r", "cmd": name, "id": cmd.get("id"), "ok": ok, "text": text}))

    def _execute(self, name, cmd):
        c = self.client
        if name == "estop":
            return self._answer(c.estop(), "emergency stop: the output is off and the fault is latched")
        if name == "start":
            r = c.session_start(demo_s=self.demo_s, heartbeat_ms=self.heartbeat_ms)
            if r.ok:
                self.view.started(c.info().unwrap())
            return self._answer(r, "session started")
        if name in ("pause", "resume", "stop"):
            return self._answer(getattr(c, "session_" + name)(), f"session: {name}")
        if name == "clear":
            return self._answer(c.fault_clear(), "fault cleared")
        if name == "level":
            step = cmd.get("step")
            if step not in (-1, 1):
                return False, "a level change is one step up (1) or down (-1)"
            # as the device's own buttons step, but not stopped at the limit: the device refuses beyond it
            r = c.stim_level(next_level(self.view.level_ua, self.view.limit_ua, step > 0))
            if r.ok:
                self.view.level_ua = r.level_ua
                return True, "stimulation level %.1f mA" % (r.level_ua / 1000)
            return self._answer(r, "")
        if name == "marker":
            return self._marker(cmd.get("text"))
        return False, f"unknown command {name!r}"

    def _answer(self, r, text):
        return (True, text) if r.ok else (False, str(DeviceRefused(r)))

    def _marker(self, text):
        if not isinstance(text, str) or not text.strip():
            return False, "a marker needs a note"
        text = " ".join(text.split())[:MARKER_MAX]
        self._take(Marker(self.view.device_ms, text))
        return True, f"marker added: {text}"

    def _wind_down(self):
        """Leaving: stop a session this computer keeps alive and read it to its end."""
        c = self.client
        if c.heartbeat_ms and c.state in ACTIVE_STATES:
            c.session_stop()
            deadline = time.monotonic() + _END_WAIT_S
            # to the end and the device's scores, so the recording holds them
            while time.monotonic() < deadline and (c.state in ACTIVE_STATES or self.view.scores is None):
                item = c.poll(TICK_S)
                if item is not None:
                    self._take(item)
        c.stream(False)

    def _close_recording(self, reason):
        if self.recorder is not None:
            self.recorder.close(reason)
