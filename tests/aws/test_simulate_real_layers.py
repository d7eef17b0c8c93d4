"""`bakery simulate` of the repository's own layers publishes what `bakery bake` publishes.

tests/aws/test_simulate.py does this for the framework tests' project; the real layers
add what it lacks, such as current_elections' publish guard, which reads the published
table through the catalog (`awsdatacatalog.<db>.<table>`). Every layer is baked with its
upstream in one store and simulated in another, on the same small sample; then every
table a layer writes is compared row for row (DuckDB `EXCEPT ALL` both ways, over the
table's declared columns), with its partition folders, and every export's files by name,
schema and rows.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from aws_helpers import REPO

from bakery.compile.staging import staging_location, staging_name
from bakery.engine import bake, duck, tables
from bakery.plan import Plan, TablePlan, build_plan
from bakery.sample_data import write_sample_data
from bakery.simulate.athena import Athena
from bakery.simulate.errors import TaskError
from bakery.store import LocalStore
from bakery.workspace import load_workspace

ADDRESSES, BALLOTS, SEED = 400, 24, 7  # small: the three layers simulate in about half a minute


@pytest.fixture(scope="module")
def real_plan() -> Plan:
    return build_plan(load_workspace(REPO), "development")


def _seeded(root: Path, plan: Plan) -> LocalStore:
    store = LocalStore(root)
    write_sample_data(plan, store, addresses=ADDRESSES, ballots=BALLOTS, seed=SEED)
    return store


@pytest.fixture(scope="module")
def baked_and_simulated(real_plan: Plan, tmp_path_factory: pytest.TempPathFactory):
    from bakery.simulate.run import simulate

    names = [ly.name for ly in real_plan.layers]
    baked = _seeded(tmp_path_factory.mktemp("bake"), real_plan)
    bake(real_plan, names, baked, with_upstream=True)
    root = tmp_path_factory.mktemp("simulate")
    simulated = _seeded(root, real_plan)
    result = simulate(real_plan, names, root, with_upstream=True, project_root=REPO)
    return baked, simulated, result


def _written(plan: Plan) -> list[TablePlan]:
    return [t for ly in plan.layers for t in ly.tables if not t.external]


def _folders(store: LocalStore, table: TablePlan) -> list[str]:
    rel = [f[len(table.location) :] for f in store.list(table.location)]
    return sorted({r.rsplit("/", 1)[0] for r in rel if "/" in r})


def _file_rows(store: LocalStore, uri: str) -> tuple[str, list[str]]:
    """A Parquet file's Arrow schema and its rows as sorted JSON texts."""
    table = pq.read_table(io.BytesIO(store.read_bytes(uri)))
    rows = sorted(json.dumps(r, sort_keys=True, default=str) for r in table.to_pylist())
    return str(table.schema.remove_metadata()), rows


def test_every_real_layer_simulates_to_the_end(real_plan, baked_and_simulated):
    _, _, result = baked_and_simulated
    assert [(r.layer, r.status, r.error, r.cause) for r in result.layers] == [
        (ly.name, "SUCCEEDED", None, None) for ly in real_plan.layers
    ]


def test_every_table_has_the_rows_bake_publishes(real_plan, baked_and_simulated):
    baked, simulated, _ = baked_and_simulated
    con = duck.connect()
    compared = 0
    try:
        for table in _written(real_plan):
            a = tables.source_sql(table, baked, table.location)
            b = tables.source_sql(table, simulated, table.location)
            (count,) = con.execute(f"SELECT count(*) FROM ({a})").fetchone()
            only_baked = con.execute(f"({a}) EXCEPT ALL ({b})").fetchmany(3)
            only_simulated = con.execute(f"({b}) EXCEPT ALL ({a})").fetchmany(3)
            assert (only_baked, only_simulated) == ([], []), table.ref
            assert _folders(simulated, table) == _folders(baked, table), table.ref
            compared += count
            # publish cleared the staging copy
            assert simulated.list(staging_location(table)) == [], table.ref
    finally:
        con.close()
    # Not two empty stores: every layer's tables hold rows.
    assert compared > ADDRESSES * len(real_plan.layers)


def test_every_export_writes_the_files_bake_writes(real_plan, baked_and_simulated):
    baked, simulated, _ = baked_and_simulated
    exports = [s for ly in real_plan.layers for s in ly.walk() if s.kind == "export_by_key"]
    assert exports, "the real layers export per outcode"
    for step in exports:
        names = [f[len(step.location) :] for f in baked.list(step.location)]
        assert names, step.qualified_id
        assert [f[len(step.location) :] for f in simulated.list(step.location)] == names
        for name in names:
            uri = step.location + name
            assert _file_rows(simulated, uri) == _file_rows(baked, uri), uri


def test_the_catalog_names_the_published_table_not_the_staged_one(real_plan, tmp_path):
    """`awsdatacatalog.<db>.<table>` is the Glue table `<db>.<table>`, as on Athena; its
    staged copy keeps its own name, and an unknown table fails the query."""
    store = LocalStore(tmp_path)
    table = next(t for t in _written(real_plan) if t.partition_keys)
    key = table.partition_keys[0].name

    def write(location: str, rows: int) -> None:
        cols = {c.name: pa.nulls(rows, pa.string()) for c in table.columns}
        path = Path(store.duck_path(f"{location}{key}=A/part-0.parquet"))
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table(cols), path)

    write(table.location, 3)
    write(staging_location(table), 5)
    con = duck.connect()
    try:
        athena = Athena(real_plan, store, con)

        def count(name: str) -> int:
            out = athena.start_sync({"QueryString": f"SELECT count(*) AS n FROM {name}"})
            qid = out["QueryExecution"]["QueryExecutionId"]
            rows = athena.get_results({"QueryExecutionId": qid})["ResultSet"]["Rows"]
            return int(rows[1]["Data"][0]["VarCharValue"])

        db = table.glue_database
        assert count(f"awsdatacatalog.{db}.{table.name}") == 3
        assert count(f'"AwsDataCatalog"."{db}"."{table.name}"') == 3
        assert count(f"{db}.{table.name}") == 3
        assert count(f"awsdatacatalog.{db}.{staging_name(table)}") == 5
        with pytest.raises(TaskError, match="does not exist"):
            count(f"awsdatacatalog.{db}.no_such_table")
    finally:
        con.close()
