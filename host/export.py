"""A recording as EDF+ (for EDFbrowser and other viewers) or as CSV (for spreadsheets).

EDF+: written by pyEDFlib (EDFlib), which writes continuous files only, so
the file is EDF+C in every case: a stretch where no sample arrived is
filled with zeros and carries a "gap" annotation as long as the stretch,
which every EDF+ viewer shows. Three signals: the raw EMG in µV at the EMG
rate, its envelope (µV) and the stimulation current (mA) at LOW_RATE_HZ.

Each signal's physical range is a round number above its largest value,
so nothing clips, except stimulation artefacts: the EMG range covers the
samples of frames without stimulation or saturation, so 16 bits resolve
the EMG finer than the device's 0.1 µV; artefact samples beyond it (only
in frames flagged STIM, BLANKED or SATURATED) are clipped to it, and each
stretch is annotated "EMG clipped".

Events (cues, protocol phases, state, stimulation, ETS triggers, faults,
advice) are EDF+ annotations in seconds from the first sample. Header: the
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
"""

import csv
import math
import os
from dataclasses import dataclass

import numpy as np

from host.errors import TonusError
from host.recording import runs
from protocol import messages as m

LOW_RATE_HZ = 50  # envelope and current: the device updates them 20-40 times a second
_MAX_ANNOTATION_SIGNALS = 64  # EDFlib's limit; each holds one annotation per data record
_ANNOTATION_CHARS = 40  # EDFlib cuts annotation texts here
_DIGITAL = (-32768, 32767)
CSV_COLUMNS = ("index", "time_s", "emg_uv", "envelope_uv", "stim_ma", "flags")
EVENT_COLUMNS = ("time_s", "duration_s", "kind", "text")


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


def _low_rate(rate_hz):
    """The largest divisor of the EMG rate up to LOW_RATE_HZ, so one data record holds whole samples of both."""
    return next(d for d in range(min(LOW_RATE_HZ, rate_hz), 0, -1) if rate_hz % d == 0)


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


def _signals(rec):
    sig = rec.signals()
    if sig is None:
        raise ExportError("%s holds no EMG frames: there is no signal to export" % rec.path)
    return sig


