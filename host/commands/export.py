"""`tonus export RECORDING --format edf|csv --out FILE`: a recording for other tools.

EDF+ for EDFbrowser and other viewers, CSV for spreadsheets (see
host/export.py for what goes where). A damaged or cut-off recording is
exported as far as it reads; the command then fails with what was lost, so
a script notices, and the file stays.
"""


def register(sub):
    p = sub.add_parser("export", help="write a recording as EDF+ or CSV")
    p.add_argument(
        "recording", metavar="RECORDING", help="a recording made by 'tonus record' or 'session run --record'"
    )
    p.add_argument(
        "--format", choices=("edf", "csv"), required=True, help="EDF+ (viewers) or CSV (spreadsheets)"
    )
    p.add_argument(
        "--out", metavar="FILE", required=True, help="the file to write (CSV: events go to FILE-events.csv)"
    )
    p.set_defaults(run=run)


def run(args):
    from host import export, recording
    from host.commands._connect import emit
    from host.errors import TonusError

    rec = recording.read(args.recording)
    done = export.FORMATS[args.format](rec, args.out)
    text = "{}: {:.1f} s of EMG ({:d} samples{}), {:d} annotations -> {}".format(
        args.format.upper(),
        done.seconds,
        done.samples,
        f", {done.missing:d} lost in gaps" if done.missing else "",
        done.annotations,
        ", ".join(done.paths),
    )
    emit(
        args,
        {
            "format": args.format,
            "paths": done.paths,
            "seconds": done.seconds,
            "samples": done.samples,
            "missing": done.missing,
            "annotations": done.annotations,
            "problems": rec.problems,
        },
        text,
    )
    if rec.problems:
        raise TonusError(
            "{} is damaged; exported what could be read:\n  {}".format(
                args.recording, "\n  ".join(rec.problems)
            )
        )
