"""The one place that tells the two runtimes apart."""

import sys

MICROPYTHON = sys.implementation.name == "micropython"

if MICROPYTHON:
    from micropython import const  # noqa: F401
else:

    def const(x):
        return x
