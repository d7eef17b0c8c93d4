"""What the local commands (bake, sample-data, lookup) share: the store they work on
(--store, --s3-endpoint, $BAKERY_STORE), S3 errors turned into one line, the engine's
settings from the environment, and the failure line that --json also prints.

boto3 and the store are imported inside the functions, so `bakery validate` stays fast.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from bakery.cli.common import EXIT_FAILED, EXIT_USAGE

StoreOption = Annotated[
    str | None,  # not Path: Path("") is the current folder, and an empty --store is a mistake
    typer.Option(
        "--store",
        help="Folder standing in for S3: s3://BUCKET/KEY is STORE/BUCKET/KEY "
        "($BAKERY_STORE, default .bakery/store).",
        show_default=False,
    ),
]
EndpointOption = Annotated[
    str | None,
    typer.Option(
        "--s3-endpoint",
        help="Bake against this S3-compatible API (e.g. http://127.0.0.1:9000) instead of "
        "a folder ($BAKERY_S3_ENDPOINT).",
        show_default=False,
    ),
]
SampleEndpointOption = Annotated[
    str | None,
    typer.Option(
        "--s3-endpoint",
        help="Write the sample CSVs to this S3-compatible API (e.g. http://127.0.0.1:9000) "
        "instead of a folder ($BAKERY_S3_ENDPOINT); the buckets must exist.",
        show_default=False,
    ),
]
LookupEndpointOption = Annotated[
    str | None,
    typer.Option(
        "--s3-endpoint",
        help="Read the per-outcode file from this S3-compatible API (e.g. "
        "http://127.0.0.1:9000) instead of a folder ($BAKERY_S3_ENDPOINT).",
        show_default=False,
    ),
]


def fail(as_json: bool, message: str, code: int, extra: dict[str, Any] | None = None) -> NoReturn:
    """One line `bakery: error: ...` on stderr, and with --json the one JSON line on stdout
    (`ok: false`, `error`, and what the command knew so far); then exit `code`."""
    if as_json:
        print(json.dumps({**(extra or {}), "ok": False, "error": message}))
    print(f"bakery: error: {message}", file=sys.stderr)
    raise typer.Exit(code)


def open_store(
    store: str | Path | None,
    endpoint: str | None,
    plan: Any = None,
    *,
    create: bool = True,
    as_json: bool = False,
):
    """--s3-endpoint, else --store, else $BAKERY_STORE, else .bakery/store in the project.

    A bad endpoint URL or a store folder that cannot be used (a file, not creatable,
    not writable) is a usage error: one line, exit 2. `create` makes the folder (bake,
    sample-data); lookup only reads, so it leaves a missing folder missing.
    """
    from bakery.store import (
        DEFAULT_STORE,
        LocalStore,
        StoreUnusable,
        check_endpoint,
        check_local_root,
        open_store,
    )

    url = endpoint or os.environ.get("BAKERY_S3_ENDPOINT")
    if url:
        source = "--s3-endpoint" if endpoint else "$BAKERY_S3_ENDPOINT"
        try:
            url = check_endpoint(url)
        except StoreUnusable as exc:
            fail(as_json, f"{source} {url!r} is not a usable S3 endpoint: {exc}", EXIT_USAGE)
        with s3_errors(url, as_json=as_json):
            return open_store(None, url)
    if store is not None and not str(store).strip():
        # Path("") is the current directory: an empty --store is a mistake, not a choice
        fail(as_json, "--store is empty; give a folder, e.g. --store .bakery/store", EXIT_USAGE)
    root = store or os.environ.get("BAKERY_STORE")
    if not root:
        root = Path(plan.root) / DEFAULT_STORE if plan is not None else Path(DEFAULT_STORE)
    try:
        path = check_local_root(Path(root), create=create)
    except StoreUnusable as exc:
        fail(as_json, f"store {root} is not a usable directory: {exc}", EXIT_USAGE)
    return LocalStore(path)


class _S3Errors:
    """Turns connection and credential errors of boto3/botocore/DuckDB httpfs into one
    line, `bakery: error: cannot reach S3 endpoint URL: reason`, and a request the
    endpoint refused (no such bucket, access denied) into `S3 endpoint URL refused the
    request: reason`; exit 1."""

    def __init__(self, url: str | None, as_json: bool = False):
        self.url = url
        self.as_json = as_json

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, exc: Any, tb: Any) -> None:
        if exc is None or not self.url or not isinstance(exc, Exception):
            return
        reason = _s3_reason(exc)
        if reason is None:
            return
        if isinstance(exc, _client_error()):
            line = f"S3 endpoint {self.url} refused the request: {reason}"
        else:
            line = f"cannot reach S3 endpoint {self.url}: {reason}"
        fail(self.as_json, line, EXIT_FAILED)


def _client_error() -> type | tuple[()]:
    try:
        from botocore.exceptions import ClientError
    except ImportError:  # pragma: no cover - boto3 is a dependency
        return ()
    return ClientError


def s3_errors(url: str | None, *, as_json: bool = False) -> _S3Errors:
    return _S3Errors(url, as_json)


def _s3_reason(exc: Exception) -> str | None:
    """A short reason for an S3 access error, or None when exc is not one."""
    try:
        from botocore import exceptions as bx
    except ImportError:  # pragma: no cover - boto3 is a dependency
        bx = None
    if bx is not None:
        if isinstance(exc, bx.EndpointConnectionError | bx.ConnectTimeoutError):
            return "could not connect"
        if isinstance(exc, bx.NoCredentialsError):
            return "no AWS credentials (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
        if isinstance(exc, bx.ClientError):
            err = exc.response.get("Error", {})
            code = err.get("Code") or "error"
            text = err.get("Message") or ""
            return f"{code}: {text}".rstrip(": ") if text else str(code)
        if isinstance(exc, bx.BotoCoreError):
            return first_line(exc)
    mod = type(exc).__module__ or ""
    if mod.startswith("duckdb") and type(exc).__name__ in ("HTTPException", "IOException"):
        return first_line(exc)
    return None


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


MAX_THREADS = 256
# The floor the refusal names, in the unit it names: "64MB" (DuckDB's MB, like ours, is
# 10**6 bytes) is accepted, so the message never refuses the value it recommends.
MIN_MEMORY_MB = 64
MIN_MEMORY = MIN_MEMORY_MB * 10**6
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*(b|kb|mb|gb|tb|kib|mib|gib|tib)?", re.IGNORECASE)
_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}  # fmt: skip


def engine_settings(as_json: bool) -> tuple[int | None, str | None]:
    """BAKERY_THREADS and BAKERY_MEMORY_LIMIT, checked before anything runs: a value
    DuckDB cannot use is a usage error (exit 2) saying what would work."""
    threads: int | None = None
    raw = os.environ.get("BAKERY_THREADS", "").strip()
    if raw:
        if not raw.isdigit() or not 1 <= int(raw) <= MAX_THREADS:
            fail(
                as_json,
                f"BAKERY_THREADS={raw!r} is not a number of threads: use a whole number "
                f"from 1 to {MAX_THREADS}, e.g. BAKERY_THREADS=2",
                EXIT_USAGE,
            )
        threads = int(raw)
    memory: str | None = None
    raw = os.environ.get("BAKERY_MEMORY_LIMIT", "").strip()
    if raw:
        m = _SIZE.fullmatch(raw)
        if m is None:
            fail(
                as_json,
                f"BAKERY_MEMORY_LIMIT={raw!r} is not a size: use a number and a unit, "
                "e.g. BAKERY_MEMORY_LIMIT=2GB",
                EXIT_USAGE,
            )
        size = float(m.group(1)) * _UNITS[(m.group(2) or "b").lower()]
        if size < MIN_MEMORY:
            fail(
                as_json,
                f"BAKERY_MEMORY_LIMIT={raw!r} is too small for DuckDB: use at least "
                f"{MIN_MEMORY_MB}MB, "
                "e.g. BAKERY_MEMORY_LIMIT=2GB",
                EXIT_USAGE,
            )
        memory = f"{int(size)}B"
    return threads, memory
