"""The plan's model: tables, steps and layers resolved for one environment.

StepPlan (and LIVE_CATALOG) live in bakery.kinds.base, below the spec: every kind's typed
step plan extends it, and the spec imports the kinds. They are re-exported here.

Every back-end reads these (ASL compiler, CDK constructs, local engine, graph,
catalog); `bakery.plan.build_plan` makes them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bakery.kinds.base import LIVE_CATALOG as LIVE_CATALOG
from bakery.kinds.base import StepPlan as StepPlan
from bakery.lambdas import s3uri

if TYPE_CHECKING:
    # Annotations only: the kinds' typed step plans subclass StepPlan, and the spec
    # imports the kinds.
    from bakery import spec as s

# Where the AWS back-end builds tables before publishing them (bakery/compile/staging.py).
RESERVED_PREFIX = "bakery-staging"
# One folder of a location: it starts with a letter or digit (so never '.', '..' or a
# hidden '_'/'.' name) and holds nothing that leaves a path or breaks SQL or shell quoting.
SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.=+-]*$")


def unsafe_location(prefix: str) -> str | None:
    """Why an S3 prefix (the key part of a location) is unsafe, or None when it is safe."""
    for part in prefix.rstrip("/").split("/"):
        if not SEGMENT.match(part) or ".." in part:
            return (
                f"folder {part!r} is not allowed: use letters, digits and '_', '-', '.', '=', "
                "'+', starting with a letter or digit, and no '..' (every path a bake writes "
                "must stay inside its bucket and quote safely)"
            )
    return None


@dataclass
class TablePlan:
    layer: str
    name: str
    location: str  # s3://bucket/prefix/ (always ends with '/')
    format: str
    columns: list[s.Column]
    partition_keys: list[s.Column]
    csv: s.Csv | None
    compression: str
    description: str | None
    glue_database: str
    written_by: list[str] = field(default_factory=list)  # step ids of the owning layer
    read_by: list[str] = field(default_factory=list)  # "layer.step" that read it
    sample: s.Sample | None = None  # where a local bake gets its rows (bakery.sample_data)
    sample_file: str | None = None  # project-relative path of sample.file
    declared_at: str = ""  # "layers/x.yaml:LINE:COL" of its glue_table step

    @property
    def ref(self) -> str:
        return f"{self.layer}.{self.name}"

    @property
    def glue_name(self) -> str:
        return f"{self.glue_database}.{self.name}"

    @property
    def bucket(self) -> str:
        return s3uri.split(self.location)[0]

    @property
    def prefix(self) -> str:
        return s3uri.split(self.location)[1]

    @property
    def external(self) -> bool:
        """Produced outside bakery: no step of any layer writes it."""
        return not self.written_by

    @property
    def all_columns(self) -> list[s.Column]:
        return [*self.columns, *self.partition_keys]


@dataclass
class LayerPlan:
    name: str
    file: str
    description: str
    spec: s.Layer
    tables: list[TablePlan]
    steps: list[StepPlan]
    depends_on: list[str]  # declared and inferred from the tables read

    @property
    def triggers(self) -> s.Triggers:
        return self.spec.triggers

    @property
    def singleton(self) -> bool:
        return self.spec.singleton

    @property
    def timeout_minutes(self) -> int:
        return self.spec.timeout_minutes

    def walk(self) -> list[StepPlan]:
        """Every step, for_each bodies included, in order."""
        out = []
        for step in self.steps:
            out.append(step)
            out.extend(step.children)
        return out


@dataclass
class Plan:
    project: s.Project
    env: str
    root: Path
    layers: list[LayerPlan]  # in dependency order
    tables: dict[str, TablePlan]  # by ref "layer.table"

    @property
    def tags(self) -> dict[str, str]:
        return {**self.project.tags, "dc-environment": self.env}

    @property
    def variables(self) -> dict[str, Any]:
        return {**self.project.variables, **self.project.environments[self.env].variables}

    def layer(self, name: str) -> LayerPlan:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)

    def table(self, ref: str) -> TablePlan:
        return self.tables[ref]

    def upstream(self, names: list[str]) -> list[LayerPlan]:
        """The named layers and everything they depend on, in dependency order."""
        wanted: set[str] = set()
        stack = list(names)
        while stack:
            name = stack.pop()
            if name not in wanted:
                wanted.add(name)
                stack.extend(self.layer(name).depends_on)
        return [layer for layer in self.layers if layer.name in wanted]
