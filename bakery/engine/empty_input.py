"""A check that fails because an input of its layer holds no rows says so.

An empty input (an AddressBase CSV of zero bytes, a ballots export with only its
header) makes the first check that looks fail with its own words, e.g.
`one_addressbase_source failed … distinct_values=0`, which sends the reader to the
wrong place. When a check fails, a table it reads is empty and an input of its layer
(sample_data.inputs: what no query of the layer writes) that it does not read is empty,
the failure names that input instead (a check of the input itself, such as min_rows,
already names it). Checked only after a failure, with a scan that stops at the first
row: a passing bake pays nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bakery import sample_data
from bakery.engine.duck import ident

if TYPE_CHECKING:
    from bakery.engine.context import Context
    from bakery.plan import StepPlan


def explained(ctx: Context, step: StepPlan, message: str) -> str:
    """`message` (the check's failure), or the line naming the empty input behind it."""
    if step.kind != "check":
        return message
    try:
        if not any(_empty(ctx, ref) for ref in step.reads):
            return message
        for table in sample_data.inputs(ctx.plan, [step.layer]):
            if table.ref not in step.reads and _empty(ctx, table.ref):
                return (
                    f"check {step.qualified_id} failed because the input {table.ref} is "
                    f"empty: its files at {table.location} hold no rows; put the data "
                    f"there, or {sample_data.how_to_seed(table)}"
                )
    except Exception:  # noqa: BLE001 - the check's own message is still true
        return message
    return message


def _empty(ctx: Context, ref: str) -> bool:
    table = ctx.plan.table(ref)
    cur = ctx.con.cursor()
    try:
        sql = f"SELECT 1 FROM {ident(table.glue_database)}.{ident(table.name)} LIMIT 1"
        return cur.execute(sql).fetchone() is None
    finally:
        cur.close()
