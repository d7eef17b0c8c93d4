"""The builder's per-layer passes: declare every table, then plan each layer's steps
(each by its kind's builder, bakery.kinds) with the steps the plan implies: a purge
before a query writes a table, a refresh after a partitioned write, a quarantine's check
after its query, a unique_by check and a vanish guard before the first export.
"""

from __future__ import annotations

from typing import Any

from bakery import kinds
from bakery import spec as s
from bakery.kinds import purge_prefix, quarantine, refresh_partitions
from bakery.planning.model import LayerPlan, StepPlan, TablePlan
from bakery.planning.publish_plan import order_problems
from bakery.planning.references import _suggest
from bakery.planning.sql_analysis import SqlAnalysis
from bakery.workspace import LayerFile


class Builder(SqlAnalysis):
    """Builds the plan: `bakery.plan.build_plan` runs its passes in order."""

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
                for j, column in enumerate(step.columns):
                    if column.values is not None:
                        self.problem(
                            lf.doc,
                            path + ("columns", j, "values"),
                            "values apply to partition keys (what a fan_out over them runs "
                            "for): move the column to partition_keys or remove values",
                        )
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
        from bakery.planning.samples import GENERATORS, SAMPLE_SUFFIXES, sample_file_problem

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
        problem = sample_file_problem(target, sample.file)
        if problem:
            self.problem(lf.doc, fpath, problem)
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
        steps, self.implied_purges = purge_prefix.implied(self, lf)
        purged = {ref for p in steps for ref in p.writes}
        self.step_ids: set[str] = set(self.implied_purges)
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
            check = quarantine.implied_check(self, lf, path, plan)
            if check is not None:  # right after the query: the first thing to report
                steps.append(check)
        self.add_unique_by_checks(lf, steps)
        self.add_vanish_guards(lf, steps)
        self.optional_upstream(lf, steps)
        self.refuse_publish_order(lf, steps)
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

    def refuse_publish_order(self, lf: LayerFile, steps: list[StepPlan]) -> None:
        """A layer publishes once, after its last step (bakery.planning.publish_plan):
        refuse, at the step, an order that point cannot honour."""
        index = {st.id: i for i, st in enumerate(lf.spec.steps) if hasattr(st, "id")}
        for step_id, message in order_problems(steps):
            if step_id in index:
                self.problem(lf.doc, ("steps", index[step_id]), message)

    def add_unique_by_checks(self, lf: LayerFile, steps: list[StepPlan]) -> None:
        """An export's unique_by, as a check over the whole table before publishing.

        The export compares rows one partition at a time, so it alone would miss
        conflicts across partitions and write files before finding the others. This
        check (same unique_by, different values of the other exported columns) runs with
        the layer's checks, just before its first export_by_key (all of which come before
        the layer's one publish point, bakery.planning.publish_plan), and compiles to a
        Step Functions check like any other.
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

    def add_vanish_guards(self, lf: LayerFile, steps: list[StepPlan]) -> None:
        """Each export's max_vanished_percent, as a check before publishing, so that no
        layer can forget to guard the product it replaces.

        An empty or truncated input makes a layer's table, and so its exported product,
        lose most of its content with every step succeeding. The check compares the
        table being published with its published version (the live table, read through
        the catalog like a publish_guard, so on AWS its partitions are loaded first),
        key by key: a key non-empty there and not in the new table is a file that would
        become empty or be deleted. It joins the layer's checks just before the first
        export. A table this layer does not rebuild has no older version to compare
        with (its published version is what is exported), so it gets no guard.
        """
        from bakery.kinds.check import value_kind
        from bakery.planning.model import LIVE_CATALOG

        first = next((i for i, st in enumerate(steps) if st.kind == "export_by_key"), None)
        if first is None:
            return
        rebuilt = {
            t.ref for st in lf.spec.steps for t in self.written_tables(lf, st, through_query=True)
        }
        implied: list[StepPlan] = []
        for i, st in enumerate(lf.spec.steps):
            if not isinstance(st, s.ExportByKey) or st.max_vanished_percent >= 100:
                continue
            export = next((p for p in steps if p.id == st.id and p.kind == "export_by_key"), None)
            if export is None or not export.reads or export.reads[0] not in rebuilt:
                continue
            path = ("steps", i, "max_vanished_percent")
            table = self.tables[export.reads[0]]
            suffix = "_not_vanished"  # step ids are at most 60 characters: shorten the export's
            check_id = f"{st.id[: 60 - len(suffix)]}{suffix}"
            if check_id in self.step_ids:
                self.problem(
                    lf.doc, path, f"step id {check_id!r} is kept for this export's vanish guard"
                )
                continue
            column = st.empty_unless_any
            types = {c.name: c.type for c in table.all_columns}
            limit = f"{st.max_vanished_percent:g}"
            what = f"non-empty {st.key} files" if column else f"{st.key} files"
            extra = {
                "table": table.ref,
                "published_table": f"{LIVE_CATALOG}.{table.glue_name}",
                "key": st.key,
                "column": column,
                "kind": value_kind(types.get(column or "", "")),
                "max_percent": st.max_vanished_percent,
                "max_percent_text": limit,
                "export_id": st.id,
                "what": what,
                "fate": "become empty or be deleted" if column else "no longer be exported",
            }
            out = self.render_sql(lf, path, builtin="check_export_vanished.sql", extra=extra)
            if out is None:
                continue
            rendered = out[0]
            self.analyse_sql(lf, path, rendered, None)
            implied.append(
                StepPlan(
                    layer=lf.spec.name,
                    id=check_id,
                    kind="check",
                    spec=None,
                    description=(
                        f"at most {limit} % of the published {what} of {st.id} vanish in one "
                        f"run (max_vanished_percent; the first publish passes: nothing is "
                        f"published yet, so nothing can vanish)"
                    ),
                    reads=rendered.reads,
                    sql=rendered.sql,
                    message_column="failure_message",
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
                        f"{ref!r} is written here but its purge_prefix step comes later: move "
                        "that step before this one, or remove it and let the plan add one "
                        "(each run must start from an empty table)",
                    )

    def build_step(
        self, lf: LayerFile, path: tuple, step: Any, params: list[str]
    ) -> StepPlan | None:
        """The plan of one spec step (by its kind's builder); None when it is left out."""
        # Ids name states and graph nodes, so they are unique across for_each bodies too.
        if step.id in self.implied_purges:
            table = self.implied_purges[step.id]
            self.problem(
                lf.doc,
                path + ("id",),
                f"step id {step.id!r} is the purge the plan adds for table {table!r}: rename "
                f"this step, or give the table another purge_step",
            )
        elif step.id in self.step_ids:
            self.problem(lf.doc, path + ("id",), f"step id {step.id!r} is used twice in this layer")
        self.step_ids.add(step.id)
        kind = kinds.kind_of(step)
        plan = (kind.plan_class or StepPlan)(
            layer=lf.spec.name, id=step.id, kind=step.type, spec=step
        )
        plan.description = step.description
        assert kind.build is not None, f"kind {step.type} has no plan builder"
        return plan if kind.build(self, lf, path, step, plan, params) else None
