"""Step kinds are one registry: the spec, the plan and every back-end agree with it.

A back-end that forgets a kind fails here, at test time, instead of at a user's deploy.
"""

from __future__ import annotations

import typing
from typing import Literal

import pytest

from bakery import kinds, spec
from bakery.kinds.registry import Kind, KindCoverageError
from bakery.spec_types import StepBase, StepName


def _backends() -> dict[str, tuple[dict, bool]]:
    """Every back-end's table keyed by kind, and whether it is for for_each bodies."""
    from bakery.compile.kind_states import INNER_STATE_BUILDERS, STATE_BUILDERS
    from bakery.constructs.steps import STEP_CONSTRUCTS
    from bakery.engine.steps import RUNNERS
    from bakery.graph import KIND_STYLE

    return {
        "ASL compiler": (STATE_BUILDERS, False),
        "ASL compiler (for_each bodies)": (INNER_STATE_BUILDERS, True),
        "CDK constructs": (STEP_CONSTRUCTS, False),
        "local engine": (RUNNERS, False),
        "graph": (KIND_STYLE, False),
    }


@pytest.mark.parametrize("backend", list(_backends()))
def test_every_backend_covers_every_registered_kind(backend):
    table, inner = _backends()[backend]
    kinds.check_backend(table, backend, inner=inner)


class HttpFetch(StepBase):
    type: Literal["http_fetch"]
    id: StepName


@pytest.mark.parametrize("backend", list(_backends()))
def test_a_kind_a_backend_forgets_fails_the_coverage_check(backend):
    table, inner = _backends()[backend]
    fake = Kind("http_fetch", HttpFetch, in_for_each=True)
    with (
        kinds.registered(fake),
        pytest.raises(KindCoverageError, match=r"no entry for http_fetch"),
    ):
        kinds.check_backend(table, backend, inner=inner)
    kinds.check_backend(table, backend, inner=inner)  # gone again once unregistered
    assert "http_fetch" not in kinds.KINDS


def test_an_entry_for_an_unregistered_kind_fails_too():
    with pytest.raises(KindCoverageError, match=r"unregistered kinds gone"):
        kinds.check_backend({**{k: None for k in kinds.plan_kinds()}, "gone": None}, "x")


def test_a_kind_registers_once():
    with pytest.raises(ValueError, match="registered twice"):
        kinds.register(kinds.KINDS["check"])


def _union_models(annotation) -> list[type]:
    union = typing.get_args(annotation)[0]
    return list(typing.get_args(union)) or [union]


def test_the_layer_union_is_the_registry():
    models = [k.model for k in kinds.KINDS.values() if k.model is not None]
    assert _union_models(spec.Step) == models
    assert list(spec.STEP_TYPES) == [k.name for k in kinds.KINDS.values() if k.model]
    for kind in kinds.KINDS.values():
        if kind.model is not None:
            (tag,) = typing.get_args(kind.model.model_fields["type"].annotation)
            assert tag == kind.name


def test_a_for_each_body_holds_exactly_the_kinds_that_say_so():
    body = spec.ForEach.model_fields["steps"].annotation
    (inner,) = typing.get_args(body)
    assert _union_models(inner) == [
        k.model for k in kinds.KINDS.values() if k.in_for_each and k.model
    ]
    assert kinds.inner_kinds() == ["athena_query", "check", "lambda"]


def test_facts_of_the_kinds():
    query_writers = [k.name for k in kinds.KINDS.values() if k.writes_through_query]
    assert query_writers == ["athena_query", "geo_join"]
    assert [k.name for k in kinds.KINDS.values() if not k.in_plan] == ["glue_table"]
    assert "refresh_partitions" in kinds.plan_kinds()
    assert [k.name for k in kinds.KINDS.values() if k.empties] == ["purge_prefix"]


def test_written_by_follows_for_each_bodies_and_can_keep_query_writes_only():
    step = spec.ForEach.model_validate(
        {
            "type": "for_each",
            "id": "loop",
            "over": {"values": ["a"]},
            "as": "v",
            "steps": [
                {"type": "athena_query", "id": "q", "sql": "SELECT 1", "into": "t1"},
                {"type": "lambda", "id": "l", "handler": "bakery.lambdas.x.handler",
                 "writes": ["t2"]},
            ],
        }
    )  # fmt: skip
    assert kinds.written_by(step) == ["t1", "t2"]
    assert kinds.written_by(step, through_query=True) == ["t1"]


def test_the_asl_compiler_reads_the_plan_not_the_spec():
    """Every step's `spec` (the step as written) taken away, each definition is the same:
    the AWS back-end reads only the plan's fields (typed per kind where a kind has its
    own, e.g. LambdaStepPlan, ExportStepPlan)."""
    import dataclasses

    from bakery.compile.asl import layer_asl_json
    from bakery.plan import build_plan
    from bakery.workspace import load_workspace
    from tests.spec.conftest import PROJECT

    plan = build_plan(load_workspace(PROJECT), "development")
    kinds_seen = set()

    def blind(step):
        kinds_seen.add(step.kind)
        children = [blind(c) for c in step.children]
        return dataclasses.replace(step, spec=None, children=children)

    for layer in plan.layers:
        before = layer_asl_json(plan, layer)
        blinded = dataclasses.replace(layer, steps=[blind(s) for s in layer.steps])
        assert layer_asl_json(plan, blinded) == before
    assert {"lambda", "export_by_key", "check", "athena_query"} <= kinds_seen
