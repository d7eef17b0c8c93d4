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
