"""The boundary reviews export against a real PostgreSQL + PostGIS with EE's tables.

Hackney's review 963 moves it from its 2014 wards (the set with the latest
end_date) to the review's 2026 set; an older 2002 set and the 2026 set's own NULL
end_date must not be taken for the old one. Kent's review 964 is not processed
yet (no new set). Review 965 is only selected by its status.
"""

from __future__ import annotations

from pathlib import Path

import boto3
import duckdb
import pyarrow.parquet as pq
import pytest
import shapely.wkt
from moto import mock_aws

from bakery.lambdas import ee_boundary_reviews as reviews
from bakery.lambdas.ee_boundary_reviews import COLUMNS, run_local


def square(x: float, y: float, size: float = 0.01) -> str:
    x2, y2 = round(x + size, 6), round(y + size, 6)
    return f"POLYGON(({x} {y},{x2} {y},{x2} {y2},{x} {y2},{x} {y}))"


OLD_A = [square(0, 0), square(0.01, 0)]  # two pieces
OLD_B = [square(0, 0.01)]
OLD_CED = [square(0, 0, 0.02)]
NEW_A = [square(0, 0, 0.02)]
NEW_C = [square(0.02, 0)]
KENT_1 = [square(1, 1)]
PIECES = {1: OLD_A[0], 2: OLD_A[1], 3: OLD_B[0], 4: OLD_CED[0], 5: NEW_A[0], 6: NEW_C[0]}
PIECES |= {7: KENT_1[0], 8: square(5, 5), 9: square(6, 6)}


def geom(wkt: str) -> str:
    return f"ST_GeomFromText('{wkt}', 4326)"


DATA = f"""
INSERT INTO organisations_organisation (id, official_identifier, organisation_type,
    official_name, common_name, slug, start_date, end_date) VALUES
    (1, 'HCK', 'local-authority', 'London Borough of Hackney', 'Hackney', 'hackney',
     '1965-04-01', NULL),
    (2, 'KEN', 'local-authority', 'Kent County Council', 'Kent', 'kent', '1889-04-01', NULL),
    (3, 'OXF', 'local-authority', 'Oxford City Council', 'Oxford', 'oxford', '1974-04-01',
     NULL);
INSERT INTO organisations_organisationgeography (id, organisation_id, start_date, end_date,
    gss, geography) VALUES
    (1, 1, '1965-04-01', '2014-05-21', 'E09000099', NULL),
    (2, 1, '2014-05-22', NULL, 'E09000012', NULL);
INSERT INTO organisations_organisationdivisionset (id, organisation_id, start_date, end_date,
    pmtiles_md5_hash) VALUES
    (1, 1, '2002-05-02', '2014-05-21', 'h1'),
    (2, 1, '2014-05-22', '2026-05-06', 'h2'),
    (3, 1, '2026-05-07', NULL, 'h3'),
    (4, 2, '2017-05-04', NULL, NULL),
    (5, 3, '2002-05-02', NULL, 'h5'),
    (6, 3, '2021-05-06', NULL, 'h6');
INSERT INTO organisations_organisationdivision (id, divisionset_id, name, official_identifier,
    slug, division_type) VALUES
    (10, 1, 'Ancient Ward', 'E05009999', 'ancient', 'LBW'),
    (20, 2, 'Ward A', 'E05000001', 'ward-a', 'LBW'),
    (21, 2, 'Ward B', 'E05000002', 'ward-b', 'LBW'),
    (22, 2, 'Hackney Central', 'E58000001', 'hackney-central', 'CED'),
    (30, 3, 'Ward A', 'E05020001', 'ward-a', 'LBW'),
    (31, 3, 'Ward C', 'E05020003', 'ward-c', 'LBW'),
    (32, 3, 'Ward Without Geography', 'E05020004', 'ward-nogeo', 'LBW'),
    (40, 4, 'Kent One', 'E58000100', 'kent-one', 'CED'),
    (50, 5, 'Oxford Old', 'E05000500', 'oxford-old', 'DIW'),
    (60, 6, 'Oxford New', 'E05000600', 'oxford-new', 'DIW');
INSERT INTO organisations_divisiongeography (id, division_id, geography) VALUES
    (100, 10, NULL), (200, 20, NULL), (201, 21, NULL), (202, 22, NULL), (300, 30, NULL),
    (301, 31, NULL), (400, 40, NULL), (500, 50, NULL), (600, 60, NULL);
INSERT INTO organisations_divisiongeographysubdivided (id, division_geography_id, geography)
VALUES
    (99, 100, {geom(square(9, 9))}),
    (1, 200, {geom(OLD_A[0])}), (2, 200, {geom(OLD_A[1])}), (3, 201, {geom(OLD_B[0])}),
    (4, 202, {geom(OLD_CED[0])}), (5, 300, {geom(NEW_A[0])}), (6, 301, {geom(NEW_C[0])}),
    (7, 400, {geom(KENT_1[0])}), (8, 500, {geom(PIECES[8])}), (9, 600, {geom(PIECES[9])});
INSERT INTO organisations_organisationboundaryreview (id, organisation_id, divisionset_id, slug,
    status, latest_event, consultation_url, legislation_title, effective_date, created,
    modified) VALUES
    (963, 1, 3, 'hackney-2026', 'COMPLETED', 'Order made', 'https://example.org/hackney',
     'The London Borough of Hackney (Electoral Changes) Order 2025', '2026-05-07',
     '2024-01-02 03:04:05.5+00', '2025-06-07 08:09:10+01'),
    (964, 2, NULL, 'kent-2027', 'CURRENT', 'Consultation on warding', NULL, NULL, NULL,
     '2025-02-03 00:00:00+00', '2025-02-03 00:00:00+00'),
    (965, 3, 6, 'oxford-2021', 'COMPLETED', 'Order made', NULL, NULL, '2021-05-06',
     '2020-01-01 00:00:00+00', '2020-01-01 00:00:00+00');
"""


