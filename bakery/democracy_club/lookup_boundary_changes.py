"""`bakery lookup`: the boundary changes of each address, next to its ballots.

A per-outcode export (export_by_key on `outcode`) whose files carry a `boundary_reviews`
column is read the way the APIs read it: each element a JSON object text
(boundary_review_id, boundary_review_details, changes). lookup's ballots come from the
other per-outcode export; these functions add the reviews to what it found.
"""

from __future__ import annotations

import json
from typing import Any

COLUMN = "boundary_reviews"
NEEDS = ["uprn", "address", "postcode", COLUMN]  # the columns lookup reads


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


def find(
    store: Any, plan: Any, outcode: str, postcode: str
) -> tuple[str, dict[str, tuple[Any, list]]] | None:
    """(file, uprn -> (address, parsed reviews)) at the postcode; None when no layer
    exports reviews or that layer was not baked.

    An outcode without a file (or with the empty file) gives no reviews for any address.
    The file is read as lookup reads the ballots (regular files only, its schema checked
    against the export's contract, through an unfinished publish's journal); raises
    OutcodeFileProblem for a file it cannot trust.
    """
    from bakery.democracy_club import outcode_files
    from bakery.engine import journal_view

    step = boundary_export(plan)
    if step is None:
        return None
    location = journal_view.resolve(store, plan, step.location).location
    if not store.list(location):
        return None
    uri = f"{location}{outcode}.parquet"
    found: dict[str, tuple[Any, list]] = {}
    data = outcode_files.read_bytes(store, uri, step)
    if data is None:
        return f"{step.location}{outcode}.parquet", found
    table = outcode_files.read_table(data, uri, plan, step, NEEDS)
    if table.num_columns:
        for row in table.to_pylist():
            if row.get("postcode") == postcode:
                found[row["uprn"]] = (row.get("address"), _reviews(row, uri, step))
    return f"{step.location}{outcode}.parquet", found


def _reviews(row: dict[str, Any], uri: str, step: Any) -> list[dict[str, Any]]:
    """The row's reviews, each a JSON object, or OutcodeFileProblem naming the UPRN."""
    from bakery.democracy_club.outcode_files import REWRITE, OutcodeFileProblem, shown

    out = []
    for text in row.get(COLUMN) or []:
        try:
            review = json.loads(text) if text is not None else None
        except ValueError:
            review = None
        if not isinstance(review, dict):
            raise OutcodeFileProblem(
                f"the outcode file {uri} has a {COLUMN} element that is not a JSON object "
                f"(uprn {shown(row.get('uprn'))})",
                REWRITE,
                step,
            )
        out.append(review)
    return out


def add(out: dict[str, Any], found: tuple[str, dict[str, tuple[Any, list]]] | None) -> None:
    """Add `boundary_reviews` to each address of lookup's result (and the file read)."""
    if found is None:
        return
    uri, by_uprn = found
    out["boundary_changes_file"] = uri
    for address in out.get("addresses", []):
        address[COLUMN] = by_uprn.pop(address["uprn"], (None, []))[1]
    # Addresses the ballots file does not list (an outcode with no elections has an empty
    # ballots file) still show their boundary changes.
    for uprn, (text, reviews) in sorted(by_uprn.items(), key=lambda item: str(item[0])):
        out.setdefault("addresses", []).append(
            {"uprn": uprn, "address": text, "ballot_ids": [], COLUMN: reviews}
        )


def lines(address: dict[str, Any]) -> list[str]:
    """One line per change of one address: review, division type, old -> new, scenario."""
    out = []
    for review in address.get(COLUMN) or []:
        details = review.get("boundary_review_details")
        details = details if isinstance(details, dict) else {}
        who = details.get("organisation_name") or f"review {review.get('boundary_review_id')}"
        when = details.get("effective_date")
        head = f"{who} (review {review.get('boundary_review_id')}"
        head += f", effective {when})" if when else ")"
        changes = review.get("changes")
        for change in changes if isinstance(changes, list) else []:
            if not isinstance(change, dict):
                out.append(f"{head}: {json.dumps(change)}")
                continue
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

    from bakery.democracy_club.outcode_files import shown

    table = Table("uprn", "boundary changes", box=None)
    for address in out.get("addresses", []):
        # Text, not markup: names from EveryElection may hold brackets; control
        # characters escaped, one line per change
        text = Text("\n".join(shown(line) for line in lines(address)) or "(none)")
        table.add_row(Text(shown(address["uprn"])), text)
    console.print(table)
