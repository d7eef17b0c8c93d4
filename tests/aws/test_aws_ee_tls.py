"""Connecting to EveryElection like the running system, and safely (pg8000, as on Lambda).

Two real PostgreSQL servers: one with TLS, its certificate signed by a CA the test
makes (like RDS, whose CA no system trust store holds), one without TLS.
`prefer` (the default) encrypts whenever the server offers TLS and checks no
certificate; `verify` accepts only a certificate from the configured CA bundle.
"""

from __future__ import annotations

import csv
import io
import ssl

import boto3
import pg8000
import psycopg
import pytest
from ee_postgres import PostgresServer, create_everyelection, make_certificates
from moto import mock_aws

from bakery.lambdas import ee_connection, ee_export

BALLOTS = """
INSERT INTO organisations_organisation (id, slug) VALUES (1, 'hackney');
INSERT INTO organisations_organisationgeography (id, organisation_id) VALUES (1, 1);
INSERT INTO organisations_organisationgeographysubdivided
    (id, organisation_geography_id, geography) VALUES
    (7, 1, ST_GeomFromText('POLYGON((0 0,1 0,1 1,0 1,0 0))', 4326));
INSERT INTO elections_election (id, election_id, poll_open_date, "current", current_status,
    group_type, organisation_id, organisation_geography_id) VALUES
    (1, 'mayor.hackney.2099-05-07', '2099-05-07', NULL, 'Approved', NULL, 1, 1);
"""


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return make_certificates(tmp_path_factory.mktemp("tls"), "test RDS-like CA")


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory):
    return make_certificates(tmp_path_factory.mktemp("other"), "some other CA")


def _server(tls=None):
    server = PostgresServer(tls=tls)
    try:
        dsn = create_everyelection(server)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(BALLOTS)
    except BaseException:
        server.stop()
        raise
    return server


@pytest.fixture(scope="module")
def tls_server(certs):
    server = _server(tls=certs)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def plain_server():
    server = _server()
    yield server
    server.stop()


def connect(server: PostgresServer, **kw):
    return ee_connection.connect(
        host="localhost",
        password="unused",
        user="postgres",
        database="every_election",
        port=server.port,
        **kw,
    )


def test_prefer_encrypts_without_checking_the_certificate(tls_server):
    conn = connect(tls_server)  # the default mode; the test CA is in no trust store
    try:
        assert ee_connection.encryption(conn).startswith("encrypted (TLSv1.")
        out = io.StringIO(newline="")
        assert ee_export.write_export(conn, out) == 1
    finally:
        conn.close()


def test_prefer_goes_on_in_plain_text_when_the_server_has_no_tls(plain_server):
    conn = connect(plain_server, tls="prefer")
    try:
        assert ee_connection.encryption(conn) == "not encrypted"
    finally:
        conn.close()


def test_verify_accepts_the_configured_ca(tls_server, certs):
    conn = connect(tls_server, tls="verify", ca_pem=certs.ca.read_text())
    try:
        assert ee_connection.encryption(conn).startswith("encrypted (TLSv1.")
    finally:
        conn.close()


def test_verify_refuses_a_certificate_from_another_ca(tls_server, other_ca):
    with pytest.raises(ssl.SSLCertVerificationError, match="certificate verify failed"):
        connect(tls_server, tls="verify", ca_pem=other_ca.ca.read_text())


def test_verify_refuses_a_server_without_tls(plain_server, certs):
    with pytest.raises(pg8000.InterfaceError, match="Server refuses SSL"):
        connect(plain_server, tls="verify", ca_pem=certs.ca.read_text())


def test_verify_does_not_use_the_system_trust_store(certs):
    context = ee_connection.verifying_context(certs.ca.read_text())
    assert [c["subject"] for c in context.get_ca_certs()] == [
        ((("commonName", "test RDS-like CA"),),)
    ]
    assert context.check_hostname and context.verify_mode == ssl.CERT_REQUIRED


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"DATABASE_TLS": "require"}, "DATABASE_TLS='require' is not a TLS mode"),
        ({"DATABASE_TLS": "verify"}, "DATABASE_TLS=verify needs a CA bundle"),
        (
            {"DATABASE_TLS": "verify", "DATABASE_CA_BUNDLE_FILE": "no-such.pem"},
            "DATABASE_CA_BUNDLE_FILE: cannot read",
        ),
        ({"DATABASE_HOST": ""}, "DATABASE_HOST is not set"),
    ],
)
def test_configuration_errors_say_what_to_set(environ, message):
    env = {"DATABASE_HOST": "/h", "DATABASE_PASSWORD": "/p", **environ}
    with pytest.raises(ee_connection.ConfigurationError, match=message):
        ee_connection.connect_from_environment(env, parameter=lambda name: "x")


