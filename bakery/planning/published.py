"""What "published" means, the same on both back-ends, for the two kinds of step that
depend on it: a step that reads another layer's table, and a check that reads a table's
published version through the catalog (a publish_guard).

An upstream table is published when it reads at least one row where every reader reads
it: locally the files at its live location, on AWS its Glue table through Athena, whose
partitions the owning layer's publish loads (MSCK REPAIR TABLE). Not "its location holds
files": on AWS a partition nobody loaded holds files that no query reads, and a layer
that joined against it would join nothing. So before the first step that reads such a
table, both back-ends run `probe_sql` and stop with `unpublished_message` when it returns
no row, unless the step lists the table in its `optional_upstream`. Tables no layer
writes (inputs) are left to the input checks: no bake can publish them.
"""

from __future__ import annotations

from bakery.planning.model import LIVE_CATALOG, LayerPlan, Plan, StepPlan, TablePlan


def first_reads(plan: Plan, layer: LayerPlan) -> dict[str, list[tuple[StepPlan, TablePlan]]]:
    """Top-level step id -> (reading step, upstream table) for each table another layer
    writes that this step is the first to read without declaring it optional. A
    for_each's body is probed before the for_each; its own optional_upstream covers the
    body."""
    seen: set[str] = set()
    out: dict[str, list[tuple[StepPlan, TablePlan]]] = {}
    for step in layer.steps:
        for sub in [step, *step.children]:
            optional = {*step.optional_upstream, *sub.optional_upstream}
            for ref in sub.reads:
                table = plan.table(ref)
                if ref in seen or ref in optional or table.layer == layer.name:
                    continue
                if table.external:
                    continue
                seen.add(ref)
                out.setdefault(step.id, []).append((sub, table))
    return out


def probe_sql(table: TablePlan) -> str:
    """Athena SQL returning one row when the table has one (the local engine transpiles it)."""
    return f'SELECT 1 AS found FROM "{table.glue_database}"."{table.name}" LIMIT 1'


def unpublished_message(step: StepPlan, table: TablePlan) -> str:
    return (
        f"step {step.qualified_id} reads {table.ref}, which has never been published: it "
        f"reads no rows at {table.location}. Bake layer {table.layer} first "
        f"(`bakery bake {step.layer} --with-upstream`; on AWS `bakery run {table.layer}`), "
        f"or, if {step.id} may run without it, list {table.ref} in its optional_upstream"
    )


def live_names(sql: str) -> list[tuple[str, str]]:
    """(database, table) of every table an Athena query reads through the catalog, i.e.
    its published version (the AWS staging rewrite leaves catalog-qualified names alone)."""
    if LIVE_CATALOG not in sql.lower():
        return []
    import sqlglot
    from sqlglot import exp

    tree = sqlglot.parse_one(sql, read="athena")
    out: list[tuple[str, str]] = []
    for node in tree.find_all(exp.Table):
        if node.catalog.lower() == LIVE_CATALOG and (node.db, node.name) not in out:
            out.append((node.db, node.name))
    return out


def live_tables(plan: Plan, sql: str) -> list[TablePlan]:
    """The tables an Athena query reads through the catalog (their published versions)."""
    by_name = {(t.glue_database, t.name): t for t in plan.tables.values()}
    return [by_name[name] for name in live_names(sql) if name in by_name]
