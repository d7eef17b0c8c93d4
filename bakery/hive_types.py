"""Glue/Hive column types: the subset Athena reads, checked by a small parser."""

from __future__ import annotations

import re

PRIMITIVES = {
    "string", "boolean", "tinyint", "smallint", "int", "integer", "bigint", "float",
    "double", "date", "timestamp", "binary",
}  # fmt: skip
_TOKEN = re.compile(r"\s*(<|>|,|:|\(|\)|[a-z_][a-z0-9_]*|\d+)")


def _tokens(text: str) -> list[str]:
    out, pos = [], 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if not m:
            raise ValueError(f"unexpected {text[pos:].strip()[:10]!r} in type {text!r}")
        out.append(m.group(1))
        pos = m.end()
    return out


def _parse(tokens: list[str], i: int, whole: str) -> int:
    if i >= len(tokens):
        raise ValueError(f"type {whole!r} ends too early")
    name = tokens[i]

    def expect(tok: str, at: int) -> int:
        if at >= len(tokens) or tokens[at] != tok:
            found = tokens[at] if at < len(tokens) else "end"
            raise ValueError(f"expected {tok!r} in type {whole!r}, found {found!r}")
        return at + 1

    if name in PRIMITIVES:
        return i + 1
    if name in ("varchar", "char"):
        i = expect("(", i + 1)
        if i >= len(tokens) or not tokens[i].isdigit():
            raise ValueError(f"{name} needs a length, e.g. {name}(10)")
        return expect(")", i + 1)
    if name == "decimal":
        i = expect("(", i + 1)
        if i >= len(tokens) or not tokens[i].isdigit():
            raise ValueError("decimal needs precision and scale, e.g. decimal(10,2)")
        i += 1
        if i < len(tokens) and tokens[i] == ",":
            i += 2
        return expect(")", i)
    if name == "array":
        i = _parse(tokens, expect("<", i + 1), whole)
        return expect(">", i)
    if name == "map":
        i = _parse(tokens, expect("<", i + 1), whole)
        i = _parse(tokens, expect(",", i), whole)
        return expect(">", i)
    if name == "struct":
        i = expect("<", i + 1)
        while True:
            if i >= len(tokens) or not re.match(r"[a-z_]", tokens[i]):
                raise ValueError(f"struct field name expected in type {whole!r}")
            i = _parse(tokens, expect(":", i + 1), whole)
            if i < len(tokens) and tokens[i] == ",":
                i += 1
                continue
            return expect(">", i)
    known = ", ".join(sorted(PRIMITIVES | {"array<T>", "map<K,V>", "struct<..>", "decimal(p,s)"}))
    raise ValueError(f"unknown type {name!r} in {whole!r}; use one of: {known}")


def check(text: str) -> str:
    """Return the type normalised to lower case, or raise ValueError saying what is wrong."""
    norm = text.strip().lower()
    tokens = _tokens(norm)
    end = _parse(tokens, 0, norm)
    if end != len(tokens):
        raise ValueError(f"unexpected {tokens[end]!r} after the end of type {norm!r}")
    return norm


def is_array(text: str) -> bool:
    return text.startswith("array<")


_ARROW_PRIMITIVES = {
    "string": "string", "boolean": "bool_", "tinyint": "int8", "smallint": "int16",
    "int": "int32", "integer": "int32", "bigint": "int64", "float": "float32",
    "double": "float64", "date": "date32", "binary": "binary",
}  # fmt: skip


def same_arrow_type(hive: str, arrow: object) -> bool:
    """Whether a pyarrow type holds values of Glue type `hive` as Parquet readers see them.

    Lists compare by their value type (Athena and DuckDB name the list item differently);
    strings may be large or dictionary-encoded; timestamps of any unit; decimals exactly.
    """
    import pyarrow as pa

    text = check(hive)
    if pa.types.is_dictionary(arrow):
        arrow = arrow.value_type  # type: ignore[attr-defined]
    if text.startswith("array<"):
        if not (pa.types.is_list(arrow) or pa.types.is_large_list(arrow)):
            return False
        return same_arrow_type(text[len("array<") : -1], arrow.value_type)  # type: ignore[attr-defined]
    if text == "string" or text.startswith(("varchar", "char")):
        return pa.types.is_string(arrow) or pa.types.is_large_string(arrow)
    if text == "timestamp":
        return pa.types.is_timestamp(arrow)
    if text.startswith("decimal"):
        digits = [int(d) for d in re.findall(r"\d+", text)]
        if not pa.types.is_decimal(arrow):
            return False
        return [arrow.precision, arrow.scale][: len(digits)] == digits  # type: ignore[attr-defined]
    name = _ARROW_PRIMITIVES.get(text)
    return name is not None and arrow == getattr(pa, name)()


def type_pattern() -> str:
    """A regular expression for the JSON Schema editors use: every word of the type is a
    known type or a struct field's name (brackets are left to `check`, regular
    expressions cannot count them)."""
    known = "|".join(
        sorted(PRIMITIVES | {"array", "map", "struct", "decimal"}, key=lambda w: (-len(w), w))
    )
    return rf"^(?:\s|[<>,()]|\d+|(?:{known})(?![a-z0-9_])|[a-z_][a-z0-9_]*\s*:)+$"
