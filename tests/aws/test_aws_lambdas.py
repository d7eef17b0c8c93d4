"""purge and singleton (the start lock) handlers against moto (and stubs for what moto
cannot fake)."""

from __future__ import annotations

import json

import boto3
import pytest
from aws_helpers import fail_first_delete
from moto import mock_aws

from bakery.lambdas import purge, singleton

BUCKET = "pollingstations.private.data"


@pytest.fixture
def s3():
    with mock_aws():
        client = boto3.client("s3", region_name="eu-west-2")
        client.create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-2"}
        )
        yield client


def put_many(s3, prefix: str, n: int) -> None:
    for i in range(n):
        s3.put_object(
            Bucket=BUCKET, Key=f"{prefix}first_letter={chr(65 + i % 26)}/{i:05}.parquet", Body=b"x"
        )


def keys(s3, prefix: str) -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


def test_purge_deletes_more_than_1000_objects_in_batches(s3):
    put_many(s3, "addressbase/development/addressbase_partitioned/", 2345)
    put_many(s3, "addressbase/development/addressbase_partitioned_other/", 3)
    calls = []
    real = s3.delete_objects

    def counting(**kwargs):
        calls.append(len(kwargs["Delete"]["Objects"]))
        return real(**kwargs)

    s3.delete_objects = counting
    n = purge.purge(s3, f"s3://{BUCKET}/addressbase/development/addressbase_partitioned/")
    assert n == 2345
    assert calls == [1000, 1000, 345]
    assert keys(s3, "addressbase/development/addressbase_partitioned/") == []
    # A sibling prefix sharing the name's start is untouched: the prefix ends with '/'.
    assert len(keys(s3, "addressbase/development/addressbase_partitioned_other/")) == 3


def test_purge_of_an_empty_prefix_deletes_nothing(s3):
    assert purge.purge(s3, f"s3://{BUCKET}/nothing/here/") == 0


def test_purge_fails_loudly_on_partial_errors(s3):
    put_many(s3, "p/", 5)

    fail_first_delete(s3)
    with pytest.raises(purge.PurgeError, match=r"could not delete 1 of 5 objects .*AccessDenied"):
        purge.purge(s3, f"s3://{BUCKET}/p/")


@pytest.mark.parametrize("bad", ["s3://bucket", "s3://bucket/", "s3://bucket//", "/tmp/x"])
def test_purge_refuses_bucket_roots(bad):
    with pytest.raises(ValueError):
        purge.split_location(bad)


def test_purge_handler(s3):
    put_many(s3, "t/", 3)
    out = purge.handler({"location": f"s3://{BUCKET}/t/"})
    assert out == {"location": f"s3://{BUCKET}/t/", "deleted": 3}


TABLE = "locks"


@pytest.fixture
def dynamodb():
    with mock_aws():
        client = boto3.client("dynamodb", region_name="eu-west-2")
        client.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "layer", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "layer", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield client


def item(dynamodb) -> dict:
    return dynamodb.get_item(TableName=TABLE, Key={"layer": {"S": "current_elections"}})["Item"]


def test_singleton_lock_is_taken_once_and_counts_the_starts_it_defers(dynamodb):
    def take(arn: str, note: bool = True, now: int = 1000) -> dict:
        return singleton.take(dynamodb, TABLE, "current_elections", arn, 600, note, lambda: now)

    assert take("a") == {"taken": True, "holder": "a", "expires_at": 1600, "deferred": False}
    assert take("b") == {"taken": False, "holder": "a", "expires_at": 1600, "deferred": True}
    assert take("c", now=1200) == {
        "taken": False,
        "holder": "a",
        "expires_at": 1600,
        "deferred": True,
    }
    # A retried invocation of the holder keeps the lock as it is, count included.
    assert take("a", now=1300)["taken"] is True
    assert item(dynamodb)["deferred"] == {"N": "2"}
    assert item(dynamodb)["expires_at"] == {"N": "1600"}
    # Without a trigger queue nothing is counted.
    assert take("d", note=False)["deferred"] is False
    assert item(dynamodb)["deferred"] == {"N": "2"}
    # Expired (the holder timed out or was aborted): the next start takes it over, afresh.
    assert take("e", now=1601) == {
        "taken": True,
        "holder": "e",
        "expires_at": 2201,
        "deferred": False,
    }
    assert "deferred" not in item(dynamodb)


def test_singleton_lock_taken_over_between_the_read_and_the_count(dynamodb):
    """The holder releases between a start's failed take and its count: the count's
    condition fails, and the start takes the lock itself instead of being lost."""
    singleton.take(dynamodb, TABLE, "current_elections", "a", 600, True)
    real = dynamodb.update_item

    def release_first(**kwargs):
        dynamodb.delete_item(TableName=TABLE, Key={"layer": {"S": "current_elections"}})
        dynamodb.update_item = real
        return real(**kwargs)

    dynamodb.update_item = release_first
    out = singleton.take(dynamodb, TABLE, "current_elections", "b", 600, True)
    assert out["taken"] is True and out["holder"] == "b"
    assert item(dynamodb)["holder"] == {"S": "b"} and "deferred" not in item(dynamodb)


def test_singleton_handler_reads_its_event(dynamodb):
    out = singleton.handler(
        {
            "table": TABLE,
            "layer": "current_elections",
            "execution_arn": "arn:x:a",
            "seconds": 60,
            "note_deferral": True,
        }
    )
    assert out["taken"] is True and out["holder"] == "arn:x:a"
    assert int(item(dynamodb)["expires_at"]["N"]) == out["expires_at"]


def test_singleton_release_after_a_failed_run(dynamodb):
    """The release rule's Lambda: deletes the lock only if the failed execution holds it,
    and re-queues one trigger for the starts deferred on it; a repeated event does nothing."""
    sqs = boto3.client("sqs", region_name="eu-west-2")
    url = sqs.create_queue(
        QueueName="t.fifo", Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"}
    )["QueueUrl"]
    arn = "arn:aws:states:eu-west-2:1:execution:m:run-1"
    singleton.take(dynamodb, TABLE, "current_elections", arn, 600, True)
    singleton.take(dynamodb, TABLE, "current_elections", "b", 600, True)  # deferred
    # Another execution's failure (its lock expired and this one took it): not released.
    other = singleton.release(dynamodb, sqs, TABLE, "current_elections", "arn:x:old", url)
    assert other == {"released": False, "requeued": False}
    assert item(dynamodb)["holder"] == {"S": arn}
    out = singleton.release_handler(
        {"table": TABLE, "layer": "current_elections", "execution_arn": arn, "queue_url": url}
    )
    assert out == {"released": True, "requeued": True}
    assert "Item" not in dynamodb.get_item(
        TableName=TABLE, Key={"layer": {"S": "current_elections"}}
    )
    (message,) = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert json.loads(message["Body"]) == {
        "layer": "current_elections",
        "requeued_by": arn,
        "deferred": "1",
    }
    again = singleton.release(dynamodb, sqs, TABLE, "current_elections", arn, url)
    assert again == {"released": False, "requeued": False}
    # Nothing deferred, or no queue: released without a message.
    singleton.take(dynamodb, TABLE, "current_elections", arn, 600, True)
    assert singleton.release(dynamodb, sqs, TABLE, "current_elections", arn, None) == {
        "released": True,
        "requeued": False,
    }
