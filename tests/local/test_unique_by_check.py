"""The implied unique_by check (bakery/templates/check_unique_by.sql) in two passes (values
seen more than once, then the versions of those rows only) finds exactly the conflicts a
DISTINCT over every exported row finds: compared with a Python oracle on random tables
full of repeats, identical duplicates, NULLs and lists, and baked across partitions."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import duckdb
import pytest
from test_guards import FIXTURE, GOOD_POINTS, SQUARE, _fails, write

from bakery.engine.transpile import to_duckdb
from bakery.plan import Plan, build_plan
from bakery.workspace import load_workspace


@pytest.fixture(scope="module")
def check_sql(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp("guards") / "project"
    shutil.copytree(FIXTURE, root)
    plan = build_plan(load_workspace(root), "development")
    step = next(s for s in plan.layer("places").steps if s.id == "by_key_unique")
    return to_duckdb(step.sql or "")


def oracle(rows: list[tuple]) -> tuple | None:
    """(id, versions, first key, last key) of the smallest id (NULL last) whose distinct
    exported rows (id, key, name, area_ids) are more than one, else None."""
    versions: dict = {}
    for r in rows:
        areas = None if r[3] is None else tuple(r[3])
        versions.setdefault(r[0], set()).add((r[0], r[2], r[1], areas))
    bad = [i for i, v in versions.items() if len(v) > 1]
    if not bad:
        return None
    first = min(bad, key=lambda i: (i is None, i or ""))
    keys = [v[1] for v in versions[first] if v[1] is not None]
    return (first, len(versions[first]), min(keys, default=None), max(keys, default=None))


def random_rows(rng: random.Random, n: int) -> list[tuple]:
    """(id, name, key, area_ids, first_letter) rows: a few ids, so most repeat; repeats
    are copies (identical duplicates) unless a column is changed, NULL included."""
    ids = [f"u{i}" for i in range(n // 3 + 1)] + [None]
    rows: list[tuple] = []
    for _ in range(n):
        if rows and rng.random() < 0.5:
            row = list(rng.choice(rows))
            if rng.random() < 0.2:  # a conflicting version in one column
                col = rng.choice([1, 2, 3])
                row[col] = rng.choice(
                    {
                        1: ["one", "uno", None],
                        2: ["AB1", "BC2", None],
                        3: [["a"], ["a", "b"], ["b", "a"], [], None],
                    }[col]
                )
            rows.append(tuple(row))
        else:
            key = rng.choice(["AB1", "BC2", "CD3"])
            rows.append((rng.choice(ids), rng.choice(["one", "two"]), key, ["a"], key[0]))
    return rows


def run(sql: str, rows: list[tuple]) -> tuple | None:
    con = duckdb.connect()
    con.execute("CREATE SCHEMA guards")
    con.execute(
        "CREATE TABLE guards.located (id VARCHAR, name VARCHAR, key VARCHAR, lon DOUBLE, "
        "lat DOUBLE, area_ids VARCHAR[], first_letter VARCHAR)"
    )
    con.executemany(
        "INSERT INTO guards.located VALUES (?, ?, ?, 0, 0, ?, ?)", [list(r) for r in rows]
    )
    found = con.execute(sql).fetchall()
    con.close()
    assert len(found) <= 1
    return tuple(found[0]) if found else None


def test_the_two_pass_check_finds_what_a_distinct_over_every_row_finds(check_sql: str):
    outcomes = set()
    for seed in range(60):
        rng = random.Random(seed)
        rows = random_rows(rng, rng.randint(1, 40))
        expected = oracle(rows)
        assert run(check_sql, rows) == expected, (seed, rows)
        outcomes.add(None if expected is None else expected[0] is None)
    # the seeds cover passing tables, conflicts on a value and on a repeated NULL value
    assert outcomes == {None, False, True}


def test_identical_duplicates_pass_and_a_third_differing_row_fails(check_sql: str):
    same = ("u1", "one", "AB1", ["a"], "A")
    assert run(check_sql, [same, same, ("u2", "two", "BC2", ["a"], "B")]) is None
    assert run(check_sql, [same, same, ("u1", "one", "BC2", ["a"], "B")]) == ("u1", 2, "AB1", "BC2")
    # lists are compared whole, order included; a NULL differs from a value
    assert run(check_sql, [same, ("u1", "one", "AB1", None, "A")]) == ("u1", 2, "AB1", "AB1")


@pytest.fixture
def plan(tmp_path: Path) -> Plan:
    root = tmp_path / "project"
    shutil.copytree(FIXTURE, root)
    return build_plan(load_workspace(root), "development")


def test_a_conflict_behind_identical_copies_in_another_partition_fails_the_bake(plan, store):
    # u3 twice identical under B, then once under C with another name: three rows, two
    # versions, in two partitions
    points = [*GOOD_POINTS, GOOD_POINTS[2], ("u3", "trois", "CD3", 3.0, 3.0, "C")]
    write(plan, store, points, [("sq", SQUARE)])
    assert _fails(plan, store) == (
        "check places.by_key_unique failed: rows of located with the same id agree on key, "
        "name, area_ids (unique_by of by_key): id=u3, conflicting_versions=2, "
        "first_key=BC2, last_key=CD3"
    )
    assert not store.list("s3://guards-data/development/")
