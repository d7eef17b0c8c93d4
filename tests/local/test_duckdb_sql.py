"""Athena SQL on DuckDB: transpilation, the Athena-only macros, prepared parameters,
bundled extensions, and the geo-join's plan (a SPATIAL_JOIN, not a nested loop)."""

from __future__ import annotations

import json

import pytest

from bakery.engine import duck
from bakery.engine.runner import Context
from bakery.engine.steps import geo_join_sql
from bakery.engine.transpile import to_duckdb


@pytest.fixture(scope="module")
def con():
    c = duck.connect()
    yield c
    c.close()


def run(con, athena_sql: str, params=None):
    return con.execute(to_duckdb(athena_sql), params or []).fetchall()


def test_extensions_load_from_the_wheels_without_network(con):
    rows = con.execute(
        "SELECT extension_name, loaded FROM duckdb_extensions() WHERE extension_name = 'spatial'"
    ).fetchall()
    assert rows == [("spatial", True)]
    assert "duckdb_ext" in duck.extension_directory()
    settings = dict(
        con.execute(
            "SELECT name, value FROM duckdb_settings() WHERE name IN "
            "('autoinstall_known_extensions', 'autoload_known_extensions')"
        ).fetchall()
    )
    assert settings == {
        "autoinstall_known_extensions": "false",
        "autoload_known_extensions": "false",
    }


def test_string_functions_survive(con):
    sql = (
        "SELECT split_part('SRID=4326;POINT(1 2)', ';', 2), "
        "substr('SW1A1AA', 1, length('SW1A1AA') - 3),"
        " substr('SW1A1AA', length('SW1A1AA') - 2), upper(replace(trim(' sw1a 1aa '), ' ', ''))"
    )
    assert run(con, sql) == [("POINT(1 2)", "SW1A", "1AA", "SW1A1AA")]


def test_arrays_and_lambdas_survive(con):
    sql = (
        "SELECT array_sort(array_distinct(filter(array_agg(v), x -> x IS NOT NULL))) "
        "FROM (VALUES ('b'), (NULL), ('a'), ('b')) AS t(v)"
    )
    assert run(con, sql) == [(["a", "b"],)]
    empty = (
        "SELECT array_sort(array_distinct(filter(array_agg(v), x -> x IS NOT NULL))) "
        "FROM (VALUES (CAST(NULL AS VARCHAR))) AS t(v)"
    )
    assert run(con, empty) == [([],)]


def test_geometry_macros(con):
    sql = (
        "SELECT ST_X(ST_GeometryFromText('POINT(-0.1276 51.5072)')), "
        "ST_Y(ST_GeometryFromText('POINT(-0.1276 51.5072)')), "
        "ST_Contains(ST_Polygon('POLYGON((0 0, 2 0, 2 2, 0 2, 0 0))'), ST_Point(1, 1)), "
        "ST_X(ST_GeometryFromText(NULL))"
    )
    assert run(con, sql) == [(-0.1276, 51.5072, True, None)]


def test_checksum_is_an_order_insensitive_aggregate(con):
    a = run(con, "SELECT checksum(v) FROM (VALUES ('x'), ('y'), ('z')) AS t(v)")
    b = run(con, "SELECT checksum(v) FROM (VALUES ('z'), ('x'), ('y')) AS t(v)")
    c = run(con, "SELECT checksum(v) FROM (VALUES ('z'), ('x'), ('x')) AS t(v)")
    assert a == b != c


def test_parameters_are_bound_never_formatted(con):
    sql = (
        "SELECT count(*) FROM (VALUES ('A'), ('B'), ('A')) AS t(first_letter) "
        "WHERE first_letter = ?"
    )
    assert run(con, sql, ["A"]) == [(2,)]
    # a value that would break string formatting is just a value
    assert run(con, sql, ["A' OR '1'='1"]) == [(0,)]


def test_hive_types_map_to_duckdb():
    assert duck.duck_type("string") == "VARCHAR"
    assert duck.duck_type("array<string>") == "VARCHAR[]"
    assert duck.duck_type("map<string,array<bigint>>") == "MAP(VARCHAR, BIGINT[])"
    assert duck.duck_type("struct<a:int,b:double>") == 'STRUCT("a" INTEGER, "b" DOUBLE)'
    assert duck.duck_type("decimal(10,2)") == "DECIMAL(10,2)"


def test_geo_join_uses_the_spatial_join_operator(plan, store):
    from bakery import sample_data
    from bakery.engine.publish import Staging

    sample_data.write_sample_data(plan, store, addresses=500, ballots=20, seed=1)
    from bakery.engine import bake

    bake(plan, ["addressbase"], store)
    c = duck.connect()
    ctx = Context(plan, store, c, Staging(store, plan, "explain"), None)
    ctx.refresh_views()
    step = next(s for s in plan.layer("current_elections").steps if s.kind == "geo_join")
    sql, _ = geo_join_sql(ctx, step, values=len(step.over_values))
    rows = c.execute("EXPLAIN (FORMAT json) " + sql, step.over_values).fetchall()
    c.close()
    nodes = []

    def walk(node: dict) -> None:
        nodes.append(node)
        for child in node["children"]:
            walk(child)

    for root in json.loads(rows[0][1]):
        walk(root)

    def names(node: dict) -> set[str]:
        found = {node["name"].strip()}
        for child in node["children"]:
            found |= names(child)
        return found

    assert any(n["name"].strip() == "SPATIAL_JOIN" for n in nodes)
    for node in nodes:
        if any(k in node["name"] for k in ("NESTED_LOOP", "CROSS_PRODUCT", "BLOCKWISE_NL")):
            # only the one-row list of value names may be joined without a key
            sides = [names(child) for child in node["children"]]
            assert any("UNGROUPED_AGGREGATE" in s and "SPATIAL_JOIN" not in s for s in sides)
