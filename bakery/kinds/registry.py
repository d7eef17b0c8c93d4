"""What a step kind is, and the registry that holds every kind.

A kind owns its spec model (what a layer file may say), its plan builder (how the
plan resolves it) and the facts other parts used to hard-code: whether it writes
through a query (and so is purged first and staged on AWS), whether it may run inside
a for_each, which tables the spec step says it writes. Each back-end (ASL compiler,
CDK constructs, local engine, graph) keeps one table keyed by kind name;
`check_backend` is how a test proves such a table covers every kind.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bakery.kinds.base import Builder, LayerFile, StepPlan

# (builder, layer file, path of the step in it, the spec step, its plan, the runtime
# parameters in scope) -> False when the step cannot be planned (it is then left out;
# its problem is reported already).
# The step plan argument is the kind's own StepPlan subclass (Kind.plan_class).
PlanBuilder = Callable[["Builder", "LayerFile", tuple, Any, Any, list[str]], bool]


def _none(step: Any) -> list[Any]:
    return []


@dataclass(frozen=True)
class Kind:
    name: str
    # The spec model (a pydantic class whose `type` is `name`); None for a kind only the
    # plan adds (refresh_partitions).
    model: type | None
    # Fills in the step's plan; None when the kind is not a step of the plan (glue_table
    # declares a table) or when the plan adds it itself.
    build: PlanBuilder | None = None
    in_plan: bool = True  # appears as a StepPlan that back-ends run
    writes_through_query: bool = False  # UNLOAD / INSERT INTO: purged first, staged on AWS
    in_for_each: bool = False  # may be a step of a for_each body
    # Its writes empty the table (a later query write needs one) rather than fill it.
    empties: bool = False
    # Its writes only maintain the table (empty it, load its partitions): it is not one of
    # the table's writers (TablePlan.written_by).
    maintains: bool = False
    # Table refs (as written, unresolved) the spec step writes itself.
    writes: Callable[[Any], list[str]] = _none
    # The spec steps it runs inside it (a for_each body).
    children: Callable[[Any], list[Any]] = _none
    # The class of its plan: StepPlan, or a subclass with the kind's own typed fields.
    plan_class: type[StepPlan] | None = None
    summary: str = field(default="", compare=False)


KINDS: dict[str, Kind] = {}


def register(kind: Kind) -> Kind:
    if kind.name in KINDS:
        raise ValueError(f"step kind {kind.name!r} is registered twice")
    KINDS[kind.name] = kind
    return kind


@contextlib.contextmanager
def registered(kind: Kind) -> Iterator[Kind]:
    """`kind` registered for the duration (tests: a kind a back-end does not know)."""
    register(kind)
    try:
        yield kind
    finally:
        del KINDS[kind.name]


def kind_of(step: Any) -> Kind:
    """The kind of a spec step (by its `type`) or of a plan step (by its `kind`)."""
    name = getattr(step, "type", None) or step.kind
    return KINDS[name]


def spec_models() -> list[type]:
    """The models of a layer's steps, in registration order (the order of the union)."""
    return [k.model for k in KINDS.values() if k.model is not None]


def inner_models() -> list[type]:
    """The models a for_each body may hold."""
    return [k.model for k in KINDS.values() if k.model is not None and k.in_for_each]


def plan_kinds() -> list[str]:
    """Every kind a back-end may meet in a plan."""
    return [k.name for k in KINDS.values() if k.in_plan]


def inner_kinds() -> list[str]:
    return [k.name for k in KINDS.values() if k.in_plan and k.in_for_each]


def written_by(step: Any, *, through_query: bool = False) -> list[str]:
    """Table refs (unresolved) a spec step writes, its for_each body included; with
    `through_query`, only those written by a query."""
    kind = kind_of(step)
    out = list(kind.writes(step)) if kind.writes_through_query or not through_query else []
    for child in kind.children(step):
        out += written_by(child, through_query=through_query)
    return out


class KindCoverageError(AssertionError):
    """A back-end's table does not match the registered kinds."""


def check_backend(table: Mapping[str, Any], backend: str, *, inner: bool = False) -> None:
    """Raise KindCoverageError unless `table` has exactly one entry per kind a plan holds
    (per kind allowed in a for_each body, with `inner`)."""
    want = inner_kinds() if inner else plan_kinds()
    missing = [k for k in want if k not in table]
    unknown = [k for k in table if k not in want]
    if missing or unknown:
        parts = []
        if missing:
            parts.append(f"no entry for {', '.join(missing)}")
        if unknown:
            parts.append(f"entries for unregistered kinds {', '.join(unknown)}")
        where = "for_each bodies of " if inner else ""
        raise KindCoverageError(f"{where}{backend}: {'; '.join(parts)}")
