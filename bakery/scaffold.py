"""`bakery new`: the skeleton of a new layer and its query, from templates.

The skeleton is written only when the project validates, never over an existing
file, and is validated as written: if the new files do not pass, they are removed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import jinja2

from bakery.errors import BakeryError

NAME = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
TEMPLATES = Path(__file__).parent / "templates"
# The layer's query reads this table when the project has it (the usual case here).
DEFAULT_SOURCE = "addressbase.addressbase_partitioned"
SOURCE_COLUMNS = ("uprn", "postcode", "first_letter")


# The spec's limit (layer names become stack and state machine names).
LAYER_NAME_MAX = 40


class ScaffoldError(BakeryError):
    """A one-line reason why nothing was written."""


def check_name(name: str) -> str | None:
    """The problem with a layer name, or None when it is lower snake case."""
    if not NAME.match(name):
        return (
            f"layer name {name!r} must be lower snake case: a letter, then letters, "
            "digits and single underscores (e.g. polling_districts)"
        )
    if len(name) > LAYER_NAME_MAX:
        return f"layer name {name!r} is too long: at most {LAYER_NAME_MAX} characters"
    return None


@dataclass
class Source:
    layer: str
    ref: str


def _environment() -> jinja2.Environment:
    # Other delimiters, so the `{{ ... }}` of layer files and queries pass through as text.
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        variable_start_string="[[",
        variable_end_string="]]",
        block_start_string="[%",
        block_end_string="%]",
        comment_start_string="[#",
        comment_end_string="#]",
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
        autoescape=False,
    )


def render_files(
    name: str, *, layers_dir: str, buckets: dict[str, str], source: Source | None
) -> dict[str, str]:
    """Project-relative path -> text of the files `bakery new NAME` writes."""
    bucket = "private_data" if "private_data" in buckets else sorted(buckets)[0]
    from bakery.spec import Layer, Triggers

    # the models' defaults, written out, so the skeleton says what omitting them means
    defaults = {
        "singleton": Layer.model_fields["singleton"].default,
        "timeout_minutes": Layer.model_fields["timeout_minutes"].default,
        "delay_seconds": Triggers.model_fields["delay_seconds"].default,
    }
    context = {"name": name, "table": name, "bucket": bucket, "source": source, **defaults}
    env = _environment()
    return {
        f"{layers_dir}/{name}.yaml": env.get_template("new_layer.yaml.j2").render(context),
        f"{layers_dir}/queries/{name}.sql": env.get_template("new_query.sql.j2").render(context),
    }


def _source(plan) -> Source | None:
    table = plan.tables.get(DEFAULT_SOURCE)
    if table and {c.name for c in table.all_columns} >= set(SOURCE_COLUMNS):
        return Source(table.layer, table.ref)
    return None


def new_layer(root: Path, name: str, env: str) -> list[Path]:
    """Write the skeleton of layer `name` under `root`; return the files written."""
    from bakery.errors import SpecError
    from bakery.plan import build_plan
    from bakery.workspace import load_workspace

    try:
        ws = load_workspace(root)
        plan = build_plan(ws, env)
    except SpecError as exc:
        n = len(exc.problems)
        raise ScaffoldError(
            f"the project has {n} problem{'s' if n != 1 else ''}; "
            "fix them first (run `bakery validate`)"
        ) from None
    if not ws.project.buckets:
        raise ScaffoldError("bakery.yaml declares no buckets; add one for the layer's table")
    if name in {ly.name for ly in plan.layers}:
        raise ScaffoldError(f"layer {name!r} already exists; refusing to overwrite it")
    taken = {t.name for t in plan.tables.values()}
    if name in taken:
        raise ScaffoldError(
            f"a table named {name!r} already exists and the new layer's table takes the "
            "layer's name; choose another name"
        )
    files = render_files(
        name,
        layers_dir=ws.project.layers_dir,
        buckets=dict(ws.project.buckets),
        source=_source(plan),
    )
    targets = {root / rel: text for rel, text in files.items()}
    existing = [rel for rel, path in zip(files, targets, strict=True) if path.exists()]
    if existing:
        raise ScaffoldError(f"{', '.join(existing)} already exists; refusing to overwrite it")
    written: list[Path] = []
    try:
        for path, text in targets.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("x") as fh:  # never overwrite, even in a race
                fh.write(text)
            written.append(path)
        build_plan(load_workspace(root), env)
    except (SpecError, OSError) as exc:
        for path in written:
            path.unlink(missing_ok=True)
        detail = exc.problems[0] if isinstance(exc, SpecError) else exc
        raise ScaffoldError(f"the skeleton did not validate, nothing written: {detail}") from None
    return written
