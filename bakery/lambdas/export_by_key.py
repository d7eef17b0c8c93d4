"""export_by_key: one Parquet file per key value (e.g. one per outcode), read by the APIs.

The same core runs in AWS Lambda (`handler`, `delete_stale_handler`) and in the local
engine (`bakery bake`), which passes its own store. Only the standard library, pyarrow
and (in Lambda) boto3 are used, so the module deploys on its own.

Rules (design.md):
- `<KEY>.parquet` per key value, rows sorted by `sort_by`, columns = `columns`;
- when no row of a key has a value in `empty_unless_any` (NULL or an empty list counts
  as no value) the file is written empty, with no rows and no columns, so readers
  tell "no elections" from "missing";
- rows with the same `unique_by` value: identical ones are de-duplicated with a
  warning, conflicting ones fail the run with an error naming the key;
- each file is replaced atomically (a put on S3; write beside it then rename locally);
- stale `<KEY>.parquet` files are deleted only after every new file is in place.

Memory is bounded by the biggest key, not by the partition (see `export_partition`):
a partition bigger than `rows_per_pass` rows is exported in passes over its files,
each holding only the rows of a range of keys, streamed row group by row group.

Over the ~400-line guide: the core, its range passes and the two Lambda handlers are
one deployable unit whose rules above hold together; the only sibling it imports is
the ranged S3 reader.
"""

from __future__ import annotations

import io
import logging
import os
import re
from collections.abc import Iterable
from typing import Any, Protocol

from bakery.lambdas.s3_ranged import RangedObject
from bakery.lambdas.s3uri import is_hidden, split

log = logging.getLogger("bakery.export_by_key")

SUFFIX = ".parquet"
_SAFE_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.\-]*$")


class ExportError(Exception):
    """The export cannot go on (conflicting duplicates, bad key values)."""


class ObjectIO(Protocol):
    """s3://bucket/key objects: bakery.store.Store satisfies it, as does S3IO below."""

    def list(self, prefix: str) -> list[str]: ...
    def read_bytes(self, uri: str) -> bytes: ...
    def write_bytes(self, uri: str, data: bytes) -> None: ...
    def delete(self, uri: str) -> None: ...


class S3IO:
    """boto3-backed ObjectIO, used by the Lambda handlers."""

    def __init__(self, client: Any = None):
        if client is None:
            import boto3

            client = boto3.client("s3")
        self.client = client

    def list(self, prefix: str) -> list[str]:
        bucket, key = split(prefix)
        out = []
        for page in self.client.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=key
        ):
            for obj in page.get("Contents", []):
                if not is_hidden(obj["Key"][len(key) :]):
                    out.append(f"s3://{bucket}/{obj['Key']}")
        return sorted(out)

    def read_bytes(self, uri: str) -> bytes:
        bucket, key = split(uri)
        return self.client.get_object(Bucket=bucket, Key=key)["Body"].read()

    def write_bytes(self, uri: str, data: bytes) -> None:
        bucket, key = split(uri)
        self.client.put_object(Bucket=bucket, Key=key, Body=data)

    def delete(self, uri: str) -> None:
        bucket, key = split(uri)
        self.client.delete_object(Bucket=bucket, Key=key)

    def open_read(self, uri: str) -> Any:
        """A seekable file over ranged GETs: Parquet readers fetch the footer and the
        column chunks they need, never the whole object."""
        bucket, key = split(uri)
        size = self.client.head_object(Bucket=bucket, Key=key)["ContentLength"]
        return io.BufferedReader(RangedObject(self.client, bucket, key, size), 1 << 20)


# ---------------------------------------------------------------- core


def partition_prefix(table_location: str, partition: dict[str, str] | None) -> str:
    prefix = table_location if table_location.endswith("/") else table_location + "/"
    for name, value in (partition or {}).items():
        prefix += f"{name}={value}/"
    return prefix


