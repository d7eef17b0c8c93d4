"""Empty an S3 prefix: every object under it, listed page by page, deleted 1000 at a time.

The core, `purge`, is a plain function over an S3 client so it can be tested
against moto or a stub; `handler` is the Lambda entry point.
"""

from __future__ import annotations

from typing import Any

from bakery.lambdas.s3uri import split

BATCH = 1000  # delete_objects accepts at most 1000 keys per call


class PurgeError(RuntimeError):
    """Some objects could not be deleted; the message names the first few."""


def split_location(location: str) -> tuple[str, str]:
    try:
        bucket, prefix = split(location)
    except ValueError:
        prefix = ""
    if not prefix.strip("/"):
        raise ValueError(
            f"{location!r} is not an s3://bucket/prefix/ location (bucket roots refused)"
        )
    return bucket, prefix if prefix.endswith("/") else prefix + "/"


def delete_batch(s3: Any, bucket: str, keys: list[str], where: str) -> None:
    """Delete up to BATCH keys in one call; raise PurgeError naming the first failures."""
    response = s3.delete_objects(
        Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys], "Quiet": True}
    )
    errors = response.get("Errors") or []
    if errors:
        sample = "; ".join(
            f"{e.get('Key')}: {e.get('Code')} {e.get('Message', '')}".strip() for e in errors[:3]
        )
        raise PurgeError(f"could not delete {len(errors)} of {len(keys)} objects {where}: {sample}")


def purge(s3: Any, location: str) -> int:
    """Delete every object under `location`; return how many. Raise PurgeError on any failure."""
    bucket, prefix = split_location(location)
    deleted = 0
    batch: list[str] = []
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            batch.append(obj["Key"])
            if len(batch) == BATCH:
                delete_batch(s3, bucket, batch, f"under s3://{bucket}/{prefix}")
                deleted += len(batch)
                batch = []
    if batch:
        delete_batch(s3, bucket, batch, f"under s3://{bucket}/{prefix}")
        deleted += len(batch)
    return deleted


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Event: {"location": "s3://bucket/prefix/"} -> {"location": ..., "deleted": n}."""
    import boto3

    location = event["location"]
    return {"location": location, "deleted": purge(boto3.client("s3"), location)}
