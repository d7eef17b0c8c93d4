"""refresh_partitions: load a partitioned table's partitions into Glue. No layer file
names it; the plan adds one after every step that writes a partitioned table."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bakery.kinds.base import StepPlan
from bakery.kinds.registry import Kind

if TYPE_CHECKING:
    from bakery.kinds.base import Table

KIND = Kind("refresh_partitions", None, maintains=True, summary="MSCK REPAIR TABLE after a write")


def implied(layer: str, table: Table) -> StepPlan:
    """The refresh the plan adds after a step writes the partitioned `table`."""
    return StepPlan(
        layer=layer,
        id=f"refresh_{table.name}",
        kind=KIND.name,
        spec=None,
        description=f"Load the partitions of {table.name} into Glue.",
        reads=[table.ref],
        writes=[table.ref],
        sql=f"MSCK REPAIR TABLE {table.glue_name}",
    )
