"""EDF+ and CSV export: what pyEDFlib and a CSV reader get back from a recorded stimulation session."""

import csv
import io
import json
from pathlib import Path

import cbor2
import numpy as np
import pyedflib
import pytest
from cliutil import run_cli

from host import export, recording
from host.cli import main
from host.client import EmgFrame
from host.errors import TonusError
from protocol import messages as m

SIM = "sim://?seed=0&patient=healthy&speed=0"
EXAMPLE = "examples/protocols/low-frequency-stimulation.toml"


@pytest.fixture(scope="module")
def stim_recording(tmp_path_factory):
    """A 70 s session: 10 s baseline, 60 s of 10 Hz stimulation at 10 mA, recorded."""
    d = tmp_path_factory.mktemp("stim")
    text = Path(EXAMPLE).read_text()
    text = text.replace('id = "lf-stim-10hz"', 'id = "lf-stim-short"')
    text = text.replace("duration_s = 60", "duration_s = 10").replace("duration_s = 1200", "duration_s = 60")
    (d / "p.toml").write_text(text)
    code = main(
        [
            "--port",
            SIM,
            "--json",
            "session",
            "run",
            "--protocol",
            str(d / "p.toml"),
            "--level",
            "10",
            "--record",
            str(d / "s.tonus"),
            "--out",
            str(d / "s.json"),
        ]
    )
    assert code == 0
    return d / "s.tonus"


def _resolution(r, ch):
    return (r.getPhysicalMaximum(ch) - r.getPhysicalMinimum(ch)) / (
        r.getDigitalMaximum(ch) - r.getDigitalMinimum(ch)
    )


