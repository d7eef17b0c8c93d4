"""`bakery compare`: two product trees, local or on S3 (moto), file by file and row by row."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
from pathlib import Path

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from moto import mock_aws
from typer.testing import CliRunner

import bakery.cli  # noqa: F401  (registers every command)
from bakery.cli.common import app
from bakery.compare import compare_trees, open_tree
from bakery.lambdas.export_by_key import empty_file
from tests.local.conftest import bakery_process

runner = CliRunner()
REPO = Path(__file__).resolve().parents[2]
SOURCE = "s3://pollingstations.private.data/addressbase/2026-02-02/addressbase_cleaned/"


def outcode_file(outcode: str, rows: list[tuple[str, list[str]]]) -> bytes:
    table = pa.table(
        {
            "uprn": [u for u, _ in rows],
            "address": [f"{u} High Street" for u, _ in rows],
            "postcode": [f"{outcode} 1AA" for _ in rows],
            "addressbase_source": [SOURCE for _ in rows],
            "ballot_ids": pa.array([b for _, b in rows], pa.list_(pa.string())),
            "outcode": [outcode for _ in rows],
        }
    )
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


LOCAL = "local.x.2026-05-07"
PARL = "parl.y.2026-05-07"
A_FILES = {
    "AB1": outcode_file("AB1", [("1", [LOCAL]), ("2", []), ("3", [LOCAL, PARL])]),
    "AB2": outcode_file("AB2", [("4", [PARL]), ("5", [PARL])]),
    "AB3": empty_file(),
    "ZZ9": outcode_file("ZZ9", [("9", [LOCAL])]),
}
B_FILES = {
    # 1 loses its ballot, 2 removed, 3 unchanged, 6 added
    "AB1": outcode_file("AB1", [("1", []), ("3", [LOCAL, PARL]), ("6", [LOCAL])]),
    "AB2": A_FILES["AB2"],  # byte-identical: never read
    "AB3": outcode_file("AB3", [("7", []), ("8", [LOCAL])]),  # empty before: 8 changed
    "CD1": outcode_file("CD1", [("10", [])]),
}


def write_tree(root, files: dict[str, bytes]):
    root.mkdir(parents=True)
    for name, data in files.items():
        (root / f"{name}.parquet").write_bytes(data)
    (root / ".AB1.parquet.tmp-1").write_bytes(b"half-written")  # hidden: ignored
    return root


@pytest.fixture
def trees(tmp_path):
    return write_tree(tmp_path / "a", A_FILES), write_tree(tmp_path / "b", B_FILES)


def test_compare_counts_every_kind_of_difference(trees):
    a, b = trees
    r = compare_trees(open_tree(str(a)), open_tree(str(b)))
    assert (r.files_a, r.files_b) == (4, 4)
    assert r.only_in_a == ["ZZ9"] and r.only_in_b == ["CD1"]
    assert r.files_identical == 1 and r.files_compared == 2
    assert r.added == 1 + 1  # uprn 6 in AB1, uprn 10 in the new CD1
    assert r.removed == 1 + 1  # uprn 2 in AB1, uprn 9 with ZZ9
    assert r.changed == 2  # uprn 1 lost its ballot; uprn 8 has one where AB3 had none
    assert r.addresses_a == 3 + 2 + 0 + 1
    assert sorted(r.examples["changed"]) == ["AB1/1", "AB3/8"]
    assert r.schema_differences == {}
    assert r.beyond_tolerance


def test_identical_trees_pass_and_schema_differences_fail(trees, tmp_path):
    a, _ = trees
    same = tmp_path / "same"
    shutil.copytree(a, same)
    r = compare_trees(open_tree(str(a)), open_tree(str(same)))
    assert r.differing == 0 and not r.beyond_tolerance and r.files_compared == 0
    # the running system's old four columns against the contract's six
    lists = pa.array([[LOCAL], [], [LOCAL, PARL]], pa.list_(pa.string()))
    old = pa.table({"uprn": ["1", "2", "3"], "address": ["a", "b", "c"],
                    "postcode": ["AB1 1AA"] * 3, "ballot_ids": lists})  # fmt: skip
    pq.write_table(old, same / "AB1.parquet")
    r = compare_trees(open_tree(str(a)), open_tree(str(same)))
    assert list(r.schema_differences) == ["AB1"]
    assert "addressbase_source" in r.schema_differences["AB1"]["a"]
    assert "addressbase_source" not in r.schema_differences["AB1"]["b"]
    assert r.differing == 0 and r.beyond_tolerance


def test_cli_tolerance_json_and_exit_codes(trees):
    a, b = trees
    for name in ("ZZ9", "CD1"):  # only row differences left: 4 of the 5 rows of A
        (a / f"{name}.parquet").unlink(missing_ok=True)
        (b / f"{name}.parquet").unlink(missing_ok=True)
    out = runner.invoke(app, ["compare", str(a), str(b), "--json"])
    assert out.exit_code == 1, out.output
    data = json.loads(out.stdout)
    assert data["ok"] is False
    assert (data["added"], data["removed"], data["changed"]) == (1, 1, 2)
    assert data["percent"] == 80.0
    out = runner.invoke(app, ["compare", str(a), str(b), "--json", "--tolerance", "80"])
    assert out.exit_code == 0 and json.loads(out.stdout)["ok"] is True
    out = runner.invoke(app, ["compare", str(a), str(b), "--tolerance", "79.9"])
    assert out.exit_code == 1
    assert "rows changed" in out.stdout and "AB1/1" in out.stdout
    assert "beyond the tolerance of 79.9 %" in out.stdout


def test_cli_unreadable_tree_is_one_line(tmp_path):
    out = runner.invoke(app, ["compare", str(tmp_path / "nope"), str(tmp_path), "--json"])
    assert out.exit_code == 2
    assert json.loads(out.stdout) == {"ok": False, "error": f"{tmp_path / 'nope'}: no such folder"}
    assert "Traceback" not in out.output


def test_compare_s3_prefixes_reads_only_files_that_differ(monkeypatch, tmp_path):
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "eu-west-2"}.items():  # fmt: skip
        monkeypatch.setenv(key, value)
    with mock_aws():
        s3 = boto3.client("s3", region_name="eu-west-2")
        s3.create_bucket(
            Bucket="products", CreateBucketConfiguration={"LocationConstraint": "eu-west-2"}
        )
        for side, files in (("prod", A_FILES), ("shadow", B_FILES)):
            for name, data in files.items():
                s3.put_object(Bucket="products", Key=f"{side}/{name}.parquet", Body=data)
        a = open_tree("s3://products/prod/", s3_client=s3)
        b = open_tree("s3://products/shadow/", s3_client=s3)
        read: list[str] = []
        for tree in (a, b):
            inner = tree.read
            tree.read = lambda uri, inner=inner: read.append(uri) or inner(uri)
        r = compare_trees(a, b)
        assert (r.added, r.removed, r.changed) == (2, 2, 2)
        assert r.addresses_a == 6  # AB2's rows from its footer (ranged GETs), not read whole
        assert "s3://products/prod/AB2.parquet" not in read
        assert "s3://products/shadow/AB2.parquet" not in read
        # and through the command line, against the same (in-process) S3
        out = runner.invoke(app, ["compare", "s3://products/prod/", "s3://products/shadow/",
                                  "--json"])  # fmt: skip
        assert out.exit_code == 1 and json.loads(out.stdout)["changed"] == 2


# -- duplicated keys (issue 19, item 4) ------------------------------------------------


def test_a_file_with_every_row_twice_is_a_difference(trees):
    a, b = trees
    shutil.rmtree(b)
    shutil.copytree(a, b)
    twice = pa.concat_tables([pq.read_table(a / "AB1.parquet")] * 2)
    pq.write_table(twice, b / "AB1.parquet")
    r = compare_trees(open_tree(str(a)), open_tree(str(b)))
    assert r.files_compared == 1
    assert (r.added, r.removed, r.changed) == (0, 0, 0)
    assert r.rows_a == 3 and r.rows_b == 6  # each row of A counted once
    assert r.duplicated_a == 0 and r.duplicated_b == 3
    assert r.examples["duplicated_b"] == ["AB1/1", "AB1/2", "AB1/3"]
    assert r.beyond_tolerance and r.differing == 3
    out = runner.invoke(app, ["compare", str(a), str(b), "--json", "--tolerance", "100"])
    assert out.exit_code == 1, out.output
    data = json.loads(out.stdout)
    assert data["ok"] is False and data["duplicated_b"] == 3
    out = runner.invoke(app, ["compare", str(a), str(b)])
    assert out.exit_code == 1
    assert "keys repeated in B" in out.stdout and "AB1/1" in out.stdout


def test_duplicated_keys_in_a_are_reported_too(trees):
    a, b = trees
    rows = [("1", [LOCAL]), ("1", [PARL]), ("2", [])]  # uprn 1 twice, with two values
    (a / "AB1.parquet").write_bytes(outcode_file("AB1", rows))
    (b / "AB1.parquet").write_bytes(outcode_file("AB1", [("1", [LOCAL]), ("2", [])]))
    r = compare_trees(open_tree(str(a)), open_tree(str(b)))
    assert r.duplicated_a == 1 and r.duplicated_b == 0
    assert r.examples["duplicated_a"] == ["AB1/1"]
    assert "AB1/1" in r.examples["changed"]  # its two values in A are not B's one


# -- only regular files are read (issue 19, item 13) -----------------------------------


def _compare_process(a, b, *extra: str) -> subprocess.CompletedProcess:
    return bakery_process("compare", str(a), str(b), *extra)


@pytest.mark.parametrize("kind", ["fifo", "dev_zero", "directory", "outside", "dangling"])
def test_a_tree_entry_that_is_not_a_regular_file_is_refused(trees, kind, tmp_path):
    a, b = trees
    target = b / "AB1.parquet"
    target.unlink()
    expected = {
        "fifo": "is a FIFO, not a regular file",
        "dev_zero": "is a link to /dev/zero, outside the tree",
        "directory": "is a directory, not a regular file",
        "outside": "is a link to",
        "dangling": "is a link to nothing",
    }[kind]
    if kind == "fifo":
        os.mkfifo(target)
    elif kind == "dev_zero":
        target.symlink_to("/dev/zero")
    elif kind == "directory":
        target.mkdir()
    elif kind == "outside":
        outside = tmp_path / "elsewhere.parquet"
        outside.write_bytes(A_FILES["AB1"])
        target.symlink_to(outside)
    else:
        target.symlink_to(b / "gone.parquet")
    result = _compare_process(a, b, "--json")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0].startswith(f"bakery: error: {target}: ") and expected in lines[0], lines[0]
    assert json.loads(result.stdout)["error"] == lines[0].removeprefix("bakery: error: ")


def test_a_link_to_a_file_inside_the_tree_is_read(trees):
    a, b = trees
    (b / "AB1.parquet").unlink()
    (b / "kept").mkdir()
    (b / "kept" / "ab1").write_bytes(A_FILES["AB1"])
    (b / "AB1.parquet").symlink_to(b / "kept" / "ab1")
    r = compare_trees(open_tree(str(a)), open_tree(str(b)))
    assert "AB1" not in r.schema_differences and r.files_identical == 2


def test_the_columns_come_from_the_installed_product(tmp_path, monkeypatch):
    """The core names no product's columns: Democracy Club's are an entry point, and
    without one both must be given."""
    from bakery import compare

    assert compare.default_columns() == {"key": "uprn", "values": "ballot_ids"}
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    monkeypatch.setattr(compare, "default_columns", dict)
    with pytest.raises(compare.CompareError, match="give --key and --values"):
        compare_trees(open_tree(str(tmp_path / "a")), open_tree(str(tmp_path / "b")))
