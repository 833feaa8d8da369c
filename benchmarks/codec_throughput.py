"""The link's encode, decode and framing of a typical stream frame, against C codecs, on CPython.

usage: python -m benchmarks.codec_throughput [--repeats N]

Rows: CBOR encode (protocol.codec.dumps against cbor2.dumps, canonical),
CBOR decode (protocol.codec.loads against cbor2.loads), and framing
(protocol.framing with its portable COBS, what MicroPython runs, against
the same with the `cobs` package's C COBS, what CPython runs), each
direction, CRC-32 included. Both
columns of a row do the same work on the same input, checked to give the
same output; figures are CPU µs per frame (benchmarks/cputime.py), min and
median of the repeats, and ratios are of the minima of one run.

These are CPython figures. What the same code costs on the RP2040 is
measured on the emulated board by benchmarks/pico_*.py, not derived from
these.
"""

import argparse

import cbor2

from benchmarks import cputime, frame_workload
from protocol import codec, framing


def rows(msg):
    payload = codec.dumps(msg)
    if cbor2.dumps(msg, canonical=True) != payload or cbor2.loads(payload) != codec.loads(payload):
        raise AssertionError("cbor2 and protocol.codec disagree on the benchmark frame")
    portable, c = _with(None), _with(framing._c)
    frame = c(framing.encode)(payload)
    if portable(framing.encode)(payload) != frame:
        raise AssertionError("the C and the portable COBS disagree")
    for cobs in (portable, c):
        if cobs(framing.Decoder().feed)(frame) != [payload]:
            raise AssertionError("a decoder did not give the payload back")
    return (
        (
            ("CBOR encode", codec.dumps, lambda m: cbor2.dumps(m, canonical=True), (msg,)),
            ("CBOR decode", codec.loads, cbor2.loads, (payload,)),
            ("framing encode (COBS + CRC-32)", portable(framing.encode), c(framing.encode), (payload,)),
            (
                "framing decode (COBS + CRC-32)",
                portable(framing.Decoder().feed),
                c(framing.Decoder().feed),
                (frame,),
            ),
        ),
        len(payload),
        len(frame),
    )


def _with(cobs):
    """fn with protocol.framing's COBS set to cobs (None: the portable code) for each call."""

    def wrap(fn):
        def call(*args):
            saved = framing._c
            framing._c = cobs
            try:
                return fn(*args)
            finally:
                framing._c = saved

        return call

    return wrap


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=cputime.REPEATS)
    args = ap.parse_args()
    table, payload_len, frame_len = rows(frame_workload.stream_frame())
    # the C extension's functions are builtins; the pure-Python fallback's are not
    c_ext = "C extension" if type(cbor2.loads).__name__ == "builtin_function_or_method" else "pure Python"
    print(f"typical stream frame: 50 samples, payload {payload_len:d} B, on the wire {frame_len:d} B")
    print(f"CPU µs per frame, min / median of {args.repeats:d} repeats; cbor2 runs as {c_ext}")
    print(
        "{!s:<32} {!s:>21} {!s:>21} {!s:>12}".format(
            "", "ours (portable Python)", "C (cbor2 / cobs)", "ours / C"
        )
    )
    for label, ours, theirs, fn_args in table:
        o = cputime.per_call(ours, fn_args, args.repeats)
        t = cputime.per_call(theirs, fn_args, args.repeats)
        print(
            f"{label!s:<32} {cputime.us(o[0])} / {cputime.us(o[1])} {cputime.us(t[0])} / "
            f"{cputime.us(t[1])} {o[0] / t[0]:12.1f}"
        )
    print(f"a 2 kHz stream is {2000 // 50:d} frames/s")
    print("RP2040 figures for the device's side: benchmarks/pico_*.py (emulated RP2040), not these.")


if __name__ == "__main__":
    main()
