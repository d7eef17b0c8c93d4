"""Compare two product trees: folders of `<KEY>.parquet` files (e.g. one per outcode).

A tree is a local folder or an s3:// prefix. Files whose bytes are the same on both
sides (the same content hash locally, the same ETag on S3) are equal without being
read; only the others are read, side by side in threads, and compared row by row on a
key column: rows added or removed, rows whose value (or value list) changed, keys
found more than once in a file (never tolerated: a product's key is unique), and
differences of schema (column names, order and types). Byte-identical files are equal,
repeats included, so repeats are looked for in the files read.

A local tree's files must be regular files (a link only to one inside the tree): a
FIFO or /dev/zero named X.parquet would block or never end.

Over the ~400-line guide because listing a tree, reading a file pair and comparing its
rows share one FileSummary and one notion of a key; split along those seams (trees,
row diff) when the review page (bakery.review) needs more of them than it does now.

A file with no columns (export_by_key's "no row has a value" file) holds no rows: its
addresses are all without a value, so against a file with rows it counts only the
rows that do have a value, as changed.

Over the ~400-line guide: listing, fetching and the batched row comparison share the
Tree/FileRef model and are one command's pipeline; the S3 reader is lambdas/s3_ranged.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bakery import regular_files
from bakery.errors import BakeryError
from bakery.lambdas.s3_ranged import RangedObject
from bakery.lambdas.s3uri import split

SUFFIX = ".parquet"
EXAMPLES = 10  # how many keys of each kind of difference are listed


class CompareError(BakeryError):
    """A tree cannot be read; the message says which and why."""


@dataclass
class FileRef:
    uri: str
    fingerprint: str  # content hash (local) or ETag (S3)
    size: int = 0


@dataclass
class Tree:
    root: str
    files: dict[str, FileRef]  # key value (file name without .parquet) -> file
    read: Callable[[str], bytes]
    rows: Callable[[FileRef], int]  # from the footer only


@dataclass
class Comparison:
    a: str
    b: str
    files_a: int
    files_b: int
    only_in_a: list[str]
    only_in_b: list[str]
    files_compared: int  # read and compared (the rest were byte-identical)
    files_identical: int
    rows_a: int  # in the files compared or only on one side (identical files not read)
    rows_b: int
    added: int
    removed: int
    changed: int
    duplicated_a: int  # keys found more than once in a file of A (files read only)
    duplicated_b: int
    schema_differences: dict[str, dict[str, str]]  # key -> {"a": schema, "b": schema}
    examples: dict[str, list[str]]  # "added"/.../"duplicated_b" -> "FILEKEY/ROWKEY"
    addresses_a: int  # every row of A (identical files counted from their metadata)
    tolerance: float
    seconds: float = 0.0

    @property
    def differing(self) -> int:
        return self.added + self.removed + self.changed + self.duplicated_a + self.duplicated_b

    @property
    def percent(self) -> float:
        return 100.0 * self.differing / self.addresses_a if self.addresses_a else 0.0

    @property
    def beyond_tolerance(self) -> bool:
        return bool(
            self.only_in_a
            or self.only_in_b
            or self.schema_differences
            or self.duplicated_a  # a product's key is unique: a repeat is never tolerated
            or self.duplicated_b
            or (self.differing and self.percent > self.tolerance)
        )

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(
            differing=self.differing,
            percent=round(self.percent, 4),
            beyond_tolerance=self.beyond_tolerance,
        )
        return out


# ---------------------------------------------------------------- reading trees


def _local_tree(root: str) -> Tree:
    folder = Path(root)
    if not folder.is_dir():
        raise CompareError(f"{root}: no such folder")
    names = sorted(
        p for p in folder.iterdir() if p.name.endswith(SUFFIX) and not p.name.startswith(".")
    )
    paths = [_regular(p, folder) for p in names]

    def digest(path: Path) -> str:
        h = hashlib.blake2b(digest_size=16)
        try:
            with regular_files.open_file(path) as f:
                while chunk := f.read(1 << 20):
                    h.update(chunk)
        except (OSError, regular_files.NotRegular) as exc:  # changed since it was checked
            raise CompareError(f"{path}: cannot be read ({_one_line(exc)})") from None
        return h.hexdigest()

    with ThreadPoolExecutor(max(2, os.cpu_count() or 2)) as pool:
        digests = list(pool.map(digest, paths))
    files = {
        p.name[: -len(SUFFIX)]: FileRef(str(real), d)
        for p, real, d in zip(names, paths, digests, strict=True)
    }

    def rows(ref: FileRef) -> int:
        import pyarrow.parquet as pq

        return pq.read_metadata(ref.uri).num_rows

    return Tree(root, files, lambda uri: regular_files.read(Path(uri)), rows)


def _regular(path: Path, tree: Path) -> Path:
    """The real path of a tree's file: a FIFO or a device would block or never end, so
    only regular files are read, and a link only to one inside the tree."""
    try:
        return regular_files.check(path, within=tree)
    except regular_files.NotRegular as exc:
        raise CompareError(f"{path}: {exc}; compare reads only regular files") from None
    except OSError as exc:
        raise CompareError(f"{path}: cannot be read ({_one_line(exc)})") from None


def _s3_tree(root: str, client: Any) -> Tree:
    try:
        bucket, prefix = split(root)
    except ValueError as exc:
        raise CompareError(f"{root}: {exc}") from None
    prefix = prefix if prefix.endswith("/") or not prefix else prefix + "/"
    files: dict[str, FileRef] = {}
    try:
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for page in pages:
            for obj in page.get("Contents", []):
                name = obj["Key"][len(prefix) :]
                if "/" in name or name.startswith(".") or not name.endswith(SUFFIX):
                    continue
                files[name[: -len(SUFFIX)]] = FileRef(
                    f"s3://{bucket}/{obj['Key']}", obj["ETag"].strip('"'), obj["Size"]
                )
    except Exception as exc:  # botocore: no bucket, no credentials, denied
        raise CompareError(f"{root}: cannot list ({_one_line(exc)})") from None

    def read(uri: str) -> bytes:
        b, k = split(uri)
        return client.get_object(Bucket=b, Key=k)["Body"].read()

    def rows(ref: FileRef) -> int:
        import pyarrow.parquet as pq

        b, k = split(ref.uri)
        return pq.read_metadata(RangedObject(client, b, k, ref.size)).num_rows

    return Tree(root, files, read, rows)


def open_tree(root: str, *, s3_client: Any = None, s3_endpoint: str | None = None) -> Tree:
    if root.startswith("s3://"):
        if s3_client is None:
            import boto3

            s3_client = boto3.client("s3", endpoint_url=s3_endpoint)
        return _s3_tree(root, s3_client)
    return _local_tree(root)


def _one_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


# ---------------------------------------------------------------- comparing files


def _type_text(arrow: Any) -> str:
    import pyarrow as pa

    # Athena and DuckDB name the item of a list differently: the same type to a reader.
    if pa.types.is_list(arrow) or pa.types.is_large_list(arrow):
        return f"list<{_type_text(arrow.value_type)}>"
    if pa.types.is_large_string(arrow):
        return "string"
    return str(arrow)


def schema_text(schema: Any) -> str:
    if len(schema) == 0:
        return "(no columns)"
    return ", ".join(f"{f.name} {_type_text(f.type)}" for f in schema)


@dataclass
class _Side:
    """The files of one side that are read: local paths and their schemas."""

    paths: dict[str, str] = field(default_factory=dict)  # key -> local path
    schemas: dict[str, Any] = field(default_factory=dict)  # key -> pyarrow schema


def _fetch(tree: Tree, names: list[str], scratch: Path | None, pool: Any) -> _Side:
    """Local paths (S3 files downloaded into scratch) and schemas of `names`."""
    import pyarrow.parquet as pq

    def one(name: str) -> tuple[str, str, Any]:
        ref = tree.files[name]
        path = ref.uri
        if ref.uri.startswith("s3://"):
            assert scratch is not None
            path = str(scratch / f"{name}{SUFFIX}")
            Path(path).write_bytes(tree.read(ref.uri))
        try:
            return name, path, pq.read_schema(path)
        except Exception as exc:
            raise CompareError(
                f"{ref.uri}: not a readable Parquet file ({_one_line(exc)})"
            ) from None

    side = _Side()
    for name, path, schema in pool.map(one, names):
        side.paths[name], side.schemas[name] = path, schema
    return side


def _rows_sql(side: _Side, names: list[str], index: dict[str, int], key: str, values: str) -> str:
    """SELECT f (file number), k (row key), h (hash of the value, 0 when it has none)
    over the readable files: one scan per file, so no per-row file name is built."""
    import pyarrow as pa

    from bakery.engine.duck import ident, quote

    k, v = ident(key), ident(values)
    parts = []
    for name in names:
        schema = side.schemas[name]
        if schema.get_field_index(key) < 0 or schema.get_field_index(values) < 0:
            continue
        kind = schema.field(values).type
        if pa.types.is_list(kind) or pa.types.is_large_list(kind):
            h = f"CASE WHEN coalesce(len({v}), 0) = 0 THEN 0 ELSE hash({v}) END"
        else:
            h = f"CASE WHEN coalesce(CAST({v} AS VARCHAR), '') = '' THEN 0 ELSE hash({v}) END"
        parts.append(
            f"SELECT {index[name]} AS f, CAST({k} AS VARCHAR) AS k, {h} AS h "
            f"FROM read_parquet({quote(side.paths[name])})"
        )
    if not parts:
        return "SELECT NULL::INTEGER AS f, NULL::VARCHAR AS k, NULL::UBIGINT AS h WHERE false"
    return "\nUNION ALL ".join(parts)


BATCH_FILES = 256  # files joined at once: a bounded hash table, whatever the tree's size


def _row_differences(
    a: _Side, b: _Side, names: list[str], key: str, values: str, threads: int
) -> tuple[dict[str, int], dict[str, list[str]], int, int]:
    """Counts and examples of rows added, removed and changed, and of keys repeated in
    a file of either side: a DuckDB join per batch of files (rows match only within a
    file, so batches are independent).

    A side whose file is the empty "no values" file (no columns) holds every row of
    the other side without a value: only rows that have one there count, as changed.
    """
    import duckdb

    config: dict[str, str | bool | int | float | list[str]] = {
        "threads": threads,
        "preserve_insertion_order": False,
    }
    if os.environ.get("BAKERY_MEMORY_LIMIT"):
        config["memory_limit"] = os.environ["BAKERY_MEMORY_LIMIT"]
    con = duckdb.connect(":memory:", config=config)
    con.execute("SET enable_progress_bar = false")
    counts: dict[str, int] = {}
    examples: dict[str, list[str]] = {}
    rows_a = rows_b = 0

    def numbers(items: list[str], index: dict[str, int]) -> str:
        return "[" + ", ".join(str(index[n]) for n in items) + "]::INTEGER[]"

    try:
        for start in range(0, len(names), BATCH_FILES):
            batch = names[start : start + BATCH_FILES]
            empties_a = [n for n in batch if n in a.schemas and len(a.schemas[n]) == 0]
            empties_b = [n for n in batch if n in b.schemas and len(b.schemas[n]) == 0]
            in_a = [n for n in batch if n in a.paths]
            in_b = [n for n in batch if n in b.paths]
            index = {name: i for i, name in enumerate(batch)}
            # A key repeated in a file is one row of the join (with its count), so the
            # other side's row is not matched, nor counted, once per copy; copies that
            # disagree get a value of their own, equal only to the same disagreement.
            one = "CASE WHEN min(h) = max(h) THEN min(h) ELSE hash(list_sort(list(h))) END"
            sql = f"""
            WITH ra AS ({_rows_sql(a, in_a, index, key, values)}),
                 rb AS ({_rows_sql(b, in_b, index, key, values)}),
                 a AS (SELECT f, k, count(*) AS n, {one} AS h FROM ra GROUP BY f, k),
                 b AS (SELECT f, k, count(*) AS n, {one} AS h FROM rb GROUP BY f, k),
                 j AS (
                    SELECT coalesce(a.f, b.f) AS f, coalesce(a.k, b.k) AS k, a.h AS va, b.h AS vb,
                           coalesce(a.n, 0) AS na, coalesce(b.n, 0) AS nb
                    FROM a FULL OUTER JOIN b ON a.f = b.f AND a.k = b.k
                 ),
                 kinds AS (
                    SELECT f, k, CASE
                        WHEN va IS NULL AND list_contains({numbers(empties_a, index)}, f)
                            THEN CASE WHEN vb <> 0 THEN 'changed' END
                        WHEN vb IS NULL AND list_contains({numbers(empties_b, index)}, f)
                            THEN CASE WHEN va <> 0 THEN 'changed' END
                        WHEN va IS NULL THEN 'added'
                        WHEN vb IS NULL THEN 'removed'
                        WHEN va <> vb THEN 'changed'
                    END AS kind, na, nb, f::VARCHAR || '/' || k AS ex
                    FROM j
                 )
            SELECT kind, count(*), min(ex, {EXAMPLES}), sum(na), sum(nb),
                   count_if(na > 1), min(ex, {EXAMPLES}) FILTER (WHERE na > 1),
                   count_if(nb > 1), min(ex, {EXAMPLES}) FILTER (WHERE nb > 1)
            FROM kinds GROUP BY kind
            """
            for kind, n, sample, ra, rb, da, sa, db, sb in con.execute(sql).fetchall():
                rows_a += int(ra or 0)
                rows_b += int(rb or 0)
                for name, count, found in ((kind, n, sample), ("duplicated_a", da, sa),
                                           ("duplicated_b", db, sb)):  # fmt: skip
                    if name is None or not count:
                        continue
                    named = [f"{batch[int(x.split('/', 1)[0])]}/{x.split('/', 1)[1]}"
                             for x in found or []]  # fmt: skip
                    counts[name] = counts.get(name, 0) + count
                    examples[name] = sorted(examples.get(name, []) + named)[:EXAMPLES]
        return counts, examples, rows_a, rows_b
    finally:
        con.close()


# An installed product declares its trees' key and value columns as an entry point of
# this group: `NAME = "module:MAPPING"`, MAPPING {"key": COLUMN, "values": COLUMN}.
DEFAULTS_ENTRY_POINT_GROUP = "bakery.compare_defaults"


def default_columns() -> dict[str, str]:
    """The key and value columns the installed product declares (the first by entry point
    name); empty when none does, and then both must be given."""
    from importlib.metadata import entry_points

    for ep in sorted(entry_points(group=DEFAULTS_ENTRY_POINT_GROUP), key=lambda e: e.name):
        return dict(ep.load())
    return {}


def compare_trees(
    a: Tree,
    b: Tree,
    *,
    key: str | None = None,
    values: str | None = None,
    tolerance: float = 0.0,
    workers: int | None = None,
) -> Comparison:
    """Compare two trees; files with the same fingerprint are equal without being read.
    `key` and `values` default to the installed product's (`default_columns`)."""
    defaults = default_columns()
    key = key or defaults.get("key")
    values = values or defaults.get("values")
    if key is None or values is None:
        raise CompareError(
            "no key or value column: give --key and --values (no installed package declares "
            f"defaults in the entry point group {DEFAULTS_ENTRY_POINT_GROUP})"
        )
    import tempfile
    import time

    started = time.perf_counter()
    names_a, names_b = set(a.files), set(b.files)
    common = sorted(names_a & names_b)
    same = [n for n in common if a.files[n].fingerprint == b.files[n].fingerprint]
    differ = [n for n in common if a.files[n].fingerprint != b.files[n].fingerprint]
    only_a, only_b = sorted(names_a - names_b), sorted(names_b - names_a)
    workers = workers or max(2, os.cpu_count() or 2)
    with (
        tempfile.TemporaryDirectory(prefix="bakery-compare-") as tmp,
        ThreadPoolExecutor(
            max(workers, 8)  # downloads wait on the network more than on the CPU
        ) as pool,
    ):
        scratch_a, scratch_b = Path(tmp, "a"), Path(tmp, "b")
        scratch_a.mkdir()
        scratch_b.mkdir()
        side_a = _fetch(a, differ + only_a, scratch_a, pool)
        side_b = _fetch(b, differ + only_b, scratch_b, pool)
        identical_rows = sum(pool.map(lambda n: a.rows(a.files[n]), same))
        counts, examples, rows_a, rows_b = _row_differences(
            side_a, side_b, differ + only_a + only_b, key, values, workers
        )
    schema_differences = {}
    for name in differ:
        sa, sb = side_a.schemas[name], side_b.schemas[name]
        if len(sa) and len(sb) and schema_text(sa) != schema_text(sb):
            schema_differences[name] = {"a": schema_text(sa), "b": schema_text(sb)}
    for side, names in ((side_a, differ + only_a), (side_b, differ + only_b)):
        for name in names:
            schema = side.schemas[name]
            if len(schema) and (schema.get_field_index(key) < 0
                                or schema.get_field_index(values) < 0):  # fmt: skip
                other = side_b if side is side_a else side_a
                theirs = schema_text(other.schemas[name]) if name in other.schemas else "(none)"
                pair = (
                    (schema_text(schema), theirs)
                    if side is side_a
                    else (theirs, schema_text(schema))
                )
                schema_differences[name] = {"a": pair[0], "b": pair[1]}
    result = Comparison(
        a=a.root,
        b=b.root,
        files_a=len(names_a),
        files_b=len(names_b),
        only_in_a=only_a,
        only_in_b=only_b,
        files_compared=len(differ),
        files_identical=len(same),
        rows_a=rows_a,
        rows_b=rows_b,
        added=counts.get("added", 0),
        removed=counts.get("removed", 0),
        changed=counts.get("changed", 0),
        duplicated_a=counts.get("duplicated_a", 0),
        duplicated_b=counts.get("duplicated_b", 0),
        schema_differences=dict(sorted(schema_differences.items())),
        examples=examples,
        addresses_a=identical_rows + rows_a,
        tolerance=tolerance,
    )
    result.seconds = time.perf_counter() - started
    return result
