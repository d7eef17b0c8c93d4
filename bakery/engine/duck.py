"""The DuckDB connection of a bake: bundled extensions, Athena macros, settings, types.

Extensions come from the duckdb-ext-* wheels (no network at run time): DuckDB's
extension_directory points at `<site-packages>/duckdb_ext/extensions`, autoinstall
and autoload are off, and `spatial` (plus `httpfs` for S3 endpoints) is LOADed.
"""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

# Athena-only functions, as DuckDB macros. checksum() is Trino's order-insensitive
# aggregate: here the sum of 64-bit hashes (HUGEINT, so no overflow), equal for equal
# multisets whatever the order.
MACROS = [
    "CREATE OR REPLACE MACRO ST_GeometryFromText(wkt) AS ST_GeomFromText(CAST(wkt AS VARCHAR))",
    "CREATE OR REPLACE MACRO ST_Polygon(wkt) AS ST_GeomFromText(CAST(wkt AS VARCHAR))",
    "CREATE OR REPLACE MACRO checksum(x) AS sum(hash(x)::HUGEINT)",
]


def extension_directory() -> str:
    """<site-packages>/duckdb_ext/extensions, installed by the duckdb-ext-* wheels."""
    spec = importlib.util.find_spec("duckdb_ext")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "DuckDB extensions not installed: the duckdb-ext-spatial and duckdb-ext-httpfs "
            "packages are needed (uv sync)"
        )
    for base in spec.submodule_search_locations:
        folder = Path(base) / "extensions"
        if folder.is_dir():
            return str(folder)
    raise RuntimeError("duckdb_ext has no extensions folder; reinstall duckdb-ext-spatial")


