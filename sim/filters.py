"""SciPy's compiled filter loops, called on a chunk without the public wrappers' checks.

The EMG model filters every 100 ms chunk (200 samples) through three
sosfilt sections and one lfilter; for chunks that short, the wrappers'
argument checks and axis juggling cost more than the filtering. These call
the loops the wrappers call, on the arrays the wrappers would build, so the
results are the wrappers' bit for bit (tests/sim/test_speed_paths.py); with
another SciPy layout they fall back to the public functions.
"""

from collections.abc import Callable

import numpy as np
from scipy.signal import lfilter, sosfilt

_linear_filter: Callable[..., np.ndarray] | None
_sosfilt: Callable[..., None] | None
try:
    from scipy.signal._sigtools import _linear_filter
    from scipy.signal._sosfilt import _sosfilt
except ImportError:  # another SciPy layout: the public functions, slower
    _linear_filter = _sosfilt = None


def sosfilt_chunk(sos, x, zi):
    """scipy.signal.sosfilt(sos, x, zi=zi) for 1-D float64 x and C-contiguous float64 sos."""
    if _sosfilt is None:
        return sosfilt(sos, x, zi=zi)
    y = np.array(x, dtype=np.float64).reshape(1, -1)  # filtered in place, as sosfilt does with its copy
    z = np.array(zi, dtype=np.float64).reshape(1, -1, 2)
    _sosfilt(sos, y, z)
    return y.reshape(-1), z.reshape(-1, 2)


def lfilter_chunk(b, a, x, zi):
    """scipy.signal.lfilter(b, a, x, zi=zi) for 1-D arrays b, a (len(a) > 1), x and zi."""
    if _linear_filter is None:
        return lfilter(b, a, x, zi=zi)
    return _linear_filter(b, a, x, -1, zi)