def read_table(objects: ObjectIO, table_location: str, partition: dict[str, str] | None):
    """The Parquet files of one partition (or the whole table) as one pyarrow Table."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    files = [f for f in objects.list(partition_prefix(table_location, partition))]
    files = [f for f in files if not f.endswith("/")]
    tables = [pq.read_table(io.BytesIO(objects.read_bytes(f))) for f in files]
    tables = [t for t in tables if t.num_columns]
    if not tables:
        return None
    return pa.concat_tables(tables, promote_options="default")


WARN_EACH = 10  # duplicated values warned about one by one; the rest in one line


def _dedupe(table, key: str, unique_by: str, columns: list[str]):
    """Drop identical duplicate rows by unique_by (warning); fail on conflicting ones.

    One pass: count rows per unique_by value, pick every row of a duplicated value at
    once, then compare those rows grouped by value (the first row of each value kept).
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    counts = table.group_by(unique_by).aggregate([(unique_by, "count")])
    dupes = counts.filter(pc.greater(counts[f"{unique_by}_count"], 1))[unique_by]
    if len(dupes) == 0:
        return table
    compare = list(dict.fromkeys([key, *columns]))
    mask = pc.is_in(table[unique_by], value_set=dupes.combine_chunks())
    positions = np.flatnonzero(np.asarray(mask.to_numpy(zero_copy_only=False), dtype=bool))
    values = table[unique_by].take(positions).to_pylist()
    rows = table.select(compare).take(positions).to_pylist()
    groups: dict[Any, list[tuple[int, dict]]] = {}
    for pos, value, row in zip(positions.tolist(), values, rows, strict=True):
        groups.setdefault(value, []).append((pos, row))
    drop: list[int] = []
    for n, (value, group) in enumerate(groups.items()):
        first = group[0][1]
        if any(row != first for _, row in group[1:]):
            keys = sorted({str(r[key]) for _, r in group})
            raise ExportError(
                f"conflicting rows for {unique_by}={value!r} in {key}={', '.join(keys)}: "
                f"{len(group)} rows with the same {unique_by} differ"
            )
        if n < WARN_EACH:
            log.warning(
                "dropped %d identical duplicate row(s) for %s=%r in %s=%s",
                len(group) - 1,
                unique_by,
                value,
                key,
                first[key],
            )
        drop.extend(pos for pos, _ in group[1:])
    if len(groups) > WARN_EACH:
        log.warning(
            "dropped identical duplicate rows for %d more %s value(s)",
            len(groups) - WARN_EACH,
            unique_by,
        )
    keep = np.ones(table.num_rows, dtype=bool)
    keep[drop] = False
    return table.filter(pa.array(keep))


def _has_value(column) -> Any:
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_list(column.type) or pa.types.is_large_list(column.type):
        lengths = pc.fill_null(pc.list_value_length(column), 0)
        return np.asarray(pc.greater(lengths, 0).to_numpy(zero_copy_only=False), dtype=bool)
    valid = pc.is_valid(column)
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        valid = pc.and_(valid, pc.fill_null(pc.not_equal(column, ""), False))
    return np.asarray(valid.to_numpy(zero_copy_only=False), dtype=bool)


def parquet_bytes(table) -> bytes:
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(table, buf, compression="snappy")
    return buf.getvalue()


EMPTY_FILE: bytes | None = None


def empty_file() -> bytes:
    """A Parquet file with no rows and no columns."""
    global EMPTY_FILE
    if EMPTY_FILE is None:
        import pyarrow as pa

        EMPTY_FILE = parquet_bytes(pa.table({}))
    return EMPTY_FILE


