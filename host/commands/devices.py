"""`tonus devices`: the boards attached over USB, found without opening a port."""


def register(sub):
    p = sub.add_parser("devices", help="list attached tonus boards (by USB identity; no port is opened)")
    p.set_defaults(run=run)


def run(args):
    from host.commands._connect import emit
    from host.discovery import MICROPYTHON_PID, RASPBERRY_PI_VID, find_boards

    boards = find_boards()
    if boards:
        text = "\n".join(f"{b.device!s:<16} id:{b.serial_number!s:<18} {b.description}" for b in boards)
    else:
        text = f"no board attached (looking for USB {RASPBERRY_PI_VID:04X}:{MICROPYTHON_PID:04X})"
    emit(args, [b.to_json() for b in boards], text)
