"""A throwaway PostgreSQL + PostGIS with EveryElection's tables, for the EE export tests.

`PostgresServer` runs a real server in a temporary folder, on a free TCP port of
127.0.0.1, optionally with TLS (a certificate made by `make_certificates`).
`create_everyelection` makes a database from tests/fixtures/everyelection_schema.sql,
the one description of EE's tables every export test uses. Also used by
benchmarks/ee_export_memory.py.
"""

from __future__ import annotations

import datetime
import glob
import ipaddress
import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCHEMA = REPO / "tests" / "fixtures" / "everyelection_schema.sql"


class ServerError(RuntimeError):
    """PostgreSQL could not be started or stopped; the message has its log."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Certificates:
    """PEM files: a CA, and the server's key and certificate signed by it (for localhost)."""

    ca: Path
    server_cert: Path
    server_key: Path


def make_certificates(folder: Path, name: str = "bakery test CA") -> Certificates:
    """A fresh CA and a server certificate for DNS:localhost and IP:127.0.0.1."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    certs = Certificates(folder / "ca.pem", folder / "server.crt", folder / "server.key")
    certs.ca.write_bytes(ca_cert.public_bytes(pem))
    certs.server_cert.write_bytes(cert.public_bytes(pem))
    certs.server_key.write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    certs.server_key.chmod(0o600)
    return certs


class PostgresServer:
    """initdb + pg_ctl start in a temporary folder; `stop()` removes everything.

    As root the server runs as the `postgres` user (initdb refuses root). Local
    connections are trusted: the tests are about the data and TLS, not passwords.
    """

    def __init__(self, *, tls: Certificates | None = None) -> None:
        bindirs = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not bindirs:
            raise ServerError("PostgreSQL is not installed: apt-get install postgresql postgis")
        self.bindir = Path(bindirs[-1]).parent
        self.base = Path(tempfile.mkdtemp(prefix="bakery-pg-"))
        self.as_root = os.geteuid() == 0
        self.port = _free_port()
        self.data = self.base / "data"
        self.log = self.base / "log"
        options = [
            f"-k {self.base}",
            f"-p {self.port}",
            "-c listen_addresses=127.0.0.1",
            "-c fsync=off",
            "-c full_page_writes=off",
        ]
        if tls:
            folder = self.base / "tls"
            folder.mkdir()
            cert, key = folder / "server.crt", folder / "server.key"
            shutil.copyfile(tls.server_cert, cert)
            shutil.copyfile(tls.server_key, key)
            key.chmod(0o600)
            options += ["-c ssl=on", f"-c ssl_cert_file={cert}", f"-c ssl_key_file={key}"]
        if self.as_root:
            for path in [self.base, *self.base.rglob("*")]:
                shutil.chown(path, "postgres", "postgres")
        self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "--no-sync",
        )
        self._run(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-o",
            " ".join(options),
            "-w",
            "start",
        )

    def _run(self, *command: str) -> None:
        full = ["runuser", "-u", "postgres", "--", *command] if self.as_root else list(command)
        result = subprocess.run(full, capture_output=True, text=True, check=False)
        if result.returncode:
            log = self.log.read_text() if self.log.exists() else ""
            raise ServerError(f"{' '.join(command)} failed: {result.stderr}{result.stdout}{log}")

    def dsn(self, dbname: str = "postgres", *, host: str = "127.0.0.1", **extra: str) -> str:
        words = [f"host={host}", f"port={self.port}", "user=postgres", f"dbname={dbname}"]
        return " ".join(words + [f"{k}={v}" for k, v in extra.items()])

    def stop(self) -> None:
        try:
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.base, ignore_errors=True)


def create_everyelection(server: PostgresServer, dbname: str = "every_election") -> str:
    """A new database holding EE's tables (no rows); return its libpq DSN."""
    import psycopg

    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{dbname}"')
    dsn = server.dsn(dbname)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(SCHEMA.read_text())
    return dsn
