"""The object store a local bake reads and writes: a folder standing in for S3, or any
S3-compatible API.

Both stores speak in `s3://BUCKET/KEY` URIs, the same locations the plan holds:

- `LocalStore(root)` maps `s3://BUCKET/KEY` to `ROOT/BUCKET/KEY`;
- `S3Store(endpoint)` talks to an S3-compatible endpoint with boto3 (listing, copying,
  deleting) and lets DuckDB read and write through its httpfs extension.

`duck_path(uri)` is what DuckDB is given to read or write a location. Files whose
name starts with `.` or `_` are hidden, as Athena ignores them.
"""

from __future__ import annotations

import builtins
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from bakery.errors import BakeryError
from bakery.lambdas.s3uri import is_hidden
from bakery.lambdas.s3uri import split as split_uri
from bakery.store_paths import inside_root

DEFAULT_STORE = ".bakery/store"


class Store(Protocol):
    """What the local engine needs from an object store (URIs are s3://bucket/key)."""

    @property
    def description(self) -> str: ...

    is_local: bool

    def duck_path(self, uri: str) -> str: ...
    def list(self, prefix: str) -> list[str]: ...  # visible objects under prefix, sorted
    def exists(self, uri: str) -> bool: ...
    def read_bytes(self, uri: str) -> bytes: ...
    def write_bytes(self, uri: str, data: bytes) -> None: ...  # atomic per object
    def delete(self, uri: str) -> None: ...
    def delete_prefix(self, prefix: str) -> int: ...
    def move_prefix(self, src: str, dst: str) -> None: ...  # replace dst with src


@dataclass
class LocalStore:
    """A folder standing in for S3: s3://BUCKET/KEY is ROOT/BUCKET/KEY."""

    root: Path
    is_local: bool = True

    def __post_init__(self) -> None:
        self.root = Path(self.root).absolute()

    @property
    def description(self) -> str:
        return str(self.root)

    def path(self, uri: str) -> Path:
        bucket, key = split_uri(uri)
        return inside_root(self.root, bucket, key)  # or OutsideStore

    def duck_path(self, uri: str) -> str:
        return str(self.path(uri))

    def list(self, prefix: str) -> list[str]:
        base = self.path(prefix)
        if not base.is_dir():
            return []
        out = []
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = sorted(d for d in dirnames if not is_hidden(d))
            rel = Path(dirpath).relative_to(self.root).as_posix()
            for name in filenames:
                if not is_hidden(name):
                    out.append(f"s3://{rel}/{name}")
        return sorted(out)

    def exists(self, uri: str) -> bool:
        return self.path(uri).is_file()

    def read_bytes(self, uri: str) -> bytes:
        return self.path(uri).read_bytes()

    def write_bytes(self, uri: str, data: bytes) -> None:
        target = self.path(uri)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
        tmp.write_bytes(data)
        os.replace(tmp, target)

    def delete(self, uri: str) -> None:
        self.path(uri).unlink(missing_ok=True)

    def delete_prefix(self, prefix: str) -> int:
        base = self.path(prefix)
        if not base.exists():
            return 0
        n = sum(len(files) for _, _, files in os.walk(base))
        shutil.rmtree(base)
        return n

    def move_prefix(self, src: str, dst: str) -> None:
        """Replace the folder at dst by the one at src with two renames (no copying)."""
        source, target = self.path(src), self.path(dst)
        target.parent.mkdir(parents=True, exist_ok=True)
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        if target.exists():
            os.replace(target, old)
        if source.exists():
            os.replace(source, target)
        else:
            target.mkdir(parents=True)
        if old.exists():
            shutil.rmtree(old)


