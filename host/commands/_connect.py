"""What every command that talks to a board shares: connecting and printing."""

import contextlib
import json


@contextlib.contextmanager
def connected(args):
    """A greeted Client on the --port board (or the one attached board)."""
    from host.client import Client
    from host.discovery import resolve_port

    with contextlib.ExitStack() as stack:
        log = stack.enter_context(open(args.wire_log, "a", encoding="ascii")) if args.wire_log else None
        yield stack.enter_context(Client.open(resolve_port(args.port), wire_log=log))


def emit(args, data, text):
    """`data` as JSON with --json, else `text` for people."""
    print(json.dumps(data, indent=2) if args.json else text, flush=True)


def say(args, text, **data):
    """Tell what the command did instead of what was asked: stderr always, and a JSON line with --json."""
    import sys

    print(f"tonus: note: {text}", file=sys.stderr, flush=True)
    if args.json:
        json_line(dict(type="note", text=text, **data))


def json_line(data):
    """One JSON object per line, for commands that report as they go."""
    print(json.dumps(data, separators=(",", ":")), flush=True)
