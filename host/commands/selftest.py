"""`tonus selftest`: the board's bring-up checks, one row each, PASS or FAIL.

Exit status 1 when any check failed, so a bring-up script can stop there.
"""

import sys

from host.cliargs import positive_seconds

_TITLES = {
    "FRONT_END": "front end",
    "LEAD_OFF": "lead-off",
    "CURRENT": "current sense",
    "WATCHDOG": "watchdog",
    "STORAGE": "storage",
}
# what to look at when a check fails, by (check, reason)
_HINTS = {
    ("FRONT_END", "NO_SAMPLES"): "no EMG at all: check the ADS1292R's supply, clock, SPI and DRDY wiring",
    (
        "FRONT_END",
        "OUT_OF_RANGE",
    ): "EMG at the wrong rate: check the ADS1292R's clock (CLKSEL) and the profile's rate_hz",
    ("LEAD_OFF", "NO_SAMPLES"): "no EMG to judge lead-off by: fix the front end first",
    (
        "LEAD_OFF",
        "OUT_OF_RANGE",
    ): "lead-off detection disagrees with --probe: check the probe, its cable and the lead-off settings",
    (
        "CURRENT",
        "OUT_OF_RANGE",
    ): "the current source or its sense resistor is off: check the DAC, the source and the sense channel",
    ("CURRENT", "UNEQUAL_PHASES"): "the two phases differ: check the H-bridge legs and both sense channels",
    (
        "CURRENT",
        "VOLTAGE",
    ): "the load voltage does not match: check the voltage divider and the dummy load's value",
    ("CURRENT", "NO_PULSES"): "the pulse engine produced no pulses: check the PIO pins and the e-stop loop",
    (
        "CURRENT",
        "NO_OUTPUT",
    ): "the output would not stay enabled: check the charge pump, the enable read-back and the e-stop",
    ("CURRENT", "NO_DUMMY_LOAD"): "this board has no dummy load: the board profile's dummy_load_ohm is 0",
    ("WATCHDOG", "NOT_ARMED"): "the watchdog is not running: the application did not start it",
    ("WATCHDOG", "OUT_OF_RANGE"): "the watchdog is not fed in time, or runs with another timeout",
    ("STORAGE", "WRITE"): "storage refused a write: check the flash filesystem (tonus flash rebuilds it)",
    ("STORAGE", "READ_BACK"): "storage returned other data: the flash may be worn",
    ("STORAGE", "OUT_OF_RANGE"): "records were found damaged since boot: pull the logs, then reflash",
}


def register(sub):
    p = sub.add_parser(
        "selftest",
        help="run the board's bring-up checks: front end, lead-off, current sense, watchdog, storage",
    )
    p.add_argument(
        "--probe",
        choices=("none", "attached"),
        default="none",
        help="what is plugged into the electrode connector; lead-off detection must agree (default: none)",
    )
    p.add_argument(
        "--timeout",
        type=positive_seconds,
        default=10.0,
        metavar="S",
        help="seconds to wait for the result (default: 10)",
    )
    p.set_defaults(run=run)


def run(args):
    from host.commands._connect import connected, emit

    with connected(args) as c:
        result = c.selftest(args.probe == "attached", timeout=args.timeout).unwrap()
        data = dict(result.to_json(), port=c.port.url, serial=c.device.serial, probe=args.probe)
    if args.json or not _rich_table(result):
        emit(args, data, describe(result))
    return 0 if result.passed else 1


def rows(result):
    """(check, PASS/FAIL, measured, limit, what to look at) per check, as text."""
    out = []
    for c in result.checks:
        measured, limit = _measured(c)
        hint = _HINTS.get((c.check, c.why), c.why or "") if not c.passed else ""
        out.append((_TITLES.get(c.check, c.check), "PASS" if c.passed else "FAIL", measured, limit, hint))
    return out


def _measured(c):
    if c.check == "CURRENT":
        measured = f"{c.value / 1000:.1f} / {(c.ua_2 or 0) / 1000:.1f} mA, {(c.mv or 0) / 1000:.2f} V"
        limit = f"{c.low / 1000:.1f}-{c.high / 1000:.1f} mA"
        if c.mv_low is not None:
            limit += f", {c.mv_low / 1000:.2f}-{c.mv_high / 1000:.2f} V"
        return measured, limit
    if c.check == "LEAD_OFF":
        probe = "no probe" if c.low == 100 else "probe attached"
        return f"{c.value:d} % of blocks flagged", f"{c.low:d} % ({probe})"
    if c.check == "WATCHDOG" and c.why == "NOT_ARMED":
        return "not running", f"{c.low:d}-{c.high:d} ms left"
    if c.check == "WATCHDOG":
        return f"{c.value:d} ms left", f"{c.low:d}-{c.high:d} ms left"
    if c.low == c.high:
        return f"{c.value:d} {c.unit}", f"{c.low:d}"
    return f"{c.value:d} {c.unit}", f"{c.low:d}-{c.high:d}"


def _verdict(result):
    bad = [_TITLES.get(c.check, c.check) for c in result.failed]
    if not bad:
        return f"all {len(result.checks)} checks passed"
    return "{:d} of {:d} checks FAILED: {}".format(len(bad), len(result.checks), ", ".join(bad))


def describe(result):
    table = [("check", "result", "measured", "limit", ""), *rows(result)]
    widths = [max(len(r[i]) for r in table) for i in range(4)]
    lines = [
        "  ".join(r[i].ljust(widths[i]) for i in range(4)) + ("  " + r[4] if r[4] else "") for r in table
    ]
    return "\n".join([line.rstrip() for line in lines] + [_verdict(result)])


def _rich_table(result):
    """The table through rich on a terminal; False when rich is missing or stdout is not a terminal."""
    if not sys.stdout.isatty():
        return False
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        return False
    t = Table(title="tonus selftest")
    for col in ("check", "result", "measured", "limit", "look at"):
        t.add_column(col)
    for check, verdict, measured, limit, hint in rows(result):
        t.add_row(
            check, "[green]PASS[/]" if verdict == "PASS" else "[bold red]FAIL[/]", measured, limit, hint
        )
    console = Console()
    console.print(t)
    console.print(_verdict(result))
    return True
