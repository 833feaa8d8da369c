"""`tonus session start|pause|resume|stop|run`.

start, pause, resume and stop send one request and return at once: the
session runs on the device by itself. `run` starts a host-driven session
(with a heartbeat: the device ends it if this computer goes silent), shows
it until it ends, and stops it cleanly on Ctrl-C.
"""

import contextlib
import os

from host import cliargs

_OK_ENDS = ("FINISHED", "REQUEST", "BUTTON")
_SCORE_WAIT_S = 2.0
_HOLD_POLL_S = 0.3  # well inside the device's 1 s for a host that set a level
_END_HINTS = {
    "HEARTBEAT_LOST": "the device heard nothing from this computer for longer than the heartbeat "
    "(this computer too busy or asleep, or the link cut); it logged the session as ended by the host, "
    "and gives the session back if it ran under a quarter of its plan; raise --heartbeat-ms on a "
    "busy computer",
    "PAUSE_TIMEOUT": "the session was paused longer than the device allows",
    "CHECKS_FAILED": "the pre-session checks did not pass: "
    "check the probe's contact (lead-off) and the e-stop",
}


_seconds = cliargs.whole(1, 0xFFFF, "s")
_heartbeat = cliargs.whole(100, 0xFFFF, "ms")
_milliamps = cliargs.milliamps
_score = cliargs.whole(0, 10)


def register(sub):
    p = sub.add_parser("session", help="start, pause, resume, stop or run a session")
    ss = p.add_subparsers(dest="session_command", metavar="ACTION", required=True)
    start = ss.add_parser("start", help="start a session on the device and return")
    start.add_argument(
        "--demo-seconds", type=_seconds, help="length of the demonstration session (device default if absent)"
    )
    start.set_defaults(run=run_start)
    lv = ss.add_parser("level", help="set the stimulation level of the running phase (mA)")
    lv.add_argument("milliamps", type=_milliamps, help="the level, within the approved range")
    lv.set_defaults(run=run_level)
    rt = ss.add_parser("rate", help="record the patient's pain/comfort score (0-10) for the last session")
    rt.add_argument("score", type=_score, help="0 = no pain, fully comfortable ... 10 = worst imaginable")
    rt.add_argument(
        "--session",
        type=cliargs.whole(0, 0xFFFFFFFF),
        metavar="N",
        help="the logged session's number (default: the last)",
    )
    rt.set_defaults(run=run_rate)
    for name, method in (("pause", "session_pause"), ("resume", "session_resume"), ("stop", "session_stop")):
        q = ss.add_parser(name, help=f"{name} the running session")
        q.set_defaults(run=_simple(method))
    r = ss.add_parser("run", help="run a session here: live view, heartbeat, Ctrl-C stops it")
    r.add_argument(
        "--demo-seconds", type=_seconds, help="length of the demonstration session (device default if absent)"
    )
    r.add_argument(
        "--heartbeat-ms",
        type=_heartbeat,
        default=1000,
        help="the device ends the session if this computer is silent this long (default %(default)s)",
    )
    r.add_argument(
        "--level",
        type=_milliamps,
        metavar="MA",
        help="stimulation level to ask for in each stimulation or ETS phase, once its electrode check "
        "passed (the device refuses one above the approved maximum; the output ramps to it)",
    )
    r.add_argument(
        "--protocol",
        metavar="FILE",
        help="first approve this protocol: a signed file for any board, or on a simulator a protocol "
        "file (.toml) it signs with a key made for the run",
    )
    r.add_argument(
        "--out",
        metavar="FILE",
        help="save the session's scores (and a Glazer assessment's measures) as JSON "
        "(default: tonus-session-SERIAL-TIME.json here)",
    )
    r.add_argument(
        "--record",
        metavar="FILE",
        help="also save the live stream and every event to this recording (.tonus; for tonus export/report)",
    )
    r.set_defaults(run=run_session)


def _report(args, r):
    from host.commands._connect import emit

    emit(args, {"request": r.request, "state": r.state}, f"session: {r.state}")


def run_start(args):
    from host.commands._connect import connected

    with connected(args) as c:
        _refuse_unasked_demo(c, args)
        _report(args, c.session_start(demo_s=args.demo_seconds).unwrap())


