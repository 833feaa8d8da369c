"""Recordings: what `session run --record` and `tonus record` save, read back whole, cut off or damaged."""

import itertools
import json

import cbor2
import numpy as np
import pytest
from cliutil import run_cli

from host import recording
from host.client import Cue, EmgFrame, SessionSummary, StateChanged

SIM = "sim://?seed=0&patient=healthy&speed=0"


def _info():
    from host.client import Info, Limits, LinkCounters

    return Info(
        "0.1.0",
        "sim",
        "S1",
        "IDLE",
        None,
        None,
        Limits(1, 1, 1, 2000),
        5,
        False,
        None,
        LinkCounters(0, 0, 0, 0, 0),
    )


@pytest.fixture(scope="module")
def session(recorded_demo):
    """A 20 s demonstration session recorded by `session run --record`, and its scores file."""
    path, scores = recorded_demo
    return path, json.loads(scores.read_text())


@pytest.mark.req("UX-RECORD-1")
def test_a_recorded_session_reads_back_as_the_clients_events_and_frames(session):
    path, saved = session
    rec = recording.read(path)
    assert rec.complete and rec.problems == [] and rec.end["items"] == len(rec.items)
    h = rec.header
    assert (h["format"], h["version"], h["board"], h["emg_rate_hz"]) == ("tonus-recording", 1, "sim", 2000)
    assert h["serial"] == saved["device"] and h["firmware_version"] and "pseudonym only" in h["note"]
    assert h["started_utc"].endswith("+00:00") and rec.started.year >= 2025
    states = [(e.from_state, e.to_state) for e in rec if isinstance(e, StateChanged)]
    assert states == [("IDLE", "ARMED"), ("ARMED", "RUNNING"), ("RUNNING", "DONE")]
    assert [c.cue for c in rec.cues] == ["REST", "CONTRACT", "RELAX"]
    assert isinstance(rec.summary, SessionSummary) and rec.summary.run_ms == 20000
    # the summary carries the very scores `--out` saved
    from host import scores

    assert scores.to_json(rec.summary) == saved["scores"]
    host_times = [t for t, _ in rec.items]
    assert host_times == sorted(host_times)
    frames = rec.frames
    assert all(isinstance(f, EmgFrame) for f in frames)
    assert [f.first_index for f in frames[1:]] == [f.end_index for f in frames[:-1]]  # nothing lost


