"""Files written whole or not at all: into a temporary file beside the target, then renamed over it.

A crash, a full disk or an exception mid-write leaves the old file (or no
file) and never half of a new one; the temporary file is removed.
"""

import contextlib
import os
import tempfile


@contextlib.contextmanager
def replacing(path):
    """Yield a temporary path in path's folder; on success it replaces path, on failure it is removed."""
    path = os.fspath(path)
    folder, name = os.path.split(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".%s." % name, suffix=".part", dir=folder)
    os.close(fd)
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(tmp, 0o666 & ~mask)  # mkstemp's 0600 would outlive the rename
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def open_replacing(path, mode="w", **kwargs):
    """open() on a temporary file that replaces path when the block ends without an exception."""
    with replacing(path) as tmp, open(tmp, mode, **kwargs) as f:
        yield f
