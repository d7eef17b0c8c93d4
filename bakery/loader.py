"""Safe YAML loading that keeps the line and column of every value.

PyYAML's safe loader still keeps the last of two duplicate keys and expands
aliases without limit; both are refused here, and every node's position is
recorded so that a problem anywhere in a spec can name its line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bakery.errors import Problem, SpecError, format_path
from bakery.project_files import FileRefused, read_text

# A real layer file has a few hundred nodes; this bound makes an alias bomb
# ("billion laughs") fail in milliseconds instead of exhausting memory.
MAX_NODES = 50_000
# A real spec nests under ten levels; the walk below recurses once per level, so a
# file of 600 nested '[' would otherwise end in a RecursionError.
MAX_DEPTH = 64

_SAFE_TAGS = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:seq",
    "tag:yaml.org,2002:map",
    "tag:yaml.org,2002:timestamp",
}

Path_ = tuple[str | int, ...]
# libyaml's parser is several times faster than the pure-Python one; both keep marks.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass
class Document:
    """A parsed YAML file: its data and where each value came from."""

    file: str
    data: Any
    positions: dict[Path_, tuple[int, int]] = field(default_factory=dict)

    def where(self, path: Path_) -> tuple[int, int]:
        """Line and column of the deepest known node on `path` (1-based)."""
        for end in range(len(path), -1, -1):
            pos = self.positions.get(tuple(path[:end]))
            if pos is not None:
                return pos
        return (1, 1)

    def problem(self, path: Path_, message: str) -> Problem:
        line, col = self.where(path)
        return Problem(self.file, line, col, format_path(path), message)


class _Walker:
    def __init__(self, file: str):
        self.file = file
        self.count = 0
        self.positions: dict[Path_, tuple[int, int]] = {}
        self.constructor = yaml.SafeLoader("")

    def fail(self, node: yaml.Node, path: Path_, message: str) -> SpecError:
        mark = node.start_mark
        return SpecError(
            [Problem(self.file, mark.line + 1, mark.column + 1, format_path(path), message)]
        )

    def walk(self, node: yaml.Node, path: Path_, depth: int = 0) -> Any:
        if depth > MAX_DEPTH:
            raise self.fail(
                node,
                path[:2],
                f"values nest more than {MAX_DEPTH} levels deep; a spec needs a few, flatten it",
            )
        self.count += 1
        if self.count > MAX_NODES:
            raise self.fail(
                node,
                path,
                f"document expands to more than {MAX_NODES} nodes (alias bomb?); "
                "use fewer anchors/aliases",
            )
        if not path or path[-1] != "<key>":
            self.positions.setdefault(path, (node.start_mark.line + 1, node.start_mark.column + 1))
        if node.tag not in _SAFE_TAGS:
            raise self.fail(
                node,
                path,
                f"tag {node.tag.replace('tag:yaml.org,2002:', '!!')!r} is not allowed; "
                "use plain YAML values only",
            )
        if isinstance(node, yaml.MappingNode):
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    raise self.fail(
                        key_node, path, "merge keys ('<<') are not supported; write keys out"
                    )
                key = self.walk(key_node, path + ("<key>",), depth + 1)
                if not isinstance(key, str):
                    raise self.fail(key_node, path, f"key {key!r} must be a string")
                if key in out:
                    first = self.positions.get(path + (key,), (0, 0))[0]
                    raise self.fail(
                        key_node,
                        path + (key,),
                        f"duplicate key {key!r} (first defined on line {first}); remove one",
                    )
                self.positions[path + (key,)] = (
                    key_node.start_mark.line + 1,
                    key_node.start_mark.column + 1,
                )
                out[key] = self.walk(value_node, path + (key,), depth + 1)
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.walk(item, path + (i,), depth + 1) for i, item in enumerate(node.value)]
        return self.constructor.construct_object(node, deep=True)


def load_yaml(path: Path, display: str | None = None, *, root: Path | None = None) -> Document:
    """Parse one YAML file into a Document; raise SpecError with positions on any problem.

    The file must be a regular file inside `root` (default: its own folder) of at most
    project_files.MAX_FILE_BYTES; a refusal never quotes the file."""
    file = display or str(path)
    try:
        text = read_text(root or path.parent, path)
    except FileRefused as exc:
        message = str(exc)
        if not message.startswith("file is"):
            message = f"cannot read file: {message}"
        raise SpecError([Problem(file, 1, 1, "", message)]) from None
    return load_yaml_text(text, file)


def _indent_hint(exc: yaml.MarkedYAMLError) -> str:
    """Most YAML syntax errors in hand-written specs are indentation: say how to fix it."""
    problem = f"{exc.problem} {exc.context}"
    if "tab" in problem:
        return "; indent with spaces, not tabs"
    if any(
        words in problem
        for words in ("mapping values are not allowed", "expected '-' indicator",
                      "expected <block end>", "could not find expected ':'")
    ):  # fmt: skip
        return "; check the indentation: indent with spaces, the same amount at each level"
    return ""


def load_yaml_text(text: str, file: str) -> Document:
    try:
        nodes = list(yaml.compose_all(text, Loader=_Loader))
    except RecursionError:  # the pure-Python composer (no libyaml) recurses per level
        raise SpecError(
            [Problem(file, 1, 1, "", "values nest too deeply; a spec needs a few levels")]
        ) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        message = f"YAML syntax error: {exc.problem or exc.context}"
        if exc.context and exc.problem:
            message = f"YAML syntax error: {exc.problem} ({exc.context})"
        raise SpecError([Problem(file, line, col, "", message + _indent_hint(exc))]) from None
    except yaml.YAMLError as exc:
        raise SpecError([Problem(file, 1, 1, "", f"YAML error: {exc}")]) from None
    if not nodes or nodes[0] is None:
        raise SpecError([Problem(file, 1, 1, "", "file is empty; expected a mapping of fields")])
    if len(nodes) > 1:
        mark = nodes[1].start_mark
        raise SpecError(
            [Problem(file, mark.line + 1, 1, "", "more than one YAML document; keep one per file")]
        )
    root = nodes[0]
    walker = _Walker(file)
    data = walker.walk(root, ())
    if not isinstance(data, dict):
        kind = type(data).__name__ if data is not None else "nothing"
        raise SpecError(
            [
                Problem(
                    file,
                    root.start_mark.line + 1,
                    root.start_mark.column + 1,
                    "",
                    f"expected a mapping of fields at the top level, found {kind}",
                )
            ]
        )
    return Document(file, data, walker.positions)
