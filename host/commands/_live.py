"""The live view shared by `tonus session run` and `tonus monitor`.

A Tracker keeps what a person watching wants to see (state, cue, EMG
envelope, running time) from the device's events and stream frames. Time is
the device's: running time advances with the samples of frames sent while
RUNNING, so the display is right whether the board runs in real time or a
simulator runs faster. Views: rich when installed and stdout is a terminal,
else plain text; JSON lines with --json.
"""

import sys
import time
from dataclasses import asdict

from host.client import (
    ACTIVE_STATES,
    Advice,
    Cue,
    EmgFrame,
    FaultEvent,
    SessionSummary,
    StateChanged,
    StimEvent,
)
from host.commands._connect import json_line

_ENVELOPE_FULL_DV = 1000  # 100 µV fills the bar: above a maximal pelvic-floor contraction
_BAR = 24
_JSON_EVERY_MS = 1000
_PLAIN_EVERY_MS = 5000
_TTY_REFRESH_S = 0.1


_ADVICE_TEXT = {
    "TONE_RISING": "your resting tension is rising: today is not the day, put the practice aside",
    "PAUSED_TWICE": "you paused twice: it is fine to end the session here",
}


class Tracker:
    def __init__(self, info, keep=False):
        s = info.session
        self.state = info.state
        self.cue = s.cue if s and info.state in ACTIVE_STATES else None
        self.elapsed_ms = s.elapsed_ms if s else 0
        self.duration_ms = s.duration_ms if s else 0
        self.rate_hz = info.limits.emg_rate_hz
        self.envelope_dv = 0
        self.lead_off = False
        self.frames = 0
        self.samples = 0  # streamed since the tracker started: the device time it has seen
        self.end = None  # the StateChanged that ended the session
        self.fault = None  # the FaultEvent reported last
        self.summary = None  # the device's SessionSummary, once the session ended
        self.keep = keep  # keep the raw stream and the cues (for analysis after the session)
        self.kept_frames = []  # (first_index, int32 LE bytes)
        self.cues = []
        self.stim_ua = 0  # stimulation current commanded now
        self.stim = None  # the last StimEvent
        self.triggers = 0  # ETS triggers seen in the stream

    @property
    def streamed_ms(self):
        return self.samples * 1000 // self.rate_hz

    def feed(self, item):
        """Take one event or frame; return a line worth noting, or None."""
        if isinstance(item, EmgFrame):
            self.frames += 1
            self.samples += item.count
            self.envelope_dv = item.envelope_dv
            self.lead_off = item.lead_off
            self.stim_ua = item.stim_ua
            if item.triggered:
                self.triggers += 1
                return "ETS trigger at %.1f µV" % (item.envelope_dv / 10)
            if item.state == "RUNNING":
                self.elapsed_ms += item.count * 1000 // self.rate_hz
            if self.keep:
                self.kept_frames.append((item.first_index, item.data))
            return None
        if isinstance(item, StateChanged):
            self.state = item.to_state
            if item.to_state not in ACTIVE_STATES:
                self.cue = None
                if item.from_state in ACTIVE_STATES:
                    self.end = item
            return f"{item.from_state} -> {item.to_state} ({item.reason})"
        if isinstance(item, Cue):
            self.cue = item.cue
            self.cues.append(item)
            if not item.duration_ms:
                return f"cue {item.cue}"  # until the next: ETS waits for the patient
            return f"cue {item.cue} for {item.duration_ms / 1000:.1f} s"
        if isinstance(item, StimEvent):
            self.stim = item
            extra = ""
            if item.state == "READY" and item.impedance_ohm:
                extra = f", electrode {item.impedance_ohm:d} Ω"
            return (
                f"stimulation {item.state} (level {item.level_ua / 1000:.1f} mA of "
                f"{item.limit_ua / 1000:.1f} mA{extra})"
            )
        if isinstance(item, SessionSummary):
            self.summary = item
            return "session scored by the device"
        if isinstance(item, Advice):
            return "the device advises ending the session: " + _ADVICE_TEXT.get(item.reason, item.reason)
        if isinstance(item, FaultEvent):
            self.fault = item
            return "fault {}{}".format(item.name, " (latched)" if item.latched else "")
        return None

    def status(self):
        return {
            "state": self.state,
            "cue": self.cue,
            "elapsed_ms": self.elapsed_ms,
            "duration_ms": self.duration_ms,
            "envelope_uv": self.envelope_dv / 10,
            "lead_off": self.lead_off,
            "stim_ma": self.stim_ua / 1000,
            "triggers": self.triggers,
        }


