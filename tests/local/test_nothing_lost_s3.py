"""A fault after every S3 operation of a publish on an S3 store (moto): the live objects
are all old or all new, or the publish says it stopped half-way and the next bake
finishes it; a publish that did not happen is never reported as success.

S3 has no rename, so a publish copies object by object: a bake killed in the middle
of the copies leaves old and new objects side by side until the next bake rolls the
journal forward. A failed S3 call is different: the bake itself finishes the copy on a
second try, so the live objects are all old or all new when it ends, unless S3 keeps
failing (then the journal stays and the bake says so).
"""

from __future__ import annotations

import contextlib

import pytest

from bakery.store import S3Store
from tests.local.test_nothing_lost import _seed, _tables, _visible, stage_new


@pytest.fixture
def s3_env(monkeypatch):
    from moto import mock_aws

    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")):
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield


def _store(plan) -> S3Store:
    from bakery.engine.publish import Staging

    store = S3Store("https://s3.eu-west-2.amazonaws.com")
    for bucket in Staging(store, plan, "x")._buckets():
        with contextlib.suppress(Exception):  # moto keeps buckets across stores
            store.client.delete_bucket(Bucket=bucket)
        store.client.create_bucket(
            Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-2"}
        )
    return store


def _empty(store, plan) -> None:
    from bakery.engine.publish import Staging

    for bucket in Staging(store, plan, "x")._buckets():
        keys = store._all(f"s3://{bucket}/")
        if keys:
            store._delete_keys(bucket, keys)


class S3Faults:
    """Counts S3 API calls (every boto3 client); `at` is the call to fail."""

    def __init__(self, mp, *, at: int = 0, kind: str = "count"):
        from botocore.client import BaseClient
        from botocore.exceptions import ClientError

        self.count, self.at, self.kind, self.fired, self.calls = 0, at, kind, False, []
        real = BaseClient._make_api_call

        def call(client, operation, params):
            self.count += 1
            self.calls.append(operation)
            failing = (self.kind == "persistent" and self.at and self.count >= self.at) or (
                self.kind == "error" and self.count == self.at
            )
            if failing:
                self.fired = True
                raise ClientError(
                    {"Error": {"Code": "InternalError", "Message": "We encountered an "
                               "internal error. Please try again."}},
                    operation,
                )  # fmt: skip
            if self.kind == "interrupt" and self.count == self.at:
                self.fired = True
                try:
                    real(client, operation, params)
                finally:  # the call has run (or raised): the kill comes next
                    raise KeyboardInterrupt  # noqa: B012
            return real(client, operation, params)

        mp.setattr(BaseClient, "_make_api_call", call)


def _one_publish(plan, store, mp, **faults):
    """Stage NEW (tables and an export) and publish it as the runner does; returns
    (what publish returned or None, the exception or None, the staging, the faults)."""

    staging = stage_new(store, plan, "run")
    wrapped = S3Faults(mp, **faults)
    wrapped.returned = False
    published = None
    try:
        published = staging.publish([t.ref for t in _tables(plan)])
        wrapped.returned = True  # the runner notes "published" here
        staging.finish()
        with contextlib.suppress(Exception):  # a note in the runner: loses nothing
            staging.discard()
    except BaseException as exc:  # noqa: BLE001 - what the runner does with any failure
        with contextlib.suppress(Exception):
            staging.discard()
        return published, exc, staging, wrapped
    return published, None, staging, wrapped


def _staging_left(store, plan) -> list[str]:
    from bakery.engine.publish import STAGING, Staging

    return [
        key
        for bucket in Staging(store, plan, "x")._buckets()
        for key in store._all(f"s3://{bucket}/{STAGING}/")
    ]


def test_a_fault_after_any_s3_operation_of_a_publish_is_never_a_silent_half_publish(plan, s3_env):
    """Over published data (a first publish runs the same S3 calls, minus deletes; the
    local walk covers both). ~40 s on moto: every call costs ~10 ms."""
    from bakery.engine.publish import PublishFailed, Staging

    published_before = True

    store = _store(plan)
    with pytest.MonkeyPatch.context() as mp:
        old, new = _seed(plan, store, published_before)
        published, error, _, counter = _one_publish(plan, store, mp)
        total = counter.count
    assert error is None and published, error
    assert _visible(store, plan) == new
    assert {"CopyObject", "PutObject", "DeleteObjects"} <= set(counter.calls)

    checked = 0
    for kind in ("error", "interrupt", "persistent"):
        for n in range(1, total + 1):
            _empty(store, plan)
            old, new = _seed(plan, store, published_before)
            with pytest.MonkeyPatch.context() as mp:
                published, error, staging, faults = _one_publish(plan, store, mp, at=n, kind=kind)
                operation = faults.calls[n - 1] if len(faults.calls) >= n else "?"
            assert faults.fired, (kind, n)
            where = f"{kind} at S3 call {n} of {total} ({operation}; {error!r})"
            after = _visible(store, plan)
            if error is None:  # reported as published: it must be
                assert after == new, f"{where}: reported published, live {after}"
            elif isinstance(error, KeyboardInterrupt) or kind == "persistent":
                # killed, or S3 keeps failing: all old, all new, or the journal stays
                # for the next bake (and the bake says its publish stopped half-way)
                if after not in (old, new):
                    assert staging.pending is not None, f"{where}: half published {after}"
                    if isinstance(error, PublishFailed):
                        assert "the next bake finishes it" in str(error), where
                if isinstance(error, KeyboardInterrupt) and after == new:
                    # stopped after the commit: the bake must say it published
                    said = staging.published_when_interrupted or staging.pending is not None
                    assert faults.returned or said, where  # published, or "half-way"
                if isinstance(error, PublishFailed) and after != old:
                    assert "unchanged" not in str(error), f"{where}: live {after}"
            else:  # one failed call: the bake ends all old (reported failed) or all new
                assert isinstance(error, PublishFailed), where
                assert after == old, f"{where}: reported failed, live {after}"
            half_way = store.exists(staging._journal(_tables(plan)[0].bucket))
            if half_way:
                assert staging.pending is not None, where
            notes = Staging(store, plan, "next").recover()
            recovered = _visible(store, plan)
            if half_way:
                assert recovered == new, f"{where}: the next bake left {recovered}"
                assert any("finished publishing" in n for n in notes), where
            else:
                assert recovered == after, f"{where}: the next bake changed {after}"
            assert _staging_left(store, plan) == [], where
            checked += 1
    assert checked == 3 * total
