"""Twin-engine comparison: what two bakes of the same plan published, table by table
(the rows as multisets, whatever the files) and export by export (each file's rows)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _rows(files: list[Path]) -> list[tuple]:
    import pyarrow.parquet as pq

    rows: list[tuple] = []
    for f in files:
        table = pq.read_table(f)
        if not table.num_columns:
            continue
        names = sorted(table.column_names)
        for row in table.to_pylist():
            rows.append(tuple(_norm(row[n]) for n in names))
    return sorted(rows, key=repr)


def _norm(value: Any) -> Any:
    if isinstance(value, list):
        if value and isinstance(value[0], tuple):  # a map as (key, value) pairs
            return tuple(sorted(value))
        return tuple(value)
    if isinstance(value, dict):
        return tuple(sorted(value.items()))
    return value


def _data_files(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and not any(part.startswith((".", "_")) for part in p.parts[-3:])
    )


def _partition_rows(folder: Path) -> list[tuple]:
    """Rows with their key=value folders as columns (the keys are not in the files)."""
    import pyarrow.parquet as pq

    rows: list[tuple] = []
    for f in _data_files(folder):
        keys = tuple(part for part in f.relative_to(folder).parts[:-1] if "=" in part)
        table = pq.read_table(f, partitioning=None)
        names = sorted(n for n in table.column_names if "=" + n not in "".join(keys))
        for row in table.to_pylist():
            rows.append((keys, *(_norm(row[n]) for n in names)))
    return sorted(rows, key=repr)


def differences(plan: Any, left: Any, right: Any, layers: list[str]) -> list[str]:
    """Every table and export of `layers` whose rows differ between two stores."""
    import pyarrow.parquet as pq

    out = []
    for layer in plan.upstream(layers):
        for table in layer.tables:
            if table.external or table.format != "parquet":
                continue
            a, b = (_partition_rows(s.path(table.location)) for s in (left, right))
            if a != b:
                out.append(f"table {table.ref}: {len(a)} rows vs {len(b)} ({_first(a, b)})")
        for step in layer.walk():
            if step.kind != "export_by_key" or not step.location:
                continue
            fa, fb = (s.path(step.location) for s in (left, right))
            names_a = {p.name for p in _data_files(fa)}
            names_b = {p.name for p in _data_files(fb)}
            if names_a != names_b:
                out.append(f"export {step.qualified_id}: files {sorted(names_a ^ names_b)[:5]}")
            for name in sorted(names_a & names_b):
                a, b = (pq.read_table(folder / name) for folder in (fa, fb))
                # rows in file order; the schema without Trino's writer.time.zone metadata
                if not a.schema.equals(b.schema, check_metadata=False) or a != b:
                    first = _first(_rows([fa / name]), _rows([fb / name]))
                    out.append(f"export {step.qualified_id} {name}: {first}")
    return out


def _first(a: list[tuple], b: list[tuple]) -> str:
    only_a = [r for r in a if r not in b][:1]
    only_b = [r for r in b if r not in a][:1]
    return f"only left {only_a!r:.400}, only right {only_b!r:.400}"
