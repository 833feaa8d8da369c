"""`tonus view`: live biofeedback in the browser, for the clinician and the patient.

Serves two pages on this computer (127.0.0.1 unless --bind says otherwise;
the printed URL holds a random token that the pages need): the clinician's
screen at the URL, the patient's at URL + "patient". Both control the device
(start, pause, resume, stop, level, emergency stop); the clinician's adds
markers to the recording. The recording is written as the link delivers,
whatever the pages do; Ctrl-C stops a running session, closes the recording
and ends the server.
"""

import argparse
import re


def _bind(text):
    host, sep, port = text.rpartition(":")
    if not sep or not host:
        raise argparse.ArgumentTypeError("HOST:PORT, such as 127.0.0.1:8765 (port 0: any free port)")
    if not re.fullmatch(r"[0-9]{1,5}", port, re.ASCII):
        raise argparse.ArgumentTypeError("the port must be a number 0..65535")
    n = int(port)
    if not 0 <= n <= 65535:
        raise argparse.ArgumentTypeError("the port must be 0..65535")
    return host.strip("[]"), n


def register(sub):
    from host.commands.session import _heartbeat, _seconds

    p = sub.add_parser(
        "view", help="live biofeedback in the browser: clinician and patient screens (Ctrl-C ends)"
    )
    p.add_argument(
        "--bind",
        type=_bind,
        default=("127.0.0.1", 0),
        metavar="HOST:PORT",
        help="where to serve (default 127.0.0.1 on a free port; other computers reach it only if you bind "
        "another address)",
    )
    p.add_argument(
        "--protocol",
        metavar="FILE",
        help="first approve this protocol (as for 'session run'); the screens then show its phases",
    )
    p.add_argument(
        "--record",
        metavar="FILE",
        help="the recording to write (.tonus; default tonus-view-SERIAL-TIME.tonus here)",
    )
    p.add_argument(
        "--demo-seconds",
        type=_seconds,
        help="length of a demonstration session (when no protocol is approved)",
    )
    p.add_argument(
        "--heartbeat-ms",
        type=_heartbeat,
        default=1000,
        help="the device ends a session started here if this computer is silent this long "
        "(default %(default)s)",
    )
    p.add_argument("--open", action="store_true", help="open the clinician's screen in the default browser")
    p.add_argument("--duration", type=_seconds, metavar="S", help="end after S whole seconds (scripts)")
    p.set_defaults(run=run)


def run(args):
    import time

    from host.commands._connect import connected
    from host.commands.session import _approve
    from host.recording import Recorder
    from host.view import serving

    with connected(args) as c:
        plan = _plan(args.protocol)
        if args.protocol:
            _approve(c, args)
        info = c.info().unwrap()
        path = args.record or "tonus-view-{}-{}.tonus".format(info.serial, time.strftime("%Y%m%d-%H%M%S"))
        with (
            Recorder(path, info) as recorder,
            serving(c, recorder, plan, args.heartbeat_ms, args.demo_seconds, *args.bind) as (feed, server),
        ):
            url = server.url
            _say(
                args,
                {"clinician": url, "patient": url + "patient", "recording": path},
                f"clinician: {url}\npatient:   {url}patient\nrecording to {path} (Ctrl-C ends)",
            )
            if args.open:
                import webbrowser

                webbrowser.open(url)
            end = None if args.duration is None else time.monotonic() + args.duration
            try:
                while feed.alive and (end is None or time.monotonic() < end):
                    time.sleep(0.2)
            except KeyboardInterrupt:
                pass  # the way to leave
            feed.stop()
            if feed.error is not None:
                raise feed.error
            _say(
                args,
                {"recording": path, "frames": recorder.frames, "seconds": recorder.seconds},
                f"recorded {recorder.seconds:.1f} s of device time ({recorder.frames:d} frames) to {path}",
            )


def _say(args, data, text):
    """A JSON line with --json (the command reports as it goes), else text."""
    from host.commands._connect import json_line

    if args.json:
        json_line(data)
    else:
        print(text, flush=True)


def _plan(path):
    """The phases of the protocol file (.toml or signed), for the timeline; None without one."""
    if not path:
        return None
    from host import signing, therapy_file
    from host.errors import TonusError
    from host.view.state import plan_of

    try:
        if path.endswith(".toml"):
            doc, _problems = therapy_file.load(path)
        else:
            with open(path, "rb") as f:
                doc = signing.open_signed(f.read())[1]
    except (OSError, TonusError, ValueError):
        return None  # approving it says what is wrong
    return plan_of(doc if isinstance(doc, dict) else None)