def run_rate(args):
    from host.commands._connect import connected, emit
    from host.errors import TonusError

    with connected(args) as c:
        seq = args.session
        if seq is None:
            end = c.log_read(0, 1).unwrap().end_seq
            if end == 0:
                raise TonusError("the device has logged no session yet")
            seq = end - 1
        c.session_rate(seq, args.score).unwrap()
    emit(args, {"session": seq, "pain": args.score}, f"session {seq:d} rated {args.score:d}/10")


def run_level(args):
    import time

    from host.commands._connect import connected, emit, say

    with connected(args) as c:
        r = c.stim_level(args.milliamps).unwrap()
        emit(args, {"level_ua": r.level_ua}, "stimulation level %.1f mA" % (r.level_ua / 1000))
        # the device holds a host's level only while that host keeps talking (SAF-LEVEL-1)
        say(args, "the level holds while this command runs; Ctrl-C lets go and the device returns to 0 mA")
        while c.info().unwrap().state == "RUNNING":
            time.sleep(_HOLD_POLL_S)
        say(args, "the session is no longer running; the level is back to 0 mA")


def _simple(method):
    def run(args):
        from host.commands._connect import connected

        with connected(args) as c:
            _report(args, getattr(c, method)().unwrap())

    return run


def _refuse_unasked_demo(c, args):
    """Without a protocol the device runs a demonstration: only when that was asked for."""
    from host.errors import TonusError

    if args.demo_seconds is None and c.info().unwrap().protocol is None:
        raise TonusError(
            "the device has no approved protocol: approve one with --protocol FILE "
            "(or 'tonus protocol upload FILE'), or ask for a demonstration with --demo-seconds N"
        )


def run_session(args):
    from host import atomic
    from host.commands._connect import connected

    if args.out:
        atomic.check_writable(args.out)  # before the session: its scores must have somewhere to go
    from host.commands._live import Tracker, follow, open_view

    with connected(args) as c:
        if args.protocol:
            _approve(c, args)
        else:
            _refuse_unasked_demo(c, args)
        recorder = _recorder(c, args)  # before the start: a bad path must not leave a session running
        try:
            c.session_start(demo_s=args.demo_seconds, heartbeat_ms=args.heartbeat_ms).unwrap()
            info = c.info().unwrap()
            tracker = Tracker(info, keep=True)
            c.stream(True).unwrap()
        except BaseException:
            discard_if_empty(recorder, "the session did not start")
            raise
        view = open_view(args)
        summary = "session interrupted"
        on_item = _record_too(recorder, _level_setter(c, args, view))
        try:
            follow(c, tracker, view, lambda: tracker.end is not None, on_item)
            _await_scores(c, tracker, view, on_item)
            summary = _summary(c, tracker)
        except KeyboardInterrupt:
            r = c.session_stop()
            summary = "stopped by Ctrl-C: the device is %s" % (
                r.state if r.ok else f"refusing the stop ({r.name})"
            )
            raise
        finally:
            view.close(tracker, summary)
            if recorder is not None:
                recorder.close(summary)
                if not args.json:
                    print(f"recording saved to {recorder.path}", flush=True)
        c.stream(False)
        if tracker.summary is not None:
            _report_scores(args, info, tracker)
        _raise_unless_ok(tracker, summary)


def _approve(c, args):
    import contextlib
    import hashlib
    from pathlib import Path

    from host import simclinic
    from host.errors import TonusError
    from host.upload import upload

    path = Path(args.protocol)
    if path.suffix == ".toml":
        stored = simclinic.approve(c, path)
    else:
        try:
            signed = path.read_bytes()
        except OSError as e:
            raise TonusError(f"cannot read {path}: {e.strerror}") from e
        current = c.info().unwrap().protocol
        if current is not None and current.sha256 == hashlib.sha256(signed).hexdigest():
            stored = current  # approved already: uploading it again would be refused as a rollback
        else:
            stored = upload(lambda: contextlib.nullcontext(c), signed)
    if not args.json:
        print(
            (
                f"approved protocol {stored.id} v{stored.sequence:d} for {stored.patient}: "
                f"{stored.remaining:d} of {stored.sessions:d} sessions left"
            ),
            flush=True,
        )


