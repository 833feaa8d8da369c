"""Session recordings: the live stream saved as it came, read back later.

A recording is a CBOR sequence (RFC 8742): one header map, then one map per
event or EMG frame the client received, each with the host's receive time,
then an end map when the recorder closed cleanly. It is only ever appended
to, so a recording cut off by a crash or a full disk reads back up to its
last complete item. Every item map starts with its "type" key: after a
damaged stretch the reader finds the next item by that key and carries on,
so one bad byte costs the items it hits, not the rest of the file.

Items keep the client's field names and the device's integer units (0.1 µV
samples as int32 LE bytes, µA, ms); the header says who, what and when,
with the patient's pseudonym only. Device time is the EMG sample index /
rate (the front end starts with the device), the clock events' time_ms
counts in too.

The package: fileformat.py (the header and the item maps), recorder.py
(writing), scanner.py (one pass over the bytes, past damage), reader.py
(a Recording read back: events and a table per frame), signals.py (the
samples as arrays) and annotations.py (what happened, in device time).
"""

from host.recording.annotations import Annotation
from host.recording.fileformat import (
    FORMAT,
    PRIVACY_NOTE,
    SUFFIX,
    VERSION,
    Item,
    Marker,
    RecordedEvent,
    RecordingError,
    encode_item,
    header,
)
from host.recording.reader import FrameTable, Recording, parse, read
from host.recording.recorder import Recorder
from host.recording.signals import Signals, runs

__all__ = [
    "FORMAT",
    "PRIVACY_NOTE",
    "SUFFIX",
    "VERSION",
    "Annotation",
    "FrameTable",
    "Item",
    "Marker",
    "RecordedEvent",
    "Recorder",
    "Recording",
    "RecordingError",
    "Signals",
    "encode_item",
    "header",
    "parse",
    "read",
    "runs",
]
