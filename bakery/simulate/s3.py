"""S3 for a simulation: moto's server on 127.0.0.1, loaded from the store folder and
mirrored back into it afterwards.

During a run moto holds every object: the Lambda handlers write through boto3 and DuckDB
reads and writes through its httpfs extension, both against the same endpoint, as they
would against S3. The folder (`--store`) is copied in before the run and made equal to
moto's buckets after it, so `bake` and `simulate` can be compared file by file.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REGION = "eu-west-2"
# moto accepts any credentials; these are never sent anywhere but 127.0.0.1.
FAKE_ENV = {
    "AWS_ACCESS_KEY_ID": "bakery-simulate",
    "AWS_SECRET_ACCESS_KEY": "bakery-simulate",
    "AWS_SESSION_TOKEN": "",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def moto_endpoint() -> Iterator[str]:
    """Start moto's server on a free local port; the process talks to it only (the
    environment points boto3 at it and drops any profile) until the block ends."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:  # pragma: no cover - moto is a locked dependency
        raise RuntimeError("moto[server] is not installed: run `uv sync`") from None
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    saved = {k: os.environ.get(k) for k in [*FAKE_ENV, "AWS_PROFILE", "AWS_ENDPOINT_URL"]}
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    try:
        _reset(url)  # moto's state is per process: start empty, leave nothing behind
        for key, value in FAKE_ENV.items():
            if value:
                os.environ[key] = value
            else:
                os.environ.pop(key, None)
        os.environ.pop("AWS_PROFILE", None)
        os.environ["AWS_ENDPOINT_URL"] = url  # boto3.client(...) in the handlers
        yield url
    finally:
        _reset(url)
        server.stop()
        for key, before in saved.items():
            if before is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = before


def _reset(url: str) -> None:
    from urllib.request import Request, urlopen

    with urlopen(Request(f"{url}/moto-api/reset", method="POST"), timeout=30):
        pass


def client(endpoint: str, service: str = "s3") -> Any:
    import boto3

    return boto3.client(service, endpoint_url=endpoint, region_name=REGION)


def _visible(rel: Path) -> bool:
    return not any(part.startswith(".") for part in rel.parts)


def _same(path: Path, obj: dict[str, Any]) -> bool:
    """The local file holds the object (size, then MD5 against a single-part ETag)."""
    import hashlib

    etag = str(obj.get("ETag", "")).strip('"')
    if path.stat().st_size != obj.get("Size") or "-" in etag:
        return False
    return hashlib.md5(path.read_bytes()).hexdigest() == etag


def load(s3: Any, root: Path, buckets: list[str]) -> int:
    """Create `buckets` (and one per folder of the store) and upload every file; return
    how many. Hidden folders (the local engine's locks and staging) stay out."""
    names = set(buckets)
    if root.is_dir():
        names |= {p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")}
    n = 0
    for bucket in sorted(names):
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
        base = root / bucket
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*")):
            rel = path.relative_to(base)
            if path.is_file() and _visible(rel):
                s3.upload_file(str(path), bucket, rel.as_posix())
                n += 1
    return n


def mirror(s3: Any, root: Path, skip: str | None = None) -> int:
    """Make the store folder hold exactly moto's objects (visible files only), leaving
    alone the s3:// prefix `skip` (the query result files, which nothing publishes);
    return how many files were written. Objects unchanged since `load` are not copied."""
    written = 0
    skip_bucket, _, skip_prefix = (skip or "").removeprefix("s3://").partition("/")
    for bucket in [b["Name"] for b in s3.list_buckets().get("Buckets", [])]:
        base = root / bucket
        keys: set[str] = set()
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for obj in page.get("Contents", []):
                key = obj["Key"]
                keys.add(key)
                if bucket == skip_bucket and key.startswith(skip_prefix):
                    continue
                target = base / key
                if target.is_file() and _same(target, obj):
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                tmp = target.with_name(f".{target.name}.sim-{os.getpid()}")
                s3.download_file(bucket, key, str(tmp))
                os.replace(tmp, target)
                written += 1
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*"), reverse=True):
            rel = path.relative_to(base)
            if not _visible(rel):
                continue
            if bucket == skip_bucket and rel.as_posix().startswith(skip_prefix):
                continue
            if path.is_file() and rel.as_posix() not in keys:
                path.unlink()
            elif path.is_dir() and not any(path.iterdir()):
                path.rmdir()
    return written