def export_table(
    objects: ObjectIO,
    table,
    *,
    destination: str,
    key: str,
    columns: list[str],
    sort_by: list[str] | None = None,
    unique_by: str | None = None,
    empty_unless_any: str | None = None,
) -> list[str]:
    """Write `<destination><KEY>.parquet` for every key value of `table`; return the keys."""
    import numpy as np
    import pyarrow.compute as pc

    if table is None or table.num_rows == 0:
        return []
    destination = destination if destination.endswith("/") else destination + "/"
    missing = [c for c in [key, *columns, *(sort_by or [])] if c not in table.column_names]
    for name in (unique_by, empty_unless_any):
        if name and name not in table.column_names:
            missing.append(name)
    if missing:
        raise ExportError(f"table has no column(s) {', '.join(missing)}")
    nulls = table[key].null_count
    if nulls:
        log.warning("skipped %d row(s) with no %s", nulls, key)
        table = table.filter(pc.is_valid(table[key]))
    if unique_by:
        table = _dedupe(table, key, unique_by, columns)
    order = [(key, "ascending")] + [(c, "ascending") for c in (sort_by or []) if c != key]
    table = table.sort_by(order)
    keys = np.asarray(table[key].to_numpy(zero_copy_only=False))
    if len(keys) == 0:
        return []
    starts = np.concatenate([[0], np.flatnonzero(keys[1:] != keys[:-1]) + 1])
    ends = np.concatenate([starts[1:], [len(keys)]])
    has = _has_value(table[empty_unless_any]) if empty_unless_any else None
    out_table = table.select(columns)
    written = []
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
        value = str(keys[start])
        if not _SAFE_KEY.match(value):
            raise ExportError(f"{key} value {value!r} cannot be a file name")
        if has is not None and not has[start:end].any():
            data = empty_file()
        else:
            data = parquet_bytes(out_table.slice(start, end - start))
        objects.write_bytes(f"{destination}{value}{SUFFIX}", data)
        written.append(value)
    return written


ROWS_PER_PASS = 500_000  # rows of a partition held at once, unless one key has more


def _open(objects: ObjectIO, uri: str) -> Any:
    """A file for pyarrow to read from: the file itself in a local store, ranged reads
    on S3, else (an unknown store) the object's bytes."""
    if getattr(objects, "is_local", False) and hasattr(objects, "path"):
        return str(objects.path(uri))
    if hasattr(objects, "open_read"):
        return objects.open_read(uri)
    return io.BytesIO(objects.read_bytes(uri))


def _files(objects: ObjectIO, table_location: str, partition: dict[str, str] | None) -> list:
    import pyarrow.parquet as pq

    uris = [u for u in objects.list(partition_prefix(table_location, partition))]
    files = [pq.ParquetFile(_open(objects, u)) for u in uris if not u.endswith("/")]
    return [f for f in files if f.schema_arrow.names]


BATCH_ROWS = 16_384  # rows decoded at once while streaming a file


def _stream(files: list, columns: list[str], keep: Any = None, key: str = ""):
    """Record batches of `columns` from every file, row group by row group; with
    `keep` (a set of key values), only the rows whose key is in it."""
    import pyarrow.compute as pc

    for f in files:
        for batch in f.iter_batches(batch_size=BATCH_ROWS, columns=columns, use_threads=False):
            if keep is not None:
                batch = batch.filter(pc.is_in(batch.column(key), value_set=keep))
            if batch.num_rows:
                yield batch


def _key_ranges(
    files: list, key: str, unique_by: str | None, rows_per_pass: int
) -> tuple[list[list], int]:
    """First pass, over the key (and unique_by) columns only: the sorted key values cut
    into consecutive ranges of at most rows_per_pass rows (a bigger key alone), after
    failing on a unique_by value whose rows are under two keys (as _dedupe would); and
    how many rows have no key."""
    import pyarrow as pa
    import pyarrow.compute as pc

    cols = list(dict.fromkeys([key, *([unique_by] if unique_by else [])]))
    table = pa.Table.from_batches(list(_stream(files, cols)))
    nulls = table[key].null_count
    if unique_by and unique_by != key:
        # sorted by (unique_by, key), a value under two keys shows as neighbours with the
        # same unique_by and different keys (a sort: far less memory than hashing)
        valid = table.filter(pc.is_valid(table[key]))
        order = pc.sort_indices(valid, [(unique_by, "ascending"), (key, "ascending")])
        ids = valid[unique_by].take(order).combine_chunks()
        keys = valid[key].take(order).combine_chunks()
        del order, valid
        n = len(ids)
        split = pc.and_(
            pc.equal(ids.slice(1), ids.slice(0, n - 1)),
            pc.not_equal(keys.slice(1), keys.slice(0, n - 1)),
        )
        if n > 1 and pc.any(split).as_py():
            value = ids[pc.index(split, True).as_py()].as_py()
            rows = table.filter(pc.equal(table[unique_by], value))
            under = sorted({str(k) for k in rows[key].to_pylist() if k is not None})
            raise ExportError(
                f"conflicting rows for {unique_by}={value!r} in {key}={', '.join(under)}: "
                f"{rows.num_rows} rows with the same {unique_by} differ"
            )
        del ids, keys, split
    counts = table.group_by(key).aggregate([(key, "count")]).sort_by(key)
    del table
    ranges: list[list] = []
    size = 0
    for value, n in zip(counts[key].to_pylist(), counts[f"{key}_count"].to_pylist(), strict=True):
        if value is None:
            continue
        if not ranges or size + n > rows_per_pass:
            ranges.append([])
            size = 0
        ranges[-1].append(value)
        size += n
    return ranges, nulls


