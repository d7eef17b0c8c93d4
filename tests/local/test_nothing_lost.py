"""A bake that is killed or fails leaves published tables and outcode files as they were;
the next bake cleans the leftovers and publishes normally."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from typer.testing import CliRunner

from bakery import sample_data
from bakery.cli import app
from bakery.engine import bake
from bakery.engine.publish import STAGING
from tests.local.conftest import REPO, read_joined, read_outcodes, snapshot

runner = CliRunner()


def _published(plan, store):
    bake(plan, ["current_elections"], store, with_upstream=True)
    return read_joined(store, plan), read_outcodes(store, plan)


def _new_ballots(plan, store, seed: int) -> None:
    """Different ballots: a bake that got through would change every output."""
    location = plan.table("current_elections.current_ballots").location
    store.write_bytes(location + "current_elections.csv", sample_data.ballots_csv(150, seed))


def test_killed_during_geo_join_leaves_published_outputs_unchanged(plan, store):
    sample_data.write_sample_data(plan, store, addresses=3000, ballots=150, seed=3)
    before_joined, before_files = _published(plan, store)
    _new_ballots(plan, store, seed=99)
    before = snapshot(store.root)

    env = {**os.environ, "BAKERY_TEST_PAUSE_AT": "join_ballots_to_addresses"}
    proc = subprocess.Popen(
        [sys.executable, "-c", "from bakery.cli import main; main()", "bake",
         "current_elections", "--store", str(store.root)],
        cwd=REPO, env=env, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.time() + 60
    seen = ""
    while time.time() < deadline:
        line = proc.stderr.readline()
        seen += line
        if "paused at current_elections.join_ballots_to_addresses" in line or not line:
            break
    assert "paused at" in seen, seen
    # the geo-join's output is staged (hidden), not published
    staged = list((store.root / "pollingstations.private.data" / STAGING).rglob("*.parquet"))
    assert staged
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)

    assert snapshot(store.root) == before  # bytes and mtimes of every published file
    assert read_joined(store, plan) == before_joined

    # the next bake removes the leftover staging and publishes the new ballots
    result = bake(plan, ["current_elections"], store)
    assert any("leftover staging" in n for n in result.notes)
    assert not list((store.root / "pollingstations.private.data" / STAGING).rglob("*"))
    assert read_joined(store, plan) != before_joined
    assert set(read_outcodes(store, plan)) == set(before_files)


FAILING_CHECK = """\
  - type: check
    id: every_address_located
    description: Every address has coordinates.
    check:
      kind: no_rows
      sql: >-
        SELECT uprn, postcode FROM {{ ref('current_ballots_joined_to_address_base') }}
        WHERE longitude IS NULL ORDER BY uprn

  - type: export_by_key
