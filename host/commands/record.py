"""`tonus record --out FILE`: save the live stream of the connected device.

Records whatever the device does (a session started on it by its button or
by another command, or rest) with the live view of `tonus monitor`, until
Ctrl-C or --seconds of device time. Controls nothing. To record a session
this computer runs, use `tonus session run --record FILE`.
"""

from host.cliargs import positive_seconds as _seconds


def register(sub):
    p = sub.add_parser("record", help="save the device's live stream and events to a recording (Ctrl-C ends)")
    p.add_argument(
        "--out", metavar="FILE", required=True, help="the recording to create (.tonus; never overwritten)"
    )
    p.add_argument("--seconds", type=_seconds, metavar="N", help="stop after N seconds of device time")
    p.set_defaults(run=run)


def run(args):
    from host.commands._connect import connected
    from host.commands._live import Tracker, follow, open_view
    from host.commands.session import discard_if_empty
    from host.recording import Recorder

    with connected(args) as c:
        info = c.info().unwrap()
        rec = Recorder(args.out, info)
        try:
            with rec:
                tracker = Tracker(info)
                c.stream(True).unwrap()
                view = open_view(args)
                limit_ms = None if args.seconds is None else args.seconds * 1000
                try:
                    follow(
                        c,
                        tracker,
                        view,
                        lambda: limit_ms is not None and tracker.streamed_ms >= limit_ms,
                        rec,
                    )
                except KeyboardInterrupt:
                    pass  # the way to end a recording
                finally:
                    saved = f"to {rec.path}" if rec.items else "(nothing arrived: no file kept)"
                    view.close(
                        tracker,
                        (
                            f"recorded {rec.seconds:.1f} s of device time ({rec.frames:d} frames, "
                            f"{rec.items - rec.frames:d} events) {saved}"
                        ),
                    )
        finally:
            discard_if_empty(rec, "nothing recorded")
        c.stream(False)
