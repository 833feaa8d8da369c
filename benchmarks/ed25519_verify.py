"""Ed25519 and COSE_Sign1 verification time, pure Python, on CPython and MicroPython.

usage: python -m benchmarks.ed25519_verify [--runs N]

The same measure() runs on CPython and on the pinned MicroPython WebAssembly
port (tools/mpwasm). The port's clock ticks in whole milliseconds, so each
figure is the best of three averages of N runs, each after a garbage
collection (on the port, collections of its large heap dominate the
spread between runs). The RP2040 estimate scales the wasm figure
by the ratio MICROPYTHON.md measured for big-integer work: the first
pure-Python verifier took 18 ms on this port and 1.12 s on an emulated
RP2040 (125 MHz, flash treated as zero-wait), about 62x. A real board adds
flash wait states: up to 2x more. Replace the estimate by a board
measurement when one is attached.
"""

import json
import sys

from protocol import cose, ed25519
from protocol.sha512 import sha512

MICROPYTHON = sys.implementation.name == "micropython"
WASM_TO_RP2040 = 62  # MICROPYTHON.md: 1.12 s emulated RP2040 / 18 ms wasm, same pure-Python verifier
RP2040_FLASH_FACTOR = 2  # real boards: up to ~2x slower than the zero-wait-flash emulation


def _vectors_dir():
    if MICROPYTHON:
        return "/repo/tests/dual/vectors/"
    f = __file__
    return f[: f.rfind("/benchmarks/")] + "/tests/dual/vectors/"


def _clock():
    import time

    if MICROPYTHON:
        return time.ticks_ms, time.ticks_diff
    return (lambda: time.perf_counter() * 1000), (lambda a, b: a - b)


def _ms(fn, args, runs, batches=3):
    """Best of `batches` averages over `runs` calls; a collection before each batch."""
    import gc

    now, diff = _clock()
    fn(*args)  # warm up once
    best = None
    for _ in range(batches):
        gc.collect()
        t = now()
        for _ in range(runs):
            fn(*args)
        ms = diff(now(), t) / runs
        best = ms if best is None or ms < best else best
    return best


def _check(fn, args, want):
    got = fn(*args)
    if got != want:
        raise AssertionError("benchmark input did not verify")


def measure(runs):
    """Milliseconds per operation, on whichever runtime runs this."""
    d = _vectors_dir()
    with open(d + "ed25519.json") as f:
        ev = json.load(f)["ed25519"]
    with open(d + "protocols.json") as f:
        pv = json.load(f)
    cases = {}
    for c in ev:
        cases[c["name"]] = (
            bytes.fromhex(c["public"]),
            bytes.fromhex(c["message"]),
            bytes.fromhex(c["signature"]),
        )
    short = cases["RFC 8032 7.1 TEST 1"]
    long_ = cases["RFC 8032 7.1 TEST 1024"]
    _check(ed25519.verify, short, True)
    _check(ed25519.verify, long_, True)
    signed = bytes.fromhex(pv["cases"]["v1"]["cose"])
    keys = {bytes.fromhex(pv["kid"]): bytes.fromhex(pv["public_key"])}
    kid_payload = cose.verify_sign1(signed, keys)
    kb = bytes(1024)
    # warm up: the WebAssembly engine compiles the interpreter's hot paths
    # to optimised code in the background during the first second or so
    for _ in range(runs):
        ed25519.verify(*long_)
        cose.verify_sign1(signed, keys)
    return {
        "verify_0": _ms(ed25519.verify, short, runs),
        "verify_1023": _ms(ed25519.verify, long_, runs),
        "sha512_kb": _ms(lambda m: sha512(m).digest(), (kb,), runs),
        "cose_protocol": _ms(cose.verify_sign1, (signed, keys), runs),
        "cose_bytes": len(signed),
        "payload_bytes": len(kid_payload[1]),
    }


def _upload_on_the_simulator():
    """Wall time of a whole upload (the device verifies) on the in-process simulator."""
    import tempfile
    import time

    from host import provisioning
    from host.client import Client
    from host.signing import kid_for, open_signed, public_raw, sign_document
    from host.transport import open_port
    from host.upload import upload
    from tools.make_protocol_vectors import TRUSTED, build

    with tempfile.TemporaryDirectory() as d:
        flash = provisioning.FlashDir(d)
        pub_raw = public_raw(TRUSTED.public_key())
        flash.write(provisioning.KEYS, {kid_for(pub_raw): pub_raw})
        flash.write(provisioning.POLICY, provisioning.policy(50000))
        port = open_port("sim://?seed=0&speed=0&flash_dir=%s" % d)
        _kid, doc = open_signed(bytes.fromhex(build()["cases"]["v1"]["cose"]))
        doc["device"] = port.serial.simulator.board.serial
        signed = sign_document(doc, TRUSTED)

        class Keep:
            def __enter__(self):
                return Client(port)

            def __exit__(self, *exc):
                return False

        t0 = time.perf_counter()
        upload(Keep, signed)
        wall = time.perf_counter() - t0
        port.close()
    return len(signed), wall


def main():
    import argparse

    from tools import mpwasm

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20, help="runs averaged per figure (default 20)")
    args = ap.parse_args()

    cp = measure(args.runs)
    status, lines = mpwasm.run(
        "import json\nfrom benchmarks import ed25519_verify\n"
        "print('@@' + json.dumps(ed25519_verify.measure(%d)))" % args.runs
    )
    found = [ln for ln in lines if ln.startswith("@@")]
    mp = json.loads(found[-1][2:]) if status == 0 and found else None

    rows = (
        ("verify_0", "Ed25519 verify, empty message (RFC 8032 TEST 1)"),
        ("verify_1023", "Ed25519 verify, 1023-byte message (TEST 1024)"),
        ("sha512_kb", "SHA-512 of 1 KiB"),
        ("cose_protocol", "COSE_Sign1 verify of a signed protocol (%d B)" % cp["cose_bytes"]),
    )
    print(
        "pure Python (protocol/sha512.py, ed25519.py, cose.py), ms, best of 3 averages of %d runs" % args.runs
    )
    print("%-50s %9s %9s %7s %16s" % ("", "CPython", "MP wasm", "MP/CP", "RP2040 est. (s)"))
    for key, label in rows:
        if mp:
            est = mp[key] * WASM_TO_RP2040 / 1000
            print(
                "%-50s %9.2f %9.2f %7.1f %7.2f to %5.2f"
                % (label, cp[key], mp[key], mp[key] / cp[key], est, est * RP2040_FLASH_FACTOR)
            )
        else:
            print("%-50s %9.2f %9s" % (label, cp[key], "n/a"))
    if not mp:
        print("MicroPython leg did not run: " + "\n".join(lines[-5:]))
    print()
    print(
        "RP2040 estimate = MP wasm ms x %d / 1000, and x %d for a real board's flash wait states."
        % (WASM_TO_RP2040, RP2040_FLASH_FACTOR)
    )
    print(
        "  %d: MICROPYTHON.md measured the first pure-Python verifier at 18 ms on this wasm port and 1.12 s on"
        % WASM_TO_RP2040
    )
    print(
        "  an emulated RP2040 at 125 MHz with zero-wait flash (1120 / 18 = 62; big-integer work; the port is"
    )
    print("  only ~25x faster on plain bytecode). An estimate until a board is measured.")
    n, wall = _upload_on_the_simulator()
    print()
    print(
        "whole upload + device verification of a %d-byte signed protocol, in-process simulator: %.0f ms wall"
        % (n, wall * 1000)
    )


if __name__ == "__main__":
    main()
