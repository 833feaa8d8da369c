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
        fault = "%s (%d)%s at %d ms, %d since the last clear" % (
            f.name,
            f.code,
            ", latched," if f.latched else "",
            f.time_ms,
            f.count,
        )
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
            "%s, serial %s, firmware %s, link protocol v%d"
            % (i.board, i.serial, i.firmware_version, version),
        ),
        ("state", i.state),
        ("fault", fault),
        ("e-stop", "OPEN (stop)" if i.estop_open else "closed"),
        ("session", session),
        (
            "protocol",
            "none loaded (demonstration sessions only)"
            if i.protocol is None
            else "%s v%d for %s, %d of %d sessions left"
            % (
                i.protocol.id,
                i.protocol.sequence,
                i.protocol.patient,
                i.protocol.remaining,
                i.protocol.sessions,
            ),
        ),
        (
            "limits",
            "hardware %d µA, policy %d µA, sessions up to %d s, EMG %d Hz"
            % (lim.hw_max_ua, lim.policy_max_ua, lim.max_session_s, lim.emg_rate_hz),
        ),
        (
            "link",
            "received %d frames (%d dropped, %d refused), sent %d (%d dropped)"
            % (ln.rx_frames, ln.rx_dropped, ln.rx_refused, ln.tx_frames, ln.tx_dropped),
        ),
        ("uptime", "%.3f s" % (i.uptime_ms / 1000)),
    )
    return "\n".join("%-9s %s" % r for r in rows)
