"""`bakery lookup POSTCODE`: the addresses at a postcode and their ballots, read from
the per-outcode file the way Democracy Club's APIs read it (and, when a layer exports
them, the boundary changes in the outcode).

pyarrow is imported inside the command, so `bakery validate` stays fast.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from bakery.cli.common import (
    EXIT_FAILED,
    EXIT_USAGE,
    EnvOption,
    JsonOption,
    app,
    end_process_after_command,
    load_plan,
)
from bakery.cli.local_options import (
    LookupEndpointOption,
    StoreOption,
    fail,
    open_store,
    s3_errors,
)
from bakery.cli.progress import make_console
from bakery.democracy_club.postcodes import is_postcode, normalise_postcode
from bakery.errors import BakeryError

NEEDS = ["uprn", "address", "postcode", "ballot_ids"]  # the columns lookup reads


def _lookup_fail(
    as_json: bool, message: str, code: int, out: dict[str, Any] | None = None
) -> NoReturn:
    fail(as_json, message, code, {**(out or {}), "status": "error"})


def _shown(text: str) -> str:
    """The user's input on one line: control characters escaped, the rest as typed."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _export_step(plan: Any) -> Any:
    from bakery.democracy_club import lookup_boundary_changes

    for layer in plan.layers:
        for step in layer.walk():
            if (
                step.kind == "export_by_key"
                and step.spec.key == "outcode"
                and not lookup_boundary_changes.is_boundary_export(step)
            ):
                return step
    return None


def export_step(plan: Any) -> Any:
    """The per-outcode export of ballots lookup reads (None when no layer has one)."""
    return _export_step(plan)


class NothingBaked(BakeryError):
    """The store holds no per-outcode file yet for this env."""


def base_answer(step: Any, normal: str) -> dict[str, Any]:
    """What an answer says before anything is read: the postcode, outcode and file."""
    outcode = normal.split(" ")[0]
    return {"postcode": normal, "outcode": outcode, "file": f"{step.location}{outcode}.parquet"}


def answer(target: Any, plan: Any, step: Any, normal: str) -> tuple[dict[str, Any], str]:
    """lookup's answer for a normalised postcode (the `--json` document) and its one-line
    summary; `bakery serve` answers with the same document.

    Raises NothingBaked, OutcodeFileProblem, PublishFailed, and S3 errors (the caller
    wraps them with s3_errors).
    """
    from bakery.democracy_club import lookup_boundary_changes, outcode_files
    from bakery.engine import journal_view

    out = base_answer(step, normal)
    outcode, uri = out["outcode"], out["file"]
    # an interrupted publish: the data its journal says is published
    view = journal_view.resolve(target, plan, step.location)
    if not target.list(view.location):
        raise NothingBaked(step.location)
    read_uri = f"{view.location}{outcode}.parquet"
    data = outcode_files.read_bytes(target, read_uri, step)
    if view.journal is not None:
        out["unfinished_publish"] = view.journal
    table = None
    if data is not None:
        table = outcode_files.read_table(data, read_uri, plan, step, NEEDS)
    boundary = lookup_boundary_changes.find(target, plan, outcode, normal)
    if table is None:
        out.update(status="unknown outcode", addresses=[])
        message = f"{normal}: unknown outcode {outcode} (no file {uri})"
    elif table.num_columns == 0:
        out.update(status="no elections", addresses=[])
        message = f"{normal}: no elections in outcode {outcode}"
    else:
        rows = [r for r in table.to_pylist() if r.get("postcode") == normal]
        out.update(
            status="ok" if rows else "unknown postcode",
            addresses=[
                {
                    "uprn": r.get("uprn"),
                    "address": r.get("address"),
                    "ballot_ids": list(r.get("ballot_ids") or []),
                }
                for r in rows
            ],
        )
        message = (
            f"{normal}: {len(rows)} address{'es' if len(rows) != 1 else ''}"
            if rows
            else f"{normal}: no address with this postcode in outcode {outcode}"
        )
    lookup_boundary_changes.add(out, boundary)
    return out, message