class S3Store:
    """Any S3-compatible API (AWS, MinIO, moto): boto3 for listing/copying/deleting,
    DuckDB's httpfs for reading and writing data files."""

    is_local = False

    def __init__(self, endpoint: str, region: str = "eu-west-2"):
        import boto3

        self.endpoint = endpoint.rstrip("/")
        self.region = region
        self.client = boto3.client("s3", endpoint_url=self.endpoint, region_name=region)
        self.description = f"S3 at {self.endpoint}"

    def duck_path(self, uri: str) -> str:
        return uri

    def list(self, prefix: str) -> list[str]:
        bucket, key = split_uri(prefix)
        out = []
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket, Prefix=key):
            for obj in page.get("Contents", []):
                rel = obj["Key"][len(key) :]
                if is_hidden(rel):
                    continue
                out.append(f"s3://{bucket}/{obj['Key']}")
        return sorted(out)

    def exists(self, uri: str) -> bool:
        """True or False only when S3 said so: any other error (throttling, a 500, no
        permission) is raised, since the publish reads "absent" as "already moved"."""
        bucket, key = split_uri(uri)
        try:
            self.client.head_object(Bucket=bucket, Key=key)
            return True
        except self.client.exceptions.ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in ("404", "NoSuchKey", "NotFound"):
                return False
            raise

    def read_bytes(self, uri: str) -> bytes:
        bucket, key = split_uri(uri)
        return self.client.get_object(Bucket=bucket, Key=key)["Body"].read()

    def write_bytes(self, uri: str, data: bytes) -> None:
        bucket, key = split_uri(uri)
        self.client.put_object(Bucket=bucket, Key=key, Body=data)  # a put is atomic

    def delete(self, uri: str) -> None:
        bucket, key = split_uri(uri)
        self.client.delete_object(Bucket=bucket, Key=key)

    def _all(self, prefix: str) -> builtins.list[str]:
        bucket, key = split_uri(prefix)
        keys: builtins.list[str] = []
        for page in self.client.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=key
        ):
            keys.extend(obj["Key"] for obj in page.get("Contents", []))
        return keys

    def delete_prefix(self, prefix: str) -> int:
        """Delete every object under prefix (a folder: '/' is implied at its end).
        Raises bakery.lambdas.purge.PurgeError naming keys S3 did not delete."""
        from bakery.lambdas.purge import purge

        return purge(self.client, prefix)

    def _delete_keys(self, bucket: str, keys: builtins.list[str]) -> None:
        from bakery.lambdas.purge import BATCH, delete_batch

        for i in range(0, len(keys), BATCH):
            delete_batch(self.client, bucket, keys[i : i + BATCH], f"in s3://{bucket}/")

    def copy_prefix(self, src: str, dst: str) -> None:
        """Make dst hold exactly the objects of src (src is kept): copy every object of
        src that differs over dst, then delete what dst had that src lacks. Each object
        is replaced atomically; the whole is not, but repeating it after a kill completes
        it. The publish Lambda's copy (bakery.lambdas.publish.mirror), so S3 has one."""
        from bakery.lambdas.publish import mirror

        mirror(self.client, src, dst)

    def move_prefix(self, src: str, dst: str) -> None:
        """copy_prefix, then delete src. Not atomic as a whole (S3 has no rename)."""
        self.copy_prefix(src, dst)
        self.delete_prefix(src)


class StoreUnusable(BakeryError):
    """A store path or endpoint that cannot be used; the message is one short reason."""


def check_endpoint(url: str) -> str:
    """The endpoint without a trailing slash, or StoreUnusable when it is not
    http(s)://host[:port]."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url.strip())
        port = parts.port  # raises ValueError for a port that is not a number or too big
    except ValueError:
        port, parts = None, None
    if (
        parts is None
        or parts.scheme not in ("http", "https")
        or not parts.hostname
        or "@" in parts.netloc
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or any(c.isspace() for c in url.strip())
        or (port is not None and port == 0)
    ):
        raise StoreUnusable("expected http(s)://host[:port], e.g. http://127.0.0.1:9000")
    return url.strip().rstrip("/")


def check_local_root(root: Path, *, create: bool) -> Path:
    """The absolute store folder, checked: an existing directory we can use, or (with
    create) one we can create. Raises StoreUnusable with a short reason otherwise."""
    root = Path(root).expanduser().absolute()
    if root.exists() or root.is_symlink():
        if not root.is_dir():
            raise StoreUnusable("not a directory" if root.exists() else "a broken symlink")
        if create and not os.access(root, os.W_OK | os.X_OK):
            raise StoreUnusable("not writable")
        if not os.access(root, os.R_OK | os.X_OK):
            raise StoreUnusable("not readable")
        return root
    if create:
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreUnusable(f"cannot create it: {exc.strerror or exc}") from None
    else:
        parent = next((p for p in root.parents if p.exists()), None)
        if parent is not None and not parent.is_dir():
            raise StoreUnusable(f"{parent} is not a directory")
    return root


def open_store(store: str | Path | None = None, s3_endpoint: str | None = None) -> Store:
    """The store a command uses: --s3-endpoint, else --store / $BAKERY_STORE / .bakery/store."""
    endpoint = s3_endpoint or os.environ.get("BAKERY_S3_ENDPOINT")
    if endpoint:
        return S3Store(endpoint)
    root = store or os.environ.get("BAKERY_STORE") or DEFAULT_STORE
    return LocalStore(Path(root))
