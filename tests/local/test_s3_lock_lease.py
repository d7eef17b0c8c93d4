"""The lock of an S3 store (bakery.engine.s3lock) is a short lease kept alive by a
heartbeat (issue 19, item 7): a killed bake's lock lapses within a minute instead of
ten, the next bake then takes it over (a PUT conditional on the lock's ETag, so one
bake only) and finishes the dead bake's publish; a live bake's lock is never taken
over, and a bake that could not renew its lease publishes nothing.

Short leases here (a second or two) stand for the minute of a real one.
"""

from __future__ import annotations

import json
import time

import pytest

from bakery.engine import s3lock
from bakery.engine.publish import STAGING, PublishFailed, Staging, StoreBusy
from bakery.store import S3Store

PARTITIONED = "addressbase.addressbase_partitioned"


@pytest.fixture
def store(monkeypatch, plan):
    from moto import mock_aws

    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")):
        monkeypatch.setenv(name, value)
    with mock_aws():
        s3 = S3Store("https://s3.eu-west-2.amazonaws.com")
        for bucket in Staging(s3, plan, "x")._buckets():
            s3.client.create_bucket(
                Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-2"}
            )
        yield s3


def _held(store, plan) -> dict:
    bucket = sorted({t.bucket for t in plan.tables.values()})[0]
    return json.loads(store.read_bytes(f"s3://{bucket}/{s3lock.KEY}"))


def _die(staging: Staging) -> None:
    """What SIGKILL does to a bake's lock: the heartbeat stops, nothing releases it."""
    lock = staging._lock
    lock._stop.set()
    lock._thread.join()
    staging._lock = None


def _wait_for_lapse(held: dict) -> None:
    """Until the lease written lapses (a few seconds at most: a longer lease is a bug)."""
    time.sleep(min(max(0.0, held["expires"] - time.time()) + 0.2, 5.0))


def test_the_default_lease_is_a_minute_at_most(plan, store):
    holder = Staging(store, plan, "holder")
    holder.acquire()
    try:
        lease = _held(store, plan)["expires"] - time.time()
    finally:
        holder.release()
    assert 30 <= lease <= 60, lease  # was 600: a killed bake blocked the next for 10 min


def test_a_live_bakes_lock_is_renewed_and_never_taken_over(plan, store, monkeypatch):
    monkeypatch.setattr(s3lock, "TTL_SECONDS", 1.0)
    holder = Staging(store, plan, "holder")
    holder.acquire()
    try:
        first = _held(store, plan)["expires"]
        assert first - time.time() <= 1.0  # the short lease is the one written
        time.sleep(2.5)  # two and a half leases: it lives on renewals alone
        held = _held(store, plan)
        assert held["owner"] == "holder" and held["expires"] > first
        with pytest.raises(StoreBusy, match="another bake \\(run holder"):
            Staging(store, plan, "late").acquire()
        holder._check_lock()  # still its own: it may publish
    finally:
        holder.release()


def test_a_dead_bakes_lock_is_taken_over_once_its_lease_lapses_and_its_publish_finished(
    plan, store, monkeypatch
):
    monkeypatch.setattr(s3lock, "TTL_SECONDS", 1.5)
    table = plan.table(PARTITIONED)
    store.write_bytes(table.location + "first_letter=A/old.parquet", b"old")
    dead = Staging(store, plan, "dead-run")
    dead.acquire()
    staged = dead.stage(table)
    for letter in "ABC":
        store.write_bytes(staged + f"first_letter={letter}/new.parquet", letter.encode())
    real_copy, copies = store.client.copy_object, []

    def killed_after_one(**kwargs):
        if copies:
            raise KeyboardInterrupt("killed")
        copies.append(kwargs["Key"])
        return real_copy(**kwargs)

    with monkeypatch.context() as mp:
        mp.setattr(store.client, "copy_object", killed_after_one)
        with pytest.raises(KeyboardInterrupt):
            dead.publish([table.ref])
    lock = dead._lock
    _die(dead)
    # readers see old and new side by side until the next bake: the window the lease bounds
    assert len(store.list(table.location)) == 2
    held = _held(store, plan)
    with pytest.raises(StoreBusy, match="dead-run"):
        Staging(store, plan, "too-early").acquire()

    _wait_for_lapse(held)
    nxt = Staging(store, plan, "next-run")
    nxt.acquire()  # taken over: a PUT conditional on the dead lock's ETag
    try:
        assert _held(store, plan)["owner"] == "next-run"
        notes = nxt.recover()  # what a bake does next
        assert any("finished publishing 1 table" in n for n in notes), notes
        assert store.list(table.location) == [
            table.location + f"first_letter={letter}/new.parquet" for letter in "ABC"
        ]
        assert store.list(f"s3://{table.bucket}/{STAGING}/") == []
        with pytest.raises(s3lock.LockLost):  # had the dead bake lived on, it would know
            lock.check()
    finally:
        nxt.release()


def test_two_bakes_taking_over_the_same_lapsed_lock_one_wins(plan, store, monkeypatch):
    monkeypatch.setattr(s3lock, "TTL_SECONDS", 0.5)
    dead = Staging(store, plan, "dead-run")
    dead.acquire()
    _die(dead)
    _wait_for_lapse(_held(store, plan))
    bucket = sorted({t.bucket for t in plan.tables.values()})[0]
    stale = store.client.get_object(Bucket=bucket, Key=s3lock.KEY)
    stale_body = stale["Body"].read()

    first = s3lock.S3Lock(store.client, bucket, "first")
    first.acquire()  # took it over

    class SawTheDeadLock:  # the second bake read the lock before the first took it
        def __getattr__(self, name):
            return getattr(store.client, name)

        def get_object(self, **kwargs):
            import io

            return {**stale, "Body": io.BytesIO(stale_body)}

    second = s3lock.S3Lock(SawTheDeadLock(), bucket, "second")
    try:
        with pytest.raises(s3lock.LockBusy, match="took the expired lock"):
            second.acquire()
        assert _held(store, plan)["owner"] == "first"
        first.check()
    finally:
        first.release()


def test_a_bake_that_cannot_renew_its_lease_publishes_nothing(plan, store, monkeypatch):
    from botocore.exceptions import EndpointConnectionError

    monkeypatch.setattr(s3lock, "TTL_SECONDS", 1.0)
    table = plan.table(PARTITIONED)
    staging = Staging(store, plan, "cut-off")
    staging.acquire()
    try:
        staged = staging.stage(table)
        store.write_bytes(staged + "first_letter=A/new.parquet", b"new")
        lock = staging._lock
        real_put = lock.client.put_object

        def unreachable(**kwargs):
            if kwargs.get("Key") == s3lock.KEY:
                raise EndpointConnectionError(endpoint_url="https://s3.example")
            return real_put(**kwargs)

        monkeypatch.setattr(lock.client, "put_object", unreachable)
        time.sleep(1.6)  # renewals fail until the lease lapses
        monkeypatch.setattr(lock.client, "put_object", real_put)
        with pytest.raises(PublishFailed, match="lost its lock on the store .*within its 1s lease"):
            staging.publish([table.ref])
    finally:
        staging.release()
    assert store.list(table.location) == []
