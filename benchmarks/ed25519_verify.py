"""One Ed25519 verification, and a whole protocol upload with verification on the simulator.

usage: python -m benchmarks.ed25519_verify
The RP2040 estimate scales the WebAssembly figure by the ratio measured in
shared/MICROPYTHON.md for big-integer work (the wasm port about 62x faster
than an emulated RP2040 at 125 MHz), and doubles it for real flash wait
states; it is an estimate to be replaced by a board measurement.
"""

import json
import tempfile
import time

from benchmarks.frame_workload import rate
from host import provisioning
from host.client import Client
from host.signing import kid_for, open_signed, public_raw, sign_document
from host.transport import open_port
from host.upload import upload
from protocol import ed25519
from tools import mpwasm
from tools.make_protocol_vectors import TRUSTED, build

WASM_OVER_RP2040 = 62  # MICROPYTHON.md, big-integer work


def main():
    case = json.load(open(mpwasm.ROOT / "tests" / "dual" / "vectors" / "ed25519.json"))["ed25519"][3]
    pub, msg, sig = (bytes.fromhex(case[k]) for k in ("public", "message", "signature"))
    per_s = rate(ed25519.verify, (pub, msg, sig), 2.0)
    code = (
        "import time, json\nfrom protocol import ed25519\n"
        "c = json.load(open('/repo/tests/dual/vectors/ed25519.json'))['ed25519'][3]\n"
        "a = [bytes.fromhex(c[k]) for k in ('public', 'message', 'signature')]\n"
        "n = 5\nt = time.ticks_ms()\nfor _ in range(n):\n    assert ed25519.verify(*a)\n"
        "print('@@', time.ticks_diff(time.ticks_ms(), t) / n)\n"
    )
    status, lines = mpwasm.run(code)
    mp_ms = float([ln for ln in lines if ln.startswith("@@")][-1].split()[1]) if status == 0 else None
    cp_ms = 1000 / per_s
    print(f"Ed25519 verify of a {len(msg)}-byte message (pure Python, protocol/ed25519.py)")
    print(f"  CPython:          {cp_ms:8.2f} ms")
    if mp_ms:
        print(f"  MicroPython wasm: {mp_ms:8.2f} ms  (ratio MP/CPython {mp_ms / cp_ms:.1f})")
        est = mp_ms * WASM_OVER_RP2040 / 1000
        print(f"  RP2040 estimate:  {est:.1f} s to {2 * est:.1f} s (wasm x {WASM_OVER_RP2040}, x2 for flash wait states)")

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
    print(f"upload + verify of a {len(signed)}-byte signed protocol on the simulator: {wall * 1000:.0f} ms wall")


if __name__ == "__main__":
    main()
