"""Remembered query analyses: a `bakery validate` after a one-file change analyses again
only the queries whose text (or whose tables' schema) changed, and a run where every
query is remembered never imports sqlglot (its import and analysis are most of a cold
validate's time).

An entry is found by everything its analysis (bakery.sql.analyse) depends on:
- the rendered SQL text and whether output types were inferred;
- the `version`: bakery's analysis code and data (sql.py, sandbox.py, sql_checks.py,
  function_catalog.py and its data files, this module), sqlglot's version, the dialect
  and the Python version; a file of another version is discarded whole;
- the declared columns and types, in order, of every table the query reads: the entry
  names those tables, and their schema must hash the same today.
Only analyses that passed are remembered, so a query with a problem is analysed again on
every run and its problem reported by the same code, in the same words, at the same
place. Whether the output types fit the table written is checked at each use from the
remembered output types (sql_checks.check_types), never remembered as a verdict.

The file is `.bakery/query-analyses.json` in the project, beside validate's record
(bakery/cli/validate_cache.py). It is read only as a regular file inside the project
(never a FIFO, a device or a symlink out of it, bakery.project_files); a file that is
unreadable or malformed, or an entry whose checksum does not match, is ignored and the
query analysed. Nothing is remembered unless a command enables it (`enabled`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

FILE = Path(".bakery") / "query-analyses.json"
MAX_BYTES = 16 * 1024 * 1024
KEEP = 2000  # entries kept besides those used by this run (other branches, environments)
PACKAGE = Path(__file__).resolve().parent
CODE = ("sql.py", "sandbox.py", "sql_checks.py", "function_catalog.py", "query_cache.py")

Schema = dict[str, dict[str, dict[str, str]]]


def _hash(*parts: object) -> str:
    h = hashlib.blake2b(digest_size=20)
    for part in parts:
        data = part if isinstance(part, bytes) else str(part).encode()
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()


def _sqlglot_version() -> str:
    """sqlglot's version without importing it: its generated _version.py (version and
    commit), else the installed distribution's metadata."""
    from importlib.util import find_spec

    spec = find_spec("sqlglot")
    if spec is not None and spec.origin:
        generated = Path(spec.origin).parent / "_version.py"
        if generated.is_file():
            return generated.read_text()
    from importlib.metadata import version as installed

    return installed("sqlglot")


def version(dialect: str) -> str:
    """Everything global an analysis (or a compiled template) depends on, as one hash."""
    import jinja2

    files = [PACKAGE / name for name in CODE] + sorted((PACKAGE / "data").glob("*.txt"))
    return _hash(
        sys.version,
        _sqlglot_version(),
        jinja2.__version__,
        dialect,
        *(part for f in files for part in (f.name, f.read_bytes())),
    )


def encode_kind(k: Any) -> Any:
    return [k[0], encode_kind(k[1])] if isinstance(k, tuple) else k


def decode_kind(v: Any) -> Any:
    """A kind from JSON (sql_checks.kind: None, a name, or ('array', element)); ValueError
    for anything else."""
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, list) and len(v) == 2 and v[0] == "array":
        return ("array", decode_kind(v[1]))
    raise ValueError(f"not a kind: {v!r}")


def _schema_hash(schema: Schema, tables: list[list[str]]) -> str | None:
    """Hash of the read tables' columns and types (in order); None when one is gone."""
    seen = []
    for db, name in tables:
        columns = schema.get(db, {}).get(name)
        if columns is None:
            return None
        seen.append([db, name, list(columns.items())])
    return _hash(json.dumps(seen))


