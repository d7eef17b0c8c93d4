"""What a step kind's plan builder sees of the planner, and the step record it fills in.

The kinds sit below the spec (bakery.spec builds its step union from their models), so a
kind imports nothing of the plan or the workspace: its builder is typed against the
narrow protocols here, which bakery.planning.builder.Builder and bakery.workspace.LayerFile
satisfy (mypy checks it where the builder passes itself to a kind), and it extends the
StepPlan below, which bakery.planning.model re-exports for the back-ends.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

# A table named through this catalog is the published (live) table, never its staged copy.
LIVE_CATALOG = "awsdatacatalog"


@dataclass
class StepPlan:
    """One step of a layer as every back-end reads it. A kind with facts of its own has a
    subclass with typed fields (`Kind.plan_class`, e.g. LambdaStepPlan, ExportStepPlan).
    `spec` (the step as written) is kept for the local engine's step bodies; the ASL
    compiler and the CDK constructs read only the plan's fields."""

    layer: str
    id: str
    kind: str  # a step type, or "refresh_partitions" (added by the plan)
    spec: Any
    description: str | None = None
    reads: list[str] = field(default_factory=list)  # table refs "layer.table"
    writes: list[str] = field(default_factory=list)
    sql: str | None = None  # Athena SELECT; a check passes when it returns no rows
    params: list[str] = field(default_factory=list)  # runtime parameter per '?', in order
    template: str | None = None  # project-relative template path
    children: list[StepPlan] = field(default_factory=list)  # for_each body
    over_values: list[str] | None = None  # for_each / fan-out over fixed values
    over_sql: str | None = None  # for_each over the rows of this query
    over_params: list[str] = field(default_factory=list)  # names each item provides
    max_concurrency: int | None = None
    location: str | None = None  # purge_prefix target / export_by_key destination
    environment: dict[str, str] = field(default_factory=dict)  # lambda: rendered templates
    # A check whose query returns this one column: both back-ends report its value verbatim.
    message_column: str | None = None
    # Tables of other layers (refs) it may read unpublished (bakery.planning.published).
    optional_upstream: list[str] = field(default_factory=list)

    @property
    def qualified_id(self) -> str:
        return f"{self.layer}.{self.id}"


class LayerFile(Protocol):
    """A layer file as a kind's builder reads it (bakery.workspace.LayerFile)."""

    @property
    def doc(self) -> Any: ...  # bakery.loader.Document: where a problem is reported

    @property
    def spec(self) -> Any: ...  # bakery.spec.Layer


class Builder(Protocol):
    """What a kind's builder may ask of the planner (bakery.planning.builder.Builder)."""

    @property
    def tables(self) -> Mapping[str, Any]: ...  # ref -> bakery.planning.model.TablePlan

    @property
    def context(self) -> dict[str, Any]: ...  # what a location template may name

    step_ids: set[str]

    def problem(self, doc: Any, path: tuple, message: str) -> None: ...

    def resolve(self, layer: str, ref: str) -> str: ...

    def ref_at(self, lf: Any, path: tuple, ref: str) -> str | None: ...

    def own_ref(self, lf: Any, path: tuple, ref: str) -> str | None: ...

    def column_of(self, lf: Any, path: tuple, ref: str | None, column: str) -> bool: ...

    def written_tables(self, lf: Any, step: Any, *, through_query: bool = False) -> list[Any]: ...

    def render_environment(
        self, lf: Any, path: tuple, environment: dict[str, str]
    ) -> dict[str, str]: ...

    def render_location(self, doc: Any, path: tuple, template: str) -> str | None: ...

    def render_sql(self, *args: Any, **kwargs: Any) -> Any: ...  # (Rendered, template) | None

    def analyse_sql(self, *args: Any, **kwargs: Any) -> list[str] | None: ...

    def check_output(
        self, lf: Any, anchor: tuple, got: list[str] | None, into: str | None
    ) -> None: ...

    def build_step(self, lf: Any, path: tuple, step: Any, params: list[str]) -> StepPlan | None: ...


class Table(Protocol):
    """A table of the plan as a kind names it (bakery.planning.model.TablePlan)."""

    @property
    def name(self) -> str: ...

    @property
    def ref(self) -> str: ...

    @property
    def glue_name(self) -> str: ...
