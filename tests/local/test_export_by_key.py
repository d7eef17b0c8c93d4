"""export_by_key's core and its Lambda handlers (on moto): one file per key, the empty-file
rule, de-duplication, conflicting duplicates, stale files deleted last."""

from __future__ import annotations

import io
import logging

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bakery.lambdas import export_by_key as ebk
from bakery.store import LocalStore

DEST = "s3://bucket/out/"
OPTS = dict(
    destination=DEST,
    key="outcode",
    columns=["uprn", "postcode", "ballot_ids"],
    sort_by=["postcode", "uprn"],
    unique_by="uprn",
    empty_unless_any="ballot_ids",
)


def table(rows):
    return pa.table(
        {
            "outcode": [r[0] for r in rows],
            "uprn": [r[1] for r in rows],
            "postcode": [r[2] for r in rows],
            "ballot_ids": pa.array([r[3] for r in rows], pa.list_(pa.string())),
        }
    )


def read(store, key):
    return pq.read_table(io.BytesIO(store.read_bytes(f"{DEST}{key}.parquet")))


def test_one_sorted_file_per_key_and_empty_files(tmp_path):
    store = LocalStore(tmp_path)
    rows = [
        ("AB1", "3", "AB1 2AA", ["b"]),
        ("AB1", "1", "AB1 1AA", []),
        ("AB1", "2", "AB1 1AA", None),
        ("CD1", "4", "CD1 1AA", []),
        ("CD1", "5", "CD1 1AB", None),
    ]
    keys = ebk.export_table(store, table(rows), **OPTS)
    assert keys == ["AB1", "CD1"]
    ab1 = read(store, "AB1")
    assert ab1.column_names == ["uprn", "postcode", "ballot_ids"]
    assert ab1.column("uprn").to_pylist() == ["1", "2", "3"]
    cd1 = read(store, "CD1")  # no row has a ballot: no rows and no columns
    assert cd1.num_rows == 0 and cd1.num_columns == 0


def test_identical_duplicates_dropped_with_a_warning(tmp_path, caplog):
    store = LocalStore(tmp_path)
    rows = [("AB1", "1", "AB1 1AA", ["a"]), ("AB1", "1", "AB1 1AA", ["a"])]
    with caplog.at_level(logging.WARNING):
        ebk.export_table(store, table(rows), **OPTS)
    assert read(store, "AB1").num_rows == 1
    assert "identical duplicate" in caplog.text and "uprn='1'" in caplog.text


def test_conflicting_duplicates_fail_naming_the_key(tmp_path):
    store = LocalStore(tmp_path)
    rows = [("AB1", "1", "AB1 1AA", ["a"]), ("AB1", "1", "AB1 1AA", ["b"])]
    with pytest.raises(ebk.ExportError, match=r"conflicting rows for uprn='1' in outcode=AB1"):
        ebk.export_table(store, table(rows), **OPTS)
    assert store.list(DEST) == []


def test_stale_files_deleted_only_by_delete_stale(tmp_path):
    store = LocalStore(tmp_path)
    store.write_bytes(f"{DEST}OLD1.parquet", b"x")
    store.write_bytes(f"{DEST}notes.txt", b"x")
    keys = ebk.export_table(store, table([("AB1", "1", "AB1 1AA", ["a"])]), **OPTS)
    assert store.exists(f"{DEST}OLD1.parquet")
    assert ebk.delete_stale(store, DEST, keys) == 1
    assert sorted(store.list(DEST)) == [f"{DEST}AB1.parquet", f"{DEST}notes.txt"]


def test_local_writes_replace_files_atomically(tmp_path):
    store = LocalStore(tmp_path)
    ebk.export_table(store, table([("AB1", "1", "AB1 1AA", ["a"])]), **OPTS)
    ebk.export_table(store, table([("AB1", "2", "AB1 1AA", ["a"])]), **OPTS)
    folder = store.path(DEST)
    assert sorted(p.name for p in folder.iterdir()) == ["AB1.parquet"]  # no temp files left
    assert read(store, "AB1").column("uprn").to_pylist() == ["2"]


def test_lambda_handlers_on_s3(monkeypatch):
    from moto import mock_aws

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-2")
    with mock_aws():
        import boto3

        s3 = boto3.client("s3", region_name="eu-west-2")
        s3.create_bucket(
            Bucket="bucket", CreateBucketConfiguration={"LocationConstraint": "eu-west-2"}
        )
        for letter, rows in {
            "A": [("AB1", "1", "AB1 1AA", ["a"]), ("AB2", "2", "AB2 1AA", [])],
            "C": [("CD1", "3", "CD1 1AA", ["c"])],
        }.items():
            buf = io.BytesIO()
            pq.write_table(table(rows), buf)
            s3.put_object(
                Bucket="bucket", Key=f"t/first_letter={letter}/part-0.parquet", Body=buf.getvalue()
            )
        s3.put_object(Bucket="bucket", Key="out/ZZ9.parquet", Body=b"stale")
        event = {"table_location": "s3://bucket/t/", **OPTS}
        event = {k: v for k, v in event.items()}
        results = [
            ebk.handler({**event, "partition": {"first_letter": letter}}, None)
            for letter in ("A", "C")
        ]
        assert results == [{"keys": ["AB1", "AB2"]}, {"keys": ["CD1"]}]
        assert ebk.delete_stale_handler({"destination": DEST, "results": results}, None) == {
            "deleted": 1
        }
        names = sorted(
            o["Key"] for o in s3.list_objects_v2(Bucket="bucket", Prefix="out/")["Contents"]
        )
        assert names == ["out/AB1.parquet", "out/AB2.parquet", "out/CD1.parquet"]
        body = s3.get_object(Bucket="bucket", Key="out/AB2.parquet")["Body"].read()
        assert pq.read_table(io.BytesIO(body)).num_columns == 0


def test_many_duplicates_are_handled_in_one_pass(tmp_path, caplog, monkeypatch):
    """Thousands of duplicated uprns: identical ones dropped, the table is not scanned
    once per duplicated value (no per-value pc.equal), and a conflict still names it."""
    import pyarrow.compute as pc

    calls = []
    real_equal = pc.equal
    monkeypatch.setattr(pc, "equal", lambda *a, **k: calls.append(1) or real_equal(*a, **k))
    store = LocalStore(tmp_path)
    rows = [(f"AB{i % 7}", str(i), f"AB{i % 7} 1AA", ["a"]) for i in range(3000)]
    rows += rows[:2000] + rows[:500]  # 2000 duplicated uprns, 500 of them three times
    with caplog.at_level(logging.WARNING):
        keys = ebk.export_table(store, table(rows), **OPTS)
    assert calls == []
    assert sum(read(store, k).num_rows for k in keys) == 3000
    assert "identical duplicate" in caplog.text
    assert sorted(set(read(store, "AB0").column("uprn").to_pylist())) == sorted(
        read(store, "AB0").column("uprn").to_pylist()
    )
    rows.append(("AB3", "1500", "AB3 1AA", ["b"]))  # uprn 1500 is in AB2 with ["a"]
    with pytest.raises(
        ebk.ExportError, match=r"conflicting rows for uprn='1500' in outcode=AB2, AB3"
    ):
        ebk.export_table(store, table(rows), **OPTS)
