"""The EveryElection export against a real PostgreSQL + PostGIS started by the test.

The schema is a small copy of EveryElection's Django tables (elections_election,
organisations_organisation/-division/-divisionset, organisations_divisiongeography,
organisations_organisationgeography), enough for the export's query.
"""

from __future__ import annotations

import csv
import datetime
import glob
import io
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import psycopg
import pytest
import shapely.wkt

from bakery.lambdas.ee_export import HEADER, run_export

TODAY = datetime.date(2026, 5, 1)

SCHEMA = """
CREATE EXTENSION postgis;
CREATE TABLE organisations_organisation (
    id serial PRIMARY KEY,
    official_identifier varchar(255) NOT NULL,
    organisation_type varchar(255) NOT NULL,
    official_name text NOT NULL,
    slug varchar(100) NOT NULL,
    start_date date NOT NULL,
    end_date date
);
CREATE TABLE organisations_organisationdivisionset (
    id serial PRIMARY KEY,
    organisation_id integer NOT NULL REFERENCES organisations_organisation,
    start_date date NOT NULL,
    end_date date
);
CREATE TABLE organisations_organisationdivision (
    id serial PRIMARY KEY,
    divisionset_id integer NOT NULL REFERENCES organisations_organisationdivisionset,
    name text NOT NULL,
    official_identifier varchar(255) NOT NULL,
    slug varchar(100) NOT NULL,
    division_type varchar(255) NOT NULL
);
CREATE TABLE organisations_divisiongeography (
    id serial PRIMARY KEY,
    division_id integer UNIQUE NOT NULL REFERENCES organisations_organisationdivision,
    geography geometry(MultiPolygon, 4326) NOT NULL,
    source varchar(255) NOT NULL DEFAULT ''
);
CREATE TABLE organisations_organisationgeography (
    id serial PRIMARY KEY,
    organisation_id integer NOT NULL REFERENCES organisations_organisation,
    geography geometry(MultiPolygon, 4326),
    start_date date,
    end_date date,
    gss varchar(20) NOT NULL DEFAULT '',
    source varchar(255) NOT NULL DEFAULT ''
);
CREATE TABLE elections_election (
    id serial PRIMARY KEY,
    election_id varchar(250) UNIQUE,
    election_title text NOT NULL DEFAULT '',
    poll_open_date date NOT NULL,
    group_type varchar(100),
    group_id integer REFERENCES elections_election,
    current_status varchar(32) NOT NULL,
    organisation_id integer REFERENCES organisations_organisation,
    division_id integer REFERENCES organisations_organisationdivision
);
"""

SQUARE = "SRID=4326;MULTIPOLYGON(((-0.2 51.4,-0.1 51.4,-0.1 51.5,-0.2 51.5,-0.2 51.4)))"
NEXT_SQUARE = "SRID=4326;MULTIPOLYGON(((-0.1 51.4,0 51.4,0 51.5,-0.1 51.5,-0.1 51.4)))"
OLD_COUNCIL = "SRID=4326;MULTIPOLYGON(((1 50,2 50,2 51,1 51,1 50)))"

