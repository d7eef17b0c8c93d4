"""`bakery lookup`: the boundary changes of each address, next to its ballots.

A per-outcode export (export_by_key on `outcode`) whose files carry a `boundary_reviews`
column is read the way the APIs read it: each element a JSON object text
(boundary_review_id, boundary_review_details, changes). lookup's ballots come from the
other per-outcode export; these functions add the reviews to what it found.
"""

from __future__ import annotations

import io
import json
from typing import Any

COLUMN = "boundary_reviews"


def is_boundary_export(step: Any) -> bool:
    """Whether an export_by_key step writes the boundary-review files."""
    return step.kind == "export_by_key" and COLUMN in (step.spec.columns or [])


def boundary_export(plan: Any) -> Any:
    """The per-outcode export of boundary reviews, or None when no layer has one."""
    for layer in plan.layers:
        for step in layer.walk():
            if is_boundary_export(step) and step.spec.key == "outcode":
                return step
    return None


def read(
    store: Any, step: Any, outcode: str, postcode: str
) -> tuple[str, dict[str, tuple[str, list]]] | None:
    """(file, uprn -> (address, parsed reviews)) at the postcode; None when that layer was
    not baked.

    An outcode without a file (or with the empty file) gives no reviews for any address.
    """
    import pyarrow.parquet as pq

    if not store.list(step.location):
        return None
    uri = f"{step.location}{outcode}.parquet"
    found: dict[str, tuple[str, list]] = {}
    if store.exists(uri):
        table = pq.read_table(io.BytesIO(store.read_bytes(uri)))
        if table.num_columns:
            for row in table.to_pylist():
                if row.get("postcode") == postcode:
                    reviews = [json.loads(text) for text in row.get(COLUMN) or []]
                    found[row["uprn"]] = (row.get("address"), reviews)
    return uri, found


def add(out: dict[str, Any], store: Any, plan: Any, outcode: str, postcode: str) -> None:
    """Add `boundary_reviews` to each address of lookup's result (and the file read)."""
    step = boundary_export(plan)
    if step is None:
        return
    result = read(store, step, outcode, postcode)
    if result is None:
        return
    uri, found = result
    out["boundary_changes_file"] = uri
    for address in out.get("addresses", []):
        address[COLUMN] = found.pop(address["uprn"], (None, []))[1]
    # Addresses the ballots file does not list (an outcode with no elections has an empty
    # ballots file) still show their boundary changes.
    for uprn, (text, reviews) in sorted(found.items()):
        out.setdefault("addresses", []).append(
            {"uprn": uprn, "address": text, "ballot_ids": [], COLUMN: reviews}
        )


def lines(address: dict[str, Any]) -> list[str]:
    """One line per change of one address: review, division type, old -> new, scenario."""
    out = []
    for review in address.get(COLUMN) or []:
        details = review.get("boundary_review_details") or {}
        who = details.get("organisation_name") or f"review {review.get('boundary_review_id')}"
        when = details.get("effective_date")
        head = f"{who} (review {review.get('boundary_review_id')}"
        head += f", effective {when})" if when else ")"
        for change in review.get("changes") or []:
            out.append(
                f"{head}: {change.get('division_type')} {change.get('old_division_name')} "
                f"-> {change.get('new_division_name')} ({change.get('change_scenario')})"
            )
    return out


def render(console: Any, out: dict[str, Any]) -> None:
    """The boundary changes under lookup's ballots table (nothing when not baked)."""
    if "boundary_changes_file" not in out:
        return
    from rich.table import Table
    from rich.text import Text

    table = Table("uprn", "boundary changes", box=None)
    for address in out.get("addresses", []):
        # Text, not markup: names from EveryElection may hold brackets.
        text = Text("\n".join(lines(address)) or "(none)")
        table.add_row(Text(str(address["uprn"])), text)
    console.print(table)
