"""The plan: layers resolved for one environment, the single input of every back-end.

Locations are rendered, table references resolved across layers, query templates
rendered to Athena SQL and checked with sqlglot against the declared schemas,
and layers put in dependency order. Everything wrong is collected and raised
together as one SpecError.
"""

from __future__ import annotations

import difflib
import graphlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from bakery import kinds
from bakery import spec as s
from bakery.errors import Problem, SpecError
from bakery.kinds import refresh_partitions
from bakery.lambdas import s3uri
from bakery.loader import Document
from bakery.sql import (
    Rendered,
    TemplateProblem,
    analyse,
    render,
    render_text,
    undefined_message,
)
from bakery.workspace import LayerFile, Workspace

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


# A table named through this catalog is the published (live) table, never its staged copy.
LIVE_CATALOG = "awsdatacatalog"


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
class StepPlan:
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

    @property
    def qualified_id(self) -> str:
        return f"{self.layer}.{self.id}"


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


def _suggest(name: str, options: list[str]) -> str:
    close = difflib.get_close_matches(name, options, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


class Builder:
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

    def render_sql(
        self,
        lf: LayerFile,
        path: tuple,
        *,
        query: str | None = None,
        sql: str | None = None,
        builtin: str | None = None,
        extra: dict[str, Any] | None = None,
        params: list[str] | None = None,
    ) -> tuple[Rendered, str | None] | None:
        """Render a project template, inline SQL or a built-in template, then analyse it."""
        if builtin is None and (query is None) == (sql is None):
            self.problem(lf.doc, path, "give exactly one of 'query' (a template file) or 'sql'")
            return None
        layer = lf.spec.name
        template = None
        if query is not None:
            template = self.template_path(lf, path + ("query",), query)
            if template is None:
                return None
        source, is_file = (
            (builtin, True) if builtin else ((template, True) if template else (sql, False))
        )
        anchor = path + (("query",) if query is not None else ("sql",) if sql else ())

        def location(name: str) -> str:
            value = self.tables[self.resolve(layer, name)].location
            # Locations were checked when declared; an unchecked one never reaches SQL.
            if unsafe_location(s3uri.split(value)[1]) or value.startswith("s3://invalid/"):
                raise LookupError(f"location of {name!r} is not a valid location")
            return value

        context = {**self.context, **(extra or {}), "location": location}
        try:
            rendered = render(
                self.ws.root,
                source,  # type: ignore[arg-type]
                is_file=is_file,
                context=context,
                resolve=lambda ref: self.resolve(layer, ref),
            )
        except TemplateProblem as exc:
            self._template_problem(lf, anchor, exc, template)
            return None
        allowed = params or []
        for name in rendered.params:
            if name not in allowed:
                where = (
                    f"available here: {', '.join(allowed)}"
                    if allowed
                    else "param() is only available inside for_each or a fanned-out step"
                )
                self.problem(lf.doc, anchor, f"unknown runtime parameter {name!r}; {where}")
                return None
        return rendered, template

    def _template_problem(
        self, lf: LayerFile, anchor: tuple, exc: TemplateProblem, template: str | None
    ) -> None:
        from bakery.errors import format_path

        if template and exc.line:
            self.problems.append(
                Problem(template, exc.line, max(exc.col, 1), format_path(anchor), exc.message)
            )
        else:
            self.problem(lf.doc, anchor, exc.message)

    def analyse_sql(
        self,
        lf: LayerFile,
        anchor: tuple,
        rendered: Rendered,
        template: str | None,
        into: str | None = None,
        *,
        needed: bool = False,
    ) -> list[str] | None:
        """The query's output columns; None when unchecked (check_sql off) or bad.

        `needed`: the columns are part of the plan (a for_each's row parameters), so they
        are read even when SQL checking is off.
        """
        if not self.check_sql and not needed:
            return None
        try:
            analysis = analyse(rendered.sql, self.schema(), template, annotate=into is not None)
        except TemplateProblem as exc:
            self._template_problem(lf, anchor, exc, template)
            return None
        if into is not None and into in self.tables:
            self.check_types(lf, anchor, rendered.sql, analysis.selects, into, template)
        return analysis.output_columns

    def check_types(
        self,
        lf: LayerFile,
        anchor: tuple,
        sql: str,
        selects: list[Any],
        into: str,
        template: str | None,
    ) -> None:
        """Output types inferred by sqlglot must fit the columns of the table written."""
        from bakery.sql_checks import check_types

        table = self.tables[into]
        names = [getattr(s, "alias_or_name", None) for s in selects]
        want = {c.name: c.type for c in table.all_columns}
        pairs = [(n, want[n]) for n in names if n in want]
        typed = [s for s, n in zip(selects, names, strict=True) if n in want]
        for found in check_types(sql, typed, pairs, into):
            self._template_problem(
                lf,
                anchor,
                TemplateProblem(found.message, template, found.line, found.col),
                template,
            )

    def check_output(
        self, lf: LayerFile, anchor: tuple, got: list[str] | None, into: str | None
    ) -> None:
        if got is None or into is None:
            return
        want = [c.name for c in self.tables[into].all_columns]
        if got == want:
            return
        missing = [c for c in want if c not in got]
        extra = [c for c in got if c not in want]
        detail = []
        if missing:
            detail.append(f"missing {', '.join(missing)}")
        if extra:
            detail.append(f"not in the table: {', '.join(extra)}")
        if not detail:
            detail.append(f"order differs: the table has {', '.join(want)}")
        self.problem(
            lf.doc,
            anchor,
            f"query output columns do not match table {into!r} ({'; '.join(detail)}); "
            "partition keys come last",
        )

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

    # -- passes ----------------------------------------------------------

    def declare_tables(self) -> None:
        for lf in self.ws.layers:
            for i, step in enumerate(lf.spec.steps):
                if not isinstance(step, s.GlueTable):
                    continue
                path = ("steps", i)
                clash = [t for t in self.tables.values() if t.name == step.name]
                if clash:
                    self.problem(
                        lf.doc,
                        path + ("name",),
                        f"table {step.name!r} is already declared by layer {clash[0].layer!r}; "
                        "Glue table names are unique in the database",
                    )
                    continue
                if step.format == "csv" and step.csv is None:
                    step = step.model_copy(update={"csv": s.Csv()})
                if step.format != "csv" and step.csv is not None:
                    self.problem(lf.doc, path + ("csv",), "csv options only apply to format: csv")
                names = [c.name for c in [*step.columns, *step.partition_keys]]
                dupes = sorted({n for n in names if names.count(n) > 1})
                if dupes:
                    self.problem(lf.doc, path + ("columns",), f"duplicate column {dupes[0]!r}")
                location = self.render_location(lf.doc, path + ("location",), step.location)
                table = TablePlan(
                    layer=lf.spec.name,
                    name=step.name,
                    location=location or f"s3://invalid/{step.name}/",
                    format=step.format,
                    columns=list(step.columns),
                    partition_keys=list(step.partition_keys),
                    csv=step.csv,
                    compression=step.compression,
                    description=step.description,
                    glue_database=self.project.glue_database,
                )
                table.sample = step.sample
                table.sample_file = self.sample_file(lf, path + ("sample",), step)
                line, col = lf.doc.where(path)
                table.declared_at = f"{lf.doc.file}:{line}:{col}"
                self.tables[table.ref] = table
                if location:
                    self.table_paths[table.ref] = (lf.doc, path + ("location",))

    def sample_file(self, lf: LayerFile, path: tuple, step: s.GlueTable) -> str | None:
        """Check a table's `sample`; return its file, project-relative, when it has one."""
        from bakery.sample_data import GENERATORS, SAMPLE_SUFFIXES

        sample = step.sample
        if sample is None:
            return None
        if (sample.file is None) == (sample.generator is None):
            self.problem(lf.doc, path, "give exactly one of 'file' or 'generator'")
            return None
        if sample.generator is not None:
            if sample.generator not in GENERATORS:
                names = list(GENERATORS)
                hint = _suggest(sample.generator, names) or f"; registered: {', '.join(names)}"
                self.problem(
                    lf.doc, path + ("generator",), f"no sample generator {sample.generator!r}{hint}"
                )
            return None
        assert sample.file is not None
        fpath = path + ("file",)
        if sample.rows is not None:
            self.problem(lf.doc, path + ("rows",), "'rows' sizes a generator, not a file")
        target = (lf.path.parent / sample.file).resolve()
        if not target.is_relative_to(self.ws.root.resolve()):
            self.problem(lf.doc, fpath, f"sample {sample.file!r} is outside the project")
            return None
        if target.suffix.lower() not in SAMPLE_SUFFIXES:
            self.problem(lf.doc, fpath, f"sample {sample.file!r} must be a .csv or .parquet file")
            return None
        if not target.is_file():
            self.problem(lf.doc, fpath, f"sample {sample.file!r} not found (looked at {target})")
            return None
        if target.suffix.lower() == ".csv":
            with target.open(encoding="utf-8", errors="replace", newline="") as fh:
                first = fh.readline().rstrip("\r\n")
            header = [h.strip().strip('"') for h in first.split(",")] if first else []
            want = [c.name for c in [*step.columns, *step.partition_keys]]
            if header != want:
                self.problem(
                    lf.doc,
                    fpath,
                    f"sample {sample.file!r} must start with the header line "
                    f"{','.join(want)} (found {first[:80]!r})",
                )
        return target.relative_to(self.ws.root.resolve()).as_posix()

    def build_layer(self, lf: LayerFile) -> LayerPlan:
        layer = lf.spec.name
        steps: list[StepPlan] = []
        purged: set[str] = set()
        self.step_ids: set[str] = set()
        for i, step in enumerate(lf.spec.steps):
            if not kinds.kind_of(step).in_plan:
                continue  # a glue_table: declared by declare_tables
            path = ("steps", i)
            plan = self.build_step(lf, path, step, params=[])
            if plan is None:
                continue
            steps.append(plan)
            if kinds.kind_of(plan).empties:
                # a purge that did not resolve is reported already; do not pile on
                purged.update(plan.writes or self.tables)
                continue
            self.require_purged(lf, path, plan, purged)
            for ref in plan.writes + [w for c in plan.children for w in c.writes]:
                table = self.tables[ref]
                if table.partition_keys:
                    steps.append(refresh_partitions.implied(layer, table))
        self.add_unique_by_checks(lf, steps)
        for step in steps:
            for sub in [step, *step.children]:
                for ref in sub.writes:
                    table = self.tables[ref]
                    if not kinds.kind_of(sub).maintains and (sub.id not in table.written_by):
                        table.written_by.append(sub.id)
                for ref in sub.reads:
                    if sub.qualified_id not in self.tables[ref].read_by:
                        self.tables[ref].read_by.append(sub.qualified_id)
        return LayerPlan(
            name=layer,
            file=lf.doc.file,
            description=lf.spec.description,
            spec=lf.spec,
            tables=[t for t in self.tables.values() if t.layer == layer],
            steps=steps,
            depends_on=[],
        )

    def add_unique_by_checks(self, lf: LayerFile, steps: list[StepPlan]) -> None:
        """An export's unique_by, as a check over the whole table before publishing.

        The export compares rows one partition at a time, after the layer published, so
        it alone would miss conflicts across partitions and publish before finding the
        others. This check (same unique_by, different values of the other exported
        columns) runs with the layer's checks, just before its first export_by_key, and
        compiles to a Step Functions check like any other.
        """
        first = next((i for i, st in enumerate(steps) if st.kind == "export_by_key"), None)
        if first is None:
            return
        implied: list[StepPlan] = []
        for i, st in enumerate(lf.spec.steps):
            if not (isinstance(st, s.ExportByKey) and st.unique_by):
                continue
            export = next((p for p in steps if p.id == st.id and p.kind == "export_by_key"), None)
            if export is None or not export.reads:
                continue
            path = ("steps", i, "unique_by")
            table = self.tables[export.reads[0]]
            compared = list(dict.fromkeys([st.unique_by, st.key, *st.columns]))
            types = {c.name: c.type for c in table.all_columns}
            maps = [c for c in compared if types.get(c, "").startswith("map<")]
            if maps:
                self.problem(
                    lf.doc,
                    path,
                    f"unique_by compares the exported columns, and Athena cannot compare map "
                    f"columns ({', '.join(maps)}); export them as a struct or JSON string",
                )
                continue
            check_id = f"{st.id}_unique"[:60]
            if check_id in self.step_ids:
                self.problem(
                    lf.doc, path, f"step id {check_id!r} is kept for this export's unique_by check"
                )
                continue
            extra = {
                "table": export.reads[0],
                "unique_by": st.unique_by,
                "key": st.key,
                "columns": compared,
            }
            out = self.render_sql(lf, path, builtin="check_unique_by.sql", extra=extra)
            if out is None:
                continue
            rendered = out[0]
            self.analyse_sql(lf, path, rendered, None)
            others = ", ".join(c for c in compared if c != st.unique_by)
            implied.append(
                StepPlan(
                    layer=lf.spec.name,
                    id=check_id,
                    kind="check",
                    spec=None,
                    description=(
                        f"rows of {table.name} with the same {st.unique_by} agree on {others} "
                        f"(unique_by of {st.id})"
                    ),
                    reads=rendered.reads,
                    sql=rendered.sql,
                )
            )
        steps[first:first] = implied

    def require_purged(self, lf: LayerFile, path: tuple, plan: StepPlan, purged: set[str]) -> None:
        """Query writes need an empty destination first, on AWS as locally.

        UNLOAD refuses a non-empty location and for_each appends with INSERT INTO, so a
        table written without an earlier purge_prefix fails (or doubles) on the second run.
        """
        writers = [(plan, path)] if kinds.kind_of(plan).writes_through_query else []
        writers += [
            (child, path + ("steps", j))
            for j, child in enumerate(plan.children)
            if kinds.kind_of(child).writes_through_query
        ]
        for writer, where in writers:
            for ref in writer.writes:
                if self.tables[ref].format == "csv":
                    # On AWS a query writes through UNLOAD / INSERT INTO, whose CSV is Hive
                    # TEXTFILE (no quoting, \N for NULL, gzip): the table's CSV reader
                    # (OpenCSVSerde) would shift columns at a value holding the delimiter and
                    # read NULL as the text \N.
                    self.problem(
                        lf.doc,
                        where + ("into",),
                        f"{ref!r} is a csv table, which a query cannot write so that it reads "
                        "back the same on Athena (UNLOAD writes unquoted text with \\N for "
                        "NULL); declare it `format: parquet`",
                    )
                if ref not in purged:
                    self.problem(
                        lf.doc,
                        where + ("into",),
                        f"{ref!r} is written here but not emptied before: add a purge_prefix "
                        "step for it earlier in the layer (each run must start from an empty "
                        "table)",
                    )

    def build_step(
        self, lf: LayerFile, path: tuple, step: Any, params: list[str]
    ) -> StepPlan | None:
        """The plan of one spec step (by its kind's builder); None when it is left out."""
        # Ids name states and graph nodes, so they are unique across for_each bodies too.
        if step.id in self.step_ids:
            self.problem(lf.doc, path + ("id",), f"step id {step.id!r} is used twice in this layer")
        self.step_ids.add(step.id)
        plan = StepPlan(layer=lf.spec.name, id=step.id, kind=step.type, spec=step)
        plan.description = step.description
        build = kinds.kind_of(step).build
        assert build is not None, f"kind {step.type} has no plan builder"
        return plan if build(self, lf, path, step, plan, params) else None

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

    def order_layers(self, layers: list[LayerPlan]) -> list[LayerPlan]:
        by_name = {layer.name: layer for layer in layers}
        docs = {lf.spec.name: lf for lf in self.ws.layers}
        for layer in layers:
            lf = docs[layer.name]
            deps: list[str] = []
            for j, dep in enumerate(lf.spec.depends_on):
                if dep not in by_name:
                    self.problem(
                        lf.doc,
                        ("depends_on", j),
                        f"unknown layer {dep!r}{_suggest(dep, self.layer_names)}",
                    )
                elif dep == layer.name:
                    self.problem(lf.doc, ("depends_on", j), "a layer cannot depend on itself")
                else:
                    deps.append(dep)
            for step in layer.walk():
                for ref in step.reads:
                    owner = self.tables[ref].layer
                    if owner != layer.name and owner not in deps:
                        deps.append(owner)
            layer.depends_on = sorted(deps)
        sorter = graphlib.TopologicalSorter({ly.name: ly.depends_on for ly in layers})
        try:
            order = list(sorter.static_order())
        except graphlib.CycleError as exc:
            cycle = exc.args[1]
            first = docs[cycle[0]]
            self.problem(
                first.doc,
                ("depends_on",) if first.spec.depends_on else ("name",),
                f"layers depend on each other in a cycle: {' -> '.join(cycle)}; "
                "break it by removing one dependency or moving a table",
            )
            return layers
        return [by_name[name] for name in order]

    def check_locations(self, layers: list[LayerPlan]) -> None:
        places: list[tuple[str, str, Document, tuple]] = []
        for ref, (doc, path) in self.table_paths.items():
            places.append((self.tables[ref].location, f"table {ref}", doc, path))
        docs = {lf.spec.name: lf for lf in self.ws.layers}
        for layer in layers:
            for i, st in enumerate(docs[layer.name].spec.steps):
                if isinstance(st, s.ExportByKey):
                    plan = next((p for p in layer.steps if p.id == st.id), None)
                    if plan and plan.location:
                        places.append(
                            (
                                plan.location,
                                f"export {layer.name}.{st.id}",
                                docs[layer.name].doc,
                                ("steps", i, "destination"),
                            )
                        )
        for a in range(len(places)):
            for b in range(len(places)):
                if a == b:
                    continue
                loc_a, what_a, doc_a, path_a = places[a]
                loc_b, what_b, _, _ = places[b]
                if loc_a == loc_b and a > b:
                    self.problem(doc_a, path_a, f"{what_b} already lives at {loc_a}")
                elif loc_a != loc_b and loc_a.startswith(loc_b):
                    self.problem(
                        doc_a,
                        path_a,
                        f"{loc_a} is inside the location of {what_b} ({loc_b}); "
                        "Athena would read these files as part of it",
                    )


def build_plan(ws: Workspace, env: str, *, check_sql: bool = True) -> Plan:
    """Resolve the workspace for one environment; raise SpecError listing every problem."""
    if env not in ws.project.environments:
        known = ", ".join(ws.project.environments)
        raise SpecError(
            [ws.project_doc.problem(("environments",), f"unknown environment {env!r}; use {known}")]
        )
    builder = Builder(ws, env, check_sql)
    results = builder.project.athena.results  # this environment's ({{ env }} filled in)
    try:
        results_prefix = s3uri.split(results)[1]
        why = unsafe_location(results_prefix) if results_prefix.strip("/") else "it has no prefix"
    except ValueError:
        why = "it is not an s3://bucket/prefix/ location"
    if why:
        builder.problem(ws.project_doc, ("athena", "results"), f"{results!r}: {why}")
    names: dict[str, LayerFile] = {}
    for lf in ws.layers:
        if lf.spec.name in names:
            builder.problem(
                lf.doc,
                ("name",),
                f"layer {lf.spec.name!r} is also defined in {names[lf.spec.name].doc.file}",
            )
        names[lf.spec.name] = lf
        if lf.path.stem != lf.spec.name:
            builder.problem(
                lf.doc,
                ("name",),
                f"layer name {lf.spec.name!r} must match its file name {lf.path.stem!r}",
            )
    builder.declare_tables()
    layers = [builder.build_layer(lf) for lf in ws.layers]
    layers = builder.order_layers(layers)
    builder.check_locations(layers)
    if builder.problems:
        raise SpecError(builder.problems)
    return Plan(builder.project, env, ws.root, layers, builder.tables)
