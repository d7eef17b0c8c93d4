"""Resolving references while the plan is built: tables across layers, columns, locations,
template paths, and the problems found on the way (each anchored in its file).
"""

from __future__ import annotations

import difflib
from typing import Any

import jinja2

from bakery import kinds
from bakery.errors import Problem
from bakery.lambdas import s3uri
from bakery.loader import Document
from bakery.planning.model import RESERVED_PREFIX, StepPlan, TablePlan, unsafe_location
from bakery.sql import render_text, undefined_message
from bakery.workspace import LayerFile, Workspace


def _suggest(name: str, options: list[str]) -> str:
    close = difflib.get_close_matches(name, options, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


class References:
    """The builder's state (tables declared so far, problems found) and its look-ups."""

    def __init__(self, ws: Workspace, env: str, check_sql: bool):
        self.ws = ws
        self.env = env
        self.check_sql = check_sql
        self.problems: list[Problem] = []
        # the resource names of this environment ({{ env }} filled in)
        self.project = project = ws.project.for_env(env)
        self.context: dict[str, Any] = {
            "env": env,
            "vars": {**project.variables, **project.environments[env].variables},
            "buckets": dict(project.buckets),
            "glue_database": project.glue_database,
            "region": project.region,
        }
        self.tables: dict[str, TablePlan] = {}
        self.table_paths: dict[str, tuple[Document, tuple]] = {}
        self.layer_names = [lf.spec.name for lf in ws.layers]

    # -- helpers ---------------------------------------------------------

    def problem(self, doc: Document, path: tuple, message: str) -> None:
        self.problems.append(doc.problem(path, message))

    def render_environment(
        self, lf: LayerFile, path: tuple, environment: dict[str, str]
    ) -> dict[str, str]:
        """A Lambda's environment values are templates too (`{{ vars.x }}`, `{{ env }}`)."""
        out = {}
        for key, template in environment.items():
            try:
                out[key] = render_text(template, self.context)
            except jinja2.TemplateError as exc:
                self.problem(lf.doc, path + ("environment", key), f"template: {exc}")
        return out

    def render_location(self, doc: Document, path: tuple, template: str) -> str | None:
        try:
            value = render_text(template, self.context)
        except jinja2.UndefinedError as exc:
            self.problem(
                doc, path, f"location template: {undefined_message(exc, template, self.context)}"
            )
            return None
        except jinja2.TemplateError as exc:
            self.problem(doc, path, f"location template: {exc}")
            return None
        try:
            bucket, prefix = s3uri.split(value)
        except ValueError:
            self.problem(doc, path, f"{value!r} is not an s3://bucket/prefix/ location")
            return None
        if bucket not in self.ws.project.buckets.values():
            known = ", ".join(sorted(self.ws.project.buckets.values()))
            self.problem(
                doc, path, f"bucket {bucket!r} is not one of the project's buckets ({known})"
            )
            return None
        if not prefix.strip("/"):
            self.problem(doc, path, f"{value!r} is a bucket root; give a prefix inside it")
            return None
        if prefix.split("/", 1)[0] in (RESERVED_PREFIX, f".{RESERVED_PREFIX}"):
            self.problem(
                doc, path, f"{value!r} is under {RESERVED_PREFIX}/, which bakery keeps for staging"
            )
            return None
        if "//" in prefix or not prefix.endswith("/"):
            self.problem(doc, path, f"{value!r} must be a prefix ending in '/' with no '//'")
            return None
        if why := unsafe_location(prefix):
            self.problem(doc, path, f"{value!r}: {why}")
            return None
        return value

    def resolve(self, layer: str, ref: str) -> str:
        """'table' or 'layer.table' -> 'layer.table'; raises LookupError with a hint."""
        if "." in ref:
            owner, name = ref.split(".", 1)
            if owner not in self.layer_names:
                raise LookupError(
                    f"unknown layer {owner!r} in {ref!r}{_suggest(owner, self.layer_names)}"
                )
            if f"{owner}.{name}" not in self.tables:
                names = [t.name for t in self.tables.values() if t.layer == owner]
                raise LookupError(
                    f"layer {owner!r} declares no table {name!r}{_suggest(name, names)}"
                )
            return f"{owner}.{name}"
        if f"{layer}.{ref}" in self.tables:
            return f"{layer}.{ref}"
        elsewhere = [t.ref for t in self.tables.values() if t.name == ref]
        if elsewhere:
            raise LookupError(f"table {ref!r} belongs to another layer: write {elsewhere[0]!r}")
        names = [t.name for t in self.tables.values() if t.layer == layer]
        raise LookupError(f"unknown table {ref!r}{_suggest(ref, names)}")

    def ref_at(self, lf: LayerFile, path: tuple, ref: str) -> str | None:
        try:
            return self.resolve(lf.spec.name, ref)
        except LookupError as exc:
            self.problem(lf.doc, path, str(exc))
            return None

    def own_ref(self, lf: LayerFile, path: tuple, ref: str) -> str | None:
        """A table reference a step writes: it must resolve to a table of its own layer."""
        resolved = self.ref_at(lf, path, ref)
        if resolved and self.tables[resolved].layer != lf.spec.name:
            self.problem(
                lf.doc,
                path,
                f"{resolved!r} belongs to layer {self.tables[resolved].layer!r}; "
                "a layer writes only the tables it declares",
            )
            return None
        return resolved

    def written_tables(
        self, lf: LayerFile, step: Any, *, through_query: bool = False
    ) -> list[TablePlan]:
        """The tables of its own layer a spec step says it writes (for_each bodies too)."""
        out = []
        for ref in kinds.written_by(step, through_query=through_query):
            try:
                resolved = self.resolve(lf.spec.name, ref)
            except LookupError:
                continue
            if self.tables[resolved].layer == lf.spec.name:
                out.append(self.tables[resolved])
        return out

    def optional_upstream(self, lf: LayerFile, plans: list[StepPlan]) -> None:
        """Each step's `optional_upstream`, resolved into its plan: a table of another
        layer that the step (or, for a for_each, its body) reads."""
        by_id = {p.id: p for top in plans for p in [top, *top.children]}

        def visit(steps: list[Any], path: tuple) -> None:
            for i, st in enumerate(steps):
                here = path + ("steps", i)
                plan = by_id.get(getattr(st, "id", None) or "")
                reads = {r for p in ([plan, *plan.children] if plan else []) for r in p.reads}
                for j, ref in enumerate(st.optional_upstream):
                    where = here + ("optional_upstream", j)
                    if plan is None:
                        if not kinds.kind_of(st).in_plan:
                            self.problem(lf.doc, where, f"a {st.type} step reads no table")
                        continue
                    resolved = self.ref_at(lf, where, ref)
                    if resolved is None:
                        continue
                    if self.tables[resolved].layer == lf.spec.name:
                        self.problem(
                            lf.doc,
                            where,
                            f"{resolved!r} is a table of this layer; optional_upstream lists "
                            "tables of other layers that may never have been published",
                        )
                    elif resolved not in reads:
                        self.problem(
                            lf.doc,
                            where,
                            f"step {st.id!r} does not read {resolved!r}; list only tables it reads",
                        )
                    elif resolved not in plan.optional_upstream:
                        plan.optional_upstream.append(resolved)
                visit(kinds.kind_of(st).children(st), here)

        visit(list(lf.spec.steps), ())

    def column_of(self, lf: LayerFile, path: tuple, ref: str | None, column: str) -> bool:
        if ref is None:
            return False
        names = [c.name for c in self.tables[ref].all_columns]
        if column not in names:
            self.problem(
                lf.doc, path, f"table {ref!r} has no column {column!r}{_suggest(column, names)}"
            )
            return False
        return True

    def schema(self) -> dict[str, dict[str, dict[str, str]]]:
        db = self.project.glue_database
        return {db: {t.name: {c.name: c.type for c in t.all_columns} for t in self.tables.values()}}

    def template_path(self, lf: LayerFile, path: tuple, query: str) -> str | None:
        target = (lf.path.parent / query).resolve()
        root = self.ws.root.resolve()
        if not target.is_relative_to(root):
            self.problem(lf.doc, path, f"template {query!r} is outside the project; keep it in it")
            return None
        if target.exists() and not target.is_file():
            self.problem(
                lf.doc, path, f"template {query!r} is not a regular file (a folder, FIFO or device)"
            )
            return None
        if not target.is_file():
            self.problem(lf.doc, path, f"template {query!r} not found (looked at {target})")
            return None
        return target.relative_to(root).as_posix()