IDS = {"BOUNDARY_REVIEW_IDS": "963, 964"}


def read_table(folder: Path) -> list[dict]:
    """Every row with its partition keys, read the way the layer reads the table."""
    con = duckdb.connect()
    rel = con.sql(
        f"SELECT * FROM read_parquet('{folder}/**/*.parquet', hive_partitioning=true, "
        "hive_types={'boundary_review_id': INTEGER})"
    )
    return [dict(zip(rel.columns, row, strict=True)) for row in rel.fetchall()]


def test_partitions_are_reviews_generations_and_division_types(everyelection, tmp_path):
    run_local(everyelection, tmp_path, IDS)
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.parquet"))
    assert files == [
        "boundary_review_id=963/divisionset_generation=new/division_type=LBW/part-0.parquet",
        "boundary_review_id=963/divisionset_generation=old/division_type=CED/part-0.parquet",
        "boundary_review_id=963/divisionset_generation=old/division_type=LBW/part-0.parquet",
        "boundary_review_id=964/divisionset_generation=old/division_type=CED/part-0.parquet",
    ]
    for f in files:  # the partition keys are in the path only, the columns in this order
        assert pq.read_schema(tmp_path / f).names == COLUMNS


def test_old_is_the_latest_ended_set_and_new_the_reviews(everyelection, tmp_path):
    run_local(everyelection, tmp_path, IDS)
    rows = read_table(tmp_path)
    got = sorted(
        (
            r["boundary_review_id"],
            r["divisionset_generation"],
            r["division_type"],
            r["divisionset_id"],
            r["division_slug"],
        )
        for r in rows
    )
    assert got == [
        (963, "new", "LBW", "3", "ward-a"),  # one piece
        (963, "new", "LBW", "3", "ward-c"),  # ward-nogeo has no geography: no rows
        (963, "old", "CED", "2", "hackney-central"),
        (963, "old", "LBW", "2", "ward-a"),  # two pieces
        (963, "old", "LBW", "2", "ward-a"),
        (963, "old", "LBW", "2", "ward-b"),
        (964, "old", "CED", "4", "kent-one"),  # only set, end_date NULL; not processed: no new
    ]


def test_every_piece_as_wkt(everyelection, tmp_path):
    run_local(everyelection, tmp_path, IDS)
    ward_a_old = [
        r["division_boundary_wkt"]
        for r in read_table(tmp_path)
        if r["division_slug"] == "ward-a" and r["divisionset_generation"] == "old"
    ]
    assert len(ward_a_old) == 2 and all(w.startswith("POLYGON((") for w in ward_a_old)
    assert [shapely.wkt.loads(w) for w in ward_a_old] == [shapely.wkt.loads(w) for w in OLD_A]


