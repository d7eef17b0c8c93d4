"""Athena's map, JSON and aggregate functions on the local engine give Athena's results.

Trino's CAST(map AS JSON) writes the keys sorted (MapToJsonCast collects them in a Java
TreeMap: String order, by UTF-16 code unit) and json_format writes compact text; so must
DuckDB after transpilation, or the files would differ between the engines.
"""

from __future__ import annotations

import pytest

from bakery.engine.duck import connect
from bakery.engine.transpile import to_duckdb


@pytest.fixture(scope="module")
def con():
    return connect()


def one(con, athena_sql: str, params: list | None = None):
    return con.execute(to_duckdb(athena_sql), params or []).fetchall()


def test_literal_map_keys_are_sorted_as_trino_casts_them(con):
    sql = (
        "SELECT json_format(CAST(MAP(ARRAY['b', 'a', 'B', '_'], ARRAY['1', NULL, '3', '4']) "
        "AS JSON))"
    )
    assert one(con, sql) == [('{"B":"3","_":"4","a":null,"b":"1"}',)]


def test_keys_known_only_at_run_time_are_sorted_too(con):
    sql = (
        "SELECT json_format(CAST(MAP(ARRAY[k1, k2], ARRAY['x', 'y']) AS JSON)) "
        "FROM (VALUES ('zeta', 'alpha')) AS t(k1, k2)"
    )
    assert one(con, sql) == [('{"alpha":"y","zeta":"x"}',)]


def test_nested_maps_arrays_and_numbers_are_compact_json(con):
    sql = """
        SELECT json_format(CAST(MAP(
            ARRAY['id', 'details', 'changes'],
            ARRAY[
                CAST(963 AS JSON),
                CAST(MAP(ARRAY['z', 'a'], ARRAY['1', '2']) AS JSON),
                CAST(ARRAY[MAP(ARRAY['y', 'x'], ARRAY['q"/é', NULL])] AS JSON)
            ]) AS JSON))
    """
    assert one(con, sql) == [
        ('{"changes":[{"x":null,"y":"q\\"/é"}],"details":{"a":"2","z":"1"},"id":963}',)
    ]


def test_a_map_read_back_from_a_query_keeps_its_sorted_keys(con):
    sql = """
        WITH t AS (SELECT MAP(ARRAY['b', 'a'], ARRAY['1', '2']) AS m)
        SELECT json_format(CAST(m AS JSON)), m['b'], element_at(m, 'a') FROM t
    """
    assert one(con, sql) == [('{"a":"2","b":"1"}', "1", "2")]


def test_arbitrary_array_agg_order_by_and_coalesce_with_an_empty_array(con):
    sql = """
        WITH t(g, k, v) AS (VALUES (1, 2, 'b'), (1, 1, 'a'), (1, 3, 'c'), (2, 1, NULL))
        SELECT g, arbitrary(v) IS NOT NULL OR g = 2, array_agg(v ORDER BY k DESC),
               COALESCE(CASE WHEN g = 2 THEN NULL ELSE array_agg(v ORDER BY k) END, ARRAY[])
        FROM t GROUP BY g ORDER BY g
    """
    assert one(con, sql) == [
        (1, True, ["c", "b", "a"], ["a", "b", "c"]),
        (2, True, [None], []),
    ]


def test_st_within_excludes_the_boundary(con):
    square = "ST_GeometryFromText('POLYGON((0 0, 2 0, 2 2, 0 2, 0 0))')"
    sql = (
        f"SELECT ST_Within(ST_Point(1, 1), {square}), ST_Within(ST_Point(0, 1), {square}), "
        f"ST_Within(ST_Point(2, 2), {square}), ST_Within(ST_Point(3, 1), {square})"
    )
    assert one(con, sql) == [(True, False, False, False)]


def test_parameters_stay_placeholders(con):
    sql = (
        "SELECT json_format(CAST(MAP(ARRAY['k'], ARRAY[v]) AS JSON)) "
        "FROM (VALUES ('x')) AS t(v) WHERE v = ?"
    )
    assert "?" in to_duckdb(sql)
    assert one(con, sql, ["x"]) == [('{"k":"x"}',)]
