"""Where a local store may write: every path is proved to be inside the store folder.

The plan refuses locations that could leave a bucket (`..`, hidden or odd folder names),
but the store checks again for itself, so no URI, however it was built, and no symlink
planted in the store can make a bake write, replace or delete anything outside it.
"""

from __future__ import annotations

import os
from pathlib import Path

from bakery.errors import BakeryError


class OutsideStore(BakeryError, ValueError):
    """A URI whose path would leave the store folder; the message says which and why."""


def inside_root(root: Path, bucket: str, key: str) -> Path:
    """ROOT/BUCKET/KEY, once proved inside ROOT: no '.' or '..' part, and its real path
    (symlinks followed, as far as it exists) under ROOT's real path."""
    parts = [bucket, *key.split("/")]
    if not bucket or any(p in (".", "..") or "\\" in p or "\0" in p for p in parts):
        raise OutsideStore(
            f"s3://{bucket}/{key} has a '.', '..', '\\' or NUL path part; refusing to touch it"
        )
    path = root.joinpath(bucket, key)
    base = os.path.realpath(root)
    real = os.path.realpath(path)
    if real != base and not real.startswith(base.rstrip(os.sep) + os.sep):
        raise OutsideStore(
            f"s3://{bucket}/{key} resolves to {real}, outside the store {base} "
            "(a symlink in the store?); refusing to touch it"
        )
    return path
