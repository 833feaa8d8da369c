"""Peak memory and CPU time of the report and the exports, on 30-minute sessions.

    python -m benchmarks.report_memory [--sessions 10 25 50] [--minutes 30] [--repeats 2]

The recordings are synthetic (qa/synthetic.py) but in the real format: one
30-minute session per way a session can end is written by the recorder,
and the rest are copies of those with their own header (date), so making
50 costs seconds. Each measurement runs in a fresh Python process; its peak
is that process's maximum resident set (VmHWM on Linux: interpreter, numpy
and matplotlib included), its time the CPU time it used (time.process_time),
min and median of the repeats. Goals: the report <= 300 MB for 50 sessions
and CPU time linear in sessions (per-session time flat); EDF+ and CSV export
of one 30-minute recording <= 150 MB each.
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cbor2

REPORT_GOAL_MB = 300
EXPORT_GOAL_MB = 150

# run in the child: the work, then its CPU time and peak resident set as JSON. The peak is VmHWM: Linux
# keeps ru_maxrss across exec, so a child would report the parent's peak if that was larger.
_CHILD = r"""
import json, re, sys, time
from datetime import UTC, datetime
kind, src, out = sys.argv[1:4]
t = time.process_time()
if kind == "report":
    from host.report import build
    build(src, out, made=datetime(2026, 12, 1, tzinfo=UTC))
elif kind == "edf-bare":  # pyEDFlib alone writing the export's three signals, arrays made beforehand
    import numpy as np, pyedflib
    from host import export, recording
    sig = recording.read(src).signals()
    emg = np.nan_to_num(sig.emg_uv)
    env, stim = export._decimate(sig.envelope_uv, 50), export._decimate(sig.stim_ma, 50)
    heads = [export._signal_header(n, u, r, lo, hi, "") for n, u, r, lo, hi in
             (("EMG", "uV", 2000, -2000, 2000), ("EMG envelope", "uV", 40, 0, 100),
              ("Stim current", "mA", 40, 0, 100))]
    t = time.process_time()
    w = pyedflib.EdfWriter(out, 3, pyedflib.FILETYPE_EDFPLUS)
    w.setSignalHeaders(heads)
    w.writeSamples([emg, env, stim])
    w.close()
else:
    from host import export, recording
    export.FORMATS[kind](recording.read(src), out)
cpu = time.process_time() - t
with open("/proc/self/status") as f:
    hwm_kb = int(re.search(r"VmHWM:\s+(\d+) kB", f.read()).group(1))
print(json.dumps({"cpu_s": cpu, "peak_mb": hwm_kb / 1024}))
"""


def make_folder(folder, sessions, minutes):
    """`sessions` recordings of `minutes` each, one a day, outcomes in turn; the bodies written once."""
    from qa import synthetic

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    bodies = {}
    start = datetime(2026, 9, 1, 18, 0, tzinfo=UTC)
    for k in range(sessions):
        outcome = synthetic.OUTCOMES[k % len(synthetic.OUTCOMES)]
        if outcome not in bodies:
            src = synthetic.write(folder / ".template.tonus", minutes, outcome, start, seed=k)
            data = src.read_bytes()
            src.unlink()
            head_len = len(cbor2.dumps(cbor2.loads(data)))  # the header is the first item
            bodies[outcome] = (cbor2.loads(data), data[head_len:])
        head, body = bodies[outcome]
        when = start + timedelta(days=k)
        head = dict(
            head, started_unix_s=when.timestamp(), started_utc=when.isoformat(timespec="milliseconds")
        )
        (folder / when.strftime("%Y-%m-%d.tonus")).write_bytes(cbor2.dumps(head) + body)
    return folder


def measure(kind, src, out, repeats):
    """(min CPU s, median CPU s, max peak MB) of `repeats` fresh processes doing the work."""
    runs = []
    for _ in range(repeats):
        done = subprocess.run(
            [sys.executable, "-c", _CHILD, kind, str(src), str(out)],
            capture_output=True,
            text=True,
            check=True,
        )
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    cpu = [r["cpu_s"] for r in runs]
    return min(cpu), statistics.median(cpu), max(r["peak_mb"] for r in runs)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sessions", type=int, nargs="+", default=[10, 25, 50])
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        print(
            f"report of N sessions of {args.minutes:g} minutes (CPU time: min / median of "
            f"{args.repeats:d}; peak resident set)"
        )
        print(
            "{!s:>9} {!s:>9} {!s:>9} {!s:>14} {!s:>9}".format(
                "sessions", "min s", "median s", "added s/sess.", "peak MB"
            )
        )
        marginal = []
        peak = 0.0
        last = None
        for n in args.sessions:
            folder = make_folder(tmp / f"n{n}", n, args.minutes)
            lo, med, mb = measure("report", folder, tmp / "report.html", args.repeats)
            peak = max(peak, mb)
            added = "" if last is None else "%.3f" % ((lo - last[1]) / (n - last[0]))
            if last is not None:
                marginal.append((lo - last[1]) / (n - last[0]))
            print(f"{n:9d} {lo:9.2f} {med:9.2f} {added!s:>14} {mb:9.1f}")
            last = (n, lo)
        if len(marginal) > 1:
            # the time each added session costs, between consecutive sizes: equal when time is linear
            print(
                "CPU time per added session, largest / smallest step: %.2f (linear: near 1)"
                % (max(marginal) / min(marginal))
            )
        print(
            "report goal <= {:d} MB for {:d} sessions: {} ({:.1f} MB)".format(
                REPORT_GOAL_MB, max(args.sessions), "met" if peak <= REPORT_GOAL_MB else "NOT met", peak
            )
        )
        one = min((tmp / f"n{args.sessions[0]}").glob("*.tonus"))  # the first: a finished session
        print(f"\nexport of one {args.minutes:g}-minute recording ({one.stat().st_size / 1e6:.1f} MB)")
        print("{!s:>9} {!s:>9} {!s:>9} {!s:>9}".format("format", "min s", "median s", "peak MB"))
        cpu = {}
        for kind, suffix in (("edf", ".edf"), ("csv", ".csv"), ("edf-bare", ".edf")):
            lo, med, mb = measure(kind, one, tmp / ("x" + suffix), args.repeats)
            cpu[kind] = lo
            goal = ""
            if kind != "edf-bare":
                goal = "   goal <= {:d} MB: {}".format(
                    EXPORT_GOAL_MB, "met" if mb <= EXPORT_GOAL_MB else "NOT met"
                )
            print(f"{kind!s:>9} {lo:9.2f} {med:9.2f} {mb:9.1f}{goal}")
        print(
            "edf-bare: pyEDFlib alone writing the same three signals from arrays made beforehand (not timed)"
        )
        print(
            "EDF+ export (read, range pass, write pass, annotations, read back) / bare write: %.0fx"
            % (cpu["edf"] / cpu["edf-bare"])
        )


if __name__ == "__main__":
    main()