class Store:
    def __init__(self, root: Path, dialect: str):
        self.root = root
        self.path = root / FILE
        self.version = version(dialect)
        self.entries: dict[str, dict[str, Any]] = {}
        self.kinds: dict[str, Any] = {}
        self.templates: dict[str, str] = {}
        self.used: set[str] = set()
        self.changed = False
        self._load()

    def _load(self) -> None:
        from bakery.project_files import FileRefused, read_text

        if not os.path.lexists(self.path):
            return
        try:
            data = json.loads(read_text(self.root, self.path, limit=MAX_BYTES))
        except (FileRefused, ValueError, RecursionError):
            return
        if not isinstance(data, dict) or data.get("version") != self.version:
            return
        entries, kinds = data.get("entries"), data.get("kinds")
        if isinstance(entries, dict):
            self.entries = {k: v for k, v in entries.items() if isinstance(v, dict)}
        if isinstance(kinds, dict):
            self.kinds = kinds
        templates = data.get("templates")
        if isinstance(templates, dict):
            self.templates = {k: v for k, v in templates.items() if isinstance(v, str)}

    def key(self, sql: str, annotate: bool) -> str:
        return _hash(self.version, sql, annotate)

    def lookup(self, sql: str, schema: Schema, annotate: bool) -> dict[str, Any] | None:
        """The remembered analysis {tables, pairs, columns, outputs} or None."""
        key = self.key(sql, annotate)
        entry = self.entries.get(key)
        if entry is None:
            return None
        try:
            body = {k: entry[k] for k in ("pairs", "columns", "outputs")}
            if entry["sum"] != _hash(key, json.dumps(body, sort_keys=True)):
                return None
            pairs = [[str(db), str(t)] for db, t in body["pairs"]]
            if _schema_hash(schema, pairs) != entry["schema"]:
                return None
            columns = body["columns"]
            outputs = [
                (name, decode_kind(kind), int(line), int(col))
                for name, kind, line, col in body["outputs"]
            ]
            if not all(isinstance(c, str) for c in columns) or not all(
                o[0] is None or isinstance(o[0], str) for o in outputs
            ):
                return None
        except (KeyError, TypeError, ValueError):
            return None
        self.used.add(key)
        return {"pairs": pairs, "columns": columns, "outputs": outputs}

    def remember(
        self,
        sql: str,
        schema: Schema,
        annotate: bool,
        pairs: list[list[str]],
        columns: list[str],
        outputs: list[tuple[str | None, Any, int, int]],
    ) -> None:
        key = self.key(sql, annotate)
        digest = _schema_hash(schema, pairs)
        if digest is None:
            return
        body = {
            "pairs": pairs,
            "columns": columns,
            "outputs": [[n, encode_kind(k), line, col] for n, k, line, col in outputs],
        }
        self.entries[key] = {
            **body,
            "schema": digest,
            "sum": _hash(key, json.dumps(body, sort_keys=True)),
        }
        self.used.add(key)
        self.changed = True

    def kind_of(self, hive: str) -> tuple[bool, Any]:
        """(found, kind) of a declared Hive type, remembered from an earlier run."""
        if hive not in self.kinds:
            return False, None
        try:
            return True, decode_kind(self.kinds[hive])
        except ValueError:
            return False, None

    def remember_kind(self, hive: str, k: Any) -> None:
        self.kinds[hive] = encode_kind(k)
        self.changed = True

    def save(self) -> None:
        if not self.changed:
            return
        others = [k for k in self.entries if k not in self.used][-KEEP:]
        keep = {k: self.entries[k] for k in [*others, *self.used] if k in self.entries}
        folder = self.path.parent
        tmp = folder / f".{self.path.name}.{os.getpid()}"
        try:
            if os.path.lexists(folder) and not stat.S_ISDIR(os.lstat(folder).st_mode):
                return  # a symlink or a file named .bakery: write nothing through it
            if os.path.lexists(self.path) and not stat.S_ISREG(os.lstat(self.path).st_mode):
                return  # never replace a FIFO, device or symlink someone put there
            folder.mkdir(exist_ok=True)
            others = [k for k in self.templates if k not in self.used][-KEEP:]
            templates = {k: self.templates[k] for k in [*others, *self.used] if k in self.templates}
            data = {
                "version": self.version,
                "entries": keep,
                "kinds": self.kinds,
                "templates": templates,
            }
            tmp.write_text(json.dumps(data))
            os.replace(tmp, self.path)
        except OSError:
            with contextlib.suppress(OSError):
                tmp.unlink()


_current: Store | None = None


def compiled(parts: tuple, compile_source: Callable[[], Any]) -> Any:
    """The code object Jinja compiles from a template, remembered in the enabled store
    (compiling the project's templates is a good part of a validate whose analyses are
    remembered). `parts` are everything the code depends on besides the environment
    (source, name, filename, defer_init); the store's version covers the environment:
    bakery's sql.py (the sandbox that shapes the generated code), jinja2's version and
    Python's. Entries are as trusted as the project's own .bakery folder, like Python's
    __pycache__; anything that does not unmarshal to a code object is compiled afresh."""
    import base64
    import marshal
    import types

    store = _current
    if store is None:
        return compile_source()
    key = _hash(store.version, "template", *parts)
    text = store.templates.get(key)
    if text is not None:
        try:
            code = marshal.loads(base64.b64decode(text, validate=True))
        except Exception:  # garbage: compile instead
            code = None
        if isinstance(code, types.CodeType):
            store.used.add(key)
            return code
    code = compile_source()
    if isinstance(code, types.CodeType):
        store.templates[key] = base64.b64encode(marshal.dumps(code)).decode()
        store.used.add(key)
        store.changed = True
    return code


def current() -> Store | None:
    return _current


@contextlib.contextmanager
def enabled(root: Path, dialect: str) -> Iterator[None]:
    """Use (and afterwards save) the project's remembered analyses for what runs inside."""
    global _current
    previous = _current
    try:
        _current = Store(root, dialect)
    except OSError:
        _current = None  # the package's files unreadable: analyse everything
    try:
        yield
    finally:
        store, _current = _current, previous
        if store is not None:
            store.save()
