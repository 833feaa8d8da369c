"""`tonus logs pull`: the device's compliance log, one entry per session practised.

Reads the log a few entries per request (each reply fits one frame) and
writes DIR/sessions.json in clinical units, plus the device's own entries
as they came (DIR/sessions.cbor, described in docs/clinician.md) so nothing
is lost in translation. The
device is only read: nothing on it changes. An entry the device could not
read (a damaged log segment) is reported as missing, the rest is kept.
"""

from protocol import faults
from protocol import messages as m


def register(sub):
    p = sub.add_parser("logs", help="the device's compliance log")
    ss = p.add_subparsers(dest="logs_command", metavar="ACTION", required=True)
    pull = ss.add_parser("pull", help="fetch the compliance log into a folder (sessions.json)")
    pull.add_argument("--out", metavar="DIR", required=True, help="folder to write sessions.json into")
    pull.set_defaults(run=run_pull)


def _name(names, i):
    return names[i] if 0 <= i < len(names) else f"UNKNOWN({i:d})"


def entry_json(e):
    """One device log entry in the units a clinician reads (see docs/clinician.md)."""
    run_ms = e.get(m.LOG_RUN_MS, 0)
    below = e.get(m.LOG_BELOW_MS, 0)
    rest = e.get(m.LOG_REST_DV, 0)
    mvc = e.get(m.LOG_MVC_DV, 0)
    advice = e.get(m.LOG_ADVICE, 0)
    return {
        "seq": e.get(m.LOG_SEQ),
        "protocol_id": e.get(m.LOG_PROTOCOL),
        "start_uptime_ms": e.get(m.LOG_START_MS),
        "host_time_s": e.get(m.LOG_HOST_TIME_S),
        "duration_s": round(run_ms / 1000, 1),
        "planned_s": round(e.get(m.LOG_PLANNED_MS, 0) / 1000, 1),
        "phases_completed": e.get(m.LOG_PHASES_DONE, 0),
        "phases": e.get(m.LOG_PHASES, 0),
        "rest_uv": round(rest / 10, 1) if rest else None,
        "mvc_uv": round(mvc / 10, 1) if mvc else None,
        "below_target_s": round(below / 1000, 1),
        "below_target_percent": round(100 * below / run_ms, 1) if run_ms and below else None,
        "ets_triggers": e.get(m.LOG_TRIGGERS, 0),
        "charge_uc": e.get(m.LOG_CHARGE_UC, 0),
        "max_ma": e.get(m.LOG_MAX_UA, 0) / 1000,
        "faults": [faults.name(c) for c in e.get(m.LOG_FAULTS, ())],
        "pain": e.get(m.LOG_PAIN),
        "end_reason": _name(m.REASON_NAMES, e.get(m.LOG_END_REASON, 0)),
        "advice": _name(m.ADVICE_NAMES, advice) if advice else None,
    }


def pull(client, progress=None):
    """(entries, missing sequence numbers, damaged segments) read from the device."""
    first = client.log_read(0, 1).unwrap()
    start, end = first.oldest_seq, first.end_seq
    seq = start
    entries: list[dict] = []
    missing: list[int] = []
    while seq < end:
        page = client.log_read(seq).unwrap()
        for e in page.entries:
            n = e.get(m.LOG_SEQ, seq)
            missing.extend(range(seq, n))  # the device skipped entries it could not read
            entries.append(e)
            seq = n + 1
        if page.next_seq <= seq and not page.entries:
            break  # nothing more to read
        missing.extend(range(seq, page.next_seq))
        seq = max(seq, page.next_seq)
        if progress:
            progress(seq - start, end - start)
    return entries, missing, first.damaged


def run_pull(args):
    import errno
    import json
    import sys
    from pathlib import Path

    from host.atomic import file_error
    from host.commands._connect import connected, emit
    from protocol import codec

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise file_error(out, OSError(errno.EEXIST, "a file"), "create the folder")
    interactive = sys.stderr.isatty() and not args.json

    def progress(done, total):
        if interactive and total:
            print(
                "\rreading the log [{!s:<24}] {:d}/{:d}".format("#" * (24 * done // total), done, total),
                end="",
                file=sys.stderr,
                flush=True,
            )

    with connected(args) as c:
        serial = c.hello().unwrap().serial
        entries, missing, damaged = pull(c, progress)
    if interactive:
        print(file=sys.stderr)
    try:
        out.mkdir(parents=True, exist_ok=True)  # only now: a failed pull leaves no empty folder
    except OSError as e:
        raise file_error(out, e, "create the folder") from e
    data = [entry_json(e) for e in entries]
    _write(out / "sessions.json", (json.dumps(data, indent=2) + "\n").encode())
    _write(out / "sessions.cbor", codec.dumps({"serial": serial, "entries": list(entries)}))
    text = "{:d} sessions from device {} -> {}".format(len(data), serial, out / "sessions.json")
    if missing:
        text += (
            f"\n{len(missing)} entries could not be read (damaged log segments: {damaged:d}); "
            "the others are kept"
        )
    emit(
        args,
        {"serial": serial, "sessions": len(data), "missing": missing, "out": str(out / "sessions.json")},
        text,
    )


def _write(path, data):
    from host import atomic

    atomic.write_bytes(path, data)
