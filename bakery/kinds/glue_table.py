"""glue_table: declare a Glue table. Not a step the plan runs: the plan's first pass
(`declare_tables`) turns each into a TablePlan that every other step refers to."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from bakery.kinds.registry import Kind
from bakery.spec_types import Column, Csv, Sample, StepBase, StepName


class GlueTable(StepBase):
    """Declare a Glue table: where its files live and what they hold."""

    type: Literal["glue_table"]
    name: StepName
    location: str = Field(
        description="s3:// prefix template, e.g. s3://{{ buckets.data }}/x/{{ env }}/t/"
    )
    format: Literal["csv", "parquet"]
    csv: Csv | None = None
    compression: Literal["snappy", "gzip", "zstd", "none"] = "snappy"
    columns: list[Column] = Field(min_length=1)
    partition_keys: list[Column] = Field(default_factory=list)
    sample: Sample | None = Field(
        None, description="Sample rows for local bakes: a file or a registered generator."
    )
    purge_step: StepName | None = Field(
        None,
        description="Id of the purge the plan adds before this layer's queries write the "
        "table (default empty_<name>). A purge_prefix step for the table replaces it.",
    )


KIND = Kind("glue_table", GlueTable, in_plan=False, summary="declares a table")
