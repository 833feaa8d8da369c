"""One pass over a recording's bytes: its items in order, and what could not be read.

Every item map starts with its "type" key: after a damaged stretch the
scanner finds the next item by that key and carries on, so one bad byte
costs the items it hits, not the rest of the file.
"""

import io
import mmap
from collections.abc import Iterator
from typing import Any, BinaryIO

import cbor2

from host.recording.fileformat import END, TYPE_KEY, TYPES, Item, RecordingError, check_header, decode_item

DECODE_ERRORS = (
    cbor2.CBORDecodeError,
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    OverflowError,
    AttributeError,
)


class Scanner:
    """One pass over a recording's bytes (bytes or an mmap): items, problems, end marker."""

    def __init__(self, data: bytes | mmap.mmap, path: str) -> None:
        self.data = data  # for resync's search: the bytes, or the file mapped
        self.path = path
        # cbor2 decodes from a file object (not from an mmap)
        self.fp = io.BytesIO(data) if isinstance(data, bytes) else open(path, "rb")  # noqa: SIM115
        try:
            self.header = cbor2.CBORDecoder(self.fp).decode()
        except DECODE_ERRORS:
            self.header = None
        try:
            check_header(self.header, path)
        except RecordingError:
            self.fp.close()
            raise
        self.start = self.fp.tell()
        self.problems: list[str] = []
        self.unknown: dict[str, int] = {}  # items of a type this tonus does not know, by type
        self.end: dict[str, Any] | None = None

    def items(self) -> Iterator[tuple[float, Item]]:
        try:
            yield from self._items()
        finally:
            self.fp.close()

    def _items(self) -> Iterator[tuple[float, Item]]:
        data, fp = self.data, self.fp
        pos, last_s, size = self.start, 0.0, len(data)
        fp.seek(pos)
        dec = cbor2.CBORDecoder(fp)  # one decoder while items follow each other; a new one after damage
        while pos < size and self.end is None:
            try:
                d = dec.decode()
                if d.get("type") == END:
                    self.end = d
                elif d.get("type") in TYPES:
                    last_s, item = decode_item(d)
                    yield last_s, item
                elif isinstance(d.get("type"), str) and isinstance(d.get("host_s"), (int, float)):
                    self.unknown[d["type"]] = self.unknown.get(d["type"], 0) + 1
                else:
                    raise ValueError("not an item")
                pos = fp.tell()
                continue
            except DECODE_ERRORS:
                pass
            nxt = _resync(data, fp, pos + 1)
            if nxt is None:
                self.problems.append(
                    f"the last {size - pos} bytes (after {last_s:.1f} s of host time) are cut off or damaged "
                    "and were not read"
                )
                break
            self.problems.append(
                f"{nxt - pos} damaged bytes after {last_s:.1f} s of host time were skipped; "
                "the items in them are lost"
            )
            pos = nxt
            fp.seek(pos)
            dec = cbor2.CBORDecoder(fp)
        for name, n in sorted(self.unknown.items()):
            self.problems.append(
                f"{n} items of type {name!r} are not understood by this tonus and were left out: update tonus"
            )
        if self.end is None and not self.problems:
            self.problems.append(
                f"the recording stops after {last_s:.1f} s of host time without its end mark: it was cut off"
            )
        elif self.end is not None and pos < size:
            self.problems.append(f"{size - pos} bytes after the end mark were ignored")


def _resync(data: bytes | mmap.mmap, fp: BinaryIO, start: int) -> int | None:
    """The offset of the next item that decodes, from `start`; None if there is none."""
    while True:
        k = data.find(TYPE_KEY, start)
        if k < 0:
            return None
        cand = k - 1
        start = k + 1
        if not 0xA1 <= data[cand] <= 0xB7:  # a map of 1..23 pairs
            continue
        fp.seek(cand)
        try:
            d = cbor2.CBORDecoder(fp).decode()
            if d.get("type") == END or decode_item(d):
                return cand
        except DECODE_ERRORS:
            continue
