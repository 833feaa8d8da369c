"""`tonus`: a thin command line over the host library.

One module per command group in host/commands; each registers its
subcommands and imports heavy dependencies only when it runs. Errors become
`tonus: message` on stderr and an exit code here, and only here:

    0 ok, 1 error (TonusError), 2 usage, 3 link or protocol error,
    4 the device refused the request, 130 interrupted
"""

import argparse
import importlib
import os
import sys

# Only the standard library above: Ctrl-C while the rest imports must end
# in "interrupted" and 130 like any other moment, never in a traceback.

COMMAND_MODULES = (
    "demo",
    "devices",
    "info",
    "logs",
    "session",
    "estop",
    "fault",
    "monitor",
    "sim",
    "linkcheck",
    "keys",
    "protocol",
    "provision",
    "flash",
    "selftest",
    "record",
    "export",
    "report",
    "view",
)

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_LINK = 3
EXIT_REFUSED = 4
EXIT_INTERRUPTED = 130
DEBUG_ENV = "TONUS_DEBUG"  # set: an unexpected error shows its traceback


def _exit_codes():
    from host.client import DeviceRefused
    from host.errors import TonusError, UsageError
    from host.transport import LinkError

    # most specific first
    return (
        (DeviceRefused, EXIT_REFUSED),
        (LinkError, EXIT_LINK),
        (UsageError, EXIT_USAGE),
        (TonusError, EXIT_ERROR),
    )


def build_parser():
    ap = argparse.ArgumentParser(prog="tonus", description="tonus pelvic-floor EMG/stimulation unit tools")
    ap.add_argument(
        "--port",
        default=os.environ.get("TONUS_PORT"),
        help="device path or URL (socket://HOST:PORT, sim://...), or id:SERIAL; "
        "default: env TONUS_PORT, else the one attached board",
    )
    ap.add_argument("--json", action="store_true", help="machine-readable output")
    ap.add_argument("--wire-log", metavar="FILE", help="append every byte on the link to FILE as hex")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(f"host.commands.{name}").register(sub)
    _accept_json_anywhere(ap)
    return ap


def _accept_json_anywhere(parser):
    """`tonus info --json --port X` as well as `tonus --json --port X info`, on every (sub)command."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                if "--json" not in child._option_string_actions:
                    child.add_argument(
                        "--json", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS
                    )
                if "--port" not in child._option_string_actions:
                    child.add_argument("--port", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
                _accept_json_anywhere(child)


def exit_code(exc):
    for cls, code in _exit_codes():
        if isinstance(exc, cls):
            return code
    return EXIT_ERROR


def _fail(message, status):
    # stdout stays for results (a --json command may have printed one already)
    print(f"tonus: {message}", file=sys.stderr)
    return status


def main(argv=None):
    """Run one command; every way it can end is an exit code from the README's table."""
    try:
        return _main(argv)
    except KeyboardInterrupt:
        return _fail("interrupted", EXIT_INTERRUPTED)


def _main(argv):
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:  # argparse's usage errors (2) and --help (0)
        return e.code
    from host.atomic import file_error
    from host.errors import TonusError
    from protocol.errors import ProtocolError

    try:
        return args.run(args) or EXIT_OK
    except TonusError as e:
        return _fail(e, exit_code(e))
    except ProtocolError as e:
        return _fail(f"link error {e.name} ({e.code}): {e.detail}", EXIT_LINK)
    except BrokenPipeError:
        # the reader of our output went away (`| head`); say nothing more to it
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_ERROR
    except OSError as e:
        path = e.filename if e.filename is not None else "a file"
        return _fail(file_error(path, e, "use"), EXIT_ERROR)
    except EOFError:
        return _fail("input ended where an answer was needed (no terminal?): see 'tonus -h'", EXIT_ERROR)
    except Exception as e:
        if os.environ.get(DEBUG_ENV):
            raise
        return _fail(
            f"unexpected {type(e).__name__}: {e}; this is a bug in tonus: "
            f"please report it with the output of {DEBUG_ENV}=1 tonus ...",
            EXIT_ERROR,
        )


if __name__ == "__main__":
    sys.exit(main())
