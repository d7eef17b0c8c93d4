"""SQL while the plan is built: render a template (project file, inline or built-in),
then analyse it with sqlglot against the declared tables (`analyse_sql`, the one call
of `bakery.sql.analyse`), check output columns and their types.
"""

from __future__ import annotations

from typing import Any

from bakery.errors import Problem
from bakery.lambdas import s3uri
from bakery.planning.model import unsafe_location
from bakery.planning.references import References
from bakery.sql import Rendered, TemplateProblem, analyse, render
from bakery.workspace import LayerFile


class SqlAnalysis(References):
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
                layers_dir=self.ws.project.layers_dir,
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

        file = exc.file or template  # an included file's problem is at its own line
        if file and exc.line:
            self.problems.append(
                Problem(file, exc.line, max(exc.col, 1), format_path(anchor), exc.message)
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