def write_edf(rec, path):
    """Write the recording `rec` (host.recording.Recording) as EDF+ to path; check it reads back."""
    import warnings

    import pyedflib

    sig = _signals(rec)
    rate = sig.rate_hz
    low = _low_rate(rate)
    k = rate // low
    present = sig.present
    emg = np.where(present, sig.emg_uv, 0.0)
    env = _decimate(sig.envelope_uv, k)
    stim = _decimate(sig.stim_ma, k)
    emg_max = _emg_range(emg, sig.flags)
    clipped = np.abs(emg) > emg_max
    emg = np.clip(emg, -emg_max, emg_max)
    headers = [
        _signal_header("EMG", "uV", rate, -emg_max, emg_max, "HP:20Hz"),
        _signal_header("EMG envelope", "uV", low, 0, nice_ceiling(env.max(), 10), "RMS 250ms"),
        _signal_header("Stim current", "mA", low, 0, nice_ceiling(stim.max(), 1), ""),
    ]
    t0 = sig.first_index / rate
    records = -(-len(emg) // rate)
    notes = _edf_annotations(rec, sig, t0) + _clip_annotations(clipped, rate, emg_max)
    if len(notes) > records * _MAX_ANNOTATION_SIGNALS:
        raise ExportError(
            "%d events do not fit an EDF+ file of %d s (at most %d per second)"
            % (len(notes), records, _MAX_ANNOTATION_SIGNALS)
        )
    start = rec.wall_time(t0).astimezone().replace(tzinfo=None)
    try:
        w = pyedflib.EdfWriter(str(path), len(headers), pyedflib.FILETYPE_EDFPLUS)
    except OSError as e:
        raise ExportError("cannot create %s: %s" % (path, e)) from e
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # our subfields are checked ASCII already
            w.setSignalHeaders(headers)
            w.setPatientCode(_field(rec.pseudonym))
            w.setEquipment(_field("tonus_%s_fw%s" % (rec.serial, rec.header.get("firmware_version"))))
            w.setStartdatetime(start.replace(microsecond=0))
            w.set_number_of_annotation_signals(max(1, -(-len(notes) // records)))
            w.writeSamples([emg, env, stim])
            for onset, duration, text in notes:
                w.writeAnnotation(onset, duration, text)
    finally:
        w.close()
    check_edf(path, records)
    n = int(present.sum())
    return Exported([str(path)], len(emg) / rate, n, len(emg) - n, len(notes))


def _emg_range(emg, flags):
    """A round range above every sample of the frames without stimulation or saturation.

    16 bits over the rail (about ±52 mV, where stimulation artefacts put a
    fifth of the samples) would resolve 1.6 µV: coarser than resting EMG.
    Artefact samples beyond the range are clipped, and annotated.
    """
    clean = (flags & (m.FLAG_SATURATED | m.FLAG_STIM | m.FLAG_BLANKED)) == 0
    x = np.abs(emg[clean]) if clean.any() else np.abs(emg)
    return nice_ceiling(x.max(), 10)


def _clip_annotations(clipped, rate, limit):
    """One annotation per stretch of clipped samples, stretches less than a second apart merged."""
    out = []
    for a, b in runs(clipped):
        if out and a / rate - (out[-1][0] + out[-1][1]) < 1.0:
            out[-1] = (out[-1][0], b / rate - out[-1][0], out[-1][2])
        else:
            out.append((a / rate, (b - a) / rate, "EMG clipped at +-%g uV" % limit))
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


def _edf_annotations(rec, sig, t0):
    """(onset from the first sample, duration, text) for every annotation; earlier events at 0, marked so."""
    out = []
    for a in rec.annotations(sig):
        onset = a.onset_s - t0
        text = a.text
        if onset < 0:
            onset, text = 0.0, "(before) " + text
        out.append((onset, a.duration_s, text[:_ANNOTATION_CHARS]))
    if rec.protocol_id:
        out.insert(0, (0.0, 0.0, ("protocol %s" % rec.protocol_id)[:_ANNOTATION_CHARS]))
    end = len(sig.emg_uv) / sig.rate_hz
    if end % 1:
        out.append((end, 0.0, "end of signal (zeros follow)"))
    return out


def check_edf(path, records=None):
    """Open an EDF+ file with pyEDFlib; ExportError with the reason when it does not read (or is short)."""
    import pyedflib

    try:
        size = os.path.getsize(path)
        with pyedflib.EdfReader(str(path)) as r:
            got = r.datarecords_in_file
    except OSError as e:
        raise ExportError("%s is not a readable EDF+ file: %s" % (path, e)) from e
    if records is not None and got != records:
        raise ExportError("%s holds %d of %d data records (%d bytes): it was cut short" % (path, got, records, size))
    return got


def events_path(path):
    root, ext = os.path.splitext(str(path))
    return root + "-events" + (ext or ".csv")


def write_csv(rec, path):
    """Write the samples to path and the events to events_path(path)."""
    sig = _signals(rec)
    rate = sig.rate_hz
    keep = np.flatnonzero(sig.present)
    index = sig.first_index + keep
    table = np.column_stack(
        (index, index / rate, sig.emg_uv[keep], sig.envelope_uv[keep], sig.stim_ma[keep], sig.flags[keep])
    )
    # '#' lines first (pandas: comment="#"), then the column names
    head = "# tonus recording: pseudonym %s, protocol %s, device %s, EMG %d Hz, started %s\n" % (
        rec.pseudonym or "-",
        rec.protocol_id or "-",
        rec.serial,
        rate,
        rec.header.get("started_utc"),
    )
    head += "# time_s is device time (sample index / rate); emg_uv is raw, high-passed at 20 Hz; "
    head += "a missing sample has no row\n" + ",".join(CSV_COLUMNS) + "\n"
    ev = events_path(path)
    notes = rec.annotations(sig)
    try:
        with open(path, "w", newline="") as f:
            f.write(head)
            np.savetxt(f, table, fmt=["%d", "%.4f", "%.1f", "%.1f", "%.3f", "%d"], delimiter=",")
        with open(ev, "w", newline="") as f:
            out = csv.writer(f)
            out.writerow(EVENT_COLUMNS)
            for a in notes:
                out.writerow(["%.3f" % a.onset_s, "%.3f" % a.duration_s, a.kind, a.text])
    except OSError as e:
        raise ExportError("cannot write %s: %s" % (e.filename or path, e.strerror)) from e
    return Exported([str(path), ev], len(sig.emg_uv) / rate, len(keep), len(sig.emg_uv) - len(keep), len(notes))


FORMATS = {"edf": write_edf, "csv": write_csv}
