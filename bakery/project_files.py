"""Reading the project's own files (spec YAML, query templates) without leaving it.

A spec file comes from a pull request and `bakery validate` reads it in a pre-commit
hook, so a file is read only when it is a regular file whose real path (symlinks
followed) is inside the project, and no bigger than a cap. A FIFO or a device is
refused before it is opened, so nothing blocks or reads forever; and a refusal never
quotes the file, so the content of a file outside the project is never echoed.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from bakery.errors import BakeryError

# Far above any real spec or query (the largest here is a few KB), far below trouble.
MAX_FILE_BYTES = 1024 * 1024


class FileRefused(BakeryError):
    """A project file that cannot be read safely; the message is one line, no content."""


def real_inside(root: Path, path: Path) -> Path:
    """The real path of `path`, or FileRefused when it (or a symlink on the way) leads
    out of `root`."""
    try:
        real = Path(os.path.realpath(path, strict=True))
    except OSError as exc:
        raise FileRefused(f"cannot read it: {exc.strerror or exc}") from None
    base = Path(os.path.realpath(root))
    if real != base and not real.is_relative_to(base):
        raise FileRefused("it leads outside the project (a symlink?); keep files inside it")
    return real


def under_layers(root: Path, layers_dir: str, path: Path) -> Path:
    """The real path of a file a layer names (a query template, an `{% include %}`, a
    layer test's rows), or FileRefused: it must be under the layers folder, as written
    and once symlinks are followed, with no hidden name on the way (`.git/config`,
    `.env`, `.venv/...`). Files outside that folder or hidden are where a clone keeps
    what is not the project's (credentials, tool state); git's ignore rules are not
    consulted (that needs git itself, once per file), and an ignored file under the
    layers folder is not in the repository, so a layer naming one fails in CI."""
    name = f"{os.path.normpath(layers_dir)}/"
    folder = Path(os.path.abspath(root / layers_dir))
    written = Path(os.path.abspath(path))
    todo = f"keep the files layers use under {name}, with plain names"
    if written != folder and not written.is_relative_to(folder):
        raise FileRefused(f"it is not under {name}; {todo}")
    _refuse_hidden(written.relative_to(folder), todo)
    real = real_inside(root, written)
    base = Path(os.path.realpath(folder))
    if real != base and not real.is_relative_to(base):
        raise FileRefused(f"it leads out of {name} (a symlink?); {todo}")
    _refuse_hidden(real.relative_to(base), todo)
    return real


def _refuse_hidden(relative: Path, todo: str) -> None:
    hidden = next((part for part in relative.parts if part.startswith(".")), None)
    if hidden is not None:
        raise FileRefused(f"{hidden!r} is a hidden name, not a project file; {todo}")


def read_text(root: Path, path: Path, *, limit: int = MAX_FILE_BYTES) -> str:
    """The UTF-8 text of a regular file inside `root`; FileRefused otherwise."""
    real = real_inside(root, path)
    try:
        info = os.stat(real)
    except OSError as exc:
        raise FileRefused(f"cannot read it: {exc.strerror or exc}") from None
    if not stat.S_ISREG(info.st_mode):
        kind = (
            "a directory"
            if stat.S_ISDIR(info.st_mode)
            else "a FIFO"
            if stat.S_ISFIFO(info.st_mode)
            else "a device or socket"
        )
        raise FileRefused(f"it is {kind}, not a regular file")
    if info.st_size > limit:
        raise FileRefused(f"it is {info.st_size:,} bytes; the limit is {limit:,}")
    try:
        # O_NONBLOCK: should the file be swapped for a FIFO after the check, open and
        # read return at once instead of waiting for a writer.
        fd = os.open(real, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
        with os.fdopen(fd, "rb") as f:
            data = f.read(limit + 1)
    except OSError as exc:
        raise FileRefused(f"cannot read it: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise FileRefused(f"it is bigger than the limit of {limit:,} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise FileRefused("file is not UTF-8 text") from None