@pytest.mark.req("UX-EXPORT-1", "UX-CLI-1")
def test_edf_reads_back_with_labels_units_rates_values_and_annotations(stim_recording, tmp_path, capsys):
    out = tmp_path / "s.edf"
    code, text, err = run_cli(capsys, "export", str(stim_recording), "--format", "edf", "--out", str(out))
    assert code == 0, err
    assert text.startswith("EDF: 7") and str(out) in text
    rec = recording.read(stim_recording)
    sig = rec.signals()
    with pyedflib.EdfReader(str(out)) as r:
        assert r.filetype == pyedflib.FILETYPE_EDFPLUS and "EDF+C" in out.read_bytes()[:256].decode("ascii")
        assert r.getSignalLabels() == ["EMG", "EMG envelope", "Stim current"]
        assert [r.getPhysicalDimension(i) for i in range(3)] == ["uV", "uV", "mA"]
        assert list(r.getSampleFrequencies()) == [2000, 40, 40]  # envelope and current: one value per frame
        assert r.getPrefilter(0) == export.EMG_FILTER and "one value per 25 ms frame" in r.getPrefilter(1)
        n = len(sig.emg_uv)
        emg = r.readSignal(0)
        assert len(emg) == -(-n // 2000) * 2000  # whole data records of 1 s
        # only stimulation artefacts may lie beyond the range (see the clipping test below)
        limit = r.getPhysicalMaximum(0)
        beyond = np.abs(sig.emg_uv) > limit
        assert (sig.flags[beyond] & (m.FLAG_STIM | m.FLAG_SATURATED | m.FLAG_BLANKED)).all()
        np.testing.assert_allclose(emg[:n], np.clip(sig.emg_uv, -limit, limit), atol=_resolution(r, 0))
        assert _resolution(r, 0) < 0.1  # the EMG itself finer than the device's 0.1 µV
        env = r.readSignal(1)[: n // 50]  # the device's own values, not resampled
        np.testing.assert_allclose(env, sig.envelope_uv[::50], atol=_resolution(r, 1))
        stim = r.readSignal(2)[: n // 50]
        np.testing.assert_allclose(stim, sig.stim_ma[::50], atol=_resolution(r, 2))
        assert stim.max() == pytest.approx(10.0, abs=_resolution(r, 2)) and r.getPhysicalMaximum(2) >= 10
        assert stim[: 5 * 40].max() == 0  # nothing in the baseline
        # the patient field holds the pseudonym only; the equipment names the device
        head = out.read_bytes()[:168].decode("ascii")
        assert head[8:88].split() == ["P-0042", "X", "X", "X"]
        assert head[88:168].split()[-1] == "tonus_{}_fw{}".format(rec.serial, rec.header["firmware_version"])
        start = rec.wall_time(sig.first_index / 2000).astimezone().replace(tzinfo=None, microsecond=0)
        assert r.getStartdatetime() == start
        onsets, durations, texts = r.readAnnotations()
    notes = {}
    for text, when in zip(texts, zip(onsets, durations, strict=True), strict=True):
        notes.setdefault(text, when)  # the first of each
    t0 = sig.first_index / 2000
    cue = rec.cues[0]
    assert notes["cue REST"] == pytest.approx((cue.time_ms / 1000 - t0, cue.duration_ms / 1000), abs=1e-4)
    assert notes["phase 2 stimulation"][1] == pytest.approx(60, abs=0.01)
    assert notes["protocol lf-stim-short"] == (0, 0)
    assert "stim ON 10.0/20.0 mA" in notes and "RUNNING -> DONE (FINISHED)" in notes
    assert any(t.startswith("stim READY 0.0/20.0 mA") and t.endswith("ohm") for t in texts)


def _rewrite(path, keep, tweak=lambda it: it):
    """The recording's bytes with only the items keep(index, item) accepts, each passed through tweak."""
    rec = recording.read(path)
    out = [cbor2.dumps(rec.header)]
    out += [recording.encode_item(tweak(it), t) for k, (t, it) in enumerate(rec.items) if keep(k, it)]
    return rec, b"".join(out) + cbor2.dumps(rec.end)


@pytest.mark.req("UX-EXPORT-1")
def test_gaps_are_zero_filled_and_annotated_and_big_values_do_not_clip(stim_recording, tmp_path):
    frames = [
        k for k, (_t, it) in enumerate(recording.read(stim_recording).items) if isinstance(it, EmgFrame)
    ]
    lost = set(frames[200:205])
    big = frames[300]

    def tweak(it):
        if isinstance(it, EmgFrame) and it.first_index == loud_index:
            return EmgFrame(
                it.seq,
                it.first_index,
                np.full(it.count, -123456, "<i4").tobytes(),
                it.envelope_dv,
                it.state,
                it.flags,
                it.stim_ua,
            )
        return it

    rec0 = recording.read(stim_recording)
    loud_index = rec0.items[big][1].first_index
    gap_index = rec0.items[frames[200]][1].first_index
    _, data = _rewrite(stim_recording, lambda k, it: k not in lost, tweak)
    path = tmp_path / "gap.tonus"
    path.write_bytes(data)
    rec = recording.read(path)
    assert rec.complete
    done = export.write_edf(rec, tmp_path / "gap.edf")
    assert done.missing == 250
    first = rec.signals().first_index
    with pyedflib.EdfReader(str(tmp_path / "gap.edf")) as r:
        emg = r.readSignal(0)
        a = gap_index - first
        assert (np.abs(emg[a : a + 250]) <= _resolution(r, 0)).all()
        b = loud_index - first
        assert r.getPhysicalMinimum(0) <= -12345.6 and emg[b] == pytest.approx(
            -12345.6, abs=_resolution(r, 0)
        )
        onsets, durations, texts = r.readAnnotations()
    k = list(texts).index("gap: 250 samples lost")
    assert onsets[k] == pytest.approx(a / 2000, abs=1e-4) and durations[k] == pytest.approx(0.125)


@pytest.mark.req("UX-EXPORT-1")
def test_an_artefact_on_the_rail_is_clipped_to_the_emgs_range_and_annotated(stim_recording, tmp_path):
    rec0 = recording.read(stim_recording)
    frames = [it for _t, it in rec0.items if isinstance(it, EmgFrame)]
    hit = frames[len(frames) // 2]
    rail = np.resize(np.array([524287, -524287], "<i4"), hit.count)

    def tweak(it):
        if isinstance(it, EmgFrame) and it.first_index == hit.first_index:
            return EmgFrame(
                it.seq,
                it.first_index,
                rail.tobytes(),
                it.envelope_dv,
                it.state,
                it.flags | m.FLAG_STIM | m.FLAG_SATURATED,
                it.stim_ua,
            )
        return it

    _, data = _rewrite(stim_recording, lambda k, it: True, tweak)
    path = tmp_path / "rail.tonus"
    path.write_bytes(data)
    export.write_edf(recording.read(path), tmp_path / "rail.edf")
    export.write_edf(rec0, tmp_path / "clean.edf")
    with pyedflib.EdfReader(str(tmp_path / "clean.edf")) as r:
        clean_limit = r.getPhysicalMaximum(0)
    with pyedflib.EdfReader(str(tmp_path / "rail.edf")) as r:
        limit = r.getPhysicalMaximum(0)
        a = hit.first_index - frames[0].first_index
        emg = r.readSignal(0)[a : a + hit.count]
        onsets, durations, texts = r.readAnnotations()
    assert limit == clean_limit < 100  # the rail does not cost the EMG its resolution
    np.testing.assert_allclose(emg, np.resize([limit, -limit], hit.count), atol=2 * limit / 65535)
    k = list(texts).index(f"EMG clipped at +-{limit:g} uV")
    assert onsets[k] == pytest.approx(a / 2000, abs=1e-4) and durations[k] == pytest.approx(hit.count / 2000)


@pytest.mark.req("UX-EXPORT-1")
def test_csv_round_trips_samples_and_events(stim_recording, tmp_path, capsys):
    out = tmp_path / "s.csv"
    code, text, err = run_cli(
        capsys, "--json", "export", str(stim_recording), "--format", "csv", "--out", str(out)
    )
    assert code == 0, err
    report = json.loads(text)
    assert report["paths"] == [str(out), str(tmp_path / "s-events.csv")] and report["problems"] == []
    rec = recording.read(stim_recording)
    sig = rec.signals()
    lines = out.read_text().splitlines()
    assert lines[0].startswith("# tonus recording: pseudonym P-0042, protocol lf-stim-short")
    rows = list(csv.reader(io.StringIO("\n".join(x for x in lines if not x.startswith("#")))))
    assert tuple(rows[0]) == export.CSV_COLUMNS and len(rows) - 1 == len(sig.emg_uv) == report["samples"]
    table = np.array(rows[1:], dtype=float)
    np.testing.assert_array_equal(table[:, 0], sig.first_index + np.arange(len(sig.emg_uv)))
    np.testing.assert_allclose(table[:, 1], sig.time_s, atol=5e-5)
    np.testing.assert_array_equal(table[:, 2], sig.emg_uv)  # 0.1 µV: exact in one decimal
    np.testing.assert_array_equal(table[:, 3], sig.envelope_uv)
    np.testing.assert_array_equal(table[:, 4], sig.stim_ma)
    np.testing.assert_array_equal(table[:, 5], sig.flags)
    assert table[:, 4].max() == 10.0
    with open(tmp_path / "s-events.csv", newline="") as f:
        events = list(csv.DictReader(f))
    notes = rec.annotations()
    assert [(e["kind"], e["text"]) for e in events] == [(a.kind, a.text) for a in notes]
    assert [float(e["time_s"]) for e in events] == pytest.approx([a.onset_s for a in notes], abs=1e-3)


@pytest.mark.req("UX-EXPORT-1", "UX-RECORD-1")
def test_a_cut_off_recording_is_exported_as_far_as_it_reads_and_the_command_says_what_was_lost(
    stim_recording, tmp_path, capsys
):
    data = stim_recording.read_bytes()
    path = tmp_path / "cut.tonus"
    path.write_bytes(data[: len(data) // 2 + 3])
    out = tmp_path / "cut.edf"
    code, _text, err = run_cli(capsys, "export", str(path), "--format", "edf", "--out", str(out))
    assert code == 1 and "Traceback" not in err
    assert "cut.tonus is damaged; exported what could be read" in err and "cut off or damaged" in err
    with pyedflib.EdfReader(str(out)) as r:  # the partial result is kept, and reads
        assert 30 < r.file_duration < 40


@pytest.mark.req("UX-EXPORT-1")
def test_a_truncated_edf_is_named_as_such(stim_recording, tmp_path):
    out = tmp_path / "s.edf"
    export.write_edf(recording.read(stim_recording), out)
    records = export.check_edf(out)
    data = out.read_bytes()
    (tmp_path / "short.edf").write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(export.ExportError, match=r"short\.edf is not a readable EDF"):
        export.check_edf(tmp_path / "short.edf", records)
    (tmp_path / "head.edf").write_bytes(data[:100])
    with pytest.raises(export.ExportError, match=r"head\.edf is not a readable EDF"):
        export.check_edf(tmp_path / "head.edf")


@pytest.mark.req("UX-EXPORT-1")
def test_a_recording_without_emg_cannot_be_exported(tmp_path, stim_recording):
    _rec, data = _rewrite(stim_recording, lambda k, it: not isinstance(it, EmgFrame))
    path = tmp_path / "events.tonus"
    path.write_bytes(data)
    with pytest.raises(export.ExportError, match="holds no EMG frames"):
        export.write_csv(recording.read(path), tmp_path / "x.csv")


@pytest.mark.parametrize(
    "value, floor, want",
    [(0, 10, 10), (37.2, 10, 50), (200, 10, 200), (201, 1, 500), (12345.6, 10, 20000), (0.4, 1, 1)],
)
@pytest.mark.req("UX-EXPORT-1")
def test_physical_ranges_are_round_and_above_the_largest_value(value, floor, want):
    assert export.nice_ceiling(value, floor) == want


def _joined(texts):
    """Annotation texts with the parts of each split one ("[k/n] ...") joined again."""
    out, parts = [], []
    for t in texts:
        if t.startswith("[") and "/" in t.split("]")[0]:
            k, n = (int(x) for x in t[1:].split("]")[0].split("/"))
            parts.append(t.split("] ", 1)[1])
            if k == n:
                out.append(" ".join(parts))
                parts = []
        else:
            out.append(t)
    return out


@pytest.mark.req("UX-EXPORT-2")
def test_two_independent_strict_readers_read_the_edf_whole(stim_recording, tmp_path):
    mne = pytest.importorskip("mne")
    edfio = pytest.importorskip("edfio")
    import dataclasses

    from host.client import StateChanged

    def tweak(it):  # a state change with a reason longer than EDFlib keeps
        if isinstance(it, StateChanged) and it.to_state == "RUNNING":
            return dataclasses.replace(it, reason="CHECKS_PASSED after the electrode and impedance check")
        return it

    _, data = _rewrite(stim_recording, lambda k, it: True, tweak)
    (tmp_path / "long.tonus").write_bytes(data)
    rec = recording.read(tmp_path / "long.tonus")
    out = tmp_path / "s.edf"
    done = export.write_edf(rec, out)
    sig = rec.signals()
    t0 = sig.first_index / 2000
    want = ["protocol lf-stim-short"] + [
        ("pre: " if a.onset_s < t0 else "") + a.text for a in rec.annotations()
    ]
    assert any(len(t) > export.ANNOTATION_CHARS for t in want)  # the rule is exercised
    edf = edfio.read_edf(out)
    assert [s.label for s in edf.signals] == ["EMG", "EMG envelope", "Stim current"]
    assert [s.sampling_frequency for s in edf.signals] == [2000, 40, 40]
    assert next(s.prefiltering for s in edf.signals) == export.EMG_FILTER
    assert all(s.prefiltering and s.physical_dimension for s in edf.signals)
    texts = [a.text for a in edf.annotations]
    assert all(len(t) <= export.ANNOTATION_CHARS for t in texts) and len(texts) == done.annotations
    assert sorted(_joined(texts)) == sorted(
        want + ["end of signal (zeros follow)"] * (len(sig.emg_uv) % 2000 > 0)
    )
    np.testing.assert_allclose(
        edf.signals[0].data[: len(sig.emg_uv)][sig.flags == 0], sig.emg_uv[sig.flags == 0], atol=0.01
    )
    raw = mne.io.read_raw_edf(out, preload=False, verbose="error")
    assert raw.ch_names == ["EMG", "EMG envelope", "Stim current"] and raw.info["sfreq"] == 2000
    assert sorted(_joined(list(raw.annotations.description))) == sorted(_joined(texts))
    emg = raw.get_data(picks=["EMG"], start=0, stop=2000)[0] * 1e6  # MNE reads volts
    np.testing.assert_allclose(emg, edf.signals[0].data[:2000], atol=0.01)


@pytest.mark.parametrize(
    "text", ["short", "pre: ARMED -> RUNNING (CHECKS_PASSED) and then some more words", "x" * 100]
)
@pytest.mark.req("UX-EXPORT-2")
def test_a_long_annotation_is_split_at_spaces_never_cut(text):
    parts = export.fit_annotation(text)
    assert all(len(p) <= export.ANNOTATION_CHARS for p in parts)
    assert (
        _joined(parts) == [text]
        if " " in text or len(text) <= 40
        else "".join(p.split("] ", 1)[1] for p in parts) == text
    )


@pytest.mark.req("UX-EXPORT-3")
@pytest.mark.parametrize("fmt", ["edf", "csv"])
def test_a_failed_export_leaves_the_earlier_file_and_no_partial_one(
    stim_recording, tmp_path, monkeypatch, fmt
):
    out = tmp_path / ("s." + fmt)
    out.write_text("the earlier export\n")
    rec = recording.read(stim_recording)
    calls = []

    def failing_blocks(samples):  # the recording turns unreadable after its first minute has been written
        for k, block in enumerate(recording.Recording.blocks(rec, samples)):
            calls.append(k)
            if len(calls) == 2:
                raise OSError(28, "No space left on device")
            yield block

    monkeypatch.setattr(rec, "blocks", failing_blocks)
    with pytest.raises((OSError, TonusError)):
        export.FORMATS[fmt](rec, out)
    assert out.read_text() == "the earlier export\n" and len(calls) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s." + fmt]  # no temporary file left behind
