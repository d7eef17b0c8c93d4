"""Finding the project, reading its files and turning pydantic errors into Problems."""

from __future__ import annotations

import difflib
import errno
import os
import re
import stat
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from bakery.errors import BakeryError, Problem, SpecError
from bakery.loader import Document, load_yaml
from bakery.spec import CHECK_KINDS, STEP_TYPES, Layer, Project

PROJECT_FILE = "bakery.yaml"


class NoProject(BakeryError):
    """There is no bakery.yaml where bakery was started: a usage error, not a spec problem."""


@dataclass
class LayerFile:
    path: Path
    doc: Document
    spec: Layer


@dataclass
class Workspace:
    root: Path
    project: Project
    project_doc: Document
    layers: list[LayerFile]

    def display(self, path: Path) -> str:
        return display_path(self.root, path)


def display_path(root: Path, path: Path) -> str:
    # The path as written, relative to the project: a symlink is named, not its target.
    for base, target in ((root, path), (root.absolute(), path.absolute())):
        try:
            return str(target.relative_to(base))
        except ValueError:
            pass
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


def find_root(start: Path | None = None) -> Path:
    """The nearest folder at or above `start` (or $BAKERY_PROJECT) holding bakery.yaml."""
    if env := os.environ.get("BAKERY_PROJECT"):
        return Path(env).resolve()
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / PROJECT_FILE).is_file():
            return folder
    raise NoProject(
        f"no {PROJECT_FILE} in {here} or above: run bakery inside a project, "
        "or set BAKERY_PROJECT to its folder"
    )


def _field_names(model: type[BaseModel]) -> list[str]:
    names = []
    for name, info in model.model_fields.items():
        names.append(info.alias or name)
    return names


def _model_at(model: type[BaseModel], data: Any, loc: tuple) -> type[BaseModel] | None:
    """Walk the pydantic model along loc to find the model whose field set applies."""
    annotation: Any = model
    value = data
    for part in loc:
        if isinstance(part, int):
            value = value[part] if isinstance(value, list) and part < len(value) else None
            annotation = _unwrap(annotation, value, list_item=True)
            continue
        current = _unwrap(annotation, value)
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        field = current.model_fields.get(part) or next(
            (f for f in current.model_fields.values() if f.alias == part), None
        )
        if field is None or not isinstance(value, dict):
            return None
        annotation, value = field.annotation, value.get(part)
    current = _unwrap(annotation, value)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _unwrap(annotation: Any, value: Any, list_item: bool = False) -> Any:
    """The model class `value` is validated against (through Annotated, list, unions)."""
    args = typing.get_args(annotation)
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(args[0], value, list_item)
    if list_item:
        return _unwrap(args[0], value) if origin is list and args else None
    if args and origin in (typing.Union, types.UnionType):
        models = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
        if isinstance(value, dict):
            for m in models:
                for key in ("type", "kind"):
                    lit = m.model_fields.get(key)
                    if lit and typing.get_args(lit.annotation) == (value.get(key),):
                        return m
            for m in models:
                if set(value) <= set(_field_names(m)):
                    return m
        non_none = [a for a in args if a is not type(None)]
        return _unwrap(non_none[0], value) if len(non_none) == 1 else None
    return annotation


def _clean_loc(data: Any, loc: tuple) -> tuple:
    """Drop the union-tag entries pydantic puts into locations ('steps', 0, 'check', ...)."""
    out: list = []
    value = data
    for part in loc:
        if isinstance(part, int) and isinstance(value, list):
            out.append(part)
            value = value[part] if part < len(value) else None
        elif isinstance(part, str) and isinstance(value, dict) and part in value:
            out.append(part)
            value = value[part]
        elif isinstance(part, str) and isinstance(value, dict):
            # a tag such as 'athena_query' or 'function-after[...]', or a missing field
            if part in STEP_TYPES or part in CHECK_KINDS:
                continue
            if "[" in part or part in ("ValuesSource", "QuerySource"):
                continue
            out.append(part)
            value = None
        else:
            out.append(part)
            value = None
    return tuple(out)