def test_review_and_division_columns(everyelection, tmp_path):
    run_local(everyelection, tmp_path, IDS)
    rows = read_table(tmp_path)
    (ward_c,) = [r for r in rows if r["division_slug"] == "ward-c"]
    assert {k: ward_c[k] for k in COLUMNS if k != "division_boundary_wkt"} == {
        "slug": "hackney-2026",
        "status": "COMPLETED",
        "latest_event": "Order made",
        "consultation_url": "https://example.org/hackney",
        "legislation_title": "The London Borough of Hackney (Electoral Changes) Order 2025",
        "effective_date": "2026-05-07",
        "review_created": "2024-01-02T03:04:05.500000Z",
        "review_modified": "2025-06-07T07:09:10.000000Z",
        "organisation_name": "Hackney",
        "organisation_official_name": "London Borough of Hackney",
        "organisation_gss": "E09000012",  # the geography without end_date
        "divisionset_id": "3",
        "divisionset_pmtiles_url": (
            "https://s3.eu-west-2.amazonaws.com/ee.public.data/pmtiles-store/hackney_3_h3.pmtiles"
        ),
        "division_slug": "ward-c",
        "division_name": "Ward C",
        "division_official_identifier": "E05020003",
    }
    old = {r["divisionset_pmtiles_url"] for r in rows if r["divisionset_id"] == "2"}
    assert old == {
        "https://s3.eu-west-2.amazonaws.com/ee.public.data/pmtiles-store/hackney_2_h2.pmtiles"
    }
    (kent,) = [r for r in rows if r["boundary_review_id"] == 964]
    assert kent["divisionset_pmtiles_url"] is None  # the set has no pmtiles hash
    assert kent["organisation_gss"] is None and kent["effective_date"] is None


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        ({"BOUNDARY_REVIEW_IDS": "963"}, {963}),
        ({"BOUNDARY_REVIEW_IDS": "965,964"}, {964, 965}),
        ({"BOUNDARY_REVIEW_STATUSES": "COMPLETED"}, {963, 965}),
        ({"BOUNDARY_REVIEW_IDS": "964", "BOUNDARY_REVIEW_STATUSES": "COMPLETED"}, {963, 964, 965}),
        ({"BOUNDARY_REVIEW_IDS": "12345"}, set()),
    ],
)
def test_which_reviews_comes_from_configuration(everyelection, tmp_path, environment, expected):
    rows = run_local(everyelection, tmp_path, environment)
    got = {r["boundary_review_id"] for r in read_table(tmp_path)} if rows else set()
    assert got == expected
    assert bool(list(tmp_path.rglob("*.parquet"))) == bool(expected)


@pytest.mark.parametrize(
    ("environment", "message"),
    [
        ({}, "no boundary reviews selected: set BOUNDARY_REVIEW_IDS"),
        ({"BOUNDARY_REVIEW_IDS": " , "}, "no boundary reviews selected"),
        ({"BOUNDARY_REVIEW_IDS": "963,abc"}, "'abc' is not a review id"),
    ],
)
def test_a_selection_that_says_nothing_is_refused(environment, message):
    with pytest.raises(reviews.SelectionError, match=message):
        reviews.selection(environment)


def test_files_are_split_in_batches(everyelection, tmp_path, monkeypatch):
    monkeypatch.setattr(reviews, "ROWS_PER_BATCH", 1)
    run_local(everyelection, tmp_path, IDS)
    f = tmp_path / reviews.partition_path(963, "old", "LBW") / "part-0.parquet"
    assert pq.ParquetFile(f).metadata.num_row_groups == 3  # one row group per batch
    assert [r["division_slug"] for r in pq.read_table(f).to_pylist()] == [
        "ward-a",
        "ward-a",
        "ward-b",
    ]


@mock_aws
def test_handler_uploads_then_deletes_what_it_did_not_write(server, everyelection, monkeypatch):
    monkeypatch.setenv("DATABASE_HOST", "/ee/host")
    monkeypatch.setenv("DATABASE_PASSWORD", "/ee/password")
    monkeypatch.setenv("DATABASE_USER", "postgres")
    monkeypatch.setenv("DATABASE_PORT", str(server.port))
    location = "s3://dc-data-baker-results-bucket/current_boundary_reviews_with_wkt/"
    monkeypatch.setenv("TABLE_LOCATION", location)
    monkeypatch.setenv("BOUNDARY_REVIEW_IDS", "963")
    ssm = boto3.client("ssm")
    ssm.put_parameter(Name="/ee/host", Value="127.0.0.1", Type="String")
    ssm.put_parameter(Name="/ee/password", Value="x", Type="SecureString")
    s3 = boto3.client("s3")
    bucket, prefix = "dc-data-baker-results-bucket", "current_boundary_reviews_with_wkt/"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-2"})
    stale = (
        prefix + "boundary_review_id=1/divisionset_generation=old/division_type=X/part-0.parquet"
    )
    s3.put_object(Bucket=bucket, Key=stale, Body=b"old")
    s3.put_object(Bucket=bucket, Key="elsewhere/keep.txt", Body=b"keep")

    result = reviews.handler({})

    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"])
    assert keys == sorted(
        ["elsewhere/keep.txt"]
        + [
            prefix
            + f"boundary_review_id=963/divisionset_generation={g}/division_type={t}/part-0.parquet"
            for g, t in [("new", "LBW"), ("old", "CED"), ("old", "LBW")]
        ]
    )
    assert result == {"location": location, "rows": 6, "files": 3}