def export_partition(
    objects: ObjectIO,
    *,
    table_location: str,
    partition: dict[str, str] | None,
    destination: str,
    key: str,
    columns: list[str],
    sort_by: list[str] | None = None,
    unique_by: str | None = None,
    empty_unless_any: str | None = None,
    rows_per_pass: int | None = None,
) -> list[str]:
    """export_table over one partition, in memory bounded by the biggest key.

    A partition of at most rows_per_pass rows (Parquet footers tell) is read whole. A
    bigger one is read in passes: a first over the key column cuts the keys into ranges
    of at most rows_per_pass rows, then each range's rows are streamed out of the files
    (only the needed columns, row group by row group) and exported. So the rows held at
    once are max(rows_per_pass, biggest key), whatever the partition's size; the price
    is one read of the files per range."""
    import pyarrow as pa

    limit = rows_per_pass or ROWS_PER_PASS
    files = _files(objects, table_location, partition)
    total = sum(f.metadata.num_rows for f in files)
    options: dict[str, Any] = dict(
        destination=destination,
        key=key,
        columns=columns,
        sort_by=sort_by,
        unique_by=unique_by,
        empty_unless_any=empty_unless_any,
    )
    if not files or total == 0:
        return []
    wanted = list(
        dict.fromkeys(
            [key, *columns, *(sort_by or []), *[c for c in (unique_by, empty_unless_any) if c]]
        )
    )
    everywhere = [c for c in wanted if all(c in f.schema_arrow.names for f in files)]
    if total <= limit or everywhere != wanted:
        # small enough, or files of differing columns: read whole, as export_table expects
        return export_table(objects, read_table(objects, table_location, partition), **options)
    ranges, nulls = _key_ranges(files, key, unique_by, limit)
    if nulls:  # rows with no key are skipped, as export_table does
        log.warning("skipped %d row(s) with no %s", nulls, key)
    written: list[str] = []
    for keys in ranges:
        batches = list(_stream(files, wanted, pa.array(keys), key))
        table = pa.Table.from_batches(batches)
        del batches
        written += export_table(objects, table, **options)
        del table
    return written


def is_key_file(name: str) -> bool:
    """A `<KEY>.parquet` file directly under a destination (what delete_stale may delete)."""
    return "/" not in name and name.endswith(SUFFIX)


def delete_stale(objects: ObjectIO, destination: str, keep: Iterable[str]) -> int:
    """Delete `<KEY>.parquet` files under destination whose key is not in `keep`."""
    destination = destination if destination.endswith("/") else destination + "/"
    wanted = set(keep)
    deleted = 0
    for uri in objects.list(destination):
        name = uri[len(destination) :]
        if not is_key_file(name):
            continue
        if name[: -len(SUFFIX)] not in wanted:
            objects.delete(uri)
            deleted += 1
    return deleted


# ---------------------------------------------------------------- AWS Lambda


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Export one partition of a table: returns {"keys": [written key values]}."""
    logging.getLogger().setLevel(logging.INFO)
    keys = export_partition(
        S3IO(),
        table_location=event["table_location"],
        partition=event.get("partition"),
        destination=event["destination"],
        key=event["key"],
        columns=list(event["columns"]),
        sort_by=list(event.get("sort_by") or []),
        unique_by=event.get("unique_by"),
        empty_unless_any=event.get("empty_unless_any"),
        rows_per_pass=int(os.environ.get("EXPORT_ROWS_PER_PASS") or ROWS_PER_PASS),
    )
    return {"keys": keys}


def delete_stale_handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """After every partition's export: delete files of keys no partition wrote."""
    keep = [k for result in event.get("results") or [] for k in (result or {}).get("keys", [])]
    return {"deleted": delete_stale(S3IO(), event["destination"], keep)}