def follow(client, tracker, view, done, on_item=None):
    """Feed events and frames to tracker and view (and on_item) until done() is true."""
    while not done():
        item = client.poll(0.1)
        if item is None:
            continue
        note = tracker.feed(item)
        if note:
            view.note(note, item)
        if on_item is not None:
            on_item(item)
        view.update(tracker)


def open_view(args):
    if args.json:
        return JsonView()
    if sys.stdout.isatty():
        try:
            return RichView()
        except ImportError:
            return PlainView(tty=True)
    return PlainView(tty=False)


def _bar(value, full, width=_BAR):
    n = min(width, value * width // full) if full else 0
    return "[" + "#" * n + " " * (width - n) + "]"


def status_line(t):
    clock = f"{t.elapsed_ms / 1000:6.1f} / {t.duration_ms / 1000:.1f} s" if t.duration_ms else "no session"
    return "{}  {!s:<7}  cue {!s:<8}  EMG {:6.1f} µV {}{}".format(
        clock,
        t.state,
        t.cue or "-",
        t.envelope_dv / 10,
        _bar(t.envelope_dv, _ENVELOPE_FULL_DV),
        "  LEAD OFF" if t.lead_off else "",
    ) + ("  STIM %5.1f mA" % (t.stim_ua / 1000) if t.stim_ua else "")


class PlainView:
    """A status line rewritten in place on a terminal; one every few seconds of device time in a log."""

    def __init__(self, tty):
        self._tty = tty
        self._next_wall = 0.0
        self._next_ms = 0
        self._dirty = False

    def update(self, t):
        if self._tty:
            now = time.monotonic()
            if now >= self._next_wall:
                self._next_wall = now + _TTY_REFRESH_S
                sys.stdout.write("\r\x1b[K" + status_line(t))
                sys.stdout.flush()
                self._dirty = True
        elif t.streamed_ms >= self._next_ms:
            # about two dozen lines however long the session
            self._next_ms = t.streamed_ms + max(_PLAIN_EVERY_MS, t.duration_ms // 24)
            print(status_line(t), flush=True)

    def note(self, text, item):
        if self._dirty:
            sys.stdout.write("\r\x1b[K")
            self._dirty = False
        print(text, flush=True)

    def close(self, t, summary):
        if self._dirty:
            sys.stdout.write("\n")
        print(summary, flush=True)


class RichView:
    """A progress bar, state, cue and envelope bar that rich redraws in place."""

    def __init__(self):
        from rich.live import Live

        self._live = Live(refresh_per_second=10, transient=False)
        self._live.start()

    def update(self, t):
        from rich.progress_bar import ProgressBar
        from rich.table import Table

        grid = Table.grid(padding=(0, 2))
        if t.duration_ms:
            grid.add_row(
                "time",
                ProgressBar(total=t.duration_ms, completed=min(t.elapsed_ms, t.duration_ms), width=40),
                f"{t.elapsed_ms / 1000:.1f} / {t.duration_ms / 1000:.1f} s",
            )
        grid.add_row("state", t.state, "")
        if t.stim is not None:
            limit = max(t.stim.limit_ua, 1)
            grid.add_row(
                "stim",
                ProgressBar(total=limit, completed=min(t.stim_ua, limit), width=40),
                f"{t.stim_ua / 1000:.1f} mA  {t.stim.state}  triggers {t.triggers:d}",
            )
        grid.add_row("cue", t.cue or "-", "")
        grid.add_row(
            "EMG",
            ProgressBar(total=_ENVELOPE_FULL_DV, completed=min(t.envelope_dv, _ENVELOPE_FULL_DV), width=40),
            "{:.1f} µV{}".format(t.envelope_dv / 10, "  LEAD OFF" if t.lead_off else ""),
        )
        self._live.update(grid)

    def note(self, text, item):
        self._live.console.print(text)

    def close(self, t, summary):
        self._live.stop()
        self._live.console.print(summary)


class JsonView:
    """JSON lines: every event as it comes, progress each second of device time, then the summary."""

    def __init__(self):
        self._next_ms = 0

    def update(self, t):
        if t.streamed_ms >= self._next_ms:
            self._next_ms = t.streamed_ms + _JSON_EVERY_MS
            json_line(dict(type="progress", **t.status()))

    def note(self, text, item):
        if item is None:
            json_line({"type": "note", "text": text})
        elif isinstance(item, EmgFrame):  # an ETS trigger: the frame, without its samples
            json_line(
                {
                    "type": "EtsTrigger",
                    "first_index": item.first_index,
                    "envelope_uv": item.envelope_dv / 10,
                    "stim_ma": item.stim_ua / 1000,
                }
            )
        else:
            json_line(dict(type=type(item).__name__, **asdict(item)))

    def close(self, t, summary):
        json_line(dict(type="end", frames=t.frames, **t.status(), message=summary))
