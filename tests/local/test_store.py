"""S3Store on moto: deletes that S3 reports as failed are errors, never ignored."""

from __future__ import annotations

import pytest

from bakery.lambdas.purge import PurgeError
from bakery.store import S3Store


@pytest.fixture
def s3(monkeypatch):
    from moto import mock_aws

    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")):
        monkeypatch.setenv(name, value)
    with mock_aws():
        store = S3Store("https://s3.eu-west-2.amazonaws.com")
        store.client.create_bucket(
            Bucket="bucket", CreateBucketConfiguration={"LocationConstraint": "eu-west-2"}
        )
        for key in ("t/a.parquet", "t/b.parquet", "u/old.parquet"):
            store.write_bytes(f"s3://bucket/{key}", b"x")
        yield store


def _refuse(monkeypatch, store, refused: str) -> None:
    real = store.client.delete_objects

    def delete_objects(**kwargs):
        keys = [o["Key"] for o in kwargs["Delete"]["Objects"]]
        kwargs["Delete"]["Objects"] = [
            o for o in kwargs["Delete"]["Objects"] if o["Key"] != refused
        ]
        response = real(**kwargs) if kwargs["Delete"]["Objects"] else {}
        if refused in keys:
            response["Errors"] = [
                {"Key": refused, "Code": "AccessDenied", "Message": "Access Denied"}
            ]
        return response

    monkeypatch.setattr(store.client, "delete_objects", delete_objects)


def test_delete_prefix_deletes_and_counts(s3):
    assert s3.delete_prefix("s3://bucket/t/") == 2
    assert s3.list("s3://bucket/") == ["s3://bucket/u/old.parquet"]


def test_delete_prefix_raises_naming_the_keys_s3_kept(s3, monkeypatch):
    _refuse(monkeypatch, s3, "t/b.parquet")
    with pytest.raises(PurgeError, match=r"could not delete 1 of 2 .*t/b\.parquet: AccessDenied"):
        s3.delete_prefix("s3://bucket/t/")


def test_move_prefix_raises_when_a_stale_object_is_kept(s3, monkeypatch):
    _refuse(monkeypatch, s3, "u/old.parquet")
    with pytest.raises(PurgeError, match=r"u/old\.parquet: AccessDenied"):
        s3.move_prefix("s3://bucket/t/", "s3://bucket/u/")


# -- the S3 store lock (issue 13, finding 4) ---------------------------------------------


@pytest.fixture
def s3_plan_store(monkeypatch, plan):
    from moto import mock_aws

    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")):
        monkeypatch.setenv(name, value)
    with mock_aws():
        store = S3Store("https://s3.eu-west-2.amazonaws.com")
        for bucket in sorted({t.bucket for t in plan.tables.values()}):
            store.client.create_bucket(
                Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-2"}
            )
        yield store


def test_a_second_bake_on_an_s3_store_stops_at_once(plan, s3_plan_store):
    from bakery.engine import BakeError, bake
    from bakery.engine.publish import Staging

    holder = Staging(s3_plan_store, plan, "holder-run")
    holder.acquire()
    try:
        with pytest.raises(BakeError) as info:
            bake(plan, ["addressbase"], s3_plan_store)
        assert str(info.value).startswith(
            f"S3 store {s3_plan_store.description} is busy: another bake (run holder-run, "
        )
        assert "wait for it to finish (if that bake is dead, delete s3://" in str(info.value)
    finally:
        holder.release()
    second = Staging(s3_plan_store, plan, "second-run")
    second.acquire()  # released: free again
    second.release()


def test_an_expired_s3_lock_is_taken_over_once(plan, s3_plan_store):
    import json

    from bakery.engine import s3lock
    from bakery.engine.publish import Staging, StoreBusy

    bucket = sorted({t.bucket for t in plan.tables.values()})[0]
    dead = {"owner": "dead-run", "host": "h", "pid": 1, "expires": 0}
    s3_plan_store.write_bytes(f"s3://{bucket}/{s3lock.KEY}", json.dumps(dead).encode())
    taker = Staging(s3_plan_store, plan, "taker")
    taker.acquire()
    try:
        held = json.loads(s3_plan_store.read_bytes(f"s3://{bucket}/{s3lock.KEY}"))
        assert held["owner"] == "taker" and held["expires"] > 0
        with pytest.raises(StoreBusy):
            Staging(s3_plan_store, plan, "late").acquire()
    finally:
        taker.release()
    assert not s3_plan_store.exists(f"s3://{bucket}/{s3lock.KEY}")


def test_a_bake_whose_s3_staging_was_removed_does_not_say_published(plan, s3_plan_store):
    """Another bake's recovery deleted this bake's staging: publishing must fail loudly,
    not copy nothing and report success."""
    from bakery.engine.publish import STAGING, PublishFailed, Staging

    table = plan.table("addressbase.addressbase_partitioned")
    s3_plan_store.write_bytes(table.location + "first_letter=A/old.parquet", b"old")
    staging = Staging(s3_plan_store, plan, "victim")
    staging.acquire()
    try:
        staged = staging.stage(table)
        s3_plan_store.write_bytes(staged + "first_letter=A/new.parquet", b"new")
        s3_plan_store.delete_prefix(f"s3://{table.bucket}/{STAGING}/")  # the other recovery
        with pytest.raises(PublishFailed, match="nothing was published"):
            staging.publish([table.ref])
    finally:
        staging.release()
    assert s3_plan_store.read_bytes(table.location + "first_letter=A/old.parquet") == b"old"


def test_a_bake_that_lost_its_s3_lock_publishes_nothing(plan, s3_plan_store):
    import json

    from bakery.engine import s3lock
    from bakery.engine.publish import PublishFailed, Staging

    table = plan.table("addressbase.addressbase_partitioned")
    staging = Staging(s3_plan_store, plan, "slow")
    staging.acquire()
    try:
        staged = staging.stage(table)
        s3_plan_store.write_bytes(staged + "first_letter=A/new.parquet", b"new")
        bucket = sorted({t.bucket for t in plan.tables.values()})[0]
        other = {"owner": "other", "host": "h", "pid": 2, "expires": 9e9}
        s3_plan_store.write_bytes(f"s3://{bucket}/{s3lock.KEY}", json.dumps(other).encode())
        with pytest.raises(PublishFailed, match="lost its lock on the store"):
            staging.publish([table.ref])
    finally:
        staging.release()
    assert s3_plan_store.list(table.location) == []
    # the other bake's lock is left alone
    assert json.loads(s3_plan_store.read_bytes(f"s3://{bucket}/{s3lock.KEY}"))["owner"] == "other"
