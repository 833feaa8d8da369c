"""Ed25519 and COSE_Sign1 verification (pure Python, the device's code) on CPython.

usage: python -m benchmarks.ed25519_verify [--repeats N]

protocol/sha512.py, ed25519.py and cose.py are what the device runs to
verify a signed protocol. Figures are CPU ms per operation on CPython, min /
median of the repeats (benchmarks/cputime.py), then the CPU time of a whole
upload to the in-process simulator (the simulated device verifying with the
same code).

The RP2040's figure for the same verification is measured on the emulated
board by benchmarks/pico_*.py; it is not scaled from these figures or from
the WebAssembly port's.
"""

import json
from pathlib import Path

from benchmarks import cputime
from protocol import cose, ed25519
from protocol.sha512 import sha512

VECTORS = Path(__file__).resolve().parent.parent / "tests" / "dual" / "vectors"


def cases():
    """(label, fn, args) of each figure, each checked to verify."""
    ev = {c["name"]: c for c in json.loads((VECTORS / "ed25519.json").read_text())["ed25519"]}
    pv = json.loads((VECTORS / "protocols.json").read_text())

    def vector(name):
        c = ev[name]
        return bytes.fromhex(c["public"]), bytes.fromhex(c["message"]), bytes.fromhex(c["signature"])

    short = vector("RFC 8032 7.1 TEST 1")
    long_ = vector("RFC 8032 7.1 TEST 1024")
    signed = bytes.fromhex(pv["cases"]["v1"]["cose"])
    keys = {bytes.fromhex(pv["kid"]): bytes.fromhex(pv["public_key"])}
    if not (ed25519.verify(*short) and ed25519.verify(*long_) and cose.verify_sign1(signed, keys)):
        raise AssertionError("benchmark input did not verify")
    kb = bytes(1024)
    return (
        ("Ed25519 verify, empty message (RFC 8032 TEST 1)", ed25519.verify, short),
        ("Ed25519 verify, 1023-byte message (TEST 1024)", ed25519.verify, long_),
        ("SHA-512 of 1 KiB", lambda m: sha512(m).digest(), (kb,)),
        (f"COSE_Sign1 verify of a signed protocol ({len(signed)} B)", cose.verify_sign1, (signed, keys)),
    )


def _upload_on_the_simulator():
    """CPU seconds of a whole upload (the device verifies) on the in-process simulator."""
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
        port = open_port(f"sim://?seed=0&speed=0&flash_dir={d}")
        _kid, doc = open_signed(bytes.fromhex(build()["cases"]["v1"]["cose"]))
        doc["device"] = port.serial.simulator.board.serial
        signed = sign_document(doc, TRUSTED)

        class Keep:
            def __enter__(self):
                return Client(port)

            def __exit__(self, *exc):
                return False

        t0 = time.process_time()
        upload(Keep, signed)
        cpu = time.process_time() - t0
        port.close()
    return len(signed), cpu


def main():
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=cputime.REPEATS)
    args = ap.parse_args()
    print(f"pure Python on CPython, CPU ms per operation, min / median of {args.repeats:d} repeats")
    for label, fn, fn_args in cases():
        best, median = cputime.per_call(fn, fn_args, args.repeats)
        print(f"  {label!s:<50} {best * 1000:9.3f} / {median * 1000:9.3f}")
    n, cpu = _upload_on_the_simulator()
    print(
        f"whole upload + device verification of a {n:d}-byte signed protocol, in-process simulator: "
        f"{cpu * 1000:.0f} ms CPU"
    )
    print("RP2040 verification time: benchmarks/pico_*.py (emulated RP2040), not estimated here.")


if __name__ == "__main__":
    main()
