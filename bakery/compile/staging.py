"""Staged publish on AWS: where a layer's tables and export files are built before publishing.

What is staged is the layer's publish plan (bakery.planning.publish_plan): every table it
writes, whoever writes it (a query, a geo_join, a Lambda, which gets the location as
input), and every export_by_key destination. A table is built in a staging Glue table,
`<name>__staging`, whose location is `s3://<bucket>/bakery-staging/<table prefix>`
(outside the live location; no leading '.' or '_', which Athena would take for hidden
files); an export writes into `s3://<bucket>/bakery-staging/<destination prefix>`. The
plan reserves that prefix, so no table or destination of a spec can live there. The
layer's checks and exports read the staging tables; after its last step, one publish
state copies what changed from staging over live, deletes the stale live files, and
clears staging. A run that fails earlier leaves every live object as it was.

The naming lives here only: the ASL compiler and the CDK constructs both import it.
"""

from __future__ import annotations

from bakery.lambdas import s3uri
from bakery.plan import RESERVED_PREFIX, LayerPlan, Plan, TablePlan
from bakery.planning.names import staging_name
from bakery.planning.publish_plan import publish_plan

STAGING_PREFIX = RESERVED_PREFIX


def staging_glue_name(table: TablePlan) -> str:
    return f"{table.glue_database}.{staging_name(table)}"


def staging_location(table: TablePlan) -> str:
    """s3://<bucket>/bakery-staging/<table prefix> (ends with '/', like table.location)."""
    return f"s3://{table.bucket}/{STAGING_PREFIX}/{table.prefix}"


def export_staging_location(destination: str) -> str:
    """s3://<bucket>/bakery-staging/<destination prefix>: where an export writes its files."""
    bucket, prefix = s3uri.split(destination)
    return f"s3://{bucket}/{STAGING_PREFIX}/{prefix}"


def staged_tables(plan: Plan, layer: LayerPlan) -> list[TablePlan]:
    """The tables `layer` stages (its publish plan: every table it writes), in order."""
    return [plan.table(r) for r in publish_plan(layer).table_refs]


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
