"""Peak memory of the ballots export Lambda as the export grows: flat when streamed.

Starts a PostgreSQL + PostGIS with EveryElection's tables (tests/aws/ee_postgres.py),
fills it with ballots whose pre-subdivided pieces make about SIZE MB of WKT, and
runs, in a fresh child process per run:

- `streamed`: the real `bakery.lambdas.ee_export.handler` end to end (host and
  password from SSM, pg8000, server-side cursor, CSV in /tmp, upload to S3), with
  SSM and S3 served by a local moto server;
- `export`: the same without SSM and S3 (pg8000, server-side cursor, CSV in a
  temporary file): the streaming alone;
- `buffered`: for comparison, the previous code's way (a plain pg8000 cursor and
  fetchmany, which reads the whole result into the client first).

    uv run python benchmarks/ee_export_memory.py --sizes 50 500

Prints a markdown table (paste it into docs/aws.md): rows, CSV size, seconds, the
child's peak RSS (VmHWM) and its RSS after imports and connecting.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "aws"))

from ee_postgres import PostgresServer, create_everyelection  # noqa: E402

BUCKET = "ee.data-cache.production"
PIECE_SEGMENTS = 64  # ST_Buffer quad_segs: 257 vertices, ~9.6 kB of WKT per piece
PIECES_PER_BALLOT = 20

CHILD = r"""
import json, os, sys, time

def status_mb(field):
    # /proc, not ru_maxrss: ru_maxrss keeps the forking parent's high-water mark across exec
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024

def rss_mb():
    return status_mb("VmRSS")

mode = sys.argv[1]
t0 = time.perf_counter()
if mode == "streamed":
    import boto3, pg8000.dbapi
    from bakery.lambdas import ee_connection, ee_export
    baseline = rss_mb()
    result = ee_export.handler({})
    rows, size = result["rows"], result["bytes"]
elif mode == "export":
    import tempfile
    from bakery.lambdas import ee_connection, ee_export
    conn = ee_connection.connect(host="127.0.0.1", port=int(os.environ["DATABASE_PORT"]),
                                 user="postgres", password="x")
    baseline = rss_mb()
    with tempfile.NamedTemporaryFile("w", newline="") as tmp:
        rows = ee_export.write_export(conn, tmp)
        tmp.flush()
        size = os.path.getsize(tmp.name)
    conn.close()
else:
    import csv, tempfile, datetime
    import pg8000.dbapi
    from bakery.lambdas import ee_export
    conn = pg8000.dbapi.connect(host="127.0.0.1", port=int(os.environ["DATABASE_PORT"]),
                                user="postgres", password="x", database="every_election")
    baseline = rss_mb()
    cur = conn.cursor()
    cur.execute(ee_export.QUERY, (ee_export.since(),))
    rows = 0
    with tempfile.NamedTemporaryFile("w", newline="") as tmp:
        w = csv.writer(tmp)
        w.writerow(ee_export.HEADER)
        while batch := cur.fetchmany(1000):
            w.writerows(batch)
            rows += len(batch)
        tmp.flush()
        size = os.path.getsize(tmp.name)
    conn.close()
peak = status_mb("VmHWM")
print(json.dumps({"rows": rows, "bytes": size, "seconds": time.perf_counter() - t0,
                  "peak_mb": peak, "baseline_mb": baseline}))
"""


def fill(dsn: str, size_mb: int) -> int:
    """Ballots with PIECES_PER_BALLOT pieces each, about size_mb MB of WKT; return pieces."""
    import psycopg

    pieces = max(1, round(size_mb * 1e6 / 9_600))
    ballots = max(1, pieces // PIECES_PER_BALLOT)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "TRUNCATE elections_election, organisations_divisiongeographysubdivided,"
            " organisations_divisiongeography CASCADE"
        )
        conn.execute(
            "INSERT INTO organisations_divisiongeography (id)"
            " SELECT g FROM generate_series(1, %s) g",
            (ballots,),
        )
        conn.execute(
            """
            INSERT INTO organisations_divisiongeographysubdivided
                (division_geography_id, geography)
            SELECT 1 + g %% %s,
                   ST_Buffer(ST_SetSRID(ST_MakePoint(-3 + random() * 4, 51 + random() * 3),
                                        4326), 0.01234567, %s)
            FROM generate_series(1, %s) g
            """,
            (ballots, PIECE_SEGMENTS, pieces),
        )
        conn.execute(
            """
            INSERT INTO elections_election (election_id, poll_open_date, "current",
                current_status, division_geography_id)
            SELECT 'local.bench-' || g || '.2099-05-07', DATE '2099-05-07', NULL, 'Approved', g
            FROM generate_series(1, %s) g
            """,
            (ballots,),
        )
        conn.execute("VACUUM ANALYZE")
    return pieces


def run_child(mode: str, env: dict[str, str]) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, mode],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode:
        raise SystemExit(f"{mode} run failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[50, 500], help="MB of WKT")
    parser.add_argument("--modes", nargs="+", default=["streamed", "export", "buffered"])
    args = parser.parse_args()

    import logging

    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise

    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    moto.start()
    endpoint = f"http://127.0.0.1:{moto.get_host_and_port()[1]}"
    creds = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "eu-west-2",
    }
    os.environ.update(creds)
    ssm = boto3.client("ssm", endpoint_url=endpoint)
    ssm.put_parameter(Name="/ee/host", Value="127.0.0.1", Type="String")
    ssm.put_parameter(Name="/ee/password", Value="x", Type="SecureString")
    s3 = boto3.client("s3", endpoint_url=endpoint)
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-2"})

    server = PostgresServer()
    rows_out = []
    try:
        dsn = create_everyelection(server)
        env = {
            **os.environ,
            **creds,
            "AWS_ENDPOINT_URL": endpoint,
            "DATABASE_HOST": "/ee/host",
            "DATABASE_PASSWORD": "/ee/password",
            "DATABASE_USER": "postgres",
            "DATABASE_PORT": str(server.port),
            "TABLE_LOCATION": f"s3://{BUCKET}/ballots-with-wkt/",
            "FILE_NAME": "current_elections.csv",
        }
        for size in args.sizes:
            t0 = time.perf_counter()
            pieces = fill(dsn, size)
            print(f"{size} MB: {pieces} pieces in {time.perf_counter() - t0:.0f} s", flush=True)
            for mode in args.modes:
                r = run_child(mode, env)
                rows_out.append((mode, r))
                print(f"  {mode}: {json.dumps(r)}", flush=True)
    finally:
        server.stop()
        moto.stop()

    print()
    print(f"{platform.node()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print()
    print("| mode | rows | CSV MB | seconds | RSS after connect MB | peak RSS MB |")
    print("|---|---:|---:|---:|---:|---:|")
    for mode, r in rows_out:
        print(
            f"| {mode} | {r['rows']:,} | {r['bytes'] / 1e6:,.0f} | {r['seconds']:.1f} | "
            f"{r['baseline_mb']:.0f} | {r['peak_mb']:.0f} |"
        )


if __name__ == "__main__":
    main()
