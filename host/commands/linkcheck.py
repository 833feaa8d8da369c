"""`tonus link-check`: the link stack on this computer, end to end, offline.

Builds every message of the catalogue, frames it, pushes the bytes through a
frame decoder with line noise in between, and checks each arrives intact.
Useful on a clinic PC before blaming a cable or a board.
"""

import json


def register(sub):
    p = sub.add_parser("link-check", help="check the link protocol stack on this computer")
    p.set_defaults(run=run)


def _catalogue_samples():
    from protocol import messages as m

    hello = m.build(m.REQUEST, 1, m.HELLO, min_version=m.MIN_PROTOCOL_VERSION, max_version=m.PROTOCOL_VERSION)
    yield hello
    for mtype, (_name, kind, fields, _resp) in sorted(m.CATALOGUE.items()):
        if kind == m.REQUEST and all(not f[3] for f in fields):
            yield m.build(m.REQUEST, mtype, mtype)
    yield m.build(
        m.STREAM, 7, m.EMG, first_index=0, samples=bytes(200), envelope_dv=60, state=m.RUNNING, flags=0
    )


def run(args):
    from host.errors import TonusError
    from protocol import codec, framing, messages

    decoder = framing.Decoder()
    rows = []
    for msg in _catalogue_samples():
        wire = framing.encode(codec.dumps(msg))
        got = decoder.feed(b"\r\n>>> noise\x00" + wire)
        ok = len(got) == 1 and messages.parse(codec.loads(got[0])) == tuple(msg)
        rows.append({"type": messages.type_name(msg[2]), "bytes": len(wire), "ok": ok})
    result = {
        "protocol_version": messages.PROTOCOL_VERSION,
        "max_payload": framing.MAX_PAYLOAD,
        "noise_frames_dropped": decoder.dropped,
        "messages": rows,
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"link protocol v{messages.PROTOCOL_VERSION}, largest payload {framing.MAX_PAYLOAD} B")
        for r in rows:
            print(f"  {r['type']:16} {r['bytes']:4} B on the wire  {'ok' if r['ok'] else 'FAILED'}")
        print(f"  line noise between frames: {decoder.dropped} garbage frames dropped, none delivered")
    if not all(r["ok"] for r in rows):
        raise TonusError("the link stack failed its self-check; reinstall tonus")
