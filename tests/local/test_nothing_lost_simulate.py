"""`simulate` publishes into the store as `bake` does (issue 19, item 6): a fault after any
filesystem operation or S3 call of its copy-back leaves each published table and export
folder entirely old or entirely new, and the next bake's recovery leaves no half-way
state and no leftovers.

The copy-back is what runs once a layer's state machine has succeeded: moto holds the
layer's new tables and export folder (here NEW of the bake walk, test_nothing_lost.py),
the store the published ones (OLD). The state machines themselves, failing at each
CopyObject and PutObject, are walked in tests/aws/test_simulate_nothing_lost.py.
"""

from __future__ import annotations

import pytest

from bakery.store import LocalStore
from tests.local.conftest import export_location
from tests.local.test_nothing_lost import Faults, _no_leftovers, _seed, _tables, _visible
from tests.local.test_nothing_lost_s3 import S3Faults

LAYER = "current_elections"


@pytest.fixture
def moto_new(plan, monkeypatch):
    """A boto3 S3 client on moto (in this process) holding what the layer's state machine
    wrote: NEW (or, for a first publish, NEW_FIRST) at the tables' and export's locations."""
    import boto3
    from moto import mock_aws

    from bakery.engine.publish import Staging

    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")):
        monkeypatch.setenv(name, value)
    with mock_aws():
        s3 = boto3.client("s3", region_name="eu-west-2")
        for bucket in Staging(LocalStore("/nonexistent"), plan, "x")._buckets():
            s3.create_bucket(
                Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-2"}
            )

        def fill(new: dict[str, dict[str, bytes]]) -> None:
            locations = [t.location for t in _tables(plan)] + [export_location(plan)]
            for key, location in zip(("joined", "ballots", "outcodes"), locations, strict=True):
                bucket, prefix = location[5:].split("/", 1)
                for listed in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []):
                    s3.delete_object(Bucket=bucket, Key=listed["Key"])
                for name, data in new[key].items():
                    s3.put_object(Bucket=bucket, Key=prefix + name, Body=data)

        yield s3, fill


def _copy_back(plan, store, s3, mp, faults_class, **faults):
    """Publish the layer from moto into `store` as bakery.simulate.run does after a
    layer succeeded: publish_layer, then (always) discard."""
    from bakery.engine.publish import Staging
    from bakery.simulate.publish import discard, publish_layer
    from bakery.simulate.run import LayerRun, SimulateResult

    staging = Staging(store, plan, "sim-run")
    run = LayerRun(LAYER, "SUCCEEDED")
    result = SimulateResult(ok=False, env=plan.env, store=str(store.root))
    wrapped = faults_class(mp, **faults)
    error: BaseException | None = None
    try:
        if not publish_layer(s3, staging, run, result, lambda _event: None):
            assert result.error
    except BaseException as exc:  # noqa: BLE001 - a Ctrl-C, as simulate gets it
        error = exc
    try:
        discard(staging, result)  # in simulate's `finally:`
    except BaseException as exc:  # noqa: BLE001 - a Ctrl-C while cleaning up
        error = error or exc
    return error, result, run, staging, wrapped


@pytest.mark.parametrize("published_before", [True, False], ids=["replace", "first"])
@pytest.mark.parametrize("where", ["filesystem", "s3"])
def test_a_fault_anywhere_in_simulates_copy_back_leaves_old_or_new(
    plan, tmp_path, moto_new, published_before, where
):
    from bakery.engine.publish import Staging

    s3, fill = moto_new
    faults_class = Faults if where == "filesystem" else S3Faults
    kinds = ("oserror", "interrupt", "persistent") if where == "filesystem" else (
        "error", "interrupt", "persistent")  # fmt: skip

    store = LocalStore(tmp_path / "count")
    old, new = _seed(plan, store, published_before)
    fill(new)
    with pytest.MonkeyPatch.context() as mp:
        error, result, run, _, counter = _copy_back(plan, store, s3, mp, faults_class)
        total = counter.count
    assert error is None and result.error is None, (error, result.error)
    assert _visible(store, plan) == new
    assert sorted(run.published) == sorted(
        [t.ref for t in plan.layer(LAYER).tables if not t.external] + [f"{LAYER}.export_outcodes"]
    )
    assert total >= 6, total  # the wrapping sees the copy-back's operations

    checked = reported_unchanged = 0
    for kind in kinds:
        for n in range(1, total + 1):
            store = LocalStore(tmp_path / f"{kind}-{n}")
            _seed(plan, store, published_before)
            with pytest.MonkeyPatch.context() as mp:
                error, result, run, staging, faults = _copy_back(
                    plan, store, s3, mp, faults_class, at=n, kind=kind
                )
            assert faults.fired, (kind, n)
            where_ = f"{kind} at {where} operation {n} of {total} ({error!r}; {result.error})"
            after = _visible(store, plan)
            if kind != "persistent":  # a store that stays broken may stop half-way
                assert after in (old, new), f"{where_}: published {after}"
            # what simulate reports is what happened
            if error is None and result.error is None:
                assert after == new, where_
            elif isinstance(error, KeyboardInterrupt) and old != new:
                said = bool(run.published) or bool(staging.published_when_interrupted)
                assert said == (after == new), where_
            elif result.error and "its published data is unchanged" in result.error:
                assert after == old, where_
                reported_unchanged += 1
            Staging(store, plan, "next").recover()
            recovered = _visible(store, plan)
            assert recovered in (old, new), f"{where_}: after the next bake {recovered}"
            if kind != "persistent":
                assert recovered == after, f"{where_}: the next bake changed {after}"
            _no_leftovers(store)
            checked += 1
    assert checked == len(kinds) * total
    assert reported_unchanged  # failures before the publish say the store is unchanged
