"""`tonus sim`: a simulated board running the real firmware, served on TCP.

Prints exactly one line on stdout, the URL to give `--port` (for example
`socket://127.0.0.1:40123`), logs to stderr, and serves until SIGINT or
SIGTERM. Paced to the wall clock unless --speed says otherwise.
"""


def register(sub):
    p = sub.add_parser("sim", help="run a simulated board on the real firmware and serve its link on TCP")
    p.add_argument(
        "--listen",
        default="127.0.0.1:0",
        metavar="HOST:PORT",
        help="address to serve on; port 0 picks a free port (default %(default)s)",
    )
    p.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a --listen address other than loopback (the link has no authentication)",
    )
    p.add_argument(
        "--patient", default="healthy", metavar="PROFILE", help="simulated patient (default %(default)s)"
    )
    p.add_argument(
        "--seed", type=int, default=0, help="seed of every random process in the simulation (default 0)"
    )
    p.add_argument(
        "--scenario", metavar="FILE", help="TOML file of timed rig actions (e-stop, lead-off, ...)"
    )
    p.add_argument(
        "--speed",
        type=float,
        default=1.0,
        help="1 = real time (default), N = N times faster, 0 = as fast as the computer can",
    )
    p.add_argument(
        "--flash-dir", metavar="DIR", help="keep the board's storage here across runs (default: temporary)"
    )
    p.add_argument(
        "--approve",
        metavar="FILE",
        help="approve this protocol file (.toml) on the simulated board before serving, signed with a "
        "key made for the run (a simulator stands in for the clinic)",
    )
    p.set_defaults(run=run)


def run(args):
    import logging
    import signal
    import sys
    import threading

    from host.errors import TonusError
    from sim.runner import Simulator
    from sim.server import LinkServer, ListenError, open_listener, parse_listen, url_of

    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    try:
        host, port = parse_listen(args.listen, args.allow_remote)
    except ListenError as e:
        raise TonusError(str(e)) from None
    try:
        sim = Simulator(
            seed=args.seed,
            patient=args.patient,
            scenario=args.scenario,
            flash_dir=args.flash_dir,
            speed=args.speed,
        )
    except (ValueError, OSError) as e:
        raise TonusError(f"cannot start the simulator: {e}") from None
    if args.approve:
        from host import simclinic

        stored = simclinic.approve_on(sim, args.approve)
        print(f"approved {stored.id} v{stored.sequence:d}: {stored.sessions:d} sessions", file=sys.stderr)
    try:
        try:
            listener = open_listener(host, port)
        except OSError as e:
            raise TonusError(f"cannot listen on {args.listen}: {e}") from None
        stop = threading.Event()
        # only set a flag here: logging from a signal handler can deadlock
        signal.signal(signal.SIGINT, lambda _sig, _frame: stop.set())
        signal.signal(signal.SIGTERM, lambda _sig, _frame: stop.set())
        print(url_of(listener), flush=True)
        try:
            LinkServer(sim, listener).serve(stop)
        finally:
            listener.close()
        logging.getLogger("tonus.sim").info("stopped by a signal")
    finally:
        sim.close()
    return 0
