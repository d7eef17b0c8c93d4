"""The product contract: every export that declares one writes files with exactly those
columns, in that order, of those types (read back from baked files' Arrow schemas).

Generic over the project's layers: a layer that declares `contract:` on an export_by_key
step is checked here with no edit to this file."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from bakery import hive_types, sample_data
from bakery.engine import bake
from bakery.errors import SpecError
from bakery.plan import build_plan
from bakery.workspace import load_workspace

# The running system's per-outcode files (design.md, "Layer current_elections"): the APIs
# read them directly, so these names, this order and these types are the contract.
RUNNING_SYSTEM_OUTCODE_COLUMNS = [
    ("uprn", "string"),
    ("address", "string"),
    ("postcode", "string"),
    ("addressbase_source", "string"),
    ("ballot_ids", "array<string>"),
    ("outcode", "string"),
]


@pytest.fixture(scope="module")
def plan(repo_plan):
    """The repository's own layers, whatever they are."""
    return repo_plan


def contract_exports(plan):
    return [
        step
        for layer in plan.layers
        for step in layer.walk()
        if step.kind == "export_by_key" and step.spec.contract is not None
    ]


def test_current_elections_declares_the_running_systems_columns(plan):
    step = next(s for s in contract_exports(plan) if s.layer == "current_elections")
    assert [(c.name, c.type) for c in step.spec.contract] == RUNNING_SYSTEM_OUTCODE_COLUMNS


@pytest.fixture(scope="module")
def baked(plan, tmp_path_factory):
    from bakery.store import LocalStore

    store = LocalStore(tmp_path_factory.mktemp("contract") / "store")
    sample_data.write_sample_data(plan, store, addresses=2000, ballots=80, seed=3)
    layers = sorted({s.layer for s in contract_exports(plan)})
    assert bake(plan, layers, store, with_upstream=True).ok
    return store


def test_every_contract_export_writes_exactly_its_columns_and_types(plan, baked):
    exports = contract_exports(plan)
    assert exports, "no export declares a contract"
    for step in exports:
        folder = baked.path(step.location)
        files = [f for f in sorted(folder.glob("*.parquet")) if not f.name.startswith(".")]
        schemas = [pq.read_schema(f) for f in files]
        full = [sch for sch in schemas if len(sch)]  # the rest: the empty "no value" file
        assert full, f"{step.qualified_id}: no non-empty file to check"
        want = [(c.name, c.type) for c in step.spec.contract]
        for path, schema in zip(files, schemas, strict=True):
            if not len(schema):
                continue
            assert schema.names == [n for n, _ in want], (step.qualified_id, path.name)
            for (name, hive), field in zip(want, schema, strict=True):
                assert hive_types.same_arrow_type(hive, field.type), (path.name, name, field.type)


def test_files_hold_the_contract_values(plan, baked):
    """outcode is each file's own key and ballot_ids a list of strings, [] when none."""
    step = next(s for s in contract_exports(plan) if s.layer == "current_elections")
    folder = baked.path(step.location)
    empties = 0
    for f in sorted(folder.glob("*.parquet")):
        table = pq.read_table(f)
        if not table.num_columns:
            continue
        assert set(table.column("outcode").to_pylist()) == {f.stem}
        ballots = table.column("ballot_ids").to_pylist()
        assert all(isinstance(b, list) for b in ballots)
        empties += sum(1 for b in ballots if b == [])
        assert set(table.column("addressbase_source").to_pylist()) == {
            plan.table("addressbase.addressbase_cleaned_raw").location
        }
    assert empties, "sample data should leave some addresses in a file without a ballot"


def test_arrow_type_comparison_tells_types_apart():
    import pyarrow as pa

    assert hive_types.same_arrow_type("array<string>", pa.list_(pa.field("element", pa.string())))
    assert hive_types.same_arrow_type("string", pa.large_string())
    assert not hive_types.same_arrow_type("array<string>", pa.string())
    assert not hive_types.same_arrow_type("array<string>", pa.list_(pa.int64()))
    assert not hive_types.same_arrow_type("bigint", pa.int32())
    assert hive_types.same_arrow_type("decimal(10,2)", pa.decimal128(10, 2))
    assert not hive_types.same_arrow_type("decimal(10,2)", pa.decimal128(10, 3))


def test_contract_types_must_match_the_table(project_copy):
    layer = project_copy / "layers" / "current_elections.yaml"
    text = layer.read_text()
    head, tail = text.rsplit("{name: outcode, type: string}", 1)  # the contract's, not the table's
    layer.write_text(head + "{name: outcode, type: bigint}" + tail)
    with pytest.raises(SpecError) as err:
        build_plan(load_workspace(project_copy), "development")
    assert "contract says outcode is bigint" in str(err.value)


def test_columns_must_agree_with_the_contract(project_copy):
    layer = project_copy / "layers" / "current_elections.yaml"
    text = layer.read_text()
    both = "    columns: [uprn, address]\n    contract:\n"
    layer.write_text(text.replace("    contract:\n", both))
    with pytest.raises(SpecError) as err:
        load_workspace(project_copy)
    assert "columns must list the contract's names" in str(err.value)
