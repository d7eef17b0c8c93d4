"""`bakery lookup` does not trust what it reads (issue 19, item 12): each outcode file's
schema is checked against the product contract the plan declares, control characters in
the data are escaped before they reach a terminal, an outcode "file" that is not a
regular file is refused, and an unfinished publish is read through its journal."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from bakery import sample_data
from bakery.cli import app
from bakery.democracy_club.samples.ballots import ballots_csv
from bakery.engine import bake
from bakery.engine.publish import STAGING
from bakery.store import LocalStore
from tests.local.conftest import PROJECT, REPO, bakery_process, export_location

runner = CliRunner()
EXPORT = "s3://pollingstations.private.data/addressbase/development/current_elections_parquet/"
SOURCE = "s3://pollingstations.private.data/addressbase/2026-02-02/addressbase_cleaned/"
HINT = "uv run bakery bake current_elections --with-upstream --sample"


def run(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def one_line(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def outcode_file(root, outcode: str, rows: list[dict], ballots_type=None) -> str:
    """A per-outcode file with the contract's columns; `ballots_type` overrides the
    type of ballot_ids (the values are converted to it)."""
    ballots_type = ballots_type or pa.list_(pa.string())
    columns = {
        "uprn": pa.array([r["uprn"] for r in rows], pa.string()),
        "address": pa.array([r["address"] for r in rows], pa.string()),
        "postcode": pa.array([r["postcode"] for r in rows], pa.string()),
        "addressbase_source": pa.array([SOURCE] * len(rows), pa.string()),
        "ballot_ids": pa.array([r["ballot_ids"] for r in rows], ballots_type),
        "outcode": pa.array([outcode] * len(rows), pa.string()),
    }
    buf = io.BytesIO()
    pq.write_table(pa.table(columns), buf)
    uri = EXPORT + f"{outcode}.parquet"
    LocalStore(root).write_bytes(uri, buf.getvalue())
    return uri


# -- the contract ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ballots", "arrow", "shown"),
    [
        ("local.x.2026-05-07", pa.string(), "string"),
        (20260507, pa.int64(), "int64"),
        ([1, 2], pa.list_(pa.int64()), "list<int64>"),
    ],
)
def test_ballot_ids_of_another_type_are_refused_not_spelled_out(tmp_path, ballots, arrow, shown):
    uri = outcode_file(tmp_path, "CB1", [
        {"uprn": "1", "address": "1 Mill Road", "postcode": "CB1 9FN", "ballot_ids": ballots},
    ], ballots_type=arrow)  # fmt: skip
    result = run("lookup", "CB1 9FN", "--store", str(tmp_path))
    assert result.exit_code == 1, result.stdout
    assert result.stdout == ""
    assert one_line(result) == (
        f"bakery: error: the outcode file {uri} does not match the product contract of "
        f"current_elections.export_outcodes (ballot_ids is {shown}, the contract says "
        f"array<string>); bake again to rewrite it: {HINT} --store {tmp_path}"
    )
    as_json = run("lookup", "CB1 9FN", "--store", str(tmp_path), "--json")
    assert as_json.exit_code == 1
    out = json.loads(as_json.stdout)
    assert out["ok"] is False and out["status"] == "error" and "addresses" not in out
    assert "the contract says array<string>" in out["error"]


def test_a_column_lookup_reads_must_be_there(tmp_path):
    table = pa.table({"uprn": ["1"], "postcode": ["CB1 9FN"],
                      "ballot_ids": pa.array([["b.1"]], pa.list_(pa.string()))})  # fmt: skip
    buf = io.BytesIO()
    pq.write_table(table, buf)
    LocalStore(tmp_path).write_bytes(EXPORT + "CB1.parquet", buf.getvalue())
    result = run("lookup", "CB1 9FN", "--store", str(tmp_path))
    assert result.exit_code == 1
    assert "(it has no column address)" in one_line(result)


def test_a_file_of_the_contract_is_read(tmp_path):
    outcode_file(tmp_path, "CB1", [
        {"uprn": "1", "address": "1 Mill Road", "postcode": "CB1 9FN", "ballot_ids": ["b.1"]},
        {"uprn": "2", "address": "2 Mill Road", "postcode": "CB1 9FN", "ballot_ids": []},
    ])  # fmt: skip
    result = run("lookup", "CB1 9FN", "--store", str(tmp_path), "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["addresses"] == [
        {"uprn": "1", "address": "1 Mill Road", "ballot_ids": ["b.1"]},
        {"uprn": "2", "address": "2 Mill Road", "ballot_ids": []},
    ]


# -- control characters ---------------------------------------------------------------

HOSTILE = "\x1b[2J\x1b]0;owned\x07Flat 1\r\n\x9b31m\u202eRoad"


def test_control_characters_in_the_data_are_escaped_on_a_terminal(tmp_path):
    outcode_file(tmp_path, "CB1", [
        {"uprn": "1\x1b[1m", "address": HOSTILE, "postcode": "CB1 9FN",
         "ballot_ids": ["local.\x1b[31mx.2026"]},
    ])  # fmt: skip
    result = run("lookup", "CB1 9FN", "--store", str(tmp_path))
    assert result.exit_code == 0, result.stderr
    shown = result.stdout
    for raw in ("\x1b", "\x07", "\r", "\x9b", "\u202e"):
        assert raw not in shown, repr(shown)
    assert "\\x1b[2J\\x1b]0;owned\\x07Flat 1\\r\\n\\x9b31m\\u202eRoad" in shown.replace("\n", "")
    assert "1\\x1b[1m" in shown and "local.\\x1b[31mx.2026" in shown
    # --json: the JSON escaping is the escaping, and the values are the data as they are
    as_json = run("lookup", "CB1 9FN", "--store", str(tmp_path), "--json")
    assert "\x1b" not in as_json.stdout
    address = json.loads(as_json.stdout)["addresses"][0]
    assert address == {"uprn": "1\x1b[1m", "address": HOSTILE,
                       "ballot_ids": ["local.\x1b[31mx.2026"]}  # fmt: skip


# -- files that are not regular files -------------------------------------------------


def _lookup_process(store, *extra: str) -> subprocess.CompletedProcess:
    return bakery_process("lookup", "CB1 9FN", "--store", str(store), *extra)


@pytest.mark.parametrize("kind", ["fifo", "directory", "dev_zero"])
def test_an_outcode_file_that_is_not_a_regular_file_is_refused(tmp_path, kind):
    store = LocalStore(tmp_path)
    outcode_file(tmp_path, "ZZ1", [
        {"uprn": "9", "address": "9 Road", "postcode": "ZZ1 1ZZ", "ballot_ids": []},
    ])  # fmt: skip
    path = store.path(EXPORT + "CB1.parquet")
    if kind == "fifo":
        os.mkfifo(path)
        what = "is a FIFO, not a regular file"
    elif kind == "directory":
        path.mkdir()
        what = "is a directory, not a regular file"
    else:
        path.symlink_to("/dev/zero")
        what = "is a link to /dev/zero, outside the store"
    result = _lookup_process(tmp_path)
    assert result.returncode == 1, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0] == (
        f"bakery: error: the outcode file {EXPORT}CB1.parquet {what} ({path}); remove it, "
        f"then bake again: {HINT} --store {tmp_path}"
    )
    as_json = _lookup_process(tmp_path, "--json")
    assert as_json.returncode == 1
    assert json.loads(as_json.stdout)["error"] == lines[0].removeprefix("bakery: error: ")


# -- an unfinished publish ------------------------------------------------------------

KILL_BETWEEN_RENAMES = """
import os, sys
final = sys.argv.pop(1)
real = os.replace

