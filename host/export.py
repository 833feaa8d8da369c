"""A recording as EDF+ (for EDFbrowser and other viewers) or as CSV (for spreadsheets).

EDF+: written by pyEDFlib (EDFlib), which writes continuous files only, so
the file is EDF+C in every case: a stretch where no sample arrived is
filled with zeros and carries a "gap" annotation as long as the stretch,
which every EDF+ viewer shows. Three signals: the raw EMG in µV at the EMG
rate, its envelope (µV) and the stimulation current (mA) at the device's
frame rate, one value per frame as the device sent it (frame_rate() says
when that cannot be, and the prefilter field then says "mean"). Each
signal's prefilter field states what the device did to it.

Each signal's physical range is a round number above its largest value,
so nothing clips, except stimulation artefacts: the EMG range covers the
samples of frames without stimulation or saturation, so 16 bits resolve
the EMG finer than the device's 0.1 µV; artefact samples beyond it (only
in frames flagged STIM, BLANKED or SATURATED) are clipped to it, and each
stretch is annotated "EMG clipped".

Events (cues, protocol phases, state, stimulation, ETS triggers, faults,
advice) are EDF+ annotations in seconds from the first sample; EDFlib
keeps 40 characters of each, so a longer text is split at spaces into
parts "[1/2] ...", "[2/2] ..." at the same onset, never cut (fit_annotation). Header: the
patient field holds the pseudonym only (as the EDF+ patient code; sex,
birth date and name are "X"); the recording field the start date and the
equipment (tonus, serial, firmware). The protocol id is an annotation at
0 s: EDFlib cuts the recording field at 65 characters, and the equipment
must survive whole. The start time is the exporting computer's local
time, as viewers show it, to the second (pyEDFlib's sub-second start
field is unreliable).

CSV: one row per sample that arrived (index, device time, EMG, the frame's
envelope and stimulation current, its FLAG_* bits), and the events in a
second file beside it (NAME-events.csv).

Both read the recording a minute at a time (Recording.blocks) and write
into a temporary file that replaces the target only when complete, so
memory does not grow with the recording and no half file is left.
"""

import csv
import math
import os
from dataclasses import dataclass

import numpy as np

from host import atomic
from host.errors import TonusError
from host.recording import runs
from protocol import messages as m

_MAX_ANNOTATION_SIGNALS = 64  # EDFlib's limit; each holds one annotation per data record
ANNOTATION_CHARS = 40  # EDFlib writes at most this many characters of an annotation
_PART = "[%d/%d] "  # the prefix of each part of a text split to fit
_DIGITAL = (-32768, 32767)
_CHUNK_RECORDS = 60  # data records (seconds) written at a time: memory stays flat in the recording's length
CSV_COLUMNS = ("index", "time_s", "emg_uv", "envelope_uv", "stim_ma", "flags")
EVENT_COLUMNS = ("time_s", "duration_s", "kind", "text")
# EDF+ prefilter fields (80 characters): what the device did to each signal before it was recorded
EMG_FILTER = "HP:20Hz (2nd-order Butterworth) no notch"
ENVELOPE_FILTER = "HP:20Hz N:mains RMS over the protocol window; one value per %s"
STIM_FILTER = "none; commanded current at the end of each %s"


class ExportError(TonusError):
    """The export could not be written, or what was written does not read back."""


@dataclass
class Exported:
    """What an export wrote."""

    paths: list  # the files written
    seconds: float  # device time covered by the signal
    samples: int  # samples that arrived
    missing: int  # samples lost in gaps (zeros in EDF, no row in CSV)
    annotations: int


def nice_ceiling(value, floor):
    """The smallest 1-2-5 x 10^n at or above value (and floor): a round physical maximum."""
    v = max(float(value), float(floor))
    e = 10 ** math.floor(math.log10(v))
    for step in (1, 2, 5, 10):
        if step * e >= v:
            return step * e
    return 10 * e


def frame_rate(rec):
    """The rate of the envelope and current channels: one value per device frame when the frames have
    one length that divides the EMG rate (every device so far: 50 samples, 40 Hz at 2 kHz), so the
    values are the device's own, not resampled. Else the largest divisor of the EMG rate up to 50 Hz,
    each value the mean of its samples (and the header says so)."""
    rate = rec.rate_hz
    counts = np.unique(rec.table.count)
    if len(counts) == 1 and counts[0] and rate % int(counts[0]) == 0:
        return rate // int(counts[0]), True
    return next(d for d in range(min(50, rate), 0, -1) if rate % d == 0), False


