"""`bakery serve`: `bakery lookup --json` over HTTP, for the developers of the APIs that
read the per-outcode files, against a local bake (or an S3-compatible endpoint).

GET /postcode/<postcode> answers lookup's JSON document (bakery.democracy_club.lookup
.answer: the same code, so the same answer); GET /address/<uprn> the same document
with only that address. A path is built from a postcode only after it matched the UK
postcode pattern, and outcode_files reads only regular files inside the store, so no
request reads a file outside it. FastAPI writes the OpenAPI document (/openapi.json).

fastapi and uvicorn are imported inside the command, so `bakery validate` stays fast.
"""

from __future__ import annotations

import re
import sys
import threading
import time
from typing import Annotated, Any

import typer

from bakery.cli.common import EXIT_USAGE, EnvOption, app, load_plan
from bakery.cli.local_options import LookupEndpointOption, StoreOption, open_store
from bakery.democracy_club.postcodes import is_postcode, normalise_postcode

UPRN = re.compile(r"^[0-9]{1,12}$")  # AddressBase UPRNs: up to 12 digits
# What normalise_postcode + is_postcode accept, as the OpenAPI document says it
POSTCODE_PATTERN = r"^ *[A-Za-z]{1,2}[0-9][A-Za-z0-9]? *[0-9][A-Za-z]{2} *$"
NOT_FOUND = {"unknown outcode", "unknown postcode"}


LISTING_SECONDS = 2.0  # how long a listing of the store is reused


def cache_listings(store: Any) -> Any:
    """The store, its listings reused for LISTING_SECONDS: lookup lists the export's
    folder on each answer (is anything baked? an unfinished publish?), a walk of every
    outcode file that would be most of an answer's time. A new bake shows within
    LISTING_SECONDS; the files themselves are read on each request. (The instance's
    method is replaced, not wrapped in a proxy: journal_view tells stores by class.)"""
    lists: dict[str, tuple[float, list[str]]] = {}
    lock = threading.Lock()
    listing = store.list

    def cached(prefix: str) -> list[str]:
        now = time.monotonic()
        with lock:
            hit = lists.get(prefix)
        if hit is not None and now - hit[0] < LISTING_SECONDS:
            return hit[1]
        found = listing(prefix)
        with lock:
            lists[prefix] = (now, found)
        return found

    setattr(store, "list", cached)  # noqa: B010 - mypy refuses assigning to a method
    return store


class Lookups:
    """The store and plan a server answers from, and the UPRN -> postcode index that
    /address needs (built on its first use: lookup reads by postcode)."""

    def __init__(self, target: Any, plan: Any, step: Any):
        self.target, self.plan, self.step = cache_listings(target), plan, step
        self._postcodes: dict[str, str] | None = None
        self._lock = threading.Lock()

    def postcode(self, normal: str) -> dict[str, Any]:
        from bakery.democracy_club.lookup import answer

        return answer(self.target, self.plan, self.step, normal)[0]

    def postcode_of(self, uprn: str) -> str | None:
        with self._lock:
            if self._postcodes is None:
                self._postcodes = self._index()
        return self._postcodes.get(uprn)

    def _index(self) -> dict[str, str]:
        from bakery.democracy_club import lookup_boundary_changes, outcode_files
        from bakery.engine import journal_view

        found: dict[str, str] = {}
        steps = [self.step, lookup_boundary_changes.boundary_export(self.plan)]
        for step in [s for s in steps if s is not None]:
            location = journal_view.resolve(self.target, self.plan, step.location).location
            for uri in self.target.list(location):
                if not uri.endswith(".parquet"):
                    continue
                data = outcode_files.read_bytes(self.target, uri, step)
                if data is None:
                    continue
                table = outcode_files.read_table(data, uri, self.plan, step, ["uprn", "postcode"])
                if table.num_columns:
                    uprns = table.column("uprn").to_pylist()
                    codes = table.column("postcode").to_pylist()
                    for uprn, code in zip(uprns, codes, strict=True):
                        found.setdefault(uprn, code)
        return found


