"""`tonus protocol check|sign`: therapy protocols before they reach a device."""

import datetime
import json


def register(sub):
    p = sub.add_parser("protocol", help="check, sign, upload and show therapy protocols")
    ps = p.add_subparsers(dest="protocol_command", metavar="ACTION", required=True)
    c = ps.add_parser("check", help="validate a protocol file and show what the device will deliver")
    c.add_argument("file")
    c.set_defaults(run=run_check)
    s = ps.add_parser("sign", help="sign a checked protocol file (COSE_Sign1, EdDSA)")
    s.add_argument("file")
    s.add_argument("--key", required=True, help="your private key file")
    s.add_argument("--out", required=True, help="signed file to write (.cose)")
    s.set_defaults(run=run_sign)
    u = ps.add_parser("upload", help="send a signed protocol to the device (it verifies it itself)")
    u.add_argument("file", help="the signed .cose file")
    u.set_defaults(run=run_upload)
    sh = ps.add_parser("show", help="what protocol the device holds and its remaining budget")
    sh.set_defaults(run=run_show)
    rm = ps.add_parser("remove", help="remove the device's protocol (its anti-rollback counter stays)")
    rm.set_defaults(run=run_remove)


def _load_checked(path):
    from host import therapy_file
    from host.errors import TonusError

    doc, problems = therapy_file.load(path)
    if problems:
        lines = "\n".join(f"  {p}" for p in problems)
        raise TonusError(
            "{} has {:d} problem{}:\n{}".format(path, len(problems), "" if len(problems) == 1 else "s", lines)
        )
    return doc


def _calendar_problems(doc):
    # validity dates are calendar days where the device is used: this computer's local day
    today = datetime.datetime.now().astimezone().date()
    out = []
    if "valid_from" in doc and datetime.date.fromisoformat(doc["valid_from"]) > today:
        out.append("not valid before {}".format(doc["valid_from"]))
    if "valid_until" in doc and datetime.date.fromisoformat(doc["valid_until"]) < today:
        out.append("expired on {}".format(doc["valid_until"]))
    return out


def run_check(args):
    from host import therapy_file
    from host.errors import TonusError

    try:
        doc = _load_checked(args.file)
    except TonusError:
        if args.json:
            _, problems = therapy_file.load(args.file)
            print(json.dumps({"ok": False, "problems": [vars(p) for p in problems]}))
        raise
    report = therapy_file.delivery(doc)
    notes = _calendar_problems(doc)
    if args.json:
        print(json.dumps({"ok": True, "delivery": report, "calendar": notes}))
        return 0
    print(
        "{}: {} v{:d} for {}, probe {} ({:.2f} cm² per electrode)".format(
            args.file, doc["id"], doc["sequence"], doc["patient"], report["probe"], report["probe_area_cm2"]
        )
    )
    for row in report["phases"]:
        line = "  phase {:d} {!s:<11} {:5d} s".format(row["phase"], row["type"], row["seconds"])
        if "rms_ma" in row:
            line += (
                "  up to {:.1f} mA at {:d} Hz, {:d} µs: RMS {:.2f} mA, {:.3f} mA/cm² (limit 2), {:.2f} "
                "µC/phase (max {:.1f} mA here)"
            ).format(
                row["amplitude_max_ma"],
                row["frequency_hz"],
                row["pulse_width_us"],
                row["rms_ma"],
                row["rms_density_ma_cm2"],
                row["charge_per_phase_uc"],
                row["max_allowed_ma"],
            )
        print(line)
    stim = report["stimulation_s"]
    print(
        "  session {:d} s ({:.1f} min), stimulation {}".format(
            report["session_s"],
            report["session_s"] / 60,
            f"{stim:d} s" if stim else "none or patient-triggered",
        )
    )
    for note in notes:
        print(f"  note: {note}")
    return 0


def run_sign(args):
    import getpass
    from pathlib import Path

    from host import atomic, signing
    from host.errors import TonusError

    doc = _load_checked(args.file)
    notes = _calendar_problems(doc)
    if any(n.startswith("expired") for n in notes):
        raise TonusError(f"{args.file} has {notes[0]}; change valid_until before signing")
    passphrase = signing.passphrase_from_env_or(lambda: getpass.getpass(f"passphrase for {args.key}: "))
    key = signing.load_private(args.key, passphrase)
    signed = signing.sign_document(doc, key)
    out = Path(args.out)
    atomic.write_bytes(out, signed)
    kid = signing.kid_for(signing.public_raw(key.public_key())).hex()
    if args.json:
        print(json.dumps({"out": str(out), "bytes": len(signed), "kid": kid, "sequence": doc["sequence"]}))
    else:
        print(
            "signed {} -> {} ({:d} bytes, kid {}, for device {}, sequence {:d})".format(
                args.file, out, len(signed), kid, doc["device"], doc["sequence"]
            )
        )


def _describe(p):
    return (
        f"{p.id} v{p.sequence:d} for {p.patient}, approved by {p.approved_by} on {p.approved_on}; "
        f"{p.remaining:d} of {p.sessions:d} sessions left; sha256 {p.sha256[:16]}..., key {p.kid}"
    )


def _summary_json(p):
    return None if p is None else p.to_json()


def run_upload(args):
    import sys
    from pathlib import Path

    from host.commands._connect import connected, emit
    from host.errors import TonusError
    from host.signing import open_signed
    from host.upload import upload

    try:
        signed = Path(args.file).read_bytes()
    except OSError as e:
        raise TonusError(f"cannot read {args.file}: {e.strerror}") from e
    try:
        _kid, doc = open_signed(signed)  # a readable file? the device decides whether it is valid
        when = _calendar_problems(doc)
    except Exception as e:
        raise TonusError(
            f"{args.file} is not a signed tonus protocol (sign it with 'tonus protocol sign')"
        ) from e
    if when:
        # the device has no trusted clock: the calendar is the host's to check
        raise TonusError(f"{args.file} is {when[0]}; the clinician must approve a current one")
    interactive = sys.stderr.isatty() and not args.json

    def progress(sent, total):
        if interactive:
            bar = "#" * (24 * sent // total)
            print(f"\ruploading [{bar!s:<24}] {sent:d}/{total:d} bytes", end="", file=sys.stderr, flush=True)

    stored = upload(lambda: connected(args), signed, progress)
    if interactive:
        print(file=sys.stderr)
    emit(args, {"stored": _summary_json(stored)}, "stored and verified by the device: " + _describe(stored))


def run_show(args):
    from host.commands._connect import connected, emit

    with connected(args) as c:
        r = c.protocol_show().unwrap()
    text = _describe(r.protocol) if r.protocol else "no protocol stored"
    emit(
        args,
        {"protocol": _summary_json(r.protocol), "max_sequence": r.max_sequence},
        f"{text} (highest sequence accepted: {r.max_sequence:d})",
    )


def run_remove(args):
    from host.commands._connect import connected, emit

    with connected(args) as c:
        c.protocol_remove().unwrap()
        shown = c.protocol_show().unwrap()
    emit(
        args,
        {"removed": True, "max_sequence": shown.max_sequence},
        f"protocol removed; sequences up to {shown.max_sequence:d} stay refused",
    )