def test_the_handler_refuses_a_missing_selection_before_connecting(monkeypatch):
    monkeypatch.delenv("BOUNDARY_REVIEW_IDS", raising=False)
    monkeypatch.delenv("BOUNDARY_REVIEW_STATUSES", raising=False)
    monkeypatch.setenv("TABLE_LOCATION", "s3://b/p/")
    with pytest.raises(reviews.SelectionError):
        reviews.handler({})


# ---- the handler in a layer: tests/fixtures/ee_reviews_project

PROJECT = Path(__file__).resolve().parents[1] / "fixtures" / "ee_reviews_project"


def reviews_plan(env: str):
    from bakery.plan import build_plan
    from bakery.workspace import load_workspace

    return build_plan(load_workspace(PROJECT), env)


def export_step(plan):
    return next(s for s in plan.layers[0].walk() if s.id == "export_reviews")


def test_the_selection_is_a_project_variable_per_environment():
    assert export_step(reviews_plan("development")).environment == {"BOUNDARY_REVIEW_IDS": "963"}
    assert export_step(reviews_plan("production")).environment == {"BOUNDARY_REVIEW_IDS": "963,964"}


def test_an_undefined_variable_in_the_environment_is_a_validation_error(tmp_path):
    import shutil

    from bakery.errors import SpecError
    from bakery.plan import build_plan
    from bakery.workspace import load_workspace

    project = tmp_path / "project"
    shutil.copytree(PROJECT, project)
    layer = project / "layers" / "reviews.yaml"
    layer.write_text(layer.read_text().replace("vars.boundary_review_ids", "vars.review_idz"))
    with pytest.raises(SpecError) as caught:
        build_plan(load_workspace(project), "development")
    (line,) = [str(p) for p in caught.value.problems]
    assert line.startswith("layers/reviews.yaml:")
    assert "steps[2].environment.BOUNDARY_REVIEW_IDS: template:" in line
    assert "review_idz" in line


def test_bake_with_an_ee_dsn_reads_the_exported_partitions(everyelection, tmp_path):
    from bakery.engine import bake
    from bakery.store import LocalStore

    plan = reviews_plan("production")
    store = LocalStore(tmp_path / "store")
    result = bake(plan, ["reviews"], store, ee_dsn=everyelection)
    step = next(s for s in result.steps if s.id == "export_reviews")
    assert (step.rows, step.files, step.note) == (7, 4, "exported from EveryElection")
    folder = store.path(plan.table("reviews.pieces_per_partition").location)
    counts = duckdb.sql(f"SELECT * FROM read_parquet('{folder}/**/*.parquet') ORDER BY ALL")
    counts = counts.fetchall()
    assert counts == [
        (963, "new", "LBW", "3", 2),
        (963, "old", "CED", "2", 1),
        (963, "old", "LBW", "2", 3),
        (964, "old", "CED", "4", 1),
    ]


def test_synth_passes_the_rendered_selection_to_the_function(tmp_path):
    from bakery.constructs import build_app

    app, _, _ = build_app(
        reviews_plan("production"), outdir=str(tmp_path / "out"), build_dir=tmp_path / "build"
    )
    templates = [s.template for s in app.synth().stacks]
    functions = [
        r["Properties"]
        for t in templates
        for r in t.get("Resources", {}).values()
        if r["Type"] == "AWS::Lambda::Function"
        and r["Properties"].get("Handler") == "bakery.lambdas.ee_boundary_reviews.handler"
    ]
    (fn,) = functions
    env = fn["Environment"]["Variables"]
    assert env["BOUNDARY_REVIEW_IDS"] == "963,964"
    assert env["DATABASE_HOST"] == "/EveryElectionProd/DATABASE_HOST"
    assert "TABLE_LOCATION" not in env  # the staged location comes as input (publish plan)
    assert (fn["MemorySize"], fn["EphemeralStorage"]) == (512, {"Size": 1024})
    # the handler deletes what it no longer writes, under its table's staging prefix only
    # (the publish plan stages it; the layer's publish replaces the live table)
    role = fn["Role"]["Fn::GetAtt"][0]
    (stack,) = [t for t in templates if role in t.get("Resources", {})]
    statements = [
        st
        for r in stack["Resources"].values()
        if r["Type"] == "AWS::IAM::Policy" and {"Ref": role} in r["Properties"]["Roles"]
        for st in r["Properties"]["PolicyDocument"]["Statement"]
    ]
    deletes = [st["Resource"] for st in statements if "s3:DeleteObject" in st["Action"]]
    assert deletes == [
        "arn:aws:s3:::ee-reviews-results/bakery-staging/current_boundary_reviews_with_wkt/*"
    ]
