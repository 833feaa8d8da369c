"""python -m qa.campaign: run the campaign, print its table, fail when a session failed."""

import argparse
import sys
import time

import qa.campaign
from qa.campaign.oracles import FAULTS
from qa.campaign.plan import describe, plan, quiet, run, table


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m qa.campaign", description=qa.campaign.__doc__.split("\n")[0])
    ap.add_argument("--sessions", type=int, default=500, help="number of sessions (default %(default)s)")
    ap.add_argument(
        "--seed", type=int, default=1, help="campaign seed; session i uses simulator seed SEED*100003+i"
    )
    ap.add_argument("--jobs", type=int, default=1, help="worker processes (default %(default)s)")
    ap.add_argument("--only", choices=sorted(FAULTS), action="append", help="run only these fault kinds")
    args = ap.parse_args(argv)
    quiet()
    cases = plan(args.seed, args.sessions)
    if args.only:
        cases = [c for c in cases if c.fault in args.only]
    started = time.monotonic()
    failed = []

    def progress(r):
        if r.problems:
            failed.append(r)
            print(f"FAIL {describe(r)}", file=sys.stderr)

    results = run(cases, args.jobs, progress)
    print(table(results))
    print()
    print(
        f"{len(results)} sessions (seed {args.seed:d}, simulator seeds "
        f"{cases[0].seed:d}..{cases[-1].seed:d}), {len(failed)} failed, "
        f"{time.monotonic() - started:.0f} s"
    )
    return 1 if failed else 0