def _level_setter(c, args, view):
    """Ask for --level whenever a stimulation phase is ready (each phase starts from zero)."""
    from host.client import StimEvent
    from host.commands._connect import say

    def on_item(item):
        if not (isinstance(item, StimEvent) and item.state == "READY" and item.level_ua == 0):
            return
        if args.level is None:
            say(
                args,
                "a stimulation phase is ready at 0 mA: raise the level with the device's buttons or "
                "'tonus session level MA', or run with --level MA",
                limit_ua=item.limit_ua,
            )
            return
        level = args.level
        if level > item.limit_ua:
            say(
                args,
                (
                    f"--level {level / 1000:.1f} mA is above this phase's approved maximum of "
                    f"{item.limit_ua / 1000:.1f} mA: asking for {item.limit_ua / 1000:.1f} mA"
                ),
                requested_ua=level,
                limit_ua=item.limit_ua,
            )
            level = item.limit_ua
        r = c.stim_level(level)
        if r.ok:
            view.note("level set to %.1f mA" % (r.level_ua / 1000), None)
        else:
            view.note(f"level refused: {r.detail}", None)

    return on_item


def _recorder(c, args):
    """A host.recording.Recorder for --record, or None."""
    from host.recording import Recorder

    return Recorder(args.record, c.info().unwrap()) if getattr(args, "record", None) else None


def discard_if_empty(recorder, reason):
    """An empty recording goes: no file for a report to count as a session, none to block a rerun."""
    if recorder is not None and recorder.items == 0:
        recorder.close(reason)
        with contextlib.suppress(OSError):
            os.unlink(recorder.path)


def _record_too(recorder, on_item):
    """on_item for follow(): the recorder's and another's (either may be None)."""
    if recorder is None or on_item is None:
        return recorder or on_item

    def both(item):
        recorder(item)
        on_item(item)

    return both


def _await_scores(c, tracker, view, on_item=None):
    """The device scores a session that ran right after it ends; wait briefly for it."""
    import time

    from host.commands._live import follow

    if tracker.end.from_state not in ("RUNNING", "PAUSED"):
        return
    deadline = time.monotonic() + _SCORE_WAIT_S
    follow(c, tracker, view, lambda: tracker.summary is not None or time.monotonic() > deadline, on_item)


def _report_scores(args, info, tracker):
    import json
    import time
    from pathlib import Path

    from host import atomic, glazer, scores
    from host.commands._connect import json_line

    result = {"device": info.serial, "protocol": info.protocol.id if info.protocol else None}
    result["scores"] = scores.to_json(tracker.summary)
    text = scores.lines(tracker.summary)
    if any(p["type"] == "glazer" for p in result["scores"]["phases"]):
        try:
            assessment = glazer.analyse(_recording(tracker))
        except glazer.GlazerError as e:
            text.append(f"Glazer assessment not computed: {e}")
            result["glazer_error"] = str(e)
        else:
            result["glazer"] = assessment
            text += glazer.lines(assessment)
    out = Path(args.out or "tonus-session-{}-{}.json".format(info.serial, time.strftime("%Y%m%d-%H%M%S")))
    atomic.write_text(out, json.dumps(result, indent=2) + "\n")
    text.append(f"saved to {out}")
    if args.json:
        json_line(dict(type="scores", saved=str(out), **result))
    else:
        print("\n".join(text), flush=True)


def _recording(tracker):
    """The kept stream as one array from its first index; gaps are zeros and must stay rare."""
    import numpy as np

    from host import glazer

    frames = tracker.kept_frames
    if not frames:
        raise glazer.GlazerError("no EMG was streamed")
    first = frames[0][0]
    end = max(i + len(d) // 4 for i, d in frames)
    x = np.zeros(end - first)
    have = 0
    for i, d in frames:
        a = np.frombuffer(d, dtype="<i4")
        x[i - first : i - first + len(a)] = a / 10.0
        have += len(a)
    missing = len(x) - have
    if missing > len(x) // 100:
        raise glazer.GlazerError(f"{missing:d} of {len(x)} samples were lost on the way; run it again")
    return glazer.Recording(tracker.rate_hz, first, x, tracker.cues)


def _summary(c, t):
    end = t.end
    text = (
        f"session ended {end.to_state} ({end.reason}) after {t.elapsed_ms / 1000:.1f} of "
        f"{t.duration_ms / 1000:.1f} s"
    )
    if end.to_state == "FAULT":
        fault = c.info().unwrap().fault
        text += ": fault %s; release the e-stop and run 'tonus fault clear'" % (fault.name if fault else "?")
    elif end.reason in _END_HINTS:
        text += ": " + _END_HINTS[end.reason]
    return text


def _raise_unless_ok(t, summary):
    from host.errors import TonusError

    if t.end.to_state != "DONE" or t.end.reason not in _OK_ENDS:
        raise TonusError(summary)
