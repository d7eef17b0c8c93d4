"""Staged publish on AWS: where a layer's query-written tables are built before publishing.

A table a layer writes with a query (athena_query, geo_join, an athena_query inside
for_each) is built in a staging Glue table, `<name>__staging`, whose location is
`s3://<bucket>/bakery-staging/<table prefix>` (outside the live location; no leading
'.' or '_', which Athena would take for hidden files). The plan reserves that prefix,
so no table of a spec can live there. The layer's checks read the staging
table; once they have all passed, the publish Lambda copies staging over live, deletes
the live files that were not copied, and clears staging. A run that fails earlier leaves
the live table as it was.

The naming lives here only: the ASL compiler and the CDK constructs both import it.
"""

from __future__ import annotations

from bakery.kinds import kind_of
from bakery.plan import RESERVED_PREFIX, LayerPlan, Plan, TablePlan
from bakery.planning.names import staging_name

STAGING_PREFIX = RESERVED_PREFIX


def staging_glue_name(table: TablePlan) -> str:
    return f"{table.glue_database}.{staging_name(table)}"


def staging_location(table: TablePlan) -> str:
    """s3://<bucket>/bakery-staging/<table prefix> (ends with '/', like table.location)."""
    return f"s3://{table.bucket}/{STAGING_PREFIX}/{table.prefix}"


def staged_tables(plan: Plan, layer: LayerPlan) -> list[TablePlan]:
    """The tables of `layer` written by a query step (top level or inside for_each), in order."""
    refs: list[str] = []
    for step in layer.walk():
        if kind_of(step).writes_through_query:  # UNLOAD or INSERT INTO
            refs += [r for r in step.writes if r not in refs]
    return [plan.table(r) for r in refs]


def rewrite_sql(sql: str, tables: list[TablePlan]) -> str:
    """`sql` reading each of `tables` from its staging table instead (parsed, not replaced).

    A reference matches when its name is the table's and its database is the table's or
    absent. The SQL is returned unchanged (same text) when it reads none of `tables`.
    """
    if not tables:
        return sql
    by_name = {t.name: t for t in tables}
    # Imported here: validate reads this module's names without parsing any SQL.
    import sqlglot
    from sqlglot import exp

    tree = sqlglot.parse_one(sql, dialect="athena")
    changed = False
    for node in tree.find_all(exp.Table):
        table = by_name.get(node.name)
        if table is None or node.db not in ("", table.glue_database):
            continue
        if node.catalog:
            continue
        node.set("this", exp.to_identifier(staging_name(table)))
        changed = True
    if not changed:
        return sql
    return tree.sql(dialect="athena", pretty=True)