def test_a_bundle_that_is_not_pem_is_a_configuration_error():
    with pytest.raises(ee_connection.ConfigurationError, match="not PEM certificates"):
        ee_connection.verifying_context("not a certificate")


@pytest.fixture
def lambda_environment(monkeypatch, tls_server):
    monkeypatch.setenv("DATABASE_HOST", "/EveryElectionProd/DATABASE_HOST")
    monkeypatch.setenv("DATABASE_PASSWORD", "/EveryElectionProd/DatabasePassword")
    monkeypatch.setenv("DATABASE_USER", "postgres")
    monkeypatch.setenv("DATABASE_PORT", str(tls_server.port))
    monkeypatch.setenv("TABLE_LOCATION", "s3://ee.data-cache.production/ballots-with-wkt/")
    monkeypatch.setenv("FILE_NAME", "current_elections.csv")


def _aws(ca_pem: str) -> None:
    ssm = boto3.client("ssm", region_name="eu-west-2")
    ssm.put_parameter(Name="/EveryElectionProd/DATABASE_HOST", Value="localhost", Type="String")
    ssm.put_parameter(
        Name="/EveryElectionProd/DatabasePassword", Value="secret", Type="SecureString"
    )
    ssm.put_parameter(Name="/bakery/ee-ca-bundle", Value=ca_pem, Type="String")
    boto3.client("s3", region_name="eu-west-2").create_bucket(
        Bucket="ee.data-cache.production",
        CreateBucketConfiguration={"LocationConstraint": "eu-west-2"},
    )


@mock_aws
def test_handler_verifies_with_a_bundle_from_ssm_and_uploads_the_csv(
    lambda_environment, monkeypatch, certs, capsys
):
    _aws(certs.ca.read_text())
    monkeypatch.setenv("DATABASE_TLS", "verify")
    monkeypatch.setenv("DATABASE_CA_BUNDLE", "/bakery/ee-ca-bundle")
    result = ee_export.handler({})
    assert (
        result["location"] == "s3://ee.data-cache.production/ballots-with-wkt/current_elections.csv"
    )
    body = (
        boto3.client("s3")
        .get_object(
            Bucket="ee.data-cache.production", Key="ballots-with-wkt/current_elections.csv"
        )["Body"]
        .read()
    )
    assert result["rows"] == 1 and result["bytes"] == len(body)
    rows = list(csv.reader(io.StringIO(body.decode(), newline="")))
    assert rows[0] == ee_export.HEADER
    assert rows[1][:2] == ["mayor.hackney.2099-05-07", "7"] and rows[1][3] == "Organisation"
    assert "connection encrypted (TLSv1." in capsys.readouterr().out


@mock_aws
def test_handler_refuses_the_server_when_the_bundle_is_another_ca(
    lambda_environment, monkeypatch, other_ca
):
    _aws(other_ca.ca.read_text())
    monkeypatch.setenv("DATABASE_TLS", "verify")
    monkeypatch.setenv("DATABASE_CA_BUNDLE", "/bakery/ee-ca-bundle")
    with pytest.raises(ssl.SSLCertVerificationError):
        ee_export.handler({})
    listed = boto3.client("s3").list_objects_v2(Bucket="ee.data-cache.production")
    assert listed.get("KeyCount") == 0  # nothing written


@mock_aws
def test_handler_by_default_encrypts_like_the_running_system(lambda_environment, capsys):
    _aws("unused")
    assert ee_export.handler({})["rows"] == 1
    assert "connection encrypted (TLSv1." in capsys.readouterr().out


def test_a_bundle_file_shipped_with_the_function(tls_server, certs, tmp_path):
    environ = {
        "DATABASE_HOST": "/h",
        "DATABASE_PASSWORD": "/p",
        "DATABASE_USER": "postgres",
        "DATABASE_PORT": str(tls_server.port),
        "DATABASE_TLS": "verify",
        "DATABASE_CA_BUNDLE_FILE": str(certs.ca),  # absolute here; relative to bakery/lambdas
    }
    values = {"/h": "localhost", "/p": "x"}
    conn = ee_connection.connect_from_environment(environ, parameter=values.__getitem__)
    try:
        assert ee_connection.encryption(conn).startswith("encrypted")
    finally:
        conn.close()
