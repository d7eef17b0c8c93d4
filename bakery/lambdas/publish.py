"""Publish a staged table: copy staging over live, delete stale live files, clear staging.

Readers of the live table see the old files, then old and new, then the new ones: never
an empty table. Every S3 failure raises, so the state machine stops on it; publishing
again (a retry, or the next run's publish) finishes the job.

The core, `publish`, is a plain function over an S3 client so it can be tested against
moto or a stub; `handler` is the Lambda entry point.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bakery.lambdas.purge import BATCH, delete_batch, split_location

# copy_object copies at most 5 GiB in one request; larger objects go through the managed
# (multipart) copy.
MAX_SINGLE_COPY = 5 * 1024**3
# Server-side copies run side by side (boto3 clients are thread-safe): one request each,
# so a table of many files publishes well within the Lambda's 15 minutes.
COPY_THREADS = 16


def _objects(s3: Any, bucket: str, prefix: str):
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        yield from page.get("Contents", [])


def _delete_all(s3: Any, bucket: str, keys: list[str], where: str) -> None:
    for i in range(0, len(keys), BATCH):
        delete_batch(s3, bucket, keys[i : i + BATCH], where)


def publish(s3: Any, staging_location: str, live_location: str) -> dict[str, Any]:
    """Make the live prefix hold exactly the staged files; return what was done.

    1. copy every staged object to the same relative key under live (server-side);
    2. delete the live objects that were not copied (files of the previous build);
    3. delete the staged objects.
    """
    s_bucket, s_prefix = split_location(staging_location)
    l_bucket, l_prefix = split_location(live_location)
    if (s_bucket, s_prefix) == (l_bucket, l_prefix) or (
        s_bucket == l_bucket and (s_prefix.startswith(l_prefix) or l_prefix.startswith(s_prefix))
    ):
        raise ValueError(f"staging {staging_location!r} and live {live_location!r} overlap")
    objects = list(_objects(s3, s_bucket, s_prefix))
    staged = [o["Key"] for o in objects]
    published = {l_prefix + key[len(s_prefix) :] for key in staged}

    def copy(obj: dict[str, Any]) -> None:
        source = {"Bucket": s_bucket, "Key": obj["Key"]}
        target = l_prefix + obj["Key"][len(s_prefix) :]
        if obj.get("Size", 0) > MAX_SINGLE_COPY:
            s3.copy(source, l_bucket, target)
        else:
            s3.copy_object(CopySource=source, Bucket=l_bucket, Key=target)

    with ThreadPoolExecutor(max_workers=COPY_THREADS) as pool:
        list(pool.map(copy, objects))  # re-raises a failed copy: nothing is deleted then
    stale = [o["Key"] for o in _objects(s3, l_bucket, l_prefix) if o["Key"] not in published]
    _delete_all(s3, l_bucket, stale, f"(stale files) under s3://{l_bucket}/{l_prefix}")
    _delete_all(s3, s_bucket, staged, f"(staging) under s3://{s_bucket}/{s_prefix}")
    return {
        "staging_location": f"s3://{s_bucket}/{s_prefix}",
        "live_location": f"s3://{l_bucket}/{l_prefix}",
        "copied": len(published),
        "stale": len(stale),
    }


def s3_client() -> Any:
    """An S3 client with a connection for every copy thread. botocore's pool holds 10 by
    default (max_pool_connections), and more threads than connections is measurably slower
    (https://github.com/boto/botocore/pull/1026)."""
    import boto3
    from botocore.config import Config

    return boto3.client("s3", config=Config(max_pool_connections=COPY_THREADS))


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Event: {"staging_location": "s3://...", "live_location": "s3://..."} -> publish()."""
    return publish(s3_client(), event["staging_location"], event["live_location"])
