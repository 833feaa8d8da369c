"""Files the host writes: whole or not at all.

Every file goes to a temporary file in the same folder, is flushed to the
disk (fsync) and only then renamed over its name, so a full disk, a
power cut or Ctrl-C leaves the old file or none, never half of the new one
(a 0-byte private key once blocked `keys new` and failed `sign`). Failures
become a TonusError that names the file and what to do.
"""

import contextlib
import errno
import os
import tempfile
from pathlib import Path

from host.errors import TonusError

_FIX = {
    errno.ENOENT: "the folder does not exist: create it or choose another place",
    errno.ENOTDIR: "part of the path is a file, not a folder: choose another place",
    errno.EISDIR: "that is a folder: give a file name",
    errno.EACCES: "no permission to write there: choose another place",
    errno.EPERM: "no permission to write there: choose another place",
    errno.EROFS: "the filesystem is read-only: choose another place",
    errno.ENOSPC: "the disk is full: free some space or choose another place",
    errno.EDQUOT: "your disk quota is used up: free some space or choose another place",
    errno.EEXIST: "it exists already: choose another name (nothing was overwritten)",
}


def file_error(path, exc, doing="write"):
    """A TonusError for an OSError on path, saying what to do."""
    fix = _FIX.get(exc.errno) or "%s: check the path" % (exc.strerror or exc)
    return TonusError(f"cannot {doing} {path}: {fix}")


def write_bytes(path, data, *, mode=0o644, overwrite=True):
    """Write data to path atomically; with overwrite=False an existing file is refused, never replaced."""
    path = Path(path)
    if path.is_dir():
        raise file_error(path, OSError(errno.EISDIR, "is a directory"))
    if not overwrite and os.path.lexists(path):
        raise file_error(path, OSError(errno.EEXIST, "exists"))
    folder = path.parent
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix="." + path.name + ".", suffix=".tmp", dir=folder)
        try:
            os.fchmod(fd, mode)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        if overwrite:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)  # fails if a file appeared meanwhile: never replaces one
            os.unlink(tmp)
        tmp = None
        _sync_folder(folder)
    except OSError as e:
        raise file_error(path, e) from None
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def check_writable(path, *, overwrite=True):
    """Refuse now what write_bytes would refuse later (before a session runs, say)."""
    path = Path(path)
    folder = path.parent
    if path.is_dir():
        raise file_error(path, OSError(errno.EISDIR, "is a directory"))
    if not overwrite and os.path.lexists(path):
        raise file_error(path, OSError(errno.EEXIST, "exists"))
    if not folder.exists():
        raise file_error(path, OSError(errno.ENOENT, "no folder"))
    if not folder.is_dir():
        raise file_error(path, OSError(errno.ENOTDIR, "not a folder"))
    if not os.access(folder, os.W_OK | os.X_OK):
        raise file_error(path, OSError(errno.EACCES, "no permission"))


def write_text(path, text, **kw):
    write_bytes(path, text.encode(), **kw)


def _sync_folder(folder):
    # the rename itself survives a power cut only once the folder is on disk
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def replacing(path, *, mode=0o644):
    """A temporary path beside path, for writers that stream into a file they open by name (EDFlib):
    when the block ends without an exception the file is flushed to the disk and renamed over path,
    else removed. Errors become file_error's TonusError."""
    path = Path(path)
    if path.is_dir():
        raise file_error(path, OSError(errno.EISDIR, "is a directory"))
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix="." + path.name + ".", suffix=".tmp", dir=path.parent)
        try:
            os.fchmod(fd, mode)
        finally:
            os.close(fd)
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        tmp = None
        _sync_folder(path.parent)
    except OSError as e:
        raise file_error(path, e) from None
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


@contextlib.contextmanager
def open_replacing(path, mode="w", **kwargs):
    """open() on a temporary file that replaces path when the block ends without an exception."""
    with replacing(path) as tmp, open(tmp, mode, **kwargs) as f:
        yield f
