"""AWS's limits (bakery.aws_limits) applied to the names this environment's stacks give,
while the plan is built: each problem at the line of the layer file or bakery.yaml that
decides the name."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bakery.aws_limits import (
    GLUE_DATABASE_NAME,
    GLUE_TABLE_NAME,
    LAYER_VERSION_ARN,
    LOG_GROUP_NAME,
    PANDAS_KINDS,
    SQS_FIFO_QUEUE_NAME,
    STACK_NAME,
    STATE_MACHINE_NAME,
    Limit,
)
from bakery.planning import names
from bakery.planning.model import LayerPlan, Plan
from bakery.planning.publish_plan import publish_plan

if TYPE_CHECKING:
    from bakery.planning.builder import Builder


def check(builder: Builder, layers: list[LayerPlan]) -> None:
    """Every name this environment's stacks give a resource, and the pandas layer's ARN,
    checked against AWS's limits; each problem at the line that decides it."""

    ws, project, env = builder.ws, builder.project, builder.env
    plan = Plan(project, env, ws.root, layers, builder.tables)
    prefix_path = ("resource_prefix",) if project.resource_prefix else ("name",)

    def within(limit: Limit, name: str, doc: Any, path: tuple, fix: str) -> None:
        if len(name) > limit.maximum:
            builder.problem(
                doc,
                path,
                f"{limit.what} {name!r} is {len(name)} characters, over AWS's limit of "
                f"{limit.maximum} (environment {env}): {fix}",
            )

    core = names.core_stack_name(plan)
    within(STACK_NAME, core, ws.project_doc, prefix_path, "shorten resource_prefix")
    database = project.glue_database
    within(GLUE_DATABASE_NAME, database, ws.project_doc, ("glue_database",), "shorten it")
    docs = {lf.spec.name: lf.doc for lf in ws.layers}
    fix = "shorten the layer's name or resource_prefix in bakery.yaml"
    for layer in layers:
        doc = docs[layer.name]
        layer_names = [
            (STACK_NAME, names.layer_stack_name(plan, layer.name)),
            (STATE_MACHINE_NAME, names.state_machine_name(plan, layer.name)),
            (LOG_GROUP_NAME, names.execution_log_group_name(plan, layer.name)),
        ]
        if layer.triggers.schedule or layer.triggers.events:
            layer_names += [
                (SQS_FIFO_QUEUE_NAME, names.trigger_queue_name(plan, layer.name)),
                (SQS_FIFO_QUEUE_NAME, names.dead_letter_queue_name(plan, layer.name)),
            ]
        for limit, name in layer_names:
            within(limit, name, doc, ("name",), fix)
        staged = set(publish_plan(layer).table_refs)  # every table the layer writes
        for table in layer.tables:
            path = builder.table_paths.get(table.ref, (doc, ("name",)))[1][:-1] + ("name",)
            within(GLUE_TABLE_NAME, table.name, doc, path, "shorten the table's name")
            if table.ref in staged:
                within(
                    GLUE_TABLE_NAME,
                    names.staging_name(table),
                    doc,
                    path,
                    "shorten the table's name",
                )
    _check_pandas_layer(builder, layers)


def _check_pandas_layer(builder: Builder, layers: list[LayerPlan]) -> None:
    ws, project, env = builder.ws, builder.project, builder.env
    arn = project.pandas_layer_arn
    own = ws.project.environments[env].pandas_layer_arn
    path = ("environments", env, "pandas_layer_arn") if own else ("pandas_layer_arn",)
    users = [
        step.qualified_id for layer in layers for step in layer.walk() if step.kind in PANDAS_KINDS
    ]
    if arn is None:
        if users:
            builder.problem(
                ws.project_doc,
                path,
                f"not set (environment {env}), and {users[0]} runs a Lambda with the AWS SDK "
                f"for pandas layer: set pandas_layer_arn to its layer version ARN for "
                f"{project.region} (docs/aws.md, 'The AWS SDK for pandas layer')",
            )
        return
    match = LAYER_VERSION_ARN.match(arn)
    # A function can only use a layer version of its own region.
    if match and match["region"] != project.region:
        builder.problem(
            ws.project_doc,
            path,
            f"{arn!r} is a layer in {match['region']}, but the functions run in "
            f"{project.region} (environment {env}): use the {project.region} ARN",
        )
