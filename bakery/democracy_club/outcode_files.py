"""Reading one per-outcode file for `bakery lookup`, trusting nothing in it.

- Locally only a regular file inside the store is opened: a FIFO would block the
  reader forever, a device never ends, and a directory is no file to read.
- Its schema is checked against the product contract of the export that writes it
  (the export_by_key step's `contract`, or else the exported table's column types, from
  the plan): a `ballot_ids` stored as a string would otherwise be shown letter by
  letter, and an int one would crash the display. Only columns the file has are
  compared (the running system's older files lack two), but the ones lookup reads must
  be there.

Each problem is an OutcodeFileProblem: one line saying what the file is, and `todo`,
what to do before baking again (the caller adds the bake command).
"""

from __future__ import annotations

import io
import os
from typing import Any

from bakery import regular_files
from bakery.errors import BakeryError
from bakery.lambdas.s3uri import split as split_uri

REWRITE = "bake again to rewrite it"
REMOVE = "remove it, then bake again"


class OutcodeFileProblem(BakeryError):
    def __init__(self, message: str, todo: str, step: Any = None):
        super().__init__(message)
        self.todo = todo
        self.step = step  # the export that writes the file (for the bake command)


def contract(plan: Any, step: Any) -> dict[str, str]:
    """Column -> Glue/Hive type of every non-empty file the export writes."""
    if step.spec.contract is not None:
        return {c.name: c.type for c in step.spec.contract}
    types = {c.name: c.type for c in plan.table(step.reads[0]).all_columns}
    return {name: types[name] for name in step.spec.columns if name in types}


def read_bytes(store: Any, uri: str, step: Any) -> bytes | None:
    """The file's bytes, None when there is none."""
    if not store.is_local:
        return store.read_bytes(uri) if store.exists(uri) else None  # objects are files
    from bakery.store_paths import OutsideStore

    bucket, key = split_uri(uri)
    path = store.root.joinpath(bucket, key)
    try:
        store.path(uri)  # proves where it leads: inside the store
    except OutsideStore:
        real = os.path.realpath(path)
        raise OutcodeFileProblem(
            f"the outcode file {uri} is a link to {real}, outside the store ({path})", REMOVE, step
        ) from None
    try:
        regular_files.check(path)  # what it is, before anything opens it
        return regular_files.read(path)
    except FileNotFoundError:
        return None
    except regular_files.NotRegular as exc:
        raise OutcodeFileProblem(f"the outcode file {uri} {exc} ({path})", REMOVE, step) from None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise OutcodeFileProblem(
            f"the outcode file {uri} cannot be read ({reason}: {path})", REWRITE, step
        ) from None


def read_table(data: bytes, uri: str, plan: Any, step: Any, needs: list[str]) -> Any:
    """The file as a pyarrow Table, its schema checked; `needs`: the columns read."""
    import pyarrow.parquet as pq

    try:
        # one thread, no pre-buffering: the read starts none of Arrow's pool threads
        table = pq.read_table(io.BytesIO(data), use_threads=False, pre_buffer=False)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several kinds for one damage
        text = str(exc).strip()
        reason = text.splitlines()[0] if text else type(exc).__name__
        raise OutcodeFileProblem(
            f"the outcode file {uri} is damaged ({reason})", REWRITE, step
        ) from None
    if table.num_columns:  # no columns: the "no row has a value" file
        problem = schema_problem(table.schema, contract(plan, step), needs)
        if problem:
            raise OutcodeFileProblem(
                f"the outcode file {uri} does not match the product contract of "
                f"{step.qualified_id} ({problem})",
                REWRITE,
                step,
            )
    return table


def schema_problem(schema: Any, types: dict[str, str], needs: list[str]) -> str | None:
    """The first way `schema` breaks the contract `types`, or None."""
    from bakery import hive_types

    for name in needs:
        if schema.get_field_index(name) < 0:
            return f"it has no column {name}"
    for field in schema:
        want = types.get(field.name)
        if want is not None and not hive_types.same_arrow_type(want, field.type):
            return f"{field.name} is {_arrow_text(field.type)}, the contract says {want}"
    return None


def _arrow_text(arrow: Any) -> str:
    """An Arrow type without the list item's name (`element` or `item`, by writer)."""
    import pyarrow as pa

    if pa.types.is_list(arrow) or pa.types.is_large_list(arrow):
        return f"list<{_arrow_text(arrow.value_type)}>"
    return str(arrow)


def shown(text: object) -> str:
    """A value for a terminal: control and format characters (ESC, CSI, BEL, CR, bidi
    overrides) escaped as \\x1b, \\u202e..., so data cannot move the cursor, retitle the
    window or reorder what is shown; the rest as it is."""
    import unicodedata

    return "".join(
        repr(c)[1:-1] if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") else c
        for c in str(text)
    )
