"""Publish a layer: per staged table or export folder, copy what changed from staging over
live, delete the stale live files, clear staging.

Readers of a live prefix see the old files, then old and new, then the new ones: never
an empty table. S3 has no multi-object transaction, so a failure part-way leaves some
prefixes (and some files of one prefix) new and the others old; staging is cleared only
after every item is copied, so the next run's publish copies everything again and the
live objects roll forward (docs/aws.md). Every S3 failure raises, so the state machine
stops on it.

`mirror` is bakery's one "make this S3 prefix hold those objects" copy: the publish
Lambda, the S3 store (bakery.store.S3Store.copy_prefix) and so the local engine's S3
publish and `bakery simulate` all use it.

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


STALE_MODES = ("all", "key_files", "none")


def _md5_etag(obj: dict[str, Any]) -> str | None:
    """The object's ETag when it is the MD5 of its bytes, else None. It is for objects
    created by PutObject or CopyObject (plaintext or SSE-S3), never for a multipart
    upload (a '-' in it) or SSE-KMS/SSE-C
    (https://docs.aws.amazon.com/AmazonS3/latest/API/API_Object.html)."""
    etag = str(obj.get("ETag") or "").strip('"')
    if len(etag) == 32 and all(c in "0123456789abcdef" for c in etag.lower()):
        return etag.lower()
    return None


def _unchanged(staged: dict[str, Any], live: dict[str, Any] | None) -> bool:
    """Same bytes for sure: same size and the same MD5 ETag (else the object is copied)."""
    if live is None or staged.get("Size") != live.get("Size"):
        return False
    etag = _md5_etag(staged)
    return etag is not None and etag == _md5_etag(live)


def _is_stale(name: str, stale: str) -> bool:
    if stale == "all":
        return True
    if stale == "key_files":  # export_by_key's <KEY>.parquet files directly under it
        return "/" not in name and name.endswith(".parquet")
    return False


def mirror(s3: Any, source: str, target: str, stale: str = "all") -> dict[str, Any]:
    """Copy every object under `source` that differs to the same relative key under
    `target` (server-side), then delete the target objects not copied that `stale` says
    go ("all"; "key_files": export files only; "none"). `source` is kept."""
    if stale not in STALE_MODES:
        raise ValueError(f"stale must be one of {', '.join(STALE_MODES)}, not {stale!r}")
    s_bucket, s_prefix = split_location(source)
    l_bucket, l_prefix = split_location(target)
    if (s_bucket, s_prefix) == (l_bucket, l_prefix) or (
        s_bucket == l_bucket and (s_prefix.startswith(l_prefix) or l_prefix.startswith(s_prefix))
    ):
        raise ValueError(f"staging {source!r} and live {target!r} overlap")
    objects = list(_objects(s3, s_bucket, s_prefix))
    live = {o["Key"]: o for o in _objects(s3, l_bucket, l_prefix)}
    published = {l_prefix + o["Key"][len(s_prefix) :] for o in objects}
    changed = [
        o for o in objects if not _unchanged(o, live.get(l_prefix + o["Key"][len(s_prefix) :]))
    ]

    def copy(obj: dict[str, Any]) -> None:
        source = {"Bucket": s_bucket, "Key": obj["Key"]}
        target = l_prefix + obj["Key"][len(s_prefix) :]
        if obj.get("Size", 0) > MAX_SINGLE_COPY:
            s3.copy(source, l_bucket, target)
        else:
            s3.copy_object(CopySource=source, Bucket=l_bucket, Key=target)

    with ThreadPoolExecutor(max_workers=COPY_THREADS) as pool:
        list(pool.map(copy, changed))  # re-raises a failed copy: nothing is deleted then
    stale_keys = [k for k in live if k not in published and _is_stale(k[len(l_prefix) :], stale)]
    _delete_all(s3, l_bucket, stale_keys, f"(stale files) under s3://{l_bucket}/{l_prefix}")
    return {
        "staging_location": f"s3://{s_bucket}/{s_prefix}",
        "live_location": f"s3://{l_bucket}/{l_prefix}",
        "copied": len(changed),
        "unchanged": len(objects) - len(changed),
        "stale": len(stale_keys),
        "staged_keys": [o["Key"] for o in objects],
    }


def clear(s3: Any, location: str, keys: list[str]) -> None:
    bucket, prefix = split_location(location)
    _delete_all(s3, bucket, keys, f"(staging) under s3://{bucket}/{prefix}")


def publish(
    s3: Any, staging_location: str, live_location: str, stale: str = "all"
) -> dict[str, Any]:
    """Make the live prefix hold the staged files (`mirror`), then clear staging."""
    done = mirror(s3, staging_location, live_location, stale)
    clear(s3, staging_location, done.pop("staged_keys"))
    return done


def publish_all(s3: Any, items: list[dict[str, Any]]) -> dict[str, Any]:
    """Every item mirrored first, then every staging cleared: a failure part-way leaves
    all staging in place, so publishing again (the next run) redoes every item."""
    done = [
        mirror(s3, i["staging_location"], i["live_location"], i.get("stale", "all")) for i in items
    ]
    for item, result in zip(items, done, strict=True):
        clear(s3, item["staging_location"], result.pop("staged_keys"))
    return {"published": done}


def s3_client() -> Any:
    """An S3 client with a connection for every copy thread. botocore's pool holds 10 by
    default (max_pool_connections), and more threads than connections is measurably slower
    (https://github.com/boto/botocore/pull/1026)."""
    import boto3
    from botocore.config import Config

    return boto3.client("s3", config=Config(max_pool_connections=COPY_THREADS))


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Event: {"items": [{"staging_location", "live_location", "stale"}, ...]} ->
    publish_all(); a single {"staging_location", "live_location"} -> publish()."""
    if "items" in event:
        return publish_all(s3_client(), list(event["items"]))
    return publish(s3_client(), event["staging_location"], event["live_location"])