def _decimate(x, k):
    """Mean of each k samples, ignoring missing ones; 0 where all are missing."""
    n = -(-len(x) // k) * k
    y = np.full(n, np.nan)
    y[: len(x)] = x
    y = y.reshape(-1, k)
    have = ~np.isnan(y)
    sums = np.where(have, y, 0.0).sum(axis=1)
    counts = have.sum(axis=1)
    return np.where(counts > 0, sums / np.maximum(counts, 1), 0.0)


def _field(text):
    """An EDF+ header subfield: printable ASCII, no spaces, 'X' when unknown."""
    text = "".join(c if 33 <= ord(c) < 127 else "_" for c in str(text or "").strip())
    return text or "X"


def _span(rec):
    span = rec.span
    if span is None:
        raise ExportError(f"{rec.path} holds no EMG frames: there is no signal to export")
    return span


def fit_annotation(text, limit=ANNOTATION_CHARS):
    """The text as parts of at most `limit` characters, never cut: whole when it fits, else split at
    spaces into parts "[1/2] ...", "[2/2] ..." (at the same onset; a word longer than a part is split)."""
    text = " ".join(str(text).split())
    if len(text) <= limit:
        return [text]
    room = limit - len(_PART % (9, 9))
    words = []
    for w in text.split(" "):
        words += [w[i : i + room] for i in range(0, len(w), room)]
    parts, line = [], ""
    for w in words:
        if line and len(line) + 1 + len(w) > room:
            parts.append(line)
            line = w
        else:
            line = w if not line else line + " " + w
    parts.append(line)
    return [_PART % (k + 1, len(parts)) + p for k, p in enumerate(parts)]


_ARTEFACT = m.FLAG_SATURATED | m.FLAG_STIM | m.FLAG_BLANKED


def _emg_range(rec):
    """A round range above every sample of the frames without stimulation or saturation (all frames when
    there are none such), from one streamed pass over the frames, a few thousand at a time.

    16 bits over the rail (about ±52 mV, where stimulation artefacts put a
    fifth of the samples) would resolve 1.6 µV: coarser than resting EMG.
    Artefact samples beyond the range are clipped, and annotated.
    """
    peak = {True: 0, False: 0}  # clean frames, artefact frames
    batch: dict[bool, list[bytes]] = {True: [], False: []}

    def flush(clean):
        if batch[clean]:
            x = np.frombuffer(b"".join(batch[clean]), dtype="<i4")
            peak[clean] = max(peak[clean], int(np.abs(x.astype(np.int64)).max(initial=0)))
            batch[clean].clear()

    for f in rec.iter_frames():
        clean = not f.flags & _ARTEFACT
        batch[clean].append(f.data)
        if len(batch[clean]) >= 4096:
            flush(clean)
    flush(True)
    flush(False)
    clean = (rec.table.flags & _ARTEFACT) == 0
    return nice_ceiling((peak[True] if clean.any() else peak[False]) / 10.0, 10)


def write_edf(rec, path):
    """Write the recording `rec` (host.recording.Recording) as EDF+ to path, streamed a minute at a time
    into a temporary file that replaces path once it reads back."""
    import warnings

    import pyedflib

    first, end = _span(rec)
    rate = rec.rate_hz
    low, per_frame = frame_rate(rec)
    k = rate // low
    chunk = rate * _CHUNK_RECORDS
    emg_max = _emg_range(rec)
    env_max = float(rec.table.envelope_dv.max(initial=0)) / 10.0
    stim_max = float(rec.table.stim_ua.max(initial=0)) / 1000.0
    per = (f"{1000 * k // rate:d} ms frame") if per_frame else (f"{1000 * k // rate:d} ms (mean)")
    headers = [
        _signal_header("EMG", "uV", rate, -emg_max, emg_max, EMG_FILTER),
        _signal_header("EMG envelope", "uV", low, 0, nice_ceiling(env_max, 10), ENVELOPE_FILTER % per),
        _signal_header("Stim current", "mA", low, 0, nice_ceiling(stim_max, 1), STIM_FILTER % per),
    ]
    t0 = first / rate
    records = -(-(end - first) // rate)
    start = rec.wall_time(t0).astimezone().replace(tzinfo=None)
    clip_runs, present = [], 0
    with atomic.replacing(path) as tmp:
        try:
            w = pyedflib.EdfWriter(tmp, len(headers), pyedflib.FILETYPE_EDFPLUS)
        except OSError as e:
            raise ExportError(f"cannot create {path}: {e}") from e
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # our subfields are checked ASCII already
                w.setSignalHeaders(headers)
                w.setPatientCode(_field(rec.pseudonym))
                w.setEquipment(_field("tonus_{}_fw{}".format(rec.serial, rec.header.get("firmware_version"))))
                w.setStartdatetime(start.replace(microsecond=0))
                for s in rec.blocks(chunk):
                    have = s.present
                    present += int(have.sum())
                    emg = np.where(have, s.emg_uv, 0.0)
                    beyond = np.abs(emg) > emg_max
                    clip_runs += [
                        (s.first_index - first + a, s.first_index - first + b) for a, b in runs(beyond)
                    ]
                    w.writeSamples(
                        [
                            np.clip(emg, -emg_max, emg_max),
                            _decimate(s.envelope_uv, k),
                            _decimate(s.stim_ma, k),
                        ]
                    )
                notes = _edf_annotations(rec, t0, end - first) + _clip_annotations(clip_runs, rate, emg_max)
                if len(notes) > records * _MAX_ANNOTATION_SIGNALS:
                    raise ExportError(
                        f"{len(notes)} annotations do not fit an EDF+ file of {records:d} s (at "
                        f"most {_MAX_ANNOTATION_SIGNALS:d} per second)"
                    )
                w.set_number_of_annotation_signals(max(1, -(-len(notes) // records)))
                for onset, duration, text in notes:
                    w.writeAnnotation(onset, duration, text)
        finally:
            w.close()
        check_edf(tmp, records, name=path)
    n = end - first
    return Exported([str(path)], n / rate, present, n - present, len(notes))


def _clip_annotations(stretches, rate, limit):
    """One annotation per stretch of clipped samples, stretches less than a second apart merged."""
    out: list[tuple[float, float, str]] = []
    for a, b in stretches:
        if out and a / rate - (out[-1][0] + out[-1][1]) < 1.0:
            out[-1] = (out[-1][0], b / rate - out[-1][0], out[-1][2])
        else:
            out.append((a / rate, (b - a) / rate, f"EMG clipped at +-{limit:g} uV"))
    return out


def _signal_header(label, unit, rate, lo, hi, prefilter):
    return {
        "label": label,
        "dimension": unit,
        "sample_frequency": rate,
        "physical_min": lo,
        "physical_max": hi,
        "digital_min": _DIGITAL[0],
        "digital_max": _DIGITAL[1],
        "transducer": "tonus probe" if unit == "uV" else "tonus stimulator",
        "prefilter": prefilter,
    }


def _edf_annotations(rec, t0, samples):
    """(onset from the first sample, duration, text) for every annotation, each split to fit; earlier
    events at 0, marked "pre:"."""
    out = []
    if rec.protocol_id:
        out.append((0.0, 0.0, f"protocol {rec.protocol_id}"))
    for a in rec.annotations():
        onset = a.onset_s - t0
        text = a.text
        if onset < 0:
            onset, text = 0.0, "pre: " + text
        out.append((onset, a.duration_s, text))
    end = samples / rec.rate_hz
    if end % 1:
        out.append((end, 0.0, "end of signal (zeros follow)"))
    return [(onset, duration, part) for onset, duration, text in out for part in fit_annotation(text)]


def check_edf(path, records=None, name=None):
    """Open an EDF+ file with pyEDFlib; ExportError with the reason when it does not read (or is short)."""
    import pyedflib

    name = name or path
    try:
        size = os.path.getsize(path)
        with pyedflib.EdfReader(str(path)) as r:
            got = r.datarecords_in_file
    except OSError as e:
        raise ExportError(f"{name} is not a readable EDF+ file: {e}") from e
    if records is not None and got != records:
        raise ExportError(
            f"{name} holds {got:d} of {records:d} data records ({size:d} bytes): it was cut short"
        )
    return got


def events_path(path):
    root, ext = os.path.splitext(str(path))
    return root + "-events" + (ext or ".csv")


def write_csv(rec, path):
    """Write the samples to path and the events to events_path(path), streamed a minute at a time,
    each through a temporary file that replaces it when complete."""
    first, end = _span(rec)
    rate = rec.rate_hz
    # '#' lines first (pandas: comment="#"), then the column names
    head = "# tonus recording: pseudonym {}, protocol {}, device {}, EMG {:d} Hz, started {}\n".format(
        rec.pseudonym or "-", rec.protocol_id or "-", rec.serial, rate, rec.header.get("started_utc")
    )
    head += "# time_s is device time (sample index / rate); emg_uv is raw, high-passed at 20 Hz; "
    head += "envelope_uv and stim_ma are each frame's, held over its samples; a missing sample has no row\n"
    head += ",".join(CSV_COLUMNS) + "\n"
    ev = events_path(path)
    notes = rec.annotations()
    present = 0
    try:
        with atomic.open_replacing(path, "w", newline="") as f:
            f.write(head)
            for s in rec.blocks(rate * _CHUNK_RECORDS):
                keep = np.flatnonzero(s.present)
                present += len(keep)
                index = s.first_index + keep
                table = np.column_stack(
                    (index, index / rate, s.emg_uv[keep], s.envelope_uv[keep], s.stim_ma[keep], s.flags[keep])
                )
                np.savetxt(f, table, fmt=["%d", "%.4f", "%.1f", "%.1f", "%.3f", "%d"], delimiter=",")
        with atomic.open_replacing(ev, "w", newline="") as f:
            out = csv.writer(f)
            out.writerow(EVENT_COLUMNS)
            for a in notes:
                out.writerow([f"{a.onset_s:.3f}", f"{a.duration_s:.3f}", a.kind, a.text])
    except OSError as e:
        raise ExportError(f"cannot write {e.filename or path}: {e.strerror}") from e
    n = end - first
    return Exported([str(path), ev], n / rate, present, n - present, len(notes))


FORMATS = {"edf": write_edf, "csv": write_csv}
