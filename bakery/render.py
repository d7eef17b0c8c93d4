"""The exact SQL each step runs: on Athena (taken from the compiled state machine, so it is
the text the deployed layer sends, UNLOAD and staging included) or on the local DuckDB
engine (the transpiled text the engine executes)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, cast

from bakery.plan import LayerPlan, Plan, StepPlan

if TYPE_CHECKING:
    from bakery.engine.runner import Context

ENGINES = ("athena", "duckdb")


@dataclass
class Statement:
    step: str  # qualified step id
    kind: str
    sql: str
    params: Any = None  # values for the `?`s, or the JSONPath expression that supplies them
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def steps_of(layer: LayerPlan) -> list[StepPlan]:
    return layer.walk()


def render(plan: Plan, layer: LayerPlan, engine: str, step: str | None = None) -> list[Statement]:
    """Every statement the layer's steps (or one step) run on `engine`, in step order."""
    chosen = [s for s in steps_of(layer) if step is None or s.id == step]
    if engine == "athena":
        return _athena(plan, layer, chosen)
    return [st for s in chosen for st in _duckdb(plan, s)]


def by_step(plan: Plan, layer: LayerPlan) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """{step id: {engine: [statement dicts]}} for `describe --json`, statements with SQL only."""
    out: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for engine in ENGINES:
        for st in render(plan, layer, engine):
            if st.sql:
                step_id = st.step.split(".", 1)[1]
                out.setdefault(step_id, {e: [] for e in ENGINES})[engine].append(st.to_dict())
    return out


def _flatten(states: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for name, state in states.items():
        out.append((name, state))
        body = state.get("ItemProcessor") or state.get("Iterator")
        if body:
            out.extend(_flatten(body["States"]))
        for branch in state.get("Branches", []):
            out.extend(_flatten(branch["States"]))
    return out


def _athena(plan: Plan, layer: LayerPlan, chosen: list[StepPlan]) -> list[Statement]:
    from bakery.compile.asl import compile_layer

    states = _flatten(compile_layer(plan, layer).definition["States"])
    out = []
    for s in chosen:
        mine = [(n, st) for n, st in states if n == s.id or n.startswith(s.id + " ")]
        for name, state in mine:
            params = state.get("Parameters") or {}
            if isinstance(params.get("QueryString"), str):
                out.append(
                    Statement(
                        s.qualified_id,
                        s.kind,
                        params["QueryString"],
                        params.get("ExecutionParameters") or params.get("ExecutionParameters.$"),
                        # a top-level UNLOAD runs in `<id> unload`, inside the step's Parallel
                        None if name in (s.id, f"{s.id} unload") else f"state {name!r}",
                    )
                )
            for item in state.get("Result") or [] if state.get("Type") == "Pass" else []:
                if isinstance(item, dict) and isinstance(item.get("query"), str):
                    value = item.get("value")
                    out.append(
                        Statement(
                            s.qualified_id,
                            s.kind,
                            item["query"],
                            item.get("params"),
                            f"for {value!r}" if value is not None else None,
                        )
                    )
        if not any(st.step == s.qualified_id for st in out):
            out.append(Statement(s.qualified_id, s.kind, "", None, _no_sql(s)))
    return out


def _no_sql(step: StepPlan) -> str:
    return {
        "purge_prefix": "no SQL: a Lambda deletes the objects under the location",
        "lambda": "no SQL: runs a Lambda handler",
        "export_by_key": "no SQL: the export Lambda reads the table's files",
        "for_each": "no SQL of its own: see its steps",
    }.get(step.kind, "no SQL")


def _duckdb(plan: Plan, step: StepPlan) -> list[Statement]:
    from bakery.engine.steps import geo_join_sql
    from bakery.engine.transpile import to_duckdb

    sid = step.qualified_id
    if step.kind == "geo_join":
        values = step.over_values
        ctx = cast("Context", SimpleNamespace(plan=plan))  # the query reads only ctx.plan
        sql, _ = geo_join_sql(ctx, step, values=len(values) if values else None)
        note = "one spatial join over every fan-out value" if values else None
        return [Statement(sid, step.kind, sql.strip(), list(values or []) or None, note)]
    if step.kind == "refresh_partitions":
        return [Statement(sid, step.kind, "", None, "no SQL locally: the view reads the folders")]
    if step.kind in ("athena_query", "check") and step.sql:
        params = step.params or None
        quarantine = getattr(step, "quarantine", None)
        if quarantine is not None:  # the two statements of bakery.kinds.quarantine
            return [
                Statement(sid, step.kind, to_duckdb(sql), params, f"{what} written into {ref}")
                for sql, what, ref in (
                    (quarantine.accepted_sql(step.sql), "the good rows", step.writes[0]),
                    (quarantine.rejected_sql(step.sql), "the rejected rows", quarantine.into),
                )
            ]
        note = None
        if step.kind == "athena_query":
            note = f"written into {step.writes[0]} in its format (COPY ... TO the store)"
        return [Statement(sid, step.kind, to_duckdb(step.sql), params, note)]
    if step.kind == "for_each" and step.over_sql:
        return [
            Statement(sid, step.kind, to_duckdb(step.over_sql), None, "the rows its steps run for")
        ]
    return [Statement(sid, step.kind, "", None, _no_sql(step))]


def as_text(statements: list[Statement]) -> str:
    """SQL comments name each statement's step and parameters; the SQL follows as is."""
    blocks = []
    for st in statements:
        head = f"-- {st.step} ({st.kind})" + (f", {st.note}" if st.note and st.sql else "")
        lines = [head]
        if st.params is not None and st.sql:
            lines.append(f"-- parameters: {st.params}")
        lines.append(f"{st.sql.rstrip()};" if st.sql else f"-- {st.note}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"
