"""export_by_key: one Parquet file per key value (e.g. per outcode), after publishing."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pydantic import ConfigDict, Field, model_validator

from bakery.kinds.base import StepPlan
from bakery.kinds.registry import Kind
from bakery.spec_types import Column, Identifier, StepBase, StepName, TableRef

if TYPE_CHECKING:
    from bakery.kinds.base import Builder, LayerFile


def _columns_or_contract(schema: dict[str, Any]) -> None:
    """Editors validate the file as written, before `_columns_from_contract` fills
    `columns` in: the schema must accept a contract in its place."""
    schema["required"] = [name for name in schema.get("required", []) if name != "columns"]
    schema["anyOf"] = [{"required": ["columns"]}, {"required": ["contract"]}]


class ExportByKey(StepBase):
    """One Parquet file per key value (e.g. per outcode)."""

    model_config = ConfigDict(json_schema_extra=_columns_or_contract)

    type: Literal["export_by_key"]
    id: StepName
    table: TableRef
    key: Identifier
    destination: str = Field(description="s3:// prefix template for the files.")
    columns: list[Identifier] = Field(
        min_length=1, description="Columns of each file, in order (defaults to the contract's)."
    )
    contract: list[Column] | None = Field(
        None,
        min_length=1,
        description=(
            "The product contract: the exact columns, order and types of every non-empty "
            "file, which readers rely on. Checked against the table at validate time and "
            "against baked files by the tests."
        ),
    )
    sort_by: list[Identifier] = Field(default_factory=list)
    unique_by: Identifier | None = Field(
        None, description="Identical duplicate rows are dropped; conflicting ones fail."
    )
    empty_unless_any: Identifier | None = Field(
        None,
        description="Write an empty file (no rows, no columns) when no row has a value here.",
    )
    delete_stale: bool = True
    max_vanished_percent: float = Field(
        50,
        ge=0,
        le=100,
        description=(
            "Vanish guard, a check the plan adds before publish (`<id>_not_vanished`): "
            "fail when more than this percentage of the published table's non-empty keys "
            "(a key with a row; with empty_unless_any, a key with a row holding a value "
            "there, i.e. a non-empty file) would have no such row after this run, i.e. "
            "when that share of the product's non-empty files would become empty or be "
            "deleted. The default, 50, lets a normal run retire many keys (ballots end, "
            "reviews take effect) but refuses what an empty or truncated input does: "
            "losing most or all of the product at once. 100 turns the guard off. The "
            "first publish passes: nothing is published yet, so nothing can vanish."
        ),
    )

    @model_validator(mode="before")
    @classmethod
    def _columns_from_contract(cls, data: Any) -> Any:
        if (
            isinstance(data, dict)
            and "columns" not in data
            and isinstance(data.get("contract"), list)
        ):
            names = [c.get("name") if isinstance(c, dict) else None for c in data["contract"]]
            return {**data, "columns": names}
        return data

    @model_validator(mode="after")
    def _contract_is_the_columns(self) -> ExportByKey:
        if self.contract is not None and [c.name for c in self.contract] != self.columns:
            raise ValueError(
                "columns must list the contract's names in the same order "
                f"({', '.join(c.name for c in self.contract)}); or leave columns out"
            )
        return self


@dataclass
class ExportStepPlan(StepPlan):
    """An export's plan: reads[0] is the table, location the destination."""

    key: str = ""
    columns: list[str] = field(default_factory=list)
    sort_by: list[str] = field(default_factory=list)
    unique_by: str | None = None
    empty_unless_any: str | None = None
    delete_stale: bool = True


def build(
    b: Builder,
    lf: LayerFile,
    path: tuple,
    step: ExportByKey,
    plan: ExportStepPlan,
    params: list[str],
) -> bool:
    plan.key, plan.columns, plan.sort_by = step.key, list(step.columns), list(step.sort_by)
    plan.unique_by, plan.empty_unless_any = step.unique_by, step.empty_unless_any
    plan.delete_stale = step.delete_stale
    table = b.ref_at(lf, path + ("table",), step.table)
    plan.reads = [table] if table else []
    for name in ("key", "unique_by", "empty_unless_any"):
        if getattr(step, name):
            b.column_of(lf, path + (name,), table, getattr(step, name))
    for field_name in ("columns", "sort_by"):
        for j, col in enumerate(getattr(step, field_name)):
            b.column_of(lf, path + (field_name, j), table, col)
    check_contract(b, lf, path, step, table)
    plan.location = b.render_location(lf.doc, path + ("destination",), step.destination)
    return True


def check_contract(
    b: Builder, lf: LayerFile, path: tuple, step: ExportByKey, table: str | None
) -> None:
    """The product contract's types are the table's: the files are written as read."""
    if step.contract is None or table is None:
        return
    types = {c.name: c.type for c in b.tables[table].all_columns}
    for j, col in enumerate(step.contract):
        have = types.get(col.name)
        if have is not None and have != col.type:
            b.problem(
                lf.doc,
                path + ("contract", j, "type"),
                f"contract says {col.name} is {col.type} but table {table!r} has {have}; "
                "change the table or the contract (readers rely on the contract)",
            )


KIND = Kind(
    "export_by_key",
    ExportByKey,
    build,
    plan_class=ExportStepPlan,
    summary="one file per key value, after publish",
)