def _message(err: Mapping[str, Any], model: type[BaseModel], data: Any, loc: tuple) -> str:
    kind = err["type"]
    if kind == "extra_forbidden":
        field = loc[-1]
        owner = _model_at(model, data, loc[:-1])
        msg = f"unknown field {field!r}"
        if owner is not None:
            names = _field_names(owner)
            close = difflib.get_close_matches(str(field), names, n=1, cutoff=0.6)
            if close:
                return f"{msg}; did you mean {close[0]!r}?"
            return f"{msg}; allowed fields: {', '.join(names)}"
        return msg
    if kind == "union_tag_invalid":
        tag = err.get("ctx", {}).get("tag")
        expected = err.get("ctx", {}).get("expected_tags", "")
        options = [t.strip().strip("'") for t in str(expected).split(",")]
        close = difflib.get_close_matches(str(tag), options, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else f"; use one of: {', '.join(options)}"
        what = "check kind" if set(options) <= set(CHECK_KINDS) else "step type"
        return f"unknown {what} {tag!r}{hint}"
    if kind == "union_tag_not_found":
        disc = err.get("ctx", {}).get("discriminator", "type").strip("'")
        return f"missing {disc!r}: say which kind this is"
    if kind == "missing":
        return f"required field {loc[-1]!r} is missing"
    if kind == "string_pattern_mismatch" and "a-z_" in str(err.get("ctx", {}).get("pattern")):
        value = err.get("input")
        return (
            f"{value!r} is not a name Athena accepts: use lower-case letters, digits and "
            "'_', starting with a letter or '_'"
            + (f" (e.g. {_athena_name(value)!r})" if isinstance(value, str) else "")
        )
    if kind == "string_too_long":
        limit = err.get("ctx", {}).get("max_length")
        return (
            f"{err.get('input')!r} is too long: at most {limit} characters "
            "(AWS limits the resource and state names built from it)"
        )
    msg = err["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    return msg


def _athena_name(value: str) -> str:
    return re.sub(r"[^a-z0-9_]", "_", value.strip().lower())


def validate_model(model: type[BaseModel], doc: Document) -> tuple[Any, list[Problem]]:
    try:
        return model.model_validate(doc.data), []
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = _clean_loc(doc.data, tuple(err["loc"]))
            problems.append(doc.problem(loc, _message(err, model, doc.data, loc)))
        return None, problems


def load_project(root: Path) -> tuple[Project, Document]:
    doc = load_yaml(root / PROJECT_FILE, PROJECT_FILE, root=root)
    project, problems = validate_model(Project, doc)
    if problems:
        raise SpecError(problems)
    return project, doc


def layer_paths(root: Path, project: Project) -> list[Path]:
    """The layer files; no folder yet means no layers. A layers folder that cannot be
    listed (a symlink loop, a file, a broken symlink) is NoProject (a usage error):
    globbing it would find nothing and the project would pass as having no layers."""
    folder = root / project.layers_dir
    name = f"{project.layers_dir.rstrip('/')}/"
    todo = "make it a folder inside the project holding the layer files"
    try:
        is_dir = stat.S_ISDIR(os.stat(folder).st_mode)
    except FileNotFoundError:
        if not os.path.islink(folder):
            return []
        raise NoProject(f"the layers folder {name} is a broken symlink; {todo}") from None
    except OSError as exc:
        reason = "a symlink loop" if exc.errno == errno.ELOOP else exc.strerror or str(exc)
        raise NoProject(f"the layers folder {name} cannot be read ({reason}); {todo}") from None
    if not is_dir:
        raise NoProject(f"the layers folder {name} is not a folder; {todo}")
    return sorted(folder.glob("*.yaml"))


def load_workspace(root: Path | None = None, only: list[Path] | None = None) -> Workspace:
    """Read the project file and every layer file, reporting all problems together.

    `only` limits which layer files must be valid; the others are still read so
    that references into them resolve (a layer is rarely checked alone).
    """
    root = root or find_root()
    project, project_doc = load_project(root)
    paths = layer_paths(root, project)
    inside = set(paths)
    if only:
        extra = [p for p in only if p.resolve() not in {q.resolve() for q in paths}]
        paths = paths + extra
    problems: list[Problem] = []
    layers: list[LayerFile] = []
    for path in paths:
        # A file named on the command line may live elsewhere: it is read from its own
        # folder (still a regular file, no symlink out of that folder).
        try:
            doc = load_yaml(
                path, display_path(root, path), root=root if path in inside else path.parent
            )
        except SpecError as exc:
            problems.extend(exc.problems)
            continue
        spec, found = validate_model(Layer, doc)
        problems.extend(found)
        if spec is not None:
            layers.append(LayerFile(path, doc, spec))
    if problems:
        raise SpecError(problems)
    return Workspace(root, project, project_doc, layers)
