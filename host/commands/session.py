"""`tonus session start|pause|resume|stop|run`.

start, pause, resume and stop send one request and return at once: the
session runs on the device by itself. `run` starts a host-driven session
(with a heartbeat: the device ends it if this computer goes silent), shows
it until it ends, and stops it cleanly on Ctrl-C.
"""

import argparse

_OK_ENDS = ("FINISHED", "REQUEST", "BUTTON")
_END_HINTS = {
    "HEARTBEAT_LOST": "the device heard nothing from this computer for longer than the heartbeat; "
    "check the cable, or raise --heartbeat-ms",
    "PAUSE_TIMEOUT": "the session was paused longer than the device allows",
    "CHECKS_FAILED": "the pre-session checks did not pass: check the probe's contact (lead-off) and the e-stop",
}


def _seconds(text):
    v = int(text)
    if not 1 <= v <= 0xFFFF:
        raise argparse.ArgumentTypeError("must be 1..65535 seconds")
    return v


def _heartbeat(text):
    v = int(text)
    if not 100 <= v <= 0xFFFF:
        raise argparse.ArgumentTypeError("must be 100..65535 ms")
    return v


def register(sub):
    p = sub.add_parser("session", help="start, pause, resume, stop or run a session")
    ss = p.add_subparsers(dest="session_command", metavar="ACTION", required=True)
    start = ss.add_parser("start", help="start a session on the device and return")
    start.add_argument(
        "--demo-seconds", type=_seconds, help="length of the demonstration session (device default if absent)"
    )
    start.set_defaults(run=run_start)
    for name, method in (("pause", "session_pause"), ("resume", "session_resume"), ("stop", "session_stop")):
        q = ss.add_parser(name, help="%s the running session" % name)
        q.set_defaults(run=_simple(method))
    r = ss.add_parser("run", help="run a session here: live view, heartbeat, Ctrl-C stops it")
    r.add_argument(
        "--demo-seconds", type=_seconds, help="length of the demonstration session (device default if absent)"
    )
    r.add_argument(
        "--heartbeat-ms",
        type=_heartbeat,
        default=2000,
        help="the device ends the session if this computer is silent this long (default %(default)s)",
    )
    r.set_defaults(run=run_session)


def _report(args, r):
    from host.commands._connect import emit

    emit(args, {"request": r.request, "state": r.state}, "session: %s" % r.state)


def run_start(args):
    from host.commands._connect import connected

    with connected(args) as c:
        _report(args, c.session_start(demo_s=args.demo_seconds).unwrap())


def _simple(method):
    def run(args):
        from host.commands._connect import connected

        with connected(args) as c:
            _report(args, getattr(c, method)().unwrap())

    return run


def run_session(args):
    from host.commands._connect import connected
    from host.commands._live import Tracker, follow, open_view

    with connected(args) as c:
        c.session_start(demo_s=args.demo_seconds, heartbeat_ms=args.heartbeat_ms).unwrap()
        tracker = Tracker(c.info().unwrap())
        c.stream(True).unwrap()
        view = open_view(args)
        summary = "session interrupted"
        try:
            follow(c, tracker, view, lambda: tracker.end is not None)
            summary = _summary(c, tracker)
        except KeyboardInterrupt:
            r = c.session_stop()
            summary = "stopped by Ctrl-C: the device is %s" % (
                r.state if r.ok else "refusing the stop (%s)" % r.name
            )
            raise
        finally:
            view.close(tracker, summary)
        c.stream(False)
        _raise_unless_ok(tracker, summary)


def _summary(c, t):
    end = t.end
    text = "session ended %s (%s) after %.1f of %.1f s" % (
        end.to_state,
        end.reason,
        t.elapsed_ms / 1000,
        t.duration_ms / 1000,
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
