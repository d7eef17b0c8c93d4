"""Connecting to EveryElection's PostgreSQL and streaming a query's rows.

Shared by the EE export handlers (`ee_export`, `ee_boundary_reviews`).

Streaming: `stream_rows` declares a server-side cursor in a read-only
transaction and fetches it `FETCH_ROWS` at a time, so the client holds one batch
whatever the size of the result. Neither pg8000 (on Lambda) nor psycopg's
client-side cursors stream a plain `execute`: both read the whole result first.
The same SQL runs on both drivers (`%s` parameters).

On Lambda (`connect_from_environment`, pg8000 1.31 from the AWS SDK for pandas layer):

- DATABASE_HOST, DATABASE_PASSWORD: names of SSM parameters (SecureString is fine).
- DATABASE_USER, DATABASE_NAME (both default `every_election`), DATABASE_PORT (5432).
- DATABASE_TLS: `prefer` (default) or `verify`.
  `prefer` is what the running system does (libpq's default sslmode=prefer):
  encrypted whenever the server offers TLS, the certificate not checked, plain
  if the server has no TLS. `verify` requires TLS and accepts only a certificate
  that chains to the CA bundle named by DATABASE_CA_BUNDLE (the name of an SSM
  parameter holding PEM text) or DATABASE_CA_BUNDLE_FILE (a PEM file shipped
  with the function: a path relative to this folder, or absolute), with a host
  name that matches DATABASE_HOST. The system trust store is not used: the RDS
  certificate authority is in none.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

FETCH_ROWS = 2000
CURSOR = "bakery_ee_export"
TLS_MODES = ("prefer", "verify")


class ConfigurationError(ValueError):
    """The function's environment does not say how to connect; the message says what to set."""


def stream_rows(
    conn: Any, query: str, params: Sequence[Any] = (), *, batch: int = FETCH_ROWS
) -> Iterator[tuple[Any, ...]]:
    """Yield the rows of `query` from a server-side cursor, `batch` rows per round trip.

    `conn` must not be in autocommit mode: both drivers then open a transaction at
    the first statement, which is made read-only (the export never writes to EE)
    and rolled back at the end, so nothing stays open on the server.
    """
    conn.rollback()  # start a fresh transaction, so SET TRANSACTION comes first in it
    cursor = conn.cursor()
    try:
        cursor.execute("SET TRANSACTION READ ONLY")
        cursor.execute(f"DECLARE {CURSOR} NO SCROLL CURSOR FOR {query}", tuple(params))
        while True:
            cursor.execute(f"FETCH FORWARD {int(batch)} FROM {CURSOR}")
            rows = cursor.fetchall()
            if not rows:
                break
            yield from (tuple(r) for r in rows)
    finally:
        try:
            conn.rollback()
        finally:
            cursor.close()


def tls_mode(environ: Mapping[str, str]) -> str:
    mode = (environ.get("DATABASE_TLS") or "prefer").strip().lower()
    if mode not in TLS_MODES:
        raise ConfigurationError(
            f"DATABASE_TLS={mode!r} is not a TLS mode; use one of {', '.join(TLS_MODES)}"
        )
    return mode


def verifying_context(ca_pem: str) -> ssl.SSLContext:
    """TLS that accepts only certificates chaining to `ca_pem`, for the host connected to."""
    try:
        context = ssl.create_default_context(cadata=ca_pem)
    except (ssl.SSLError, ValueError) as exc:
        raise ConfigurationError(f"the CA bundle is not PEM certificates: {exc}") from exc
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def ca_bundle(environ: Mapping[str, str], parameter: Callable[[str], str]) -> str:
    """The PEM text of the CA bundle the configuration names."""
    if environ.get("DATABASE_CA_BUNDLE"):
        return parameter(environ["DATABASE_CA_BUNDLE"])
    if environ.get("DATABASE_CA_BUNDLE_FILE"):
        path = Path(__file__).parent / environ["DATABASE_CA_BUNDLE_FILE"]
        try:
            return path.read_text()
        except OSError as exc:
            raise ConfigurationError(
                f"DATABASE_CA_BUNDLE_FILE: cannot read {path}: {exc.strerror}"
            ) from exc
    raise ConfigurationError(
        "DATABASE_TLS=verify needs a CA bundle: set DATABASE_CA_BUNDLE (an SSM parameter "
        "holding PEM text) or DATABASE_CA_BUNDLE_FILE (a PEM file shipped with the function)"
    )


def connect(
    *,
    host: str,
    password: str,
    user: str = "every_election",
    database: str = "every_election",
    port: int = 5432,
    tls: str = "prefer",
    ca_pem: str | None = None,
    timeout: float = 30,
) -> Any:
    """A pg8000 DB-API connection, encrypted as `tls` says (see the module docstring)."""
    import pg8000.dbapi

    def attempt(ssl_context: Any) -> Any:
        return pg8000.dbapi.connect(
            host=host,
            password=password,
            user=user,
            database=database,
            port=port,
            ssl_context=ssl_context,
            timeout=timeout,
            application_name="bakery-ee-export",
        )

    if tls == "verify":
        if not ca_pem:
            raise ConfigurationError("DATABASE_TLS=verify needs a CA bundle")
        # Given a context, pg8000 requires TLS: a server without it is refused.
        return attempt(verifying_context(ca_pem))
    # prefer, spelt out rather than left to pg8000's default for ssl_context=None
    # (which changed across versions): TLS without certificate checks, and plain
    # text only when the server says it has no TLS.
    unverified = ssl.create_default_context()
    unverified.check_hostname = False
    unverified.verify_mode = ssl.CERT_NONE
    try:
        return attempt(unverified)
    except pg8000.InterfaceError as exc:
        if "refuses SSL" not in str(exc):
            raise
    return attempt(False)


def connect_from_environment(
    environ: Mapping[str, str] | None = None, parameter: Callable[[str], str] | None = None
) -> Any:
    """Connect as the Lambda's environment says; `parameter(name)` reads SSM (boto3 by default)."""
    env = os.environ if environ is None else environ
    if parameter is None:
        import boto3

        ssm = boto3.client("ssm")

        def parameter(name: str) -> str:
            return ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]

    for name in ("DATABASE_HOST", "DATABASE_PASSWORD"):
        if not env.get(name):
            raise ConfigurationError(f"{name} is not set: give the name of its SSM parameter")
    mode = tls_mode(env)
    return connect(
        host=parameter(env["DATABASE_HOST"]),
        password=parameter(env["DATABASE_PASSWORD"]),
        user=env.get("DATABASE_USER") or "every_election",
        database=env.get("DATABASE_NAME") or "every_election",
        port=int(env.get("DATABASE_PORT") or 5432),
        tls=mode,
        ca_pem=ca_bundle(env, parameter) if mode == "verify" else None,
    )


def encryption(conn: Any) -> str:
    """How the session is protected, for the log: the TLS version, or 'not encrypted'."""
    cursor = conn.cursor()
    try:
        cursor.execute("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        row = cursor.fetchone()
    finally:
        cursor.close()
    conn.rollback()
    if row and row[0]:
        return f"encrypted ({row[1]})"
    return "not encrypted"
