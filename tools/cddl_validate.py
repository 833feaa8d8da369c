"""Validate CBOR items against a CDDL rule with zcbor (run in zcbor's own venv).

usage: python cddl_validate.py LINK.cddl RULE < hex-per-line
Prints one line per input: "ok" or "fail <reason>". zcbor needs cbor2 5.x,
which is why this runs apart from the project's environment.
"""

import contextlib
import io
import sys
from pathlib import Path

import zcbor
from zcbor.zcbor.zcbor import DataTranslator


def main():
    cddl_path, rule = sys.argv[1], sys.argv[2]
    prelude = (Path(zcbor.__file__).parent / "zcbor" / "prelude.cddl").read_text()
    types = DataTranslator.from_cddl(prelude + "\n" + Path(cddl_path).read_text(), 64).my_types
    checker = types[rule]
    for raw in sys.stdin:
        line = raw.strip()
        if not line:
            continue
        noise = io.StringIO()  # zcbor prints every union branch it tried
        try:
            with contextlib.redirect_stdout(noise):
                checker.validate_str(bytes.fromhex(line))
            print("ok", flush=True)
        except Exception as e:  # noqa: BLE001 - zcbor signals a mismatch with several types
            print("fail", type(e).__name__, str(e).replace("\n", " ")[:300], flush=True)


if __name__ == "__main__":
    main()
