"""`tonus monitor`: watch state, cue and the EMG envelope live, without controlling anything.

Runs until Ctrl-C, or for --duration seconds (wall clock) in scripts.
"""

from host.cliargs import positive_seconds as _duration


def register(sub):
    p = sub.add_parser("monitor", help="live state, cue and EMG envelope (Ctrl-C ends)")
    p.add_argument("--duration", type=_duration, metavar="S", help="stop after S seconds")
    p.set_defaults(run=run)


def run(args):
    import time

    from host.commands._connect import connected
    from host.commands._live import Tracker, follow, open_view

    with connected(args) as c:
        tracker = Tracker(c.info().unwrap())
        c.stream(True).unwrap()
        view = open_view(args)
        end = None if args.duration is None else time.monotonic() + args.duration
        try:
            follow(c, tracker, view, lambda: end is not None and time.monotonic() >= end)
        except KeyboardInterrupt:
            pass  # the way to leave a monitor
        finally:
            view.close(
                tracker,
                f"monitored {tracker.streamed_ms / 1000:.1f} s of device time, {tracker.frames:d} EMG frames",
            )
        c.stream(False)
