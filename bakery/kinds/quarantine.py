"""quarantine: an athena_query's bad rows go to a rejects table instead of failing the run.

An athena_query may say

    quarantine: {reason: <column>, key: <column>, into: <rejects table>, max_rows: N,
                 max_percent: P}

Its SELECT computes `reason`: NULL for a good row, else why the row is rejected. Both
back-ends run the SELECT twice, as two statements over the same text (`accepted_sql`,
`rejected_sql`): the good rows, without the working columns, into the step's table; the
bad ones, the rejects table's columns (key and reason at least), into the rejects table.
The plan then adds a check (`implied_check`, a built-in template) that fails, naming the
first rejected keys and their reasons, when more rows were rejected than the limits allow;
the rejects table is published with the layer's other tables when every check passes.
Since the check and the two statements are in the plan, the local engine and the state
machine run the same SQL and count the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import Field, model_validator

from bakery.kinds.base import StepPlan
from bakery.spec_types import Identifier, Strict, TableRef

if TYPE_CHECKING:
    from bakery.kinds.base import Builder, LayerFile

# With neither limit given: a handful of bad rows pass, a systematic fault does not.
DEFAULT_MAX_ROWS = 100
DEFAULT_MAX_PERCENT = 0.1
# How many rejected rows the failure message names.
EXAMPLES = 5


class Quarantine(Strict):
    """Rows the query marks bad go to a rejects table; too many of them fail the run."""

    reason: Identifier = Field(
        description="Column of the SELECT: NULL for a good row, else why it is rejected."
    )
    key: Identifier = Field(description="Column of the rejects table naming a rejected row.")
    into: TableRef = Field(
        description="The rejects table (a glue_table of this layer, parquet): its columns "
        "are taken from the SELECT by name and must include key and reason."
    )
    max_rows: int | None = Field(
        None, ge=0, description="Fail when more rows than this are rejected."
    )
    max_percent: float | None = Field(
        None,
        ge=0,
        le=100,
        description="Fail when more than this percentage of the rows are rejected. With "
        f"neither limit given: at most {DEFAULT_MAX_ROWS} rows and {DEFAULT_MAX_PERCENT:g} %.",
    )

    @model_validator(mode="after")
    def _key_is_not_the_reason(self) -> Quarantine:
        if self.key == self.reason:
            raise ValueError("key and reason must be two different columns")
        return self

    def limits(self) -> tuple[int | None, float | None]:
        if self.max_rows is None and self.max_percent is None:
            return DEFAULT_MAX_ROWS, DEFAULT_MAX_PERCENT
        return self.max_rows, self.max_percent


@dataclass
class QuarantinePlan:
    """What both back-ends need: the two tables' columns and the reason column."""

    reason: str
    key: str
    into: str  # the rejects table's ref
    accepted_columns: list[str] = field(default_factory=list)  # the step's table, in order
    rejected_columns: list[str] = field(default_factory=list)  # the rejects table, in order
    max_rows: int | None = None
    max_percent: float | None = None

    def accepted_sql(self, sql: str) -> str:
        """The good rows of `sql` (an Athena SELECT), the step table's columns only."""
        return _split(sql, self.accepted_columns, f"{self.reason} IS NULL")

    def rejected_sql(self, sql: str) -> str:
        """The rejected rows of `sql`, the rejects table's columns."""
        return _split(sql, self.rejected_columns, f"{self.reason} IS NOT NULL")


def _split(sql: str, columns: list[str], where: str) -> str:
    # By name, in the table's order: UNLOAD writes the columns it is given, partition
    # keys last, and the SELECT has working columns of its own.
    selected = ", ".join(f"bakery_quarantine.{c}" for c in columns)
    return (
        f"SELECT {selected}\nFROM (\n{sql}\n) AS bakery_quarantine\nWHERE bakery_quarantine.{where}"
    )


