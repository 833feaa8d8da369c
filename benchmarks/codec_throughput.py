"""Frames encoded+decoded per second: our codec and cbor2 on CPython, ours on MicroPython.

usage: python -m benchmarks.codec_throughput [--seconds S]
MicroPython runs on the pinned WebAssembly port under Node; it is a
correctness proxy, not a speed proxy for an RP2040 (MICROPYTHON.md: about
25x faster than the board on this kind of bytecode).
"""

import argparse
import json

import cbor2

from benchmarks import frame_workload
from tools import mpwasm


def cbor2_round(msg):
    return cbor2.loads(cbor2.dumps(msg, canonical=True))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=1.0)
    args = ap.parse_args()
    msg = frame_workload.stream_frame()
    assert cbor2.dumps(msg, canonical=True) == frame_workload.codec.dumps(msg)

    ours = frame_workload.run(args.seconds)
    theirs = frame_workload.rate(cbor2_round, (msg,), args.seconds)
    status, lines = mpwasm.run(
        "import json\nfrom benchmarks import frame_workload\n"
        f"print('@@' + json.dumps(frame_workload.run({args.seconds})))"
    )
    mp = json.loads([ln for ln in lines if ln.startswith("@@")][-1][2:]) if status == 0 else None

    print(f"typical stream frame: 50 samples, payload {ours['payload_bytes']} B, on the wire {ours['frame_bytes']} B")
    print(f"{'implementation':44} {'frames/s':>12}")
    print(f"{'protocol.codec, CPython (dumps+loads)':44} {ours['codec']:12.0f}")
    print(f"{'cbor2 (canonical=True), CPython':44} {theirs:12.0f}")
    print(f"{'protocol.codec + framing + catalogue, CPython':44} {ours['link']:12.0f}")
    if mp:
        print(f"{'protocol.codec, MicroPython wasm':44} {mp['codec']:12.0f}")
        print(f"{'protocol.codec + framing + catalogue, MP wasm':44} {mp['link']:12.0f}")
    print("ratios (same run):")
    print(f"  cbor2 / ours on CPython:            {theirs / ours['codec']:.2f}")
    if mp:
        print(f"  ours CPython / ours MicroPython:    {ours['codec'] / mp['codec']:.2f}")
        print(f"  full link path CPython / MP:        {ours['link'] / mp['link']:.2f}")
    need = 2000 / 50
    print(f"a 2 kHz stream needs {need:.0f} frames/s")


if __name__ == "__main__":
    main()
