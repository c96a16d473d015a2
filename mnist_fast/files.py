"""Files: writing them all at once (``write_atomic``), checking up front
that they can be written (``check_writable``), finding them."""

import contextlib
import errno
import os
import stat
import tempfile
from pathlib import Path


def write_atomic(path, write):
    """Write ``path`` so that it is either the old file or the whole new one.

    ``write(f)`` fills a temporary file in the same folder (opened ``"wb"``),
    which is flushed to disk and then renamed over ``path``
    (``os.replace``).  The file keeps the permissions of the one it
    replaces; a new one gets those of ``open()`` (the umask's).  If
    anything fails or is interrupted (Ctrl-C) on the way, the temporary
    file is removed and ``path`` is left as it was.  A ``path`` that exists
    and is not a regular file (a device such as ``/dev/null``, a pipe, a
    folder) is never replaced: ``FileExistsError``.

    Parameters
    ----------
    path : str or path
        The file to write; its folder must exist.
    write : callable
        Called once as ``write(f)`` with the open binary file.
    """
    fd, tmp = _temporary_beside(Path(path))
    try:
        # mkstemp makes the file private (0600): give it the old file's
        # permissions, or those open() gives a new file (the umask's)
        _chmod_like(fd, path)
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _umask():
    """The process's umask (read by setting it, so set it back at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _chmod_like(fd, path):
    """Give the open file ``fd`` the permissions of ``path``, or of a new
    file when there is none."""
    if not hasattr(os, "fchmod"):  # Windows, where modes mean little
        return
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        mode = 0o666 & ~_umask()
    os.fchmod(fd, mode)


def _temporary_beside(path):
    """A new temporary file next to ``path``: ``(fd, name)``; OSError
    when its folder cannot be written, or when ``path`` exists and is not
    a regular file (renaming over it would replace a device or a pipe)."""
    if path.exists() and not path.is_file():
        raise FileExistsError(
            errno.EEXIST, "exists and is not a regular file (a device, a "
            "pipe, a folder), which mnist_fast does not replace", str(path))
    return tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.",
                            suffix=".tmp")


def check_writable(path):
    """Raise ``OSError`` unless :func:`write_atomic` can write ``path``.

    It creates and removes the temporary file that ``write_atomic`` would
    write, next to ``path``: permission bits do not tell (root, ACLs,
    read-only mounts, ``/proc``), and a name too long for its temporary
    file fails here too.  ``path`` itself is not touched.

    Parameters
    ----------
    path : str or path
        The file to be written; its folder must exist.
    """
    fd, tmp = _temporary_beside(Path(path))
    os.close(fd)
    os.unlink(tmp)


def existing_file(path, kind):
    """``path`` as a str, or ``FileNotFoundError`` saying it is not a file.

    Parameters
    ----------
    path : str or path
    kind : str
        What the file should be, for the message (``"model file"``).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        what = "is a folder, not a file" if os.path.isdir(path) else "not found"
        raise FileNotFoundError(f"{kind} {what}: {path}")
    return path
