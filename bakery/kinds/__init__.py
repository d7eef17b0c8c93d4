"""Step kinds: one module per kind, each owning its spec model, plan builder and facts.

Adding a kind: a module here defining its `KIND`, listed in MODULES below, then one
entry in each back-end's table — `bakery.compile.kind_states.STATE_BUILDERS` (ASL),
`bakery.constructs.steps.STEP_CONSTRUCTS` (CDK), `bakery.engine.steps.RUNNERS` (local
engine) and `bakery.graph.KIND_STYLE` (graph). tests/spec/test_kinds.py fails
until every back-end has one.
"""

from __future__ import annotations

from typing import Annotated, Union

from pydantic import Field

from bakery.kinds import (
    athena_query,
    check,
    export_by_key,
    for_each,
    geo_join,
    glue_table,
    lambda_,
    purge_prefix,
    refresh_partitions,
)
from bakery.kinds.registry import (
    KINDS,
    Kind,
    KindCoverageError,
    check_backend,
    inner_kinds,
    inner_models,
    kind_of,
    plan_kinds,
    register,
    registered,
    spec_models,
    written_by,
)

# In the order of the layer file's step union (and so of its JSON schema).
MODULES = (
    glue_table,
    purge_prefix,
    athena_query,
    geo_join,
    check,
    for_each,
    lambda_,
    export_by_key,
    refresh_partitions,
)
for _module in MODULES:
    register(_module.KIND)

# A for_each body holds the kinds that say they may run inside one.
InnerStep = Annotated[Union[tuple(inner_models())], Field(discriminator="type")]  # type: ignore[valid-type]  # noqa: E501, UP007
for_each.ForEach.model_rebuild(_types_namespace={"InnerStep": InnerStep})

__all__ = [
    "KINDS",
    "MODULES",
    "InnerStep",
    "Kind",
    "KindCoverageError",
    "check_backend",
    "inner_kinds",
    "kind_of",
    "plan_kinds",
    "register",
    "registered",
    "spec_models",
    "written_by",
]
