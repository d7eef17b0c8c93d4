"""Passing `bakery validate` runs, remembered by everything that decides their result,
so that validating an unchanged project again answers without importing typer,
pydantic, jinja2 or sqlglot (most of validate's time is those imports).

The key is a hash of: the command's arguments (paths resolved, the environment after
--env / $DC_ENVIRONMENT), $BAKERY_PROJECT, the Python version, the installed packages
(the site-packages folder's mtime, which every install or removal changes), the
content of every file of the bakery package, and the path and content of every file of
the project (its folder, less hidden folders, node_modules, cdk.out and __pycache__;
templates may include any project file). Only passing runs are remembered, so every
problem is always reported by a full check. The record is `.bakery/validate-ok.json`
in the project (git ignores .bakery/); when it cannot be read or written, validate
simply runs in full.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import sys
import sysconfig
import time
from pathlib import Path

RECORD = Path(".bakery") / "validate-ok.json"
PRUNE = {"node_modules", "cdk.out", "__pycache__"}
PACKAGE = Path(__file__).resolve().parents[1]
DEFAULT_ENV = "development"


def project_root() -> Path | None:
    """bakery.workspace.find_root without importing it (it imports pydantic)."""
    if env := os.environ.get("BAKERY_PROJECT"):
        return Path(env).resolve()
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "bakery.yaml").is_file():
            return folder
    return None


def _files(base: Path) -> list[Path]:
    out: list[Path] = []
    for folder, dirs, names in os.walk(base):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in PRUNE)
        if any(os.path.islink(os.path.join(folder, d)) for d in dirs):
            raise Uncacheable(folder)
        out.extend(Path(folder) / n for n in sorted(names))
    return out


class Uncacheable(Exception):
    """The project holds something whose content cannot be hashed safely (a symlink, a
    FIFO, a device): validate then always runs in full, which refuses such files."""


_KEYS: dict[tuple, str] = {}


def key(root: Path, paths: list[str], env: str, all_envs: bool) -> str:
    """The record's key for this command line and the files as they are now; computed
    once per process (answer() computes it before the check, remember() reuses it), so
    a pass is recorded for the files as they were when the check began."""
    args = (root, tuple(paths), env, all_envs)
    if args not in _KEYS:
        _KEYS[args] = _key(root, paths, env, all_envs)
    return _KEYS[args]


def _key(root: Path, paths: list[str], env: str, all_envs: bool) -> str:
    h = hashlib.blake2b(digest_size=20)

    def add(*parts: object) -> None:
        for part in parts:
            data = part if isinstance(part, bytes) else str(part).encode()
            h.update(len(data).to_bytes(8, "little"))
            h.update(data)

    add(sys.version, os.environ.get("BAKERY_PROJECT", ""), env, all_envs)
    add(*(str(Path(p).resolve()) for p in paths))
    site = sysconfig.get_paths()["purelib"]
    add(site, os.stat(site).st_mtime_ns if os.path.isdir(site) else 0)
    for base in (PACKAGE, root):
        for file in _files(base):
            add(file.relative_to(base).as_posix())
            try:
                # Never open what is not a regular file: a FIFO would hang, /dev/zero never ends.
                if not stat.S_ISREG(os.lstat(file).st_mode):
                    raise Uncacheable(str(file))
                add(file.read_bytes())
            except OSError:
                add(b"\0unreadable")
    return h.hexdigest()


def parse(args: list[str]) -> tuple[list[str], str, bool] | None:
    """(paths, env, all_envs) of a plain `validate` command line, None for anything else
    (--help, unknown options): those go to the full command."""
    paths: list[str] = []
    env = os.environ.get("DC_ENVIRONMENT") or DEFAULT_ENV
    all_envs = False
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--all-envs":
            all_envs = True
        elif arg in ("--env", "-e") and i + 1 < len(args):
            env = args[i + 1]
            i += 1
        elif arg.startswith("--env="):
            env = arg.split("=", 1)[1]
        elif arg == "--":
            paths.extend(args[i + 1 :])
            break
        elif arg.startswith("-"):
            return None
        else:
            paths.append(arg)
        i += 1
    return paths, env, all_envs


def answer(args: list[str]) -> bool:
    """Print the remembered result and return True when this command line passed before
    on exactly these files; False (nothing printed) means: run the full check."""
    started = time.perf_counter()
    parsed = parse(args)
    root = project_root()
    if parsed is None or root is None or any(not Path(p).exists() for p in parsed[0]):
        return False
    try:
        record = _read(root)
        message = record[key(root, *parsed)]
    except (OSError, ValueError, KeyError, TypeError, Uncacheable):
        return False
    elapsed = time.perf_counter() - started
    print(message.replace("{elapsed}", f"{elapsed:.2f}s"), file=sys.stderr)
    return True


def _read(root: Path) -> dict:
    """The record, read only as a regular file inside the project (a FIFO there would
    block, a symlink could lead anywhere); ValueError when it is not one or not JSON."""
    from bakery.project_files import FileRefused, read_text

    try:
        record = json.loads(read_text(root, root / RECORD))
    except FileRefused as exc:
        raise ValueError(str(exc)) from None
    if not isinstance(record, dict):
        raise ValueError("not a record")
    return record


def remember(paths: list[str], env: str, all_envs: bool, message: str) -> None:
    """Record a passing run (message with `{elapsed}` where the time goes); keeps the
    last few command lines' records."""
    root = project_root()
    if root is None:
        return
    target = root / RECORD
    try:
        try:
            record = _read(root)
        except (OSError, ValueError):
            record = {}
        folder = target.parent
        if os.path.lexists(folder) and not stat.S_ISDIR(os.lstat(folder).st_mode):
            return  # a symlink or a file named .bakery: write nothing through it
        if os.path.lexists(target) and not stat.S_ISREG(os.lstat(target).st_mode):
            return  # never replace a FIFO, device or symlink put there
        record = dict(list(record.items())[-7:]) if isinstance(record, dict) else {}
        record[key(root, paths, env, all_envs)] = message
        target.parent.mkdir(exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}")
        tmp.write_text(json.dumps(record))
        os.replace(tmp, target)
    except (OSError, Uncacheable):
        pass