DATA = f"""
INSERT INTO organisations_organisation VALUES
    (1, 'LBH', 'local-authority', 'Hackney', 'hackney', '1965-04-01', NULL),
    (2, 'NOGEO', 'local-authority', 'No Geography', 'nogeo', '2000-01-01', NULL);
-- Council A's boundary: a circle of 400 vertices, which ST_Subdivide cuts into pieces;
-- an older boundary (ended in 2020) must not be used.
INSERT INTO organisations_organisationgeography
    (organisation_id, geography, start_date, end_date) VALUES
    (1, ST_Multi(ST_Buffer(ST_SetSRID(ST_MakePoint(-0.05, 51.55), 4326), 0.1, 100)),
        '2020-01-01', NULL),
    (1, '{OLD_COUNCIL}', '1965-04-01', '2019-12-31');
INSERT INTO organisations_organisationdivisionset VALUES (1, 1, '2022-05-05', NULL);
INSERT INTO organisations_organisationdivision VALUES
    (10, 1, 'Ward One', 'E05000001', 'ward-one', 'LBW'),
    (11, 1, 'Ward Two', 'E05000002', 'ward-two', 'LBW'),
    (12, 1, 'Ward Three', 'E05000003', 'ward-three', 'LBW');
INSERT INTO organisations_divisiongeography (division_id, geography) VALUES
    (10, '{SQUARE}'), (12, '{NEXT_SQUARE}');
INSERT INTO elections_election
    (id, election_id, poll_open_date, group_type, group_id, current_status,
     organisation_id, division_id) VALUES
    (1, 'local.2026-05-07', '2026-05-07', 'election', NULL, 'Approved', NULL, NULL),
    (2, 'local.hackney.2026-05-07', '2026-05-07', 'organisation', 1, 'Approved', 1, NULL),
    (3, 'local.hackney.ward-one.2026-05-07', '2026-05-07', NULL, 2, 'Approved', 1, 10),
    (4, 'local.hackney.ward-two.2026-05-07', '2026-05-07', NULL, 2, 'Approved', 1, 11),
    (5, 'mayor.hackney.2026-05-07', '2026-05-07', NULL, NULL, 'Approved', 1, NULL),
    (6, 'local.hackney.ward-three.2026-04-01', '2026-04-01', NULL, NULL, 'Approved', 1, 12),
    (7, 'local.hackney.ward-one.2026-03-31', '2026-03-31', NULL, NULL, 'Approved', 1, 10),
    (8, 'local.hackney.ward-three.2026-06-01', '2026-06-01', NULL, NULL, 'Suggested', 1, 12),
    (9, 'local.hackney.ward-one.2026-06-02', '2026-06-02', NULL, NULL, 'Rejected', 1, 10),
    (10, 'local.nogeo.2026-05-07', '2026-05-07', NULL, NULL, 'Approved', 2, NULL);
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres():
    """A throwaway PostgreSQL server on a unix socket in a temporary folder."""
    bindirs = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not bindirs:
        pytest.fail("PostgreSQL is not installed: apt-get install postgresql postgis")
    bindir = Path(bindirs[-1]).parent
    base = Path(tempfile.mkdtemp(prefix="bakery-pg-"))
    as_root = os.geteuid() == 0
    if as_root:  # initdb refuses root: run the server as the 'postgres' user
        shutil.chown(base, "postgres", "postgres")

    def run(*command: str) -> None:
        full = ["runuser", "-u", "postgres", "--", *command] if as_root else list(command)
        result = subprocess.run(full, capture_output=True, text=True, check=False)
        if result.returncode:
            log = (base / "log").read_text() if (base / "log").exists() else ""
            pytest.fail(f"{' '.join(command)} failed: {result.stderr}{result.stdout}{log}")

    port = _free_port()
    data = base / "data"
    run(str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "--no-sync")
    run(
        str(bindir / "pg_ctl"),
        "-D",
        str(data),
        "-l",
        str(base / "log"),
        "-o",
        f"-k {base} -p {port} -c listen_addresses='' -c fsync=off",
        "-w",
        "start",
    )
    try:
        yield f"host={base} port={port} user=postgres dbname=postgres"
    finally:
        run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def everyelection(postgres: str) -> str:
    with psycopg.connect(postgres, autocommit=True) as conn:
        conn.execute("CREATE DATABASE every_election")
    dsn = postgres.replace("dbname=postgres", "dbname=every_election")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(SCHEMA)
        conn.execute(DATA)
    return dsn


def export(dsn: str) -> tuple[int, list[dict[str, str]], str]:
    out = io.StringIO()
    n = run_export(dsn, out, today=TODAY)
    text = out.getvalue()
    return n, list(csv.DictReader(io.StringIO(text))), text


def test_header_and_row_count(everyelection: str):
    n, rows, text = export(everyelection)
    assert text.splitlines()[0] == ",".join(HEADER)
    assert n == len(rows)


def test_rows(everyelection: str):
    _, rows, _ = export(everyelection)
    ids = [r["election_id"] for r in rows]
    # Approved ballots (not groups) polling on or after TODAY - 30 days, sorted by id.
    assert sorted(set(ids)) == [
        "local.hackney.ward-one.2026-05-07",
        "local.hackney.ward-three.2026-04-01",  # exactly 30 days ago: still in
        "local.hackney.ward-two.2026-05-07",
        "local.nogeo.2026-05-07",
        "mayor.hackney.2026-05-07",
    ]
    assert ids == sorted(ids)
    by_id: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        by_id.setdefault(row["election_id"], []).append(row)

    # A ballot with a division: the division's geography, one piece, as WKT lon/lat.
    (ward_one,) = by_id["local.hackney.ward-one.2026-05-07"]
    assert ward_one["division_id"] == "10" and ward_one["source_table"] == "Division"
    assert ward_one["geometry"].startswith(("POLYGON((", "MULTIPOLYGON((("))
    assert shapely.wkt.loads(ward_one["geometry"]).equals(shapely.wkt.loads(SQUARE.split(";")[1]))
    (ward_three,) = by_id["local.hackney.ward-three.2026-04-01"]
    assert ward_three["source_table"] == "Division" and ward_three["division_id"] == "12"

    # A division with no geography: one None row with an empty geometry (no fallback).
    (ward_two,) = by_id["local.hackney.ward-two.2026-05-07"]
    assert ward_two == {
        "election_id": "local.hackney.ward-two.2026-05-07",
        "division_id": "11",
        "geometry": "",
        "source_table": "None",
    }

    # No division: the organisation's current geography, subdivided into several rows.
    mayor = by_id["mayor.hackney.2026-05-07"]
    assert len(mayor) > 1
    assert {r["source_table"] for r in mayor} == {"Organisation"}
    assert {r["division_id"] for r in mayor} == {""}
    pieces = [shapely.wkt.loads(r["geometry"]) for r in mayor]
    assert all(len(p.exterior.coords if p.geom_type == "Polygon" else []) <= 256 for p in pieces)
    whole = shapely.union_all(pieces)
    assert whole.area == pytest.approx(3.14159 * 0.1**2, rel=0.01)
    assert whole.centroid.x == pytest.approx(-0.05, abs=1e-6)  # lon first
    assert whole.centroid.y == pytest.approx(51.55, abs=1e-6)
    assert not whole.intersects(shapely.wkt.loads(OLD_COUNCIL.split(";")[1]))

    # An organisation with no geography at all.
    (nogeo,) = by_id["local.nogeo.2026-05-07"]
    assert (nogeo["geometry"], nogeo["source_table"]) == ("", "None")


def test_window_moves_with_today(everyelection: str):
    out = io.StringIO()
    run_export(everyelection, out, today=datetime.date(2026, 5, 2))
    ids = {r["election_id"] for r in csv.DictReader(io.StringIO(out.getvalue()))}
    assert "local.hackney.ward-three.2026-04-01" not in ids  # 31 days ago
    assert "local.hackney.ward-one.2026-05-07" in ids
