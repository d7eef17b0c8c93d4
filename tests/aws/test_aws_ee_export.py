"""The ballots export against a real PostgreSQL + PostGIS with EveryElection's tables.

The tables come from tests/fixtures/everyelection_schema.sql (EE's real columns:
`current`, `division_geography_id`, `organisation_geography_id`, pre-subdivided
pieces). The rows below cover each rule of the selection once.
"""

from __future__ import annotations

import csv
import datetime
import io

import psycopg
import shapely.wkt
from ee_postgres import PostgresServer, create_everyelection

from bakery.lambdas import ee_export
from bakery.lambdas.ee_export import HEADER, run_export

TODAY = datetime.date(2026, 5, 1)  # the window starts on 2026-04-01


def square(x: float, y: float, size: float = 0.01) -> str:
    x2, y2 = round(x + size, 6), round(y + size, 6)
    return f"POLYGON(({x} {y},{x2} {y},{x2} {y2},{x} {y2},{x} {y}))"


# Pieces EE has already cut: ward one in two pieces, the council in three.
WARD_ONE = [square(-0.10, 51.50), square(-0.09, 51.50)]
WARD_THREE = [square(-0.05, 51.50)]
COUNCIL = [square(-0.10, 51.52, 0.02), square(-0.08, 51.52, 0.02), square(-0.06, 51.52, 0.02)]


def multi(pieces: list[str]) -> str:
    return (
        f"ST_Multi(ST_Union(ARRAY[{', '.join(f'ST_GeomFromText({p!r}, 4326)' for p in pieces)}]))"
    )


DATA = f"""
INSERT INTO organisations_organisation (id, official_identifier, organisation_type,
    official_name, common_name, slug, start_date, end_date) VALUES
    (1, 'HCK', 'local-authority', 'London Borough of Hackney', 'Hackney', 'hackney',
     '1965-04-01', NULL);
INSERT INTO organisations_organisationgeography (id, organisation_id, start_date, end_date,
    gss, geography) VALUES (1, 1, '2014-05-22', NULL, 'E09000012', {multi(COUNCIL)});
INSERT INTO organisations_organisationgeographysubdivided
    (id, organisation_geography_id, geography) VALUES
    (501, 1, ST_GeomFromText('{COUNCIL[0]}', 4326)),
    (502, 1, ST_GeomFromText('{COUNCIL[1]}', 4326)),
    (503, 1, ST_GeomFromText('{COUNCIL[2]}', 4326));
INSERT INTO organisations_organisationdivisionset (id, organisation_id, start_date, end_date,
    pmtiles_md5_hash) VALUES (1, 1, '2014-05-22', NULL, 'abc');
INSERT INTO organisations_organisationdivision (id, divisionset_id, name, official_identifier,
    slug, division_type) VALUES
    (10, 1, 'Ward One', 'E05000001', 'ward-one', 'LBW'),
    (11, 1, 'Ward Two', 'E05000002', 'ward-two', 'LBW'),
    (12, 1, 'Ward Three', 'E05000003', 'ward-three', 'LBW');
INSERT INTO organisations_divisiongeography (id, division_id, geography) VALUES
    (100, 10, {multi(WARD_ONE)}),
    (101, 11, NULL),
    (102, 12, {multi(WARD_THREE)});
INSERT INTO organisations_divisiongeographysubdivided (id, division_geography_id, geography) VALUES
    (901, 100, ST_GeomFromText('{WARD_ONE[0]}', 4326)),
    (902, 100, ST_GeomFromText('{WARD_ONE[1]}', 4326)),
    (903, 102, ST_GeomFromText('{WARD_THREE[0]}', 4326));
INSERT INTO elections_election (id, election_id, poll_open_date, "current", current_status,
    group_type, organisation_id, division_id, division_geography_id,
    organisation_geography_id, cancelled) VALUES
    -- groups: never exported, whatever their status and dates
    (1, 'local.2026-05-07', '2026-05-07', NULL, 'Approved', 'election', NULL, NULL, NULL,
     NULL, false),
    (2, 'local.hackney.2026-05-07', '2026-05-07', true, 'Approved', 'organisation', 1, NULL,
     NULL, 1, false),
    (3, 'local.hackney.2026-05-07.subtype', '2026-05-07', NULL, 'Approved', 'subtype', 1,
     NULL, NULL, 1, false),
    -- a division ballot: its division's two pieces
    (4, 'local.hackney.ward-one.2026-05-07', '2026-05-07', NULL, 'Approved', NULL, 1, 10,
     100, NULL, false),
    -- an organisation ballot: the council's three pieces
    (5, 'mayor.hackney.2026-05-07', '2026-05-07', NULL, 'Approved', NULL, 1, NULL, NULL, 1,
     false),
    -- ballots without geography: no ids at all, or a division geography with no pieces
    (6, 'local.hackney.ward-two.2026-05-07', '2026-05-07', NULL, 'Approved', NULL, 1, 11,
     101, NULL, false),
    (7, 'parl.nowhere.2026-05-07', '2026-05-07', NULL, 'Approved', NULL, NULL, NULL, NULL,
     NULL, false),
    -- `current` true forces an old ballot in; false forces a future one out
    (8, 'local.hackney.ward-three.2019-05-02', '2019-05-02', true, 'Approved', NULL, 1, 12,
     102, NULL, false),
    (9, 'local.hackney.ward-three.2026-06-04', '2026-06-04', false, 'Approved', NULL, 1, 12,
     102, NULL, false),
    -- `current` NULL: the date decides (TODAY - 30 days is in, one day earlier is out)
    (10, 'local.hackney.ward-three.2026-04-01', '2026-04-01', NULL, 'Approved', NULL, 1, 12,
     102, NULL, false),
    (11, 'local.hackney.ward-three.2026-03-31', '2026-03-31', NULL, 'Approved', NULL, 1, 12,
     102, NULL, false),
    -- no polling day: out unless forced in
    (12, 'local.hackney.ward-one.undated', NULL, NULL, 'Approved', NULL, 1, 10, 100, NULL,
     false),
    (13, 'local.hackney.ward-three.undated', NULL, true, 'Approved', NULL, 1, 12, 102, NULL,
     false),
    -- not approved: out, even when `current` is true
    (14, 'local.hackney.ward-one.2026-06-11', '2026-06-11', NULL, 'Suggested', NULL, 1, 10,
     100, NULL, false),
    (15, 'local.hackney.ward-three.2026-06-18', '2026-06-18', true, 'Rejected', NULL, 1, 12,
     102, NULL, false),
    (16, 'local.hackney.ward-one.2026-06-25', '2026-06-25', NULL, NULL, NULL, 1, 10, 100,
     NULL, false),
    -- both geographies set (EE's referendum command does this): EE's rows, as its query
    (17, 'ref.hackney.ward-three.2026-05-07', '2026-05-07', NULL, 'Approved', NULL, 1, 12,
     102, 1, false);
"""


