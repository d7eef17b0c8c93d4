"""Reading only regular files: what a reader of a tree or a store is given may be a FIFO
(opening it blocks until a writer comes, forever), a device (/dev/zero never ends), a
directory named like a file, or a link leading out of the folder it claims to be in.

`check` says what a path is before anything opens it; `open_file` opens without blocking
(O_NONBLOCK: a FIFO opens at once) and checks the opened file itself, so a path swapped
between the check and the open is still refused.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

from bakery.errors import BakeryError

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


class NotRegular(BakeryError):
    """A path that is not a regular file (or leads out of its folder); the message is
    what it is, e.g. "is a FIFO, not a regular file"."""


def kind(mode: int) -> str:
    """'a directory', 'a FIFO', ... for a stat mode; 'a regular file' for one."""
    if stat.S_ISREG(mode):
        return "a regular file"
    return next((name for test, name in _KINDS if test(mode)), "not a file")


def check(path: Path, within: Path | None = None) -> Path:
    """The real path of `path` once proved a regular file; with `within`, a link must
    lead to a file under that folder. Raises FileNotFoundError when nothing is there,
    NotRegular (message: what it is) otherwise."""
    st = os.lstat(path)  # FileNotFoundError: nothing there
    real = Path(os.path.realpath(path))
    if stat.S_ISLNK(st.st_mode):
        if not real.exists():
            raise NotRegular(f"is a link to nothing ({os.readlink(path)})")
        if within is not None and not real.is_relative_to(os.path.realpath(within)):
            raise NotRegular(f"is a link to {real}, outside the tree {within}")
        st = os.stat(real)
    if not stat.S_ISREG(st.st_mode):
        raise NotRegular(f"is {kind(st.st_mode)}, not a regular file")
    return real


def open_file(path: Path) -> BinaryIO:
    """A regular file opened for reading; NotRegular for anything else, FileNotFoundError
    when nothing is there."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegular(f"is {kind(mode)}, not a regular file")
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "rb")


def read(path: Path) -> bytes:
    """The bytes of a regular file (see open_file)."""
    with open_file(path) as f:
        return f.read()