@pytest.mark.req("UX-RECORD-1")
def test_signals_are_contiguous_by_sample_index_and_match_the_frames(session):
    rec = recording.read(session[0])
    sig = rec.signals()
    frames = rec.frames
    assert (
        sig.first_index == frames[0].first_index and len(sig.emg_uv) == frames[-1].end_index - sig.first_index
    )
    assert sig.gaps() == [] and sig.present.all()
    f = frames[len(frames) // 2]
    a = f.first_index - sig.first_index
    np.testing.assert_array_equal(sig.emg_uv[a : a + f.count], np.array(f.samples) / 10)
    assert (sig.envelope_uv[a : a + f.count] == f.envelope_dv / 10).all()
    assert sig.time_s[a] == f.first_index / 2000
    # the contraction shows in the envelope: the CONTRACT cue's mean well above the REST cue's
    cues = {c.cue: c for c in rec.cues}

    def mean(c):
        t = sig.time_s
        return np.nanmean(
            sig.envelope_uv[(t >= c.time_ms / 1000 + 1) & (t < (c.time_ms + c.duration_ms) / 1000)]
        )

    assert mean(cues["CONTRACT"]) > 3 * mean(cues["REST"])


@pytest.mark.req("UX-RECORD-1")
def test_annotations_are_in_device_time(session):
    rec = recording.read(session[0])
    notes = rec.annotations()
    cue = [a for a in notes if a.kind == "cue"]
    assert [(a.text, a.duration_s) for a in cue] == [
        ("cue REST", 10.0),
        ("cue CONTRACT", 5.0),
        ("cue RELAX", 5.0),
    ]
    assert cue[0].onset_s == rec.cues[0].time_ms / 1000
    assert [a.text for a in notes if a.kind == "state"][-1] == "RUNNING -> DONE (FINISHED)"
    assert [a.onset_s for a in notes] == sorted(a.onset_s for a in notes)


def _items_bytes(path):
    """The recording's bytes and where each CBOR item ends: ends[0] the header, ends[k] rec.items[k - 1]."""
    data = path.read_bytes()
    import io

    fp = io.BytesIO(data)
    dec = cbor2.CBORDecoder(fp)
    ends = []
    while fp.tell() < len(data):
        dec.decode()
        ends.append(fp.tell())
    return data, ends


@pytest.mark.req("UX-RECORD-1")
def test_a_cut_off_recording_reads_to_its_last_complete_item_and_says_so(session):
    data, ends = _items_bytes(session[0])
    whole = recording.parse(data)
    # cut inside the 300th item: 299 survive
    cut = recording.parse(data[: ends[300] - 7])
    assert len(cut.items) == 299 and cut.end is None
    assert cut.items == whole.items[:299]
    assert (
        len(cut.problems) == 1
        and "cut off or damaged" in cut.problems[0]
        and "were not read" in cut.problems[0]
    )
    # cut exactly between items: all of them read, the missing end mark is named
    clean_cut = recording.parse(data[: ends[300]])
    assert len(clean_cut.items) == 300 and "without its end mark" in clean_cut.problems[0]


@pytest.mark.req("UX-RECORD-1")
def test_a_damaged_stretch_costs_only_the_items_it_hits(session):
    data, ends = _items_bytes(session[0])
    whole = recording.parse(data)
    bad = bytearray(data)
    bad[ends[100] : ends[100] + 40] = b"\xff" * 40  # the start of items[100], an EMG frame
    rec = recording.parse(bytes(bad))
    assert isinstance(whole.items[100][1], EmgFrame)
    assert len(rec.items) == len(whole.items) - 1 and rec.end is not None
    assert rec.items[:100] == whole.items[:100] and rec.items[100:] == whole.items[101:]
    assert len(rec.problems) == 1 and "damaged bytes" in rec.problems[0]
    sig = rec.signals()  # the lost frame is a gap in the arrays
    assert sig.gaps() == [(whole.items[100][1].first_index, 50)]
    assert any(a.kind == "gap" and a.text == "gap: 50 samples lost" for a in rec.annotations())


@pytest.mark.req("UX-RECORD-1")
@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "not a tonus recording"),
        (b"0       X X X X", "not a tonus recording"),  # an EDF given by mistake
        (cbor2.dumps({"format": "tonus-recording", "version": 99, "emg_rate_hz": 2000}), "update tonus"),
    ],
)
def test_what_is_not_a_recording_is_refused_with_a_reason(tmp_path, capsys, content, message):
    path = tmp_path / "x.tonus"
    path.write_bytes(content)
    with pytest.raises(recording.RecordingError, match=message):
        recording.read(path)
    code, _out, err = run_cli(
        capsys, "export", str(path), "--format", "csv", "--out", str(tmp_path / "x.csv")
    )
    assert code == 1 and message in err and "Traceback" not in err


@pytest.mark.req("UX-RECORD-1", "UX-CLI-1")
def test_tonus_record_saves_the_live_stream_for_the_seconds_asked(tmp_path, capsys):
    path = tmp_path / "live.tonus"
    code, out, err = run_cli(capsys, "--port", SIM, "record", "--out", str(path), "--seconds", "2")
    assert code == 0, err
    assert "recorded 2.0 s of device time" in out and str(path) in out
    rec = recording.read(path)
    assert rec.complete and rec.header["protocol_id"] is None and rec.header["patient"] is None
    assert 2.0 <= len(rec.signals().emg_uv) / 2000 < 2.1
    assert all(f.state == "IDLE" for f in rec.frames)
    # never overwritten
    code, _, err = run_cli(capsys, "--port", SIM, "record", "--out", str(path), "--seconds", "1")
    assert code == 1 and "exists already" in err
    assert recording.read(path).items == rec.items


@pytest.mark.req("UX-RECORD-1")
def test_an_unknown_field_from_a_newer_tonus_is_ignored(tmp_path):
    path = tmp_path / "n.tonus"
    with recording.Recorder(path, _info()) as r:
        r(Cue(1, 0, "REST", 10, 1000))
    data = path.read_bytes()
    end = recording.parse(data).end
    body = data[: len(data) - len(cbor2.dumps(end))]
    extra = cbor2.dumps(
        {
            "type": "Cue",
            "host_s": 0.5,
            "seq": 2,
            "phase": 1,
            "cue": "RELAX",
            "time_ms": 20,
            "duration_ms": 5,
            "loudness": 3,
        }
    )
    rec = recording.parse(body + extra + cbor2.dumps(end))
    assert [c.cue for c in rec.cues] == ["REST", "RELAX"] and rec.complete


