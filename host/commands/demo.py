"""`tonus demo`: the whole job on the simulator, start to finish.

A simulated board and patient, a protocol approved on the spot (the
simulator's clinic, host/simclinic.py), a session run like `tonus session
run`, its score printed and saved in --out with its recording, and the
HTML practice journal of that folder (`tonus report`). Nothing to plug in.
"""

from pathlib import Path

from host import cliargs

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "protocols"
DEFAULT_PROTOCOL = "relaxation-downtraining.toml"
_RESULTS = ("scores.json", "session.tonus", "report.html")


def register(sub):
    p = sub.add_parser("demo", help="run a demonstration session on the simulator and print its score")
    p.add_argument("--patient", default="hypertonic", help="simulated patient (healthy, hypertonic, weak)")
    p.add_argument(
        "--seed", type=cliargs.whole(0, 2**31 - 1), default=0, help="simulator seed (default %(default)s)"
    )
    p.add_argument(
        "--protocol",
        metavar="FILE",
        help="protocol file (.toml) to approve and run (default: the example relaxation down-training)",
    )
    p.add_argument(
        "--speed",
        type=cliargs.decimal(0, 1000, "x real time"),
        default=0.0,
        help="simulated time per wall-clock second (default 0: as fast as the computer goes)",
    )
    p.add_argument(
        "--level",
        type=cliargs.milliamps,
        metavar="MA",
        help=(
            "stimulation level for a protocol with stimulation or ETS phases (the simulated patient has "
            "no hands)"
        ),
    )
    p.add_argument(
        "--out", metavar="DIR", default="tonus-demo", help="where to save the results (default %(default)s)"
    )
    p.add_argument("--force", action="store_true", help="replace the results of an earlier demo in --out")
    p.set_defaults(run=run_demo)


def run_demo(args):
    from host.atomic import file_error
    from host.commands.session import run_session
    from host.errors import TonusError
    from sim.patient import PROFILES

    if args.patient not in PROFILES:
        raise TonusError(
            "unknown patient {!r}; choose one of {}".format(args.patient, ", ".join(sorted(PROFILES)))
        )
    if args.seed < 0 or args.speed < 0:
        raise TonusError("seed and speed must not be negative")
    protocol = Path(args.protocol) if args.protocol else EXAMPLES / DEFAULT_PROTOCOL
    if not protocol.is_file():
        raise TonusError(f"cannot find the protocol file {protocol}; name one with --protocol")
    out = Path(args.out)
    earlier = [f for f in _RESULTS if (out / f).exists()]
    if earlier and not args.force:
        raise TonusError(
            "{} holds an earlier demo's results ({}): choose another folder with --out, "
            "or pass --force to replace them".format(out, ", ".join(earlier))
        )
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise file_error(out, e, "create the folder") from e
    args.port = f"sim://?seed={args.seed:d}&patient={args.patient}&speed={args.speed:g}"
    args.protocol = str(protocol)
    args.demo_seconds = None
    args.heartbeat_ms = 1000
    args.out = str(out / "scores.json")
    args.record = out / "session.tonus"
    args.record.unlink(missing_ok=True)  # a recording is never overwritten; the demo's is made afresh
    if not args.json:
        print(f"tonus demo: a simulated {args.patient} patient, protocol {protocol.name}", flush=True)
    run_session(args)
    _report(args, out)


def _report(args, out):
    from host.commands._connect import json_line
    from host.report import build

    r = build(out, out / "report.html")
    if args.json:  # the session's output is JSON lines: one more
        json_line({"type": "report", "report": r.path, "sessions": r.sessions})
    else:
        print(f"the practice journal: {r.path}", flush=True)
