"""purge and singleton handlers against moto (and stubs for what moto cannot fake)."""

from __future__ import annotations

from datetime import UTC, datetime

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


DEFINITION = '{"StartAt": "w", "States": {"w": {"Type": "Wait", "Seconds": 3600, "End": true}}}'


def _small_pages(sfn, pages: list[int]):
    real = sfn.get_paginator

    def small_pages(name):
        paginator = real(name)
        original = paginator.paginate

        def paginate(**kwargs):
            for page in original(**kwargs, PaginationConfig={"PageSize": 2}):
                pages.append(len(page["executions"]))
                yield page

        paginator.paginate = paginate
        return paginator

    sfn.get_paginator = small_pages


def test_singleton_lists_older_running_executions_over_several_pages():
    with mock_aws():
        sfn = boto3.client("stepfunctions", region_name="eu-west-2")
        arn = sfn.create_state_machine(
            name="m", definition=DEFINITION, roleArn="arn:aws:iam::123456789012:role/r"
        )["stateMachineArn"]
        other = sfn.create_state_machine(
            name="other", definition=DEFINITION, roleArn="arn:aws:iam::123456789012:role/r"
        )["stateMachineArn"]
        started = [sfn.start_execution(stateMachineArn=arn)["executionArn"] for _ in range(5)]
        sfn.start_execution(stateMachineArn=other)
        sfn.stop_execution(executionArn=started[4])
        pages: list[int] = []
        _small_pages(sfn, pages)
        listed = {
            e["executionArn"]: e["startDate"]
            for e in sfn.list_executions(stateMachineArn=arn, statusFilter="RUNNING")["executions"]
        }
        order = sorted(started[:4], key=lambda a: (listed[a], a))
        newest = order[-1]
        older = singleton.running_older(sfn, arn, newest)
        assert older == order[:3]  # RUNNING only, oldest first, the stopped one left out
        assert len(pages) >= 2 and sum(pages) == 4  # over every page
        pages.clear()
        assert singleton.running_older(sfn, arn, order[0]) == []  # the oldest proceeds
        assert len(pages) >= 2


def test_singleton_two_running_executions_only_the_newer_stops():
    """Started together, each sees the other RUNNING: the older proceeds, the newer stops."""
    with mock_aws():
        sfn = boto3.client("stepfunctions", region_name="eu-west-2")
        arn = sfn.create_state_machine(
            name="m", definition=DEFINITION, roleArn="arn:aws:iam::123456789012:role/r"
        )["stateMachineArn"]
        a = sfn.start_execution(stateMachineArn=arn)["executionArn"]
        b = sfn.start_execution(stateMachineArn=arn)["executionArn"]
        listed = {
            e["executionArn"]: e["startDate"]
            for e in sfn.list_executions(stateMachineArn=arn, statusFilter="RUNNING")["executions"]
        }
        old, new = sorted([a, b], key=lambda x: (listed[x], x))
        assert singleton.handler({"state_machine_arn": arn, "execution_arn": old}) == {
            "older": [],
            "running_older": 0,
        }
        out = singleton.handler({"state_machine_arn": arn, "execution_arn": new})
        assert out == {"older": [old], "running_older": 1}


class _Pages:
    def __init__(self, pages):
        self.pages = pages

    def get_paginator(self, name):
        assert name == "list_executions"
        return self

    def paginate(self, **kwargs):
        assert kwargs["statusFilter"] == "RUNNING"
        yield from self.pages


def test_singleton_same_start_ties_break_on_arn_and_start_time_from_payload():
    t = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    later = datetime(2026, 1, 1, 12, 0, 1, tzinfo=UTC)
    pages = _Pages(
        [
            {"executions": [{"executionArn": "arn:x:b", "startDate": t}]},
            {"executions": [{"executionArn": "arn:x:a", "startDate": t}]},
            {"executions": [{"executionArn": "arn:x:c", "startDate": later}]},
        ]
    )
    assert singleton.running_older(pages, "sm", "arn:x:a") == []
    assert singleton.running_older(pages, "sm", "arn:x:b") == ["arn:x:a"]
    assert singleton.running_older(pages, "sm", "arn:x:c") == ["arn:x:a", "arn:x:b"]
    # Not listed yet: its start comes from $$.Execution.StartTime in the payload.
    assert singleton.running_older(pages, "sm", "arn:x:z", "2026-01-01T12:00:00.500Z") == [
        "arn:x:a",
        "arn:x:b",
    ]
    assert singleton.running_older(pages, "sm", "arn:x:z", "2026-01-01T11:00:00Z") == []


def test_singleton_handler_finds_nobody_else():
    with mock_aws():
        sfn = boto3.client("stepfunctions", region_name="eu-west-2")
        arn = sfn.create_state_machine(
            name="m", definition=DEFINITION, roleArn="arn:aws:iam::123456789012:role/r"
        )["stateMachineArn"]
        me = sfn.start_execution(stateMachineArn=arn)["executionArn"]
        out = singleton.handler({"state_machine_arn": arn, "execution_arn": me})
        assert out == {"older": [], "running_older": 0}