def build(
    b: Builder,
    lf: LayerFile,
    path: tuple,
    quarantine: Quarantine,
    into: str | None,
    output: list[str] | None,
) -> QuarantinePlan | None:
    """Resolve and check a step's quarantine; None when it cannot be planned (reported).
    `output`: the query's output columns when known (validate checks them here instead
    of the exact match a query without quarantine must meet)."""
    qpath = path + ("quarantine",)
    if len(path) > 2:
        b.problem(
            lf.doc,
            qpath,
            "quarantine applies to a top-level athena_query, not inside for_each: its "
            "check counts the rejects of the whole table once every row is written",
        )
        return None
    rejects = b.own_ref(lf, qpath + ("into",), quarantine.into)
    if rejects is None or into is None:
        return None
    if rejects == into:
        b.problem(lf.doc, qpath + ("into",), "the rejects table must not be the step's own table")
        return None
    ok = b.column_of(lf, qpath + ("key",), rejects, quarantine.key)
    ok = b.column_of(lf, qpath + ("reason",), rejects, quarantine.reason) and ok
    if not ok:
        return None
    accepted = [c.name for c in b.tables[into].all_columns]
    rejected = [c.name for c in b.tables[rejects].all_columns]
    if quarantine.reason in accepted:
        b.problem(
            lf.doc,
            qpath + ("reason",),
            f"{quarantine.reason!r} is a column of {into!r}: the reason is a working column "
            "of the query, written to the rejects table only",
        )
        return None
    if output is not None:
        missing = [
            c for c in dict.fromkeys([quarantine.reason, *accepted, *rejected]) if c not in output
        ]
        if missing:
            anchor = path + ("query",) if lf.spec.steps[path[1]].query else path + ("sql",)
            b.problem(
                lf.doc,
                anchor,
                f"query output lacks {', '.join(missing)}: with quarantine it must give the "
                f"reason column, every column of {into!r} and of the rejects table "
                f"{rejects!r} (by name, in any order)",
            )
            return None
    max_rows, max_percent = quarantine.limits()
    return QuarantinePlan(
        reason=quarantine.reason,
        key=quarantine.key,
        into=rejects,
        accepted_columns=accepted,
        rejected_columns=rejected,
        max_rows=max_rows,
        max_percent=max_percent,
    )


def limit_text(max_rows: int | None, max_percent: float | None) -> str:
    """`1000 rows`, `0.1 % of the rows` or both, joined by `and`."""
    parts = []
    if max_rows is not None:
        parts.append(f"{max_rows} rows")
    if max_percent is not None:
        parts.append(f"{max_percent:g} % of the rows")
    return " and ".join(parts)


def implied_check(b: Builder, lf: LayerFile, path: tuple, step: StepPlan) -> StepPlan | None:
    """The check the plan adds after a quarantined query: fail above the limits, naming
    the first rejected rows. It runs with the layer's other checks, before publish."""
    quarantine: QuarantinePlan | None = getattr(step, "quarantine", None)
    if quarantine is None or not step.writes:
        return None
    qpath = path + ("quarantine",)
    check_id = f"{step.id}_quarantine"[:60]
    if check_id in b.step_ids:
        b.problem(lf.doc, qpath, f"step id {check_id!r} is kept for this step's quarantine check")
        return None
    b.step_ids.add(check_id)
    into = step.writes[0]
    limits = limit_text(quarantine.max_rows, quarantine.max_percent)
    extra: dict[str, Any] = {
        "table": into,
        "rejects": quarantine.into,
        "key": quarantine.key,
        "reason": quarantine.reason,
        "max_rows": quarantine.max_rows,
        "max_percent": quarantine.max_percent,
        "limits": limits,
        "examples": EXAMPLES,
    }
    out = b.render_sql(lf, qpath, builtin="check_quarantine.sql", extra=extra)
    if out is None:
        return None
    rendered = out[0]
    b.analyse_sql(lf, qpath, rendered, None)
    return StepPlan(
        layer=lf.spec.name,
        id=check_id,
        kind="check",
        spec=None,
        description=f"{step.id} rejects at most {limits} (into {quarantine.into})",
        reads=rendered.reads,
        sql=rendered.sql,
        message_column="failure_message",
    )


def rejects_state(step_id: str) -> str:
    """The name of the state that writes a quarantined step's rejected rows."""
    return f"{step_id} rejects"
