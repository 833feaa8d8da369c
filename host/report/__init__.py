"""The practice journal a therapist reviews: one self-contained HTML page from a folder.

build(folder, out) reads the folder (see collect.py), draws the plots
(plots.py) and writes one HTML file with the plots embedded as PNG data
URIs and no other resources, so it opens offline and can be mailed as it
is. Per protocol: the trend over the session dates (each session marked
by how it ended, the target drawn, pain/comfort and notes on the same
axis), then each session's envelope with its cues, phases, target,
faults, advice, notes and stimulation, the device's scores and a Glazer
assessment against the norms; then what was not counted (stubs, files
that could not be read) and the definitions of every figure. A small inline script checks on opening
that every plot decoded and says so on the page if one did not.
"""

from dataclasses import dataclass


@dataclass
class Built:
    path: str
    sessions: int
    protocols: list
    skipped: list  # (file name, reason)
    damaged: list  # (file name, what was lost): read in part
    images: int
    stubs: list  # (file name, why it is not a session): never counted


def build(folder, out, made=None):
    """Write the report of `folder` to `out`, dated `made` (an aware datetime; default now); a Built
    saying what went in."""
    from datetime import datetime
    from pathlib import Path

    from host import atomic
    from host.errors import TonusError
    from host.report import collect, page

    folder = Path(folder)
    if not folder.is_dir():
        raise TonusError(f"{folder} is not a folder")
    found = collect.collect(folder)
    text, images = page.render(folder, found, made or datetime.now().astimezone())
    try:
        with atomic.open_replacing(out, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError as e:
        raise TonusError(f"cannot write the report to {out}: {e.strerror}") from e
    damaged = [(", ".join(s.files), p) for s in found.sessions for p in s.problems]
    return Built(
        str(out), len(found.sessions), list(found.groups()), found.skipped, damaged, images, found.stubs
    )
