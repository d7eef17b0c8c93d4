"""The publish Lambda's S3 client keeps a connection for each of its copy threads.

botocore's pool holds 10 connections by default; with 16 copy threads urllib3 then throws
away the connections it cannot keep ("Connection pool is full, discarding connection"),
which a publish of many files pays for on every copy. Run against moto's server on
127.0.0.1, so the copies are real HTTP requests on real connections.
"""

from __future__ import annotations

import logging

import boto3
import pytest

from bakery.lambdas import publish
from bakery.simulate.s3 import moto_endpoint

BUCKET = "pollingstations.private.data"
STAGING = f"s3://{BUCKET}/bakery-staging/wide/"
LIVE = f"s3://{BUCKET}/wide/"


def test_the_client_has_a_connection_per_copy_thread(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-2")
    client = publish.s3_client()
    assert client.meta.config.max_pool_connections >= publish.COPY_THREADS > 10


def test_publishing_many_files_keeps_every_connection(caplog: pytest.LogCaptureFixture):
    with moto_endpoint() as url:
        s3 = boto3.client("s3", endpoint_url=url, region_name="eu-west-2")
        s3.create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-2"}
        )
        for i in range(400):
            s3.put_object(Bucket=BUCKET, Key=f"bakery-staging/wide/part-{i:04d}.parquet", Body=b"x")
        with caplog.at_level(logging.WARNING, logger="urllib3.connectionpool"):
            result = publish.handler({"staging_location": STAGING, "live_location": LIVE})
        assert result["copied"] == 400
        live = s3.list_objects_v2(Bucket=BUCKET, Prefix="wide/")["KeyCount"]
        assert live == 400
    discarded = [r.getMessage() for r in caplog.records if "pool is full" in r.getMessage()]
    assert not discarded, discarded[:2]
