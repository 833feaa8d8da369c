"""Numbers on the command line: ASCII digits, in range, exactly as given.

Python's int() and float() take "٣" (an Arabic-Indic three), "1_0", " 5",
"inf" and "nan"; a stimulator's command line takes none of them. Nothing is
rounded: a value finer than the device's step is refused, not changed.
"""

import argparse
import re
from decimal import Decimal

_WHOLE = re.compile(r"-?[0-9]+\Z", re.ASCII)
_DECIMAL = re.compile(r"-?[0-9]+(\.[0-9]+)?\Z", re.ASCII)


def _fmt(v):
    return format(v.normalize(), "f") if isinstance(v, Decimal) else str(v)


def whole(lo, hi, unit=""):
    """An argparse type: a whole number lo..hi written in ASCII digits."""
    what = "a whole number {} to {}{}".format(lo, hi, (" " + unit) if unit else "")

    def parse(text):
        if not _WHOLE.match(text):
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}")
        v = int(text)
        if not lo <= v <= hi:
            raise argparse.ArgumentTypeError(f"{text} is outside: give {what}")
        return v

    parse.__name__ = "whole number"
    return parse


def decimal(lo, hi, unit, step=None):
    """An argparse type: a Decimal lo..hi in ASCII digits, a multiple of step when given."""
    lo, hi = Decimal(str(lo)), Decimal(str(hi))
    what = f"a number {_fmt(lo)} to {_fmt(hi)} {unit}"

    def parse(text):
        if not _DECIMAL.match(text):
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}, such as {_fmt((lo + hi) / 4)}")
        v = Decimal(text)
        if not lo <= v <= hi:
            raise argparse.ArgumentTypeError(f"{text} is outside: give {what}")
        if step is not None and v % Decimal(str(step)):
            raise argparse.ArgumentTypeError(f"{text} {unit} is finer than the steps of {step} {unit}")
        return v

    parse.__name__ = "number"
    return parse


def positive_seconds(text):
    """An argparse type: seconds above zero (a float, for timers)."""
    v = decimal(0, 10**7, "s")(text)
    if v <= 0:
        raise argparse.ArgumentTypeError("give a number of seconds above 0")
    return float(v)


def milliamps(text):
    """An argparse type: a current 0..100 mA to 0.1 mA, returned in µA."""
    return int(decimal(0, 100, "mA", step="0.1")(text) * 1000)
