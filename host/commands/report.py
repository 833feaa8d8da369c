"""`tonus report DIR --out report.html`: the practice journal of a folder of sessions.

DIR holds recordings (session run --record, tonus record), scores files
(session run --out) and the device's compliance log (tonus logs pull
--out DIR). The report is one HTML file that needs nothing else to open.
"""


def register(sub):
    p = sub.add_parser("report", help="an HTML practice journal of the sessions in a folder")
    p.add_argument("folder", metavar="DIR", help="recordings, scores files and sessions.json")
    p.add_argument(
        "--out", metavar="FILE", default="report.html", help="the HTML file to write (default %(default)s)"
    )
    p.set_defaults(run=run)


def run(args):
    from host.commands._connect import emit
    from host.report import build

    r = build(args.folder, args.out)
    lines = [f"{r.sessions:d} sessions of {len(r.protocols)} protocols -> {r.path}"]
    lines += ["skipped {}: {}".format(*s) for s in r.skipped]
    lines += ["not a session {}: {}".format(*s) for s in r.stubs]
    lines += ["read in part {}: {}".format(*d) for d in r.damaged]
    emit(
        args,
        {
            "out": r.path,
            "sessions": r.sessions,
            "protocols": r.protocols,
            "images": r.images,
            "skipped": [{"file": n, "reason": why} for n, why in r.skipped],
            "stubs": [{"file": n, "reason": why} for n, why in r.stubs],
            "damaged": [{"files": n, "lost": what} for n, what in r.damaged],
        },
        "\n".join(lines),
    )
