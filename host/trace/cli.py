"""`tonus-trace`: the traceability matrix from the last recorded test results.

    tonus-trace                       the Markdown matrix on stdout
    tonus-trace --format html --out matrix.html
    tonus-trace --check               exit 1 when a safety requirement has no passing test
    tonus-trace --check --board       ... or a requirement marked board = true passed on no board

pytest (with the plugin in qa/trace_plugin.py, outside the installed package) records the results; a
suite run in pieces adds up in one directory, and --check is the gate for
CI scripts that run it that way. Exit codes: 0 ok, 1 the gate fails or the
results cannot be read, 2 usage.
"""

import argparse
import sys

from host.trace import render
from host.trace.matrix import Results, TraceError, gate_report

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


def build_parser():
    ap = argparse.ArgumentParser(
        prog="tonus-trace", description="requirement traceability from recorded test results"
    )
    ap.add_argument(
        "--dir", default="build/trace", help="where pytest wrote results.json (default: %(default)s)"
    )
    ap.add_argument(
        "--format", choices=render.FORMATS, default="md", help="output format (default: %(default)s)"
    )
    ap.add_argument("--out", metavar="FILE", help="write to FILE instead of stdout")
    ap.add_argument(
        "--check", action="store_true", help="exit 1 when a safety requirement has no passing test; print why"
    )
    ap.add_argument(
        "--board",
        action="store_true",
        help="with --check: requirements marked board = true need a pass on a board or an emulated board",
    )
    return ap


def main(argv=None):
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:  # argparse's usage errors (2) and --help (0)
        return e.code
    try:
        results = Results.load(args.dir)
    except TraceError as e:
        print(f"tonus-trace: {e}", file=sys.stderr)
        return EXIT_FAILED
    if args.check:
        verdict = gate_report(results, board=args.board)
        if verdict:
            print("tonus-trace: " + verdict, file=sys.stderr)
            return EXIT_FAILED
        n = sum(r["safety"] for r in results.requirements)
        text = f"all {n:d} safety requirements have a passing test"
        if args.board:
            text += ", and all {:d} board requirements one on a board".format(
                sum(bool(r.get("board")) for r in results.requirements)
            )
        print("tonus-trace: " + text)
        return EXIT_OK
    text = render.render(results, args.format)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