def replace(src, dst, *args, **kwargs):
    real(src, dst, *args, **kwargs)
    if os.fspath(src) == final:  # the published folder moved aside, the new one not in
        os._exit(137)

os.replace = replace
from bakery.cli import main
main()
"""


def test_a_bake_killed_between_two_export_renames_is_read_through_the_journal(
    plan, tmp_path, monkeypatch
):
    monkeypatch.setenv("BAKERY_PROJECT", str(PROJECT))  # the tests' project: no guards
    store = LocalStore(tmp_path / "store")
    sample_data.write_sample_data(plan, store, addresses=3000, ballots=150, seed=3)
    bake(plan, ["current_elections"], store, with_upstream=True)
    ballots = plan.table("current_elections.current_ballots").location
    store.write_bytes(ballots + "current_elections.csv", ballots_csv(150, seed=99))
    final = store.path(export_location(plan))
    killed = subprocess.run(
        [sys.executable, "-c", KILL_BETWEEN_RENAMES, str(final), "bake", "current_elections",
         "--store", str(store.root)],
        cwd=REPO, env=os.environ, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert killed.returncode == 137, killed.stderr
    assert not final.exists()  # what a reader of the folder alone finds: nothing
    journals = list((store.root / "pollingstations.private.data" / STAGING).glob("*.json"))
    assert len(journals) == 1

    staged = next(p for p in journals[0].parent.rglob("current_elections_parquet") if p.is_dir())
    postcodes = sorted(
        row["postcode"]
        for f in sorted(staged.glob("*.parquet"))
        for row in pq.read_table(f).to_pylist()
        if row.get("ballot_ids")
    )
    assert postcodes
    during = [run("lookup", pc, "--store", str(store.root), "--json") for pc in postcodes[:5]]
    text = run("lookup", postcodes[0], "--store", str(store.root))
    assert [r.exit_code for r in during] == [0] * len(during), during[0].stderr
    assert text.exit_code == 0, text.stderr
    assert "nothing is baked" not in text.stderr
    journal = f"s3://pollingstations.private.data/{STAGING}/{journals[0].name}"
    assert f"reading through the unfinished publish {journal}" in text.stderr

    # the next bake rolls the journal forward: lookup then gives the same answers
    assert any("finished publishing" in n for n in bake(plan, ["addressbase"], store).notes)
    after = [run("lookup", pc, "--store", str(store.root), "--json") for pc in postcodes[:5]]
    read_through = [json.loads(r.stdout) for r in during]
    assert {d.pop("unfinished_publish") for d in read_through} == {journal}
    assert read_through == [json.loads(r.stdout) for r in after]
    assert all(json.loads(r.stdout)["status"] == "ok" for r in after)
    assert run("lookup", postcodes[0], "--store", str(store.root)).stderr == ""


def test_a_damaged_journal_is_named(tmp_path):
    outcode_file(tmp_path, "CB1", [
        {"uprn": "1", "address": "1 Mill Road", "postcode": "CB1 9FN", "ballot_ids": ["b.1"]},
    ])  # fmt: skip
    journal = f"s3://pollingstations.private.data/{STAGING}/run-1.publish.json"
    LocalStore(tmp_path).write_bytes(journal, b"{not json")
    result = run("lookup", "CB1 9FN", "--store", str(tmp_path))
    assert result.exit_code == 1
    assert one_line(result).startswith(f"bakery: error: the publish journal {journal} is damaged")


def test_an_s3_publish_killed_mid_copy_is_read_from_its_staged_copy(monkeypatch, tmp_path):
    """On S3 a move is a copy: killed after the first object, the published prefix holds
    part of the new files; the staged copy (its marker still there) holds them all."""
    from moto import mock_aws

    from bakery.engine.publish import Staging
    from bakery.plan import build_plan
    from bakery.store import S3Store
    from bakery.workspace import load_workspace

    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")):
        monkeypatch.setenv(name, value)
    plan = build_plan(load_workspace(REPO), "development")
    endpoint = "https://s3.eu-west-2.amazonaws.com"
    with mock_aws():
        store = S3Store(endpoint)
        store.client.create_bucket(
            Bucket="pollingstations.private.data",
            CreateBucketConfiguration={"LocationConstraint": "eu-west-2"},
        )
        old = tmp_path / "old"
        outcode_file(old, "AB1", [
            {"uprn": "1", "address": "1 Old Road", "postcode": "AB1 1AA", "ballot_ids": []},
        ])  # fmt: skip
        published = LocalStore(old).read_bytes(EXPORT + "AB1.parquet")
        store.write_bytes(EXPORT + "AB1.parquet", published)
        new = tmp_path / "new"
        for outcode, uprn in (("AB1", "2"), ("CD2", "3")):
            outcode_file(
                new,
                outcode,
                [
                    {
                        "uprn": uprn,
                        "address": f"{uprn} New Road",
                        "postcode": f"{outcode} 1AA",
                        "ballot_ids": ["b.1"],
                    }
                ],
            )
        crashed = Staging(store, plan, "crashed-run")
        staged = crashed.stage_export("current_elections.export_outcodes", EXPORT)
        for outcode in ("AB1", "CD2"):
            data = LocalStore(new).read_bytes(EXPORT + f"{outcode}.parquet")
            store.write_bytes(staged + f"{outcode}.parquet", data)
        real_copy, copies = store.client.copy_object, []

        def killed_after_one(**kwargs):
            if copies:
                raise KeyboardInterrupt("killed")
            copies.append(kwargs["Key"])
            return real_copy(**kwargs)

        monkeypatch.setattr(store.client, "copy_object", killed_after_one)
        with pytest.raises(KeyboardInterrupt):
            crashed.publish([])
        assert not store.exists(EXPORT + "CD2.parquet")  # not copied yet

        def lookup(postcode: str) -> dict:
            result = run("lookup", postcode, "--s3-endpoint", endpoint, "--json")
            assert result.exit_code == 0, result.output
            return json.loads(result.stdout)

        assert lookup("CD2 1AA")["addresses"] == [
            {"uprn": "3", "address": "3 New Road", "ballot_ids": ["b.1"]}
        ]
        assert lookup("AB1 1AA")["addresses"][0]["uprn"] == "2"
        assert lookup("AB1 1AA")["unfinished_publish"].endswith("/crashed-run.publish.json")


REVIEWS = EXPORT.replace("current_elections_parquet", "current_boundary_reviews_parquet")


def _reviews_file(root, values, arrow) -> str:
    table = pa.table({
        "uprn": ["1"], "address": ["1 Mill Road"], "postcode": ["CB1 9FN"],
        "addressbase_source": [SOURCE], "boundary_reviews": pa.array([values], arrow),
        "outcode": ["CB1"],
    })  # fmt: skip
    buf = io.BytesIO()
    pq.write_table(table, buf)
    LocalStore(root).write_bytes(REVIEWS + "CB1.parquet", buf.getvalue())
    return REVIEWS + "CB1.parquet"


@pytest.mark.parametrize(
    ("values", "arrow", "problem"),
    [
        ('{"boundary_review_id": 1}', pa.string(), "does not match the product contract of "
         "current_boundary_changes.export_outcodes (boundary_reviews is string, the contract "
         "says array<string>)"),
        (["{not json"], pa.list_(pa.string()), "has a boundary_reviews element that is not a "
         "JSON object (uprn 1)"),
        (["[1, 2]"], pa.list_(pa.string()), "has a boundary_reviews element that is not a "
         "JSON object (uprn 1)"),
    ],
)  # fmt: skip
def test_the_boundary_changes_file_is_checked_too(tmp_path, values, arrow, problem):
    outcode_file(tmp_path, "CB1", [
        {"uprn": "1", "address": "1 Mill Road", "postcode": "CB1 9FN", "ballot_ids": ["b.1"]},
    ])  # fmt: skip
    uri = _reviews_file(tmp_path, values, arrow)
    result = run("lookup", "CB1 9FN", "--store", str(tmp_path))
    assert result.exit_code == 1, result.stdout
    assert one_line(result) == (
        f"bakery: error: the outcode file {uri} {problem}; bake again to rewrite it: uv run "
        f"bakery bake current_boundary_changes --with-upstream --sample --store {tmp_path}"
    )