def export(dsn: str, today: datetime.date = TODAY) -> tuple[int, str]:
    out = io.StringIO(newline="")
    n = run_export(dsn, out, today=today)
    return n, out.getvalue()


def rows_of(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


def test_header_is_the_one_ee_writes(everyelection: str):
    n, text = export(everyelection)
    assert text.startswith("election_id,geography_id,geography_text,source_table\r\n")
    assert HEADER == ["election_id", "geography_id", "geography_text", "source_table"]
    assert n == len(rows_of(text)) == text.count("\r\n") - 1


def test_selection(everyelection: str):
    _, text = export(everyelection)
    got = sorted((r["election_id"], r["geography_id"], r["source_table"]) for r in rows_of(text))
    assert got == sorted(
        [
            ("local.hackney.ward-one.2026-05-07", "901", "Division"),
            ("local.hackney.ward-one.2026-05-07", "902", "Division"),
            ("mayor.hackney.2026-05-07", "501", "Organisation"),
            ("mayor.hackney.2026-05-07", "502", "Organisation"),
            ("mayor.hackney.2026-05-07", "503", "Organisation"),
            ("local.hackney.ward-two.2026-05-07", "", "None"),
            ("parl.nowhere.2026-05-07", "", "None"),
            ("local.hackney.ward-three.2019-05-02", "903", "Division"),
            ("local.hackney.ward-three.2026-04-01", "903", "Division"),
            ("local.hackney.ward-three.undated", "903", "Division"),
            # one row per (division piece, organisation piece): the division's piece id
            ("ref.hackney.ward-three.2026-05-07", "903", "Organisation"),
            ("ref.hackney.ward-three.2026-05-07", "903", "Organisation"),
            ("ref.hackney.ward-three.2026-05-07", "903", "Organisation"),
        ]
    )


def test_geometry_is_each_piece_as_wkt(everyelection: str):
    _, text = export(everyelection)
    pieces = {**dict(zip(["901", "902"], WARD_ONE, strict=True)), "903": WARD_THREE[0]}
    pieces |= dict(zip(["501", "502", "503"], COUNCIL, strict=True))
    for row in rows_of(text):
        if row["source_table"] == "None":
            assert row["geography_text"] == ""
            continue
        wkt = row["geography_text"]
        assert wkt.startswith("POLYGON((")  # lon/lat, no SRID prefix
        assert shapely.wkt.loads(wkt).equals(shapely.wkt.loads(pieces[row["geography_id"]]))
        if row["election_id"].startswith("ref."):
            assert row["geography_id"] == "903"  # the division piece, as EE's query gives


def test_window_moves_with_today(everyelection: str):
    _, text = export(everyelection, today=datetime.date(2026, 5, 2))
    ids = {r["election_id"] for r in rows_of(text)}
    assert "local.hackney.ward-three.2026-04-01" not in ids  # now 31 days ago
    assert "local.hackney.ward-three.2019-05-02" in ids  # forced in by `current`
    assert "local.hackney.ward-one.2026-05-07" in ids


class RecordingCursor:
    def __init__(self, cursor, statements: list[str]) -> None:
        self.cursor, self.statements = cursor, statements

    def execute(self, query, params=None):
        self.statements.append(query.split()[0])
        return self.cursor.execute(query, params)

    def fetchall(self):
        return self.cursor.fetchall()

    def close(self) -> None:
        self.cursor.close()


class RecordingConnection:
    """A DB-API connection that remembers the first word of every statement it runs."""

    def __init__(self, conn) -> None:
        self.conn = conn
        self.statements: list[str] = []

    def cursor(self):
        return RecordingCursor(self.conn.cursor(), self.statements)

    def rollback(self) -> None:
        self.conn.rollback()


def test_streams_in_batches_from_a_server_side_cursor(everyelection: str):
    """Rows arrive FETCH by FETCH from a cursor declared on the server."""
    from bakery.lambdas import ee_connection

    with psycopg.connect(everyelection) as conn:
        recording = RecordingConnection(conn)
        since = ee_export.since(TODAY)
        rows = list(ee_connection.stream_rows(recording, ee_export.QUERY, (since,), batch=2))
        assert len(rows) == 13
        assert recording.statements == ["SET", "DECLARE"] + ["FETCH"] * 8  # 7 full, 1 empty
        # nothing left open: the read-only transaction was rolled back
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE


def test_run_local_writes_the_file_the_layer_reads(everyelection: str, tmp_path):
    rows = ee_export.run_local(everyelection, tmp_path, {"FILE_NAME": "x.csv"})
    text = (tmp_path / "x.csv").read_bytes().decode()
    assert text.splitlines()[0] == ",".join(HEADER)
    assert rows == text.count("\r\n") - 1 > 0


def test_bake_with_an_ee_dsn_joins_the_exported_ballots(server: PostgresServer, plan, tmp_path):
    """`bakery bake --ee-dsn`: the local engine runs this export and bakes what it wrote."""
    from bakery.engine import bake
    from bakery.store import LocalStore
    from tests.local.conftest import read_outcodes, write_inputs

    dsn = create_everyelection(server, "ee_bake")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            f"""
            INSERT INTO organisations_organisation (id, slug) VALUES (1, 'hackney');
            INSERT INTO organisations_organisationdivisionset (id, organisation_id) VALUES (1, 1);
            INSERT INTO organisations_organisationdivision (id, divisionset_id, slug)
                VALUES (10, 1, 'ward-one');
            INSERT INTO organisations_divisiongeography (id, division_id) VALUES (100, 10);
            INSERT INTO organisations_divisiongeographysubdivided
                (id, division_geography_id, geography) VALUES
                (901, 100, ST_GeomFromText('{WARD_ONE[0]}', 4326)),
                (902, 100, ST_GeomFromText('{WARD_ONE[1]}', 4326));
            INSERT INTO elections_election (election_id, poll_open_date, current_status,
                division_geography_id) VALUES
                ('local.hackney.ward-one.soon', CURRENT_DATE + 7, 'Approved', 100),
                ('local.hackney.ward-one.old', CURRENT_DATE - 400, 'Approved', 100);
            """
        )
    store = LocalStore(tmp_path / "store")
    addresses = [
        ("1", "1 Ward Road", "E8 1AA", "SRID=4326;POINT(-0.095 51.505)", "R"),
        ("2", "2 Ward Road", "E8 1AB", "SRID=4326;POINT(-0.085 51.505)", "R"),
        ("3", "3 Far Road", "E8 2BB", "SRID=4326;POINT(1.5 52.5)", "R"),
    ]
    write_inputs(plan, store, addresses, [("stale.ballot", "", "", "None")])
    result = bake(plan, ["current_elections"], store, with_upstream=True, ee_dsn=dsn)
    step = next(s for s in result.steps if s.id == "export_ballots")
    assert (step.rows, step.note) == (2, "exported from EveryElection")
    ballots = store.read_bytes(
        plan.table("current_elections.current_ballots").location + "current_elections.csv"
    )
    assert ballots.startswith(b"election_id,geography_id,geography_text,source_table\r\n")
    e8 = read_outcodes(store, plan)["E8"].to_pylist()
    got = {r["uprn"]: list(r["ballot_ids"]) for r in e8}
    assert got == {
        "1": ["local.hackney.ward-one.soon"],  # first piece
        "2": ["local.hackney.ward-one.soon"],  # second piece
        "3": [],
    }


def test_the_function_is_sized_from_the_measurement():
    """benchmarks/ee_export_memory.py: 121 MB peak for 496 MB of CSV, which /tmp holds.

    The repository's real layer (the synth of `ephemeral_storage_mb` is checked on
    tests/fixtures/ee_reviews_project in test_aws_ee_boundary_reviews.py).
    """
    from aws_helpers import REPO

    from bakery.plan import build_plan
    from bakery.workspace import load_workspace

    plan = build_plan(load_workspace(REPO), "production")
    (step,) = [
        s
        for layer in plan.layers
        for s in layer.walk()
        if s.kind == "lambda" and s.spec.handler == "bakery.lambdas.ee_export.handler"
    ]
    assert (step.spec.memory_mb, step.spec.ephemeral_storage_mb) == (1024, 2048)
    assert step.spec.timeout_seconds == 900