def make_app(lookups: Lookups) -> Any:
    """The FastAPI application answering from `lookups`."""
    # Path as a default, not in Annotated: these annotations are strings (from
    # __future__), which FastAPI resolves in the module, where Path is not imported.
    from fastapi import FastAPI, Path
    from fastapi.responses import JSONResponse
    from pydantic import BaseModel, ConfigDict

    from bakery.democracy_club.lookup import NothingBaked
    from bakery.democracy_club.outcode_files import OutcodeFileProblem
    from bakery.engine.publish import PublishFailed

    class Address(BaseModel):
        model_config = ConfigDict(extra="allow")
        uprn: str | None
        address: str | None
        ballot_ids: list[str | None]
        boundary_reviews: list[dict[str, Any]] | None = None

    class Answer(BaseModel):
        """`bakery lookup --json`'s document."""

        model_config = ConfigDict(extra="allow")
        postcode: str
        outcode: str
        file: str
        status: str
        addresses: list[Address]
        boundary_changes_file: str | None = None
        unfinished_publish: str | None = None

    class Problem(BaseModel):
        model_config = ConfigDict(extra="allow")
        error: str | None = None
        detail: Any = None
        status: str | None = None

    api = FastAPI(
        title="bakery serve",
        version="1",
        description="The answers of `bakery lookup --json`, from the per-outcode files.",
    )
    common: dict[int | str, dict[str, Any]] = {
        400: {"model": Problem, "description": "not a UK postcode / UPRN"},
        404: {"model": Problem, "description": "unknown postcode, outcode or UPRN"},
        500: {"model": Problem, "description": "a file of the store cannot be trusted"},
        503: {"model": Problem, "description": "nothing baked in the store yet"},
    }

    def problem(code: int, message: str, extra: dict[str, Any] | None = None) -> Any:
        return JSONResponse({**(extra or {}), "error": message}, status_code=code)

    def answered(normal: str, only: str | None = None) -> Any:
        try:
            out = lookups.postcode(normal)
        except NothingBaked:
            return problem(503, f"nothing is baked in {lookups.target.description} yet")
        except (OutcodeFileProblem, PublishFailed) as exc:
            return problem(500, str(exc))
        if only is not None:
            out["addresses"] = [a for a in out["addresses"] if a["uprn"] == only]
            if not out["addresses"]:
                return problem(404, f"no address with UPRN {only}", {"status": "unknown uprn"})
        return JSONResponse(out, status_code=404 if out["status"] in NOT_FOUND else 200)

    @api.get("/postcode/{postcode}", response_model=Answer, responses=common)
    def by_postcode(
        postcode: str = Path(
            description="A full UK postcode, any case and spacing.",
            # documented, not enforced: a postcode that does not match is a 400 of ours
            json_schema_extra={"pattern": POSTCODE_PATTERN},
        ),
    ) -> Any:
        normal = normalise_postcode(postcode)
        if not is_postcode(normal):
            return problem(400, "not a UK postcode (e.g. CB1 9FN)", {"status": "error"})
        return answered(normal)

    @api.get("/address/{uprn}", response_model=Answer, responses=common)
    def by_uprn(
        uprn: str = Path(
            description="A UPRN: up to 12 digits.", json_schema_extra={"pattern": UPRN.pattern}
        ),
    ) -> Any:
        if not UPRN.fullmatch(uprn):
            return problem(400, "not a UPRN (1 to 12 digits)", {"status": "error"})
        try:
            normal = lookups.postcode_of(uprn)
        except (OutcodeFileProblem, PublishFailed) as exc:
            return problem(500, str(exc))
        if normal is None:
            return problem(404, f"no address with UPRN {uprn}", {"status": "unknown uprn"})
        return answered(normal, uprn)

    return api


def load(env: str, store: Any, s3_endpoint: str | None) -> Lookups:
    """The plan's per-outcode export and the store, as `bakery lookup` opens them."""
    from bakery.cli.local_options import fail
    from bakery.democracy_club.lookup import export_step

    plan = load_plan(env, check_sql=False)
    step = export_step(plan)
    if step is None:
        fail(False, "no layer exports per-outcode files (export_by_key with key: outcode)",
             EXIT_USAGE)  # fmt: skip
    return Lookups(open_store(store, s3_endpoint, plan, create=False), plan, step)


@app.command()
def serve(
    env: EnvOption = "development",
    store: StoreOption = None,
    s3_endpoint: LookupEndpointOption = None,
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="TCP port.")] = 8000,
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on (loopback unless you say so).")
    ] = "127.0.0.1",
) -> None:
    """Answer GET /postcode/<postcode> and GET /address/<uprn> over HTTP with what
    `bakery lookup --json` prints (OpenAPI at /openapi.json). Runs until interrupted."""
    import uvicorn

    api = make_app(load(env, store, s3_endpoint))
    print(f"bakery serve: http://{host}:{port}/postcode/<postcode> (Ctrl-C stops)",
          file=sys.stderr)  # fmt: skip
    uvicorn.run(api, host=host, port=port, log_level="warning")
