"""Staging and publish wiring of a layer's definition (naming: bakery.compile.staging).

Every step reads and writes the staged tables and export folders of the layer's publish
plan (bakery.planning.publish_plan); the publish states come after the last step, so
after every check and every export: one publish Lambda call for every staged table and
export folder, then one partition load per partitioned table. What the steps read as
published (the
rules: bakery.planning.published) is made sure of before they read it: an upstream
table is probed before its first reader, and the live partitions of a table a check
compares with (a publish_guard) are loaded before the check.
"""

from __future__ import annotations

from bakery.compile.maps import MapStates
from bakery.compile.staging import (
    export_staging_location,
    rewrite_sql,
    staged_tables,
    staging_glue_name,
    staging_location,
)
from bakery.planning import published
from bakery.planning.model import LayerPlan, Plan, StepPlan, TablePlan
from bakery.planning.publish_plan import publish_plan


class PublishStates(MapStates):
    def __init__(self, plan: Plan, layer: LayerPlan):
        super().__init__(plan, layer)
        # Tables built in staging, then published; queries read them from staging until then.
        self.publish_plan = publish_plan(layer)
        self.staged: dict[str, TablePlan] = {t.ref: t for t in staged_tables(plan, layer)}
        # Upstream tables to probe, by the top-level step that first reads them.
        self.first_reads = published.first_reads(plan, layer)

    def staged_table(self, ref: str) -> TablePlan | None:
        """The table if the layer stages it (every step runs before the publish)."""
        return self.staged.get(ref)

    def read_location(self, ref: str) -> str:
        """Where a step reads `ref`'s files: its staging when the layer stages it."""
        table = self.plan.table(ref)
        return staging_location(table) if ref in self.staged else table.location

    def sql(self, text: str | None) -> str | None:
        """A query as it runs here: staged tables are read from staging."""
        if text is None:
            return text
        return rewrite_sql(text, list(self.staged.values()))

    def write_target(self, ref: str) -> tuple[TablePlan, str, str]:
        """(table, location, glue name) a query step writes: the staging ones if staged."""
        table = self.plan.table(ref)
        if self.staged_table(ref) is None:
            return table, table.location, table.glue_name
        return table, staging_location(table), staging_glue_name(table)

    def upstream_probes(self, step: StepPlan, first: str) -> str:
        """Before top-level `step`: per upstream table it is the first to read, a query
        for one row, and a Fail with the local engine's message when there is none."""
        next_ = first
        for reader, table in reversed(self.first_reads.get(step.id, [])):
            name = table.name  # at most 60 characters: every name below fits in 80
            failed = self.add(
                f"{name} unpublished",
                {
                    "Type": "Fail",
                    "Comment": f"{table.ref} reads no rows: {table.layer} never published it.",
                    "Error": "UpstreamNotPublished",
                    "Cause": published.unpublished_message(reader, table),
                },
            )
            verdict = self.add(
                f"{name} has a row?",
                {
                    "Type": "Choice",
                    "Comment": "A published table reads at least one row.",
                    # Not IsPresent rather than IsPresent: false, which the interpreter of
                    # `bakery simulate` (aws-local-stepfunctions) never matches.
                    "Choices": [
                        {
                            "Not": {"Variable": "$.upstream.rows[1]", "IsPresent": True},
                            "Next": failed,
                        }
                    ],
                    "Default": next_,
                },
            )
            results = self.results_task("$.upstream.id", 2, "$.upstream", verdict)
            results["Catch"] = self.catch(step)
            rows = self.add(f"{name} first row", results)
            query = self.athena_task(
                published.probe_sql(table),
                f"Is {table.ref} published? (step {reader.qualified_id} reads it)",
                rows,
                result_path="$.upstream",
            )
            query["Catch"] = self.catch(step)
            next_ = self.add(f"{name} published?", query)
        return next_

    def live_partitions(self, step: StepPlan, first: str) -> str:
        """Before a check that reads the published version of a table this layer
        publishes (`awsdatacatalog.<db>.<table>`): MSCK REPAIR TABLE of the live table.

        A partitioned Glue table reads only the partitions registered in the catalog.
        Right after deploy there are none until this layer's first publish loads them,
        and partitions another system wrote at the same prefix were registered in its
        own catalog, not in ours: the check would compare with an empty table and pass
        on the very run it protects. MSCK REPAIR TABLE adds the Hive-style (key=value/)
        partitions found under the table's location
        (https://docs.aws.amazon.com/athena/latest/ug/msck-repair-table.html); the state
        machine may already, for the partition load after publish (no other permission).
        """
        next_ = first
        tables = [
            t
            for t in published.live_tables(self.plan, step.sql or "")
            if t.ref in self.staged and t.partition_keys
        ]
        names = [
            f"{step.id} live partitions" + (f" {n + 1}" if n else "") for n in range(len(tables))
        ]
        for table, name in reversed(list(zip(tables, names, strict=True))):
            state = self.athena_task(
                f"MSCK REPAIR TABLE {table.glue_name}",
                f"Load the partitions of the published {table.name}, whoever wrote them, "
                "before comparing with it.",
                next_,
            )
            state["Catch"] = self.catch(step)
            next_ = self.add(name, state)
        return next_

    def publish(self, next_: str) -> str:
        """After the last step: one publish Lambda call for every staged table and export
        folder of the publish plan, then the partition load of each partitioned table."""
        pp = self.publish_plan
        if not self.staged and not pp.exports:
            return next_
        failed = self.add(
            "publishing failed",
            {
                "Type": "Fail",
                "Comment": (
                    "Publishing stopped part-way: some live objects may be new, the others "
                    "old; the next run publishes everything again (docs/aws.md)."
                ),
                "Error": f"{self.layer.name}.publish failed",
                "CausePath": ("States.Format('publish failed: {}', States.JsonToString($.error))"),
            },
        )
        catch = [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": failed}]
        for table in reversed(list(self.staged.values())):
            if table.partition_keys:
                state = self.athena_task(
                    f"MSCK REPAIR TABLE {table.glue_name}",
                    f"Load the partitions of the published {table.name} into Glue.",
                    next_,
                )
                state["Catch"] = catch
                next_ = self.add(f"repair {table.name}", state)
        items: list[dict[str, str]] = [
            {
                "staging_location": staging_location(table),
                "live_location": table.location,
                "stale": "all",
            }
            for table in self.staged.values()
        ]
        items += [
            {
                "staging_location": export_staging_location(export.destination),
                "live_location": export.destination,
                "stale": "key_files" if export.delete_stale else "none",
            }
            for export in pp.exports
        ]
        return self.add(
            "publish",
            self.lambda_task(
                "publish",
                {"items": items},
                "Publish the layer (every check and export passed): copy what changed "
                "from staging over live, delete stale live files, clear staging.",
                next_,
                Catch=catch,
            ),
        )


def partition_values(plan: Plan, table: TablePlan) -> list[str] | None:
    """Partition values known at synth: the fan-out values of the step that writes the table."""
    if len(table.partition_keys) != 1:
        return None
    layer = plan.layer(table.layer)
    for step in layer.walk():
        if (
            table.ref in step.writes
            and step.kind == "geo_join"
            and step.over_values
            and step.over_params == [table.partition_keys[0].name]
        ):
            return list(step.over_values)
    return None
