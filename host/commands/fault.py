"""`tonus fault clear`: clear a latched fault (refused while the e-stop is open)."""


def register(sub):
    p = sub.add_parser("fault", help="latched faults")
    fs = p.add_subparsers(dest="fault_command", metavar="ACTION", required=True)
    c = fs.add_parser("clear", help="clear the latched fault; release the e-stop first")
    c.set_defaults(run=run_clear)


def run_clear(args):
    from host.commands._connect import connected, emit

    with connected(args) as c:
        r = c.fault_clear().unwrap()
        emit(args, {"request": r.request, "state": r.state}, f"fault cleared: the device is {r.state}")
