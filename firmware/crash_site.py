"""Where the exception behind an EXCEPTION or MEMORY fault was raised, in a line a host can show.

The loop's handler catches it in a heap that may have no run left for what
was asked: the traceback goes into a buffer made at boot (MicroPython's
print_exception writes it there without allocating), and only a report (the
FAULT record, INFO) turns it into text. The first exception since the last
clear is the one kept: it latched the fault.
"""

import io
import sys

try:
    _print_exception = sys.print_exception  # type: ignore[attr-defined]  # MicroPython
except AttributeError:  # CPython (the simulator): the same text from traceback
    import traceback

    def _print_exception(e, out):
        traceback.print_exception(type(e), e, e.__traceback__, file=out)


_SIZE = 384  # about seven frames; a deeper stack grows the buffer, if the heap lets it
# characters a report carries: INFO with the widest protocol summary and all else at its
# largest must still fit one frame (tests/dual/test_firmware_trust.py)
WHERE_MAX = 60


def _buffer():
    try:
        return io.StringIO(_SIZE)  # type: ignore[arg-type]  # MicroPython's takes a size: preallocated
    except TypeError:  # CPython's takes an initial value only
        return io.StringIO()


class CrashSite:
    def __init__(self):
        self._buf = _buffer()
        self._kept = False
        self._restored = ""  # from the FAULT record of an earlier boot

    def catch(self, e):
        """Keep where e was raised, unless an exception is kept already. Allocates nothing on MicroPython."""
        if self._kept:
            return
        self._kept = True
        try:
            _print_exception(e, self._buf)
        except MemoryError:
            pass  # a deeper stack than the buffer holds, in a full heap: what was written stays

    def restore(self, where):
        """At boot: where the fault latched on flash was raised, as its record says."""
        if isinstance(where, str):
            self._restored = where[:WHERE_MAX]

    def clear(self):
        """The fault is cleared: the next exception is the one to keep."""
        if self._kept:
            self._buf = _buffer()
        self._kept = False
        self._restored = ""

    def where(self):
        """'MemoryError at file:line function < its caller < ...: message', at most WHERE_MAX
        characters (innermost frame first: what is cut is the outer frames and the message), or ''."""
        if not self._kept:
            return self._restored
        lines = self._buf.getvalue().split("\n")
        frames = []
        exc = ""
        for line in lines:
            frame = line.strip()
            if frame.startswith('File "'):
                # File "firmware/handlers.py", line 150, in _upload
                parts = frame.split('"')
                name = parts[1].split("/")[-1]
                if name.endswith(".py"):
                    name = name[:-3]
                rest = parts[2].split(",")
                num = rest[1].split()[-1] if len(rest) > 1 else "?"
                fn = rest[2].split()[-1] if len(rest) > 2 else "?"
                frames.append("%s:%s %s" % (name, num, fn))
            elif line and line[0] not in " \t" and not line.startswith("Traceback"):
                exc = line  # the last line not indented is the exception itself
        frames.reverse()
        kind, _, message = exc.partition(":")
        return (kind + " at " + " < ".join(frames) + (":" + message if message else ""))[:WHERE_MAX]
