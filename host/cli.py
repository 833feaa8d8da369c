"""`tonus`: a thin command line over the host library.

One module per command group in host/commands; each registers its
subcommands and imports heavy dependencies only when it runs. Errors become
`tonus: message` on stderr and an exit code here, and only here.
"""

import argparse
import importlib
import os
import sys

from host.errors import TonusError
from protocol.errors import ProtocolError

COMMAND_MODULES = ("linkcheck", "keys", "protocol", "provision", "sim")


def build_parser():
    ap = argparse.ArgumentParser(prog="tonus", description="tonus pelvic-floor EMG/stimulation unit tools")
    ap.add_argument("--port", default=os.environ.get("TONUS_PORT"), help="device URL or path (env TONUS_PORT)")
    ap.add_argument("--json", action="store_true", help="machine-readable output")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(f"host.commands.{name}").register(sub)
    return ap


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.run(args) or 0
    except TonusError as e:
        print(f"tonus: {e}", file=sys.stderr)
        return e.exit_code
    except ProtocolError as e:
        print(f"tonus: link error {e.name} ({e.code}): {e.detail}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print("tonus: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
