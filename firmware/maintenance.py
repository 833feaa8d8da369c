"""Maintenance: step aside so `tonus flash` finds a plain REPL.

While the application runs, Ctrl-C is off (a 0x03 inside a frame must not
interrupt it) and the watchdog is armed, so mpremote can neither break in
nor finish a deployment. MAINTENANCE_ENTER asks the device to step aside:
enter() turns the output off, writes a one-shot marker and answers;
poll() resets the board once the answer has had time to leave. At the next
boot the board's main.py (firmware/pico_main.py) takes the marker and stops
there: no application, no watchdog, Ctrl-C back on. Taking the marker
consumes it, so the reset after flashing boots the application normally.
The maintenance reset is never reported as a watchdog timeout, whatever the
reset-cause register says: the application does not run at that boot.

A session is never cut short for maintenance: the request is refused while
one is active (the host checks first as well).

`tonus flash` also writes FIRMWARE_RECORD: the SHA-256 of the image it
deployed, for the device to report so the host can check what runs.
"""

from protocol import messages as m
from protocol.errors import BUSY, INTERNAL, ProtocolError

MARKER = "maintenance"  # present: the next boot is a maintenance boot
FIRMWARE_RECORD = "firmware"  # {0: SHA-256 of the deployed image}, written by tonus flash
RESET_DELAY_MS = 100  # lets the answer leave the USB buffers before the reset


class Maintenance:
    def __init__(self, hal, safety, session, store):
        self._hal = hal
        self._safety = safety
        self._session = session
        self._store = store
        self.reset_at_ms = -1  # when poll() resets the board; -1: not asked

    def pending(self):
        """True once maintenance was granted: start nothing new, the reset is near."""
        return self.reset_at_ms >= 0

    def enter(self, body, now_ms):
        """The MAINTENANCE_ENTER handler."""
        if self._session.active():
            raise ProtocolError(BUSY, "stop the session first")
        self._safety.release_output()
        try:
            self._store.save(MARKER, {0: now_ms})
        except OSError:
            # without the marker the reset would boot the application again
            raise ProtocolError(INTERNAL, "cannot write the maintenance marker")
        if self.reset_at_ms < 0:
            self.reset_at_ms = now_ms + RESET_DELAY_MS
        return {"state": m.MAINTENANCE}

    def poll(self, now_ms):
        if self.reset_at_ms >= 0 and now_ms >= self.reset_at_ms:
            self._safety.release_output()
            self._hal.reset()


def take_marker(hal):
    """At boot: True when the last run asked for maintenance. Consumes the marker."""
    if hal.fs_read(MARKER) is None:
        return False
    hal.fs_remove(MARKER)
    return True


def firmware_hash(store):
    """The SHA-256 tonus flash recorded for the deployed image, or None.

    None when the image was not deployed by tonus flash; a damaged record
    also reads None and is counted by the store like any other.
    """
    rec = store.load(FIRMWARE_RECORD)
    if isinstance(rec, dict):
        h = rec.get(0)
        if isinstance(h, bytes) and len(h) == 32:
            return h
    return None
