"""export_by_key's memory is bounded by the biggest key, not by the partition: a
partition bigger than rows_per_pass is exported in passes over key ranges, with the
same files as one pass, locally and through ranged S3 reads (moto)."""

from __future__ import annotations

import io
import json
import random
import subprocess
import sys
from pathlib import Path

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from moto import mock_aws

from bakery.lambdas import export_by_key as ebk
from bakery.store import LocalStore

TABLE = "s3://bucket/joined/"
PART = {"first_letter": "S"}
OPTS = dict(
    key="outcode",
    columns=["uprn", "address", "postcode", "ballot_ids"],
    sort_by=["postcode", "uprn"],
    unique_by="uprn",
    empty_unless_any="ballot_ids",
)


def rows(n: int, outcodes: int, seed: int = 1) -> list[dict]:
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        oc = f"S{rnd.randrange(outcodes)}"
        out.append(
            {
                "outcode": oc,
                "uprn": str(100000 + i),
                "address": f"{i} Long Street Name, Some Town {'x' * rnd.randrange(300)}",
                "postcode": f"{oc} {rnd.randrange(9)}AB",
                "ballot_ids": [f"local.c-{rnd.randrange(50):04d}.2026-05-07"]
                if rnd.random() < 0.6 or oc == "S0"
                else [],
            }
        )
    return out


def write_partition(store, data: list[dict], files: int = 3) -> None:
    schema = pa.schema(
        [
            ("outcode", pa.string()),
            ("uprn", pa.string()),
            ("address", pa.string()),
            ("postcode", pa.string()),
            ("ballot_ids", pa.list_(pa.string())),
        ]
    )
    prefix = ebk.partition_prefix(TABLE, PART)
    for i in range(files):
        buf = io.BytesIO()
        part = pa.Table.from_pylist(data[i::files], schema)
        pq.write_table(part, buf, row_group_size=1000)
        store.write_bytes(f"{prefix}part-{i}.parquet", buf.getvalue())


def exported(store, dest: str) -> dict[str, bytes]:
    return {u[len(dest) :]: store.read_bytes(u) for u in store.list(dest)}


def test_passes_write_the_same_files_as_one_pass(tmp_path):
    store = LocalStore(tmp_path)
    data = rows(6000, 40)
    data += [dict(data[7]), dict(data[8])]  # identical duplicates: dropped in both
    data.append({**data[9], "outcode": None})  # no key: skipped in both
    write_partition(store, data)
    one = ebk.export_partition(
        store, table_location=TABLE, partition=PART, destination="s3://bucket/one/", **OPTS
    )
    many = ebk.export_partition(
        store,
        table_location=TABLE,
        partition=PART,
        destination="s3://bucket/many/",
        rows_per_pass=400,
        **OPTS,
    )
    assert sorted(one) == sorted(many) and len(one) == 40
    assert exported(store, "s3://bucket/one/") == exported(store, "s3://bucket/many/")


def test_passes_still_fail_on_a_uprn_under_two_keys(tmp_path):
    store = LocalStore(tmp_path)
    data = rows(3000, 30)
    data.append({**data[0], "outcode": "S29" if data[0]["outcode"] != "S29" else "S28"})
    write_partition(store, data)
    with pytest.raises(ebk.ExportError, match=r"conflicting rows for uprn='100000' in outcode="):
        ebk.export_partition(
            store,
            table_location=TABLE,
            partition=PART,
            destination="s3://bucket/x/",
            rows_per_pass=300,
            **OPTS,
        )


def test_lambda_handler_reads_ranges_from_s3(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-2")
    monkeypatch.setenv("EXPORT_ROWS_PER_PASS", "500")
    with mock_aws():
        boto3.client("s3").create_bucket(
            Bucket="bucket", CreateBucketConfiguration={"LocationConstraint": "eu-west-2"}
        )
        s3 = ebk.S3IO()
        write_partition(s3, rows(4000, 25))
        out = ebk.handler(
            {"table_location": TABLE, "partition": PART, "destination": "s3://bucket/o/", **OPTS}
        )
        assert len(out["keys"]) == 25
        s0 = pq.read_table(io.BytesIO(s3.read_bytes("s3://bucket/o/S0.parquet")))
        assert s0.column_names == OPTS["columns"] and s0.num_rows > 100
        assert s0.column("postcode").to_pylist() == sorted(s0.column("postcode").to_pylist())


PEAK = r"""
import json, sys
import pyarrow as pa
from bakery.lambdas import export_by_key as ebk
from bakery.store import LocalStore
from tests.local.test_export_bound import OPTS, PART, TABLE
store = LocalStore(sys.argv[1])
ebk.export_partition(store, table_location=TABLE, partition=PART, destination=sys.argv[2],
                     rows_per_pass=int(sys.argv[3]), **OPTS)
print(json.dumps(pa.default_memory_pool().max_memory()))
"""


def test_memory_is_bounded_by_the_pass_not_the_partition(tmp_path):
    """200,000 rows over 100 keys (the biggest about 2,100 rows): with 5,000 rows per
    pass, Arrow's peak (its pool's high-water mark, in a child process) is a small
    fraction of what one pass over the whole partition holds. What remains is the
    first pass over the key and unique_by columns."""
    store = LocalStore(tmp_path / "store")
    data = rows(200_000, 100)
    write_partition(store, data, files=4)
    whole_size = pa.Table.from_pylist(data).nbytes
    repo = Path(__file__).resolve().parents[2]

    def peak(per_pass: int, dest: str) -> int:
        out = subprocess.run(
            [sys.executable, "-c", PEAK, str(tmp_path / "store"), dest, str(per_pass)],
            cwd=repo,
            capture_output=True,
            text=True,
            check=True,
        )
        return json.loads(out.stdout)

    bounded = peak(5_000, "s3://bucket/bounded/")
    whole = peak(10**9, "s3://bucket/whole/")
    assert whole > whole_size  # one pass holds the partition (and more)
    assert bounded < whole_size / 2 and bounded < whole / 5  # passes hold a range of keys
    assert exported(store, "s3://bucket/bounded/") == exported(store, "s3://bucket/whole/")