"""


def test_failed_check_leaves_published_outputs_unchanged(plan, store, project_copy, monkeypatch):
    sample_data.write_sample_data(plan, store, addresses=3000, ballots=150, seed=3)
    before_joined, _ = _published(plan, store)
    _new_ballots(plan, store, seed=99)
    before = snapshot(store.root)

    layer = project_copy / "layers" / "current_elections.yaml"
    layer.write_text(layer.read_text().replace("  - type: export_by_key\n", FAILING_CHECK))
    monkeypatch.setenv("BAKERY_PROJECT", str(project_copy))
    result = runner.invoke(app, ["bake", "current_elections", "--store", str(store.root)])
    assert result.exit_code == 1, result.output
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith(
        "bakery: error: check current_elections.every_address_located failed: "
        "Every address has coordinates.: uprn="
    ), error
    assert "postcode=" in error and "Traceback" not in result.stderr
    assert snapshot(store.root) == before
    assert read_joined(store, plan) == before_joined
    assert not list((store.root / "pollingstations.private.data" / STAGING).rglob("*"))


def test_builtin_check_message_names_the_first_difference(plan, store):
    """same_uprns_as_raw fails when the raw table changes under the joined table: here a
    second raw file appears between the two layers' bakes (simulated by baking
    current_elections alone against a larger raw table)."""
    sample_data.write_sample_data(plan, store, addresses=500, ballots=20, seed=3)
    bake(plan, ["current_elections"], store, with_upstream=True)
    raw = plan.table("addressbase.addressbase_cleaned_raw").location
    store.write_bytes(raw + "extra.csv", b'999999999,"1 Extra Road",AB1 1AA,,R\n')
    before = snapshot(store.root)
    try:
        bake(plan, ["current_elections"], store)
    except Exception as exc:  # BakeError
        message = str(exc)
    else:
        raise AssertionError("the bake should fail")
    assert message.startswith(
        "check current_elections.same_uprns_as_raw failed: "
        "current_ballots_joined_to_address_base.uprn holds the same values as "
        "addressbase.addressbase_cleaned_raw.uprn: left_count=500, right_count=501"
    ), message
    assert snapshot(store.root) == before


def test_publish_interrupted_after_the_journal_is_rolled_forward(plan, store):
    """A kill between writing the publish journal and the renames: the next bake
    finishes the publish instead of losing the staged, fully checked tables."""
    from bakery.engine.publish import Staging

    sample_data.write_sample_data(plan, store, addresses=300, ballots=20, seed=3)
    bake(plan, ["addressbase"], store)
    table = plan.table("addressbase.addressbase_partitioned")
    crashed = Staging(store, plan, "crashed-run")
    staged = crashed.stage(table)
    store.write_bytes(staged + "first_letter=Q/part-new.parquet", b"new")
    store.write_bytes(
        f"s3://{table.bucket}/{STAGING}/crashed-run.publish.json",
        json.dumps({"moves": [[staged, table.location]]}).encode(),
    )
    notes = Staging(store, plan, "next-run").recover()
    assert any("finished publishing 1 table" in n for n in notes)
    assert store.list(table.location) == [table.location + "first_letter=Q/part-new.parquet"]
    assert not (store.root / table.bucket / STAGING).exists()


def test_a_second_bake_on_the_same_store_stops_at_once(plan, store):
    from bakery.engine import BakeError
    from bakery.engine.publish import Staging

    sample_data.write_sample_data(plan, store, addresses=300, ballots=20, seed=3)
    holder = Staging(store, plan, "holder")
    holder.acquire()
    try:
        try:
            bake(plan, ["addressbase"], store)
        except BakeError as exc:
            assert "another bake is running on store" in str(exc)
        else:
            raise AssertionError("the second bake should stop")
    finally:
        holder.release()
    assert bake(plan, ["addressbase"], store).ok


def _crashed_publish(plan, store, run: str) -> tuple[str, str]:
    """A bake killed after writing its publish journal (in the first move's bucket,
    pollingstations.private.data) for two tables staged in two buckets; the ballots
    table is staged in ee.data-cache.production, which sorts first."""
    from bakery.engine.publish import Staging

    joined = plan.table("current_elections.current_ballots_joined_to_address_base")
    ballots = plan.table("current_elections.current_ballots")
    crashed = Staging(store, plan, run)
    staged_joined, staged_ballots = crashed.stage(joined), crashed.stage(ballots)
    store.write_bytes(staged_joined + "first_letter=Q/part-new.parquet", b"joined")
    store.write_bytes(staged_ballots + "current_elections.csv", b"ballots")
    store.write_bytes(
        f"s3://{joined.bucket}/{STAGING}/{run}.publish.json",
        json.dumps(
            {"moves": [[staged_joined, joined.location], [staged_ballots, ballots.location]]}
        ).encode(),
    )
    return joined.location, ballots.location


def test_a_journal_in_one_bucket_rolls_forward_tables_staged_in_another(plan, store):
    from bakery.engine.publish import Staging

    joined, ballots = _crashed_publish(plan, store, "crashed-run")
    notes = Staging(store, plan, "next-run").recover()
    assert any("finished publishing 2 table(s)" in n for n in notes)
    assert store.list(joined) == [joined + "first_letter=Q/part-new.parquet"]
    assert store.read_bytes(ballots + "current_elections.csv") == b"ballots"
    for bucket in ("pollingstations.private.data", "ee.data-cache.production"):
        assert not (store.root / bucket / STAGING).exists()


def test_s3_publish_killed_mid_copy_is_finished_by_the_next_bake(plan, monkeypatch):
    """On S3 a move is a copy then a delete: a kill part-way through the copy must
    leave the staged copy and its marker, so the next bake copies it all again."""
    from moto import mock_aws

    from bakery.engine.publish import Staging
    from bakery.store import S3Store

    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")):
        monkeypatch.setenv(name, value)
    with mock_aws():
        store = S3Store("https://s3.eu-west-2.amazonaws.com")
        for bucket in ("pollingstations.private.data", "ee.data-cache.production"):
            store.client.create_bucket(
                Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-2"}
            )
        table = plan.table("addressbase.addressbase_partitioned")
        store.write_bytes(table.location + "first_letter=A/old.parquet", b"old")
        crashed = Staging(store, plan, "crashed-run")
        staged = crashed.stage(table)
        for letter in "ABC":
            store.write_bytes(staged + f"first_letter={letter}/new.parquet", letter.encode())
        crashed.staged = {table.ref: staged}
        real_copy, copies = store.client.copy_object, []

        def killed_after_one(**kwargs):
            if copies:
                raise KeyboardInterrupt("killed")
            copies.append(kwargs["Key"])
            return real_copy(**kwargs)

        monkeypatch.setattr(store.client, "copy_object", killed_after_one)
        try:
            crashed.publish([table.ref])
        except KeyboardInterrupt:
            pass
        else:
            raise AssertionError("the publish should have been killed")
        monkeypatch.setattr(store.client, "copy_object", real_copy)
        Staging(store, plan, "next-run").recover()
        assert store.list(table.location) == [
            table.location + f"first_letter={letter}/new.parquet" for letter in "ABC"
        ]
        assert store.read_bytes(table.location + "first_letter=B/new.parquet") == b"B"
        assert store.list(f"s3://{table.bucket}/{STAGING}/") == []
        assert not store._all(f"s3://{table.bucket}/{STAGING}/")
