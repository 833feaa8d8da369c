"""`tonus info`: what the board is, its state, fault, limits and link counters."""


def register(sub):
    p = sub.add_parser("info", help="show the board's identity, state, fault, limits and link counters")
    p.set_defaults(run=run)


def run(args):
    from host.commands._connect import connected, emit

    with connected(args) as c:
        info = c.info().unwrap()
        data = info.to_json()
        data["port"] = c.port.url
        data["link_version"] = c.device.version
        emit(args, data, describe(info, c.device.version))


def describe(i, version):
    fault = "none"
    if i.fault:
        f = i.fault
        fault = "{} ({:d}){} at {:d} ms, {:d} since the last clear".format(
            f.name, f.code, ", latched," if f.latched else "", f.time_ms, f.count
        )
        if f.where:
            fault += "; raised at " + f.where
    session = "none"
    if i.session:
        s = i.session
        session = "{:.1f} of {:.1f} s running, cue {}{}".format(
            s.elapsed_ms / 1000,
            s.duration_ms / 1000,
            s.cue,
            ", host-driven" if s.host_driven else "",
        )
    lim, ln = i.limits, i.link
    rows = (
        (
            "board",
            f"{i.board}, serial {i.serial}, firmware {i.firmware_version}, link protocol v{version:d}",
        ),
        ("state", i.state),
        ("fault", fault),
        ("e-stop", "OPEN (stop)" if i.estop_open else "closed"),
        ("session", session),
        (
            "protocol",
            "none loaded (demonstration sessions only)"
            if i.protocol is None
            else (
                f"{i.protocol.id} v{i.protocol.sequence:d} for {i.protocol.patient}, "
                f"{i.protocol.remaining:d} of {i.protocol.sessions:d} sessions left"
            ),
        ),
        (
            "limits",
            (
                f"hardware {lim.hw_max_ua:d} µA, policy {lim.policy_max_ua:d} µA, sessions up to "
                f"{lim.max_session_s:d} s, EMG {lim.emg_rate_hz:d} Hz"
            ),
        ),
        (
            "link",
            (
                f"received {ln.rx_frames:d} frames ({ln.rx_dropped:d} dropped, {ln.rx_refused:d} "
                f"refused), sent {ln.tx_frames:d} ({ln.tx_dropped:d} dropped)"
            ),
        ),
        ("uptime", "%.3f s" % (i.uptime_ms / 1000)),
    )
    return "\n".join("{!s:<9} {}".format(*r) for r in rows)