def _bake_hint(
    plan: Any, step: Any, env: str, store: str | Path | None, endpoint: str | None
) -> str:
    """The command that bakes the per-outcode files into the store lookup reads."""
    layer = next(
        (ly.name for ly in plan.layers if any(s is step for s in ly.walk())), "current_elections"
    )
    parts = ["uv run bakery bake", layer, "--with-upstream --sample"]
    if env != "development":
        parts.append(f"--env {env}")
    if store is not None and not endpoint:
        parts.append(f"--store {store}")
    if endpoint:
        parts.append(f"--s3-endpoint {endpoint}")
    return " ".join(parts)


@app.command()
def lookup(
    postcode: Annotated[
        str, typer.Argument(help="A full UK postcode, any case and spacing (e.g. cb19fn).")
    ],
    env: EnvOption = "development",
    store: StoreOption = None,
    s3_endpoint: LookupEndpointOption = None,
    as_json: JsonOption = False,
) -> None:
    """Print the addresses at a postcode and their ballots, read from the per-outcode file
    the way the APIs read it.

    Exit 0 when the lookup ran, whatever it found (addresses, "no elections",
    "unknown postcode" or "unknown outcode" when other outcodes have files); 1 when
    nothing is baked in the store for this env yet, or the S3 endpoint cannot be
    reached; 2 when the argument is not a full UK postcode, or on other usage errors.
    """
    from bakery.democracy_club import lookup_boundary_changes, outcode_files
    from bakery.engine.publish import PublishFailed

    end_process_after_command()
    plan = load_plan(env, check_sql=False)  # lookup reads files: the queries are not run
    step = _export_step(plan)
    if step is None:
        _lookup_fail(
            as_json,
            "no layer exports per-outcode files (export_by_key with key: outcode)",
            EXIT_USAGE,
        )
    normal = normalise_postcode(postcode)
    if not (postcode.isascii() and is_postcode(normal)):
        _lookup_fail(
            as_json,
            f"'{_shown(postcode)}' does not look like a UK postcode (e.g. CB1 9FN)",
            EXIT_USAGE,
        )
    target = open_store(store, s3_endpoint, plan, create=False, as_json=as_json)
    url = getattr(target, "endpoint", None)
    out = base_answer(step, normal)

    def hint(export: Any) -> str:
        return _bake_hint(plan, export, env, store, s3_endpoint)

    try:
        with s3_errors(url, as_json=as_json):
            out, message = answer(target, plan, step, normal)
    except NothingBaked:
        _lookup_fail(
            as_json,
            f"nothing is baked for env {env} in store {target.description} "
            f"yet (no files at {step.location}); bake first: {hint(step)}",
            EXIT_FAILED,
            out,
        )
    except outcode_files.OutcodeFileProblem as exc:
        _lookup_fail(as_json, f"{exc}; {exc.todo}: {hint(exc.step)}", EXIT_FAILED, out)
    except PublishFailed as exc:
        _lookup_fail(as_json, str(exc), EXIT_FAILED, out)
    if "unfinished_publish" in out:
        print(
            f"bakery: note: reading through the unfinished publish {out['unfinished_publish']} "
            "(a bake was interrupted while publishing; the next bake finishes it)",
            file=sys.stderr,
        )
    if as_json:
        print(json.dumps(out, indent=2))
        return
    from rich.table import Table

    shown = outcode_files.shown
    console = make_console(stderr=False, markup=False)  # data is printed as it is
    console.print(message, soft_wrap=True)
    if out["addresses"]:
        table_out = Table("uprn", "address", "ballots", box=None)
        for row in out["addresses"]:
            ballots = ", ".join("(null)" if b is None else shown(b) for b in row["ballot_ids"])
            table_out.add_row(
                shown(row["uprn"] or ""), shown(row["address"] or ""), ballots or "(none)"
            )
        console.print(table_out)
    lookup_boundary_changes.render(console, out)
