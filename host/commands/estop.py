"""`tonus estop`: emergency stop over the link; the device latches HOST_ESTOP.

If the device does not confirm, the error says to press the button on the
device: an unconfirmed stop is never retried silently.
"""


def register(sub):
    p = sub.add_parser("estop", help="emergency stop: output off, fault latched until 'tonus fault clear'")
    p.set_defaults(run=run)


def run(args):
    from host.commands._connect import connected, emit

    with connected(args) as c:
        r = c.estop().unwrap()
        emit(
            args,
            {"request": r.request, "state": r.state},
            f"emergency stop latched: the device is in {r.state}; clear it with 'tonus fault clear'",
        )