@pytest.fixture(scope="module")
def validate():
    """validate(rule, items): zcbor's verdict on each CBOR item against docs/recording.cddl (None: valid)."""
    from pathlib import Path

    from tools import zcbor_env
    from tools.mpwasm import Unavailable

    try:
        zcbor_env.python()
    except Unavailable as e:
        pytest.skip(str(e))
    cddl = Path(__file__).resolve().parents[2] / "docs" / "recording.cddl"
    return lambda rule, items: zcbor_env.validate(cddl, rule, items)


@pytest.mark.req("UX-RECORD-2")
def test_a_recording_is_what_docs_recording_cddl_says(session, validate):
    data, ends = _items_bytes(session[0])
    items = [data[a:b] for a, b in itertools.pairwise([0, *ends])]
    head, body, end = items[0], items[1:-1], items[-1]
    # every event and the first frames (the frames all have one shape)
    kinds = [cbor2.loads(x)["type"] for x in body]
    body = [x for k, x in zip(kinds, body, strict=True) if k != "EmgFrame"] + [
        x for k, x in zip(kinds, body, strict=True) if k == "EmgFrame"
    ][:20]
    assert validate("header", [head]) == [None]
    assert validate("item", body) == [None] * len(body)
    assert validate("end", [end]) == [None]
    # and the rules bite: a header of another version, a frame without its samples, an end without its count
    frame = cbor2.loads(body[-1])
    del frame["data"]
    wrong = [
        cbor2.dumps(dict(cbor2.loads(head), version=2)),
        cbor2.dumps(frame),
        cbor2.dumps({"type": "end", "host_s": 1.0, "reason": "closed"}),
    ]
    assert [
        v is not None
        for v in (
            validate("header", wrong[:1]) + validate("emg-frame", wrong[1:2]) + validate("end", wrong[2:])
        )
    ] == [True, True, True]


@pytest.mark.req("UX-RECORD-2")
def test_an_item_of_an_unknown_type_is_left_out_and_named_never_taken_for_damage(session):
    data, ends = _items_bytes(session[0])
    whole = recording.parse(data)
    extra = cbor2.dumps({"type": "Hologram", "host_s": 1.5, "depth": 3})
    rec = recording.parse(data[: ends[5]] + extra + extra + data[ends[5] :])
    assert rec.items == whole.items and rec.end is not None
    assert rec.problems == [
        "2 items of type 'Hologram' are not understood by this tonus and were left out: update tonus"
    ]


@pytest.mark.req("UX-RECORD-2")
@pytest.mark.parametrize("key", ["emg_rate_hz", "started_unix_s", "device_uptime_ms"])
def test_a_header_without_a_required_field_is_refused(session, key):
    data, ends = _items_bytes(session[0])
    head = cbor2.loads(data[: ends[0]])
    del head[key]
    with pytest.raises(recording.RecordingError, match=f"no valid {key} in its header"):
        recording.parse(cbor2.dumps(head) + data[ends[0] :])


@pytest.mark.req("UX-RECORD-1")
def test_a_full_disk_is_a_recording_error_and_a_closed_recorder_takes_no_more(tmp_path, monkeypatch):
    import errno
    import io

    from host.recording import recorder

    class FullDisk(io.BytesIO):
        """Takes the header's flush, then refuses every flush as a full disk does."""

        room = 1

        def flush(self):
            if self.closed:
                return
            if self.room == 0:
                raise OSError(errno.ENOSPC, "No space left on device")
            self.room -= 1

    monkeypatch.setattr(recorder, "open", lambda path, mode: FullDisk(), raising=False)
    r = recording.Recorder(tmp_path / "full.tonus", _info())
    with pytest.raises(recording.RecordingError, match=r"cannot write the recording .*No space left"):
        r(Cue(1, 0, "REST", 10, 1000))  # an event is flushed at once
    with pytest.raises(recording.RecordingError, match="No space left"):
        r.close()
    with pytest.raises(recording.RecordingError, match="is closed"):
        r(Cue(2, 0, "RELAX", 20, 1000))
    r.close()  # closing twice is harmless
