"""bng_to_wgs84 (bakery/bng_sql.py): British National Grid to WGS 84 as SQL arithmetic,
against DuckDB spatial's ST_Transform (PROJ) as the oracle, over a grid across Great
Britain, run the way the engines run it (rendered in a template, transpiled from
Athena's dialect)."""

from __future__ import annotations

import math

import pytest

from bakery.engine import duck
from bakery.engine.transpile import to_duckdb
from bakery.sql import TemplateProblem, render

# 10 km apart over the National Grid's extent on land, Scilly to Shetland, Pembrokeshire
# to Lowestoft (PROJ leaves its Helmert, and so stops being an oracle, east of about
# 2.2 E and north of about 61 N).
EASTINGS = range(0, 680_001, 10_000)
NORTHINGS = range(0, 1_240_001, 10_000)
# The measured maximum is 11.6 mm, in the sea 400 km west of the central meridian
# (docs/local.md); on the grid's central 400 km it is 3-4 mm.
MAX_METRES = 0.015


def _metres(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Great-circle distance (haversine, mean Earth radius): exact enough at mm scale."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    h = (
        math.sin((p2 - p1) / 2) ** 2
        + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    )
    return 2 * 6_371_008.8 * math.asin(math.sqrt(h))


@pytest.fixture(scope="module")
def con():
    con = duck.connect()
    yield con
    con.close()


def _template_sql(tmp_path) -> str:
    template = (
        "SELECT e, n, wgs84_longitude, wgs84_latitude "
        "FROM {{ bng_to_wgs84('grid', 'e', 'n') }} AS t"
    )
    return render(tmp_path, template, is_file=False, context={}, resolve=str).sql


def test_bng_to_wgs84_matches_st_transform_across_great_britain(con, tmp_path):
    points = [(float(e), float(n)) for e in EASTINGS for n in NORTHINGS]
    con.execute(
        "CREATE OR REPLACE TABLE grid AS SELECT unnest(?) AS e, unnest(?) AS n",
        [[p[0] for p in points], [p[1] for p in points]],
    )
    ours = to_duckdb(_template_sql(tmp_path))
    rows = con.execute(
        f"""
        WITH ours AS ({ours}),
        oracle AS (
            SELECT e, n,
                ST_Transform(ST_Point(e, n), 'EPSG:27700', 'EPSG:4326', always_xy := true) AS g
            FROM grid
        )
        SELECT ours.e, ours.n, wgs84_longitude, wgs84_latitude, ST_X(g), ST_Y(g)
        FROM ours JOIN oracle USING (e, n)
        """
    ).fetchall()
    assert len(rows) == len(points) > 6000
    errors = sorted((_metres(lo, la, olo, ola), e, n) for e, n, lo, la, olo, ola in rows)
    worst = errors[-1]
    assert worst[0] < MAX_METRES, f"{worst[0] * 1000:.1f} mm at E {worst[1]:.0f} N {worst[2]:.0f}"
    # Not a constant: the points spread over 10 degrees of longitude and 11 of latitude.
    lons = [r[2] for r in rows]
    lats = [r[3] for r in rows]
    assert max(lons) - min(lons) > 10 and max(lats) - min(lats) > 11


def test_ordnance_surveys_worked_example(con, tmp_path):
    """OS's guide: E 651409.903, N 313177.270 is OSGB36 52°39'27.2531"N 1°43'4.5177"E,
    which the Helmert moves about 130 m west and 45 m north in WGS 84."""
    con.execute("CREATE OR REPLACE TABLE grid AS SELECT 651409.903 AS e, 313177.270 AS n")
    lon, lat = con.execute(
        f"SELECT wgs84_longitude, wgs84_latitude FROM ({to_duckdb(_template_sql(tmp_path))})"
    ).fetchone()
    assert lat == pytest.approx(52.657979, abs=1e-6)
    assert lon == pytest.approx(1.716052, abs=1e-6)


def test_null_grid_references_give_null_coordinates(con, tmp_path):
    con.execute("CREATE OR REPLACE TABLE grid AS SELECT CAST(NULL AS DOUBLE) AS e, 1.0 AS n")
    row = con.execute(
        f"SELECT wgs84_longitude, wgs84_latitude FROM ({to_duckdb(_template_sql(tmp_path))})"
    ).fetchone()
    assert row == (None, None)


@pytest.mark.parametrize(
    "args", ["'grid; DROP TABLE x', 'e', 'n'", "'grid', 'e + 1', 'n'", "'grid', 1, 'n'"]
)
def test_anything_but_names_is_refused(tmp_path, args):
    with pytest.raises(TemplateProblem, match=r"bng_to_wgs84: \w+ must be a table or column name"):
        render(
            tmp_path,
            f"SELECT * FROM {{{{ bng_to_wgs84({args}) }}}}",
            is_file=False,
            context={},
            resolve=str,
        )
