"""Staging and publish wiring of a layer's definition (naming: bakery.compile.staging).

Before publish, a step reads and writes the staged tables; the publish states (one
Lambda copy and one partition load per staged table) come before the first
export_by_key, which reads the live table.
"""

from __future__ import annotations

from bakery.compile.errors import CompileError
from bakery.compile.maps import MapStates
from bakery.compile.staging import (
    rewrite_sql,
    staged_tables,
    staging_glue_name,
    staging_location,
)
from bakery.planning.model import LayerPlan, Plan, StepPlan, TablePlan


class PublishStates(MapStates):
    def __init__(self, plan: Plan, layer: LayerPlan):
        super().__init__(plan, layer)
        # Tables built in staging, then published; queries read them from staging until then.
        self.staged: dict[str, TablePlan] = {t.ref: t for t in staged_tables(plan, layer)}
        self.publish_at = publish_index(layer)
        self.before_publish = True  # while compiling a step that runs before publish

    def staged_table(self, ref: str) -> TablePlan | None:
        """The table if it is staged and the current step runs before publish."""
        return self.staged.get(ref) if self.before_publish else None

    def sql(self, text: str | None) -> str | None:
        """A query as it runs here: before publish, staged tables are read from staging."""
        if text is None or not self.before_publish:
            return text
        return rewrite_sql(text, list(self.staged.values()))

    def write_target(self, ref: str) -> tuple[TablePlan, str, str]:
        """(table, location, glue name) a query step writes: the staging ones if staged."""
        table = self.plan.table(ref)
        if self.staged_table(ref) is None:
            return table, table.location, table.glue_name
        return table, staging_location(table), staging_glue_name(table)

    def refuse_staged_write(self, step: StepPlan) -> None:
        for sub in [step, *step.children]:
            if sub.kind != "export_by_key" and set(sub.writes) & set(self.staged):
                raise CompileError(
                    f"step {sub.qualified_id} writes a staged table after the layer publishes "
                    "(before its first export_by_key): move it before the exports"
                )

    def publish(self, next_: str) -> str:
        """Per staged table: copy staging over live (publish Lambda), then load partitions."""
        if not self.staged:
            return next_
        failed = self.add(
            "publishing failed",
            {
                "Type": "Fail",
                "Comment": "A table could not be published; tables published before it are new.",
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
            next_ = self.add(
                f"publish {table.name}",
                self.lambda_task(
                    "publish",
                    {
                        "staging_location": staging_location(table),
                        "live_location": table.location,
                    },
                    f"Publish {table.ref}: copy staging over live, delete stale live files, "
                    "clear staging.",
                    next_,
                    Catch=catch,
                ),
            )
        return next_


def publish_index(layer: LayerPlan) -> int:
    """Where the publish states go among the layer's top-level steps: before the first
    export_by_key (which reads the live table), else after the last step."""
    for i, step in enumerate(layer.steps):
        if step.kind == "export_by_key":
            return i
    return len(layer.steps)


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
