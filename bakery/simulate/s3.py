"""S3 for a simulation: moto's server on 127.0.0.1, loaded from the store folder.

During a run moto holds every object: the Lambda handlers write through boto3 and DuckDB
reads and writes through its httpfs extension, both against the same endpoint, as they
would against S3. The folder (`--store`) is copied in before the run; what a layer
publishes goes back into it through bakery.simulate.publish.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePath
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


def visible(rel: PurePath) -> bool:
    return not any(part.startswith(".") for part in rel.parts)


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
            if path.is_file() and visible(rel):
                s3.upload_file(str(path), bucket, rel.as_posix())
                n += 1
    return n