def machine_memory() -> int:
    """Bytes this process may use: the cgroup (container) limit when there is one,
    else the machine's physical memory."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    for limit_file in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(limit_file).read_text().strip()
        except OSError:
            continue
        if text.isdigit():
            total = min(total, int(text))
    return total


def default_memory_limit() -> str:
    """Half of machine_memory() for DuckDB: past it DuckDB spills to its temp directory
    instead of growing. Half (DuckDB's own default is 80 %) leaves room for what lives
    outside DuckDB's buffer manager: Python, pyarrow, the OS page cache."""
    return f"{machine_memory() // 2 // 2**20}MB"


def settings(
    *,
    threads: int | None = None,
    memory_limit: str | None = None,
    temp_directory: str | None = None,
) -> dict[str, Any]:
    """DuckDB's resource settings: an argument wins, then BAKERY_THREADS /
    BAKERY_MEMORY_LIMIT / BAKERY_TEMP_DIRECTORY, then the defaults (every core; half
    the machine's memory; no spilling unless a temp directory is given)."""
    env = os.environ
    out: dict[str, Any] = {
        "memory_limit": memory_limit or env.get("BAKERY_MEMORY_LIMIT") or default_memory_limit()
    }
    if threads or env.get("BAKERY_THREADS"):
        out["threads"] = int(threads or env["BAKERY_THREADS"])
    if temp_directory or env.get("BAKERY_TEMP_DIRECTORY"):
        out["temp_directory"] = temp_directory or env["BAKERY_TEMP_DIRECTORY"]
    return out


def spill_directory(staging: Any) -> str:
    """Where a bake's DuckDB spills: BAKERY_TEMP_DIRECTORY, else a folder of this run's
    staging area in a local store (`STORE/BUCKET/.bakery-staging/<run>/duckdb-tmp`, so
    it sits on the store's disk and goes with the run's staging, also after a kill),
    else (an S3 store) one under the system's temporary folder."""
    if os.environ.get("BAKERY_TEMP_DIRECTORY"):
        return os.environ["BAKERY_TEMP_DIRECTORY"]
    store = staging.store
    if store.is_local:
        from bakery.engine.publish import STAGING

        tables = staging.plan.tables.values()
        bucket = min(t.bucket for t in tables if not t.external)
        folder = store.path(f"s3://{bucket}/{STAGING}/{staging.run_id}/duckdb-tmp")
        folder.parent.mkdir(parents=True, exist_ok=True)  # DuckDB makes only the last level
        return str(folder)
    import tempfile

    return str(Path(tempfile.gettempdir()) / f"bakery-spill-{staging.run_id}")


def connect(
    *,
    s3_endpoint: str | None = None,
    threads: int | None = None,
    memory_limit: str | None = None,
    temp_directory: str | None = None,
) -> Any:
    """A DuckDB connection; see settings() for threads, memory and spilling."""
    import duckdb

    config: dict[str, Any] = {
        "extension_directory": extension_directory(),
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
        "allow_community_extensions": False,
        "preserve_insertion_order": False,
        **settings(threads=threads, memory_limit=memory_limit, temp_directory=temp_directory),
    }
    con = duckdb.connect(":memory:", config=config)
    con.execute("LOAD spatial")
    if s3_endpoint:
        con.execute("LOAD httpfs")
        configure_s3(con, s3_endpoint)
    for macro in MACROS:
        con.execute(macro)
    return con


def configure_s3(con: Any, endpoint: str, region: str = "eu-west-2") -> None:
    """A DuckDB S3 secret for an S3-compatible endpoint, credentials from boto3's chain."""
    import boto3

    url = urlparse(endpoint if "://" in endpoint else f"http://{endpoint}")
    creds = boto3.Session().get_credentials()
    key_id = creds.access_key if creds else "bakery"
    secret = creds.secret_key if creds else "bakery"
    token = creds.token if creds else None
    options = {
        "TYPE": "s3",
        "KEY_ID": key_id,
        "SECRET": secret,
        "REGION": region,
        "ENDPOINT": url.netloc,
        "URL_STYLE": "path",
        "USE_SSL": "true" if url.scheme == "https" else "false",
    }
    if token:
        options["SESSION_TOKEN"] = token
    body = ", ".join(
        f"{k} {v}" if v in ("true", "false") or k == "TYPE" else f"{k} {quote(v)}"
        for k, v in options.items()
    )
    con.execute(f"CREATE OR REPLACE SECRET bakery_s3 ({body})")


def quote(value: str) -> str:
    """A SQL string literal (for paths and names the engine itself builds)."""
    return "'" + str(value).replace("'", "''") + "'"


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


_SIMPLE = {
    "string": "VARCHAR",
    "boolean": "BOOLEAN",
    "tinyint": "TINYINT",
    "smallint": "SMALLINT",
    "int": "INTEGER",
    "integer": "INTEGER",
    "bigint": "BIGINT",
    "float": "FLOAT",
    "double": "DOUBLE",
    "date": "DATE",
    "timestamp": "TIMESTAMP",
    "binary": "BLOB",
}


def duck_type(hive: str) -> str:
    """Glue/Hive type -> DuckDB type (array<string> -> VARCHAR[], struct<a:int> -> STRUCT)."""
    t = hive.strip().lower()
    if t in _SIMPLE:
        return _SIMPLE[t]
    if m := re.fullmatch(r"(varchar|char)\(\d+\)", t):
        return "VARCHAR"
    if m := re.fullmatch(r"decimal\((\d+)(?:,(\d+))?\)", t.replace(" ", "")):
        return f"DECIMAL({m.group(1)},{m.group(2) or 0})"
    if t.startswith("array<") and t.endswith(">"):
        return duck_type(t[6:-1]) + "[]"
    if t.startswith("map<") and t.endswith(">"):
        k, v = _split_top(t[4:-1])
        return f"MAP({duck_type(k)}, {duck_type(v)})"
    if t.startswith("struct<") and t.endswith(">"):
        fields = []
        for part in _split_top(t[7:-1]):
            name, typ = part.split(":", 1)
            fields.append(f"{ident(name.strip())} {duck_type(typ)}")
        return f"STRUCT({', '.join(fields)})"
    raise ValueError(f"no DuckDB type for Glue type {hive!r}")


def _split_top(text: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch in "<(":
            depth += 1
        elif ch in ">)":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return [p.strip() for p in parts]
