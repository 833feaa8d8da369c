"""Integer helpers both runtimes compute identically (no floats: the RP2040 has single precision)."""


def isqrt(n):
    """floor(sqrt(n)) for a non-negative integer, by Newton's method on ints."""
    if n < 2:
        return n
    x = n
    y = (x + 1) // 2
    while y < x:
        x = y
        y = (x + n // x) // 2
    return x
