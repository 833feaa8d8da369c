"""Run the emulated Pico from a shell.

    python -m tools.emulated_pico                    # prints its socket:// URL, runs until Ctrl-C
    python -m tools.emulated_pico --board-s 5 --profile 20
                                                     # 5 s of board time, then the 20 hottest
                                                     # functions (addr2line on the firmware's .elf)

Resets, USB enumeration and a state line every few seconds go to stdout;
talk to the board with `tonus --port URL info` or `mpremote connect URL`.
"""

import argparse
import collections
import json
import shutil
import subprocess
import sys
import time

from tools.emulated_pico import image
from tools.emulated_pico.board import EmulatedPico


def hot_functions(samples, elf, top):
    """[(share, function, file:line)] of the sampled PCs, grouped by function."""
    addr2line = shutil.which("arm-none-eabi-addr2line")
    total = sum(n for _pc, n in samples) or 1
    if not addr2line or not elf.exists():
        return [(n / total, f"{pc:08x}", "") for pc, n in samples[:top]]
    pcs = [pc for pc, _n in samples]
    out = subprocess.run(
        [addr2line, "-f", "-e", str(elf)] + [f"{pc:x}" for pc in pcs],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    by_fn = collections.Counter()
    where = {}
    for i, (_pc, n) in enumerate(samples):
        fn, loc = out[2 * i], out[2 * i + 1].rsplit("/", 1)[-1]
        by_fn[fn] += n
        where.setdefault(fn, loc)
    return [(n / total, fn, where[fn]) for fn, n in by_fn.most_common(top)]


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m tools.emulated_pico", description=__doc__.split("\n")[0])
    ap.add_argument("--patient", default="healthy", help="sim/patient.py profile (default: healthy)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--board-s", type=float, help="stop after this much board time (default: run until Ctrl-C)"
    )
    ap.add_argument(
        "--profile", type=int, metavar="N", help="sample the CPU's PC; print the N hottest functions"
    )
    ap.add_argument(
        "--root", default=str(image.flashing.ROOT), help="source tree to deploy (default: this one)"
    )
    args = ap.parse_args(argv)
    try:
        pico = EmulatedPico.start(patient=args.patient, seed=args.seed, root=args.root)
    except image.Unavailable as e:
        print(f"emulated pico: {e}", file=sys.stderr)
        return 2
    with pico:
        print(pico.url, flush=True)
        if args.profile:
            pico.profile(True)
        t0 = time.monotonic()
        try:
            while True:
                s = pico.wait_board_ms(1000, timeout=600)  # a loaded machine can be 60x slower
                for ev in iter(lambda: pico.events.get_nowait() if not pico.events.empty() else None, None):
                    print("event", json.dumps(ev), flush=True)
                print(
                    (
                        "board {:.1f} s (wall {:.0f} s): resets {:d}, emg {:d} converted {:d} underruns, "
                        "out {}"
                    ).format(
                        s["t_ns"] / 1e9,
                        time.monotonic() - t0,
                        len(s["resets"]),
                        s["emg"]["converted"],
                        s["emg"]["underruns"],
                        json.dumps(s["out"]),
                    ),
                    flush=True,
                )
                if args.board_s and s["t_ns"] >= args.board_s * 1e9:
                    break
        except KeyboardInterrupt:
            pass
        if args.profile:
            elf = image.firmware_path().with_suffix(".elf")
            for share, fn, loc in hot_functions(pico.profile(False, top=4000), elf, args.profile):
                print(f"{100 * share:5.1f} %  {fn}  {loc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
