"""bake, sample-data, lookup: layers baked on this machine (DuckDB) against a local store.

duckdb, pyarrow and the engine are imported inside the commands, so `bakery validate`
stays fast.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from bakery.cli.common import (
    EXIT_FAILED,
    EXIT_USAGE,
    EeDsnOption,
    EnvOption,
    JsonOption,
    SampleOption,
    app,
    end_process_after_command,
    load_plan,
    unknown_layer,
    usage_error,
)

StoreOption = Annotated[
    str | None,  # not Path: Path("") is the current folder, and an empty --store is a mistake
    typer.Option(
        "--store",
        help="Folder standing in for S3: s3://BUCKET/KEY is STORE/BUCKET/KEY "
        "($BAKERY_STORE, default .bakery/store).",
        show_default=False,
    ),
]
EndpointOption = Annotated[
    str | None,
    typer.Option(
        "--s3-endpoint",
        help="Bake against this S3-compatible API (e.g. http://127.0.0.1:9000) instead of "
        "a folder ($BAKERY_S3_ENDPOINT).",
        show_default=False,
    ),
]
SampleEndpointOption = Annotated[
    str | None,
    typer.Option(
        "--s3-endpoint",
        help="Write the sample CSVs to this S3-compatible API (e.g. http://127.0.0.1:9000) "
        "instead of a folder ($BAKERY_S3_ENDPOINT); the buckets must exist.",
        show_default=False,
    ),
]
LookupEndpointOption = Annotated[
    str | None,
    typer.Option(
        "--s3-endpoint",
        help="Read the per-outcode file from this S3-compatible API (e.g. "
        "http://127.0.0.1:9000) instead of a folder ($BAKERY_S3_ENDPOINT).",
        show_default=False,
    ),
]


def _console(stderr: bool = True, *, markup: bool = True):
    """A rich console; wide enough for the tables when output is not a terminal.

    markup=False for consoles that print data (lookup): an address holding `[/]` or
    `[bold]` is text, never rich markup."""
    from rich.console import Console

    options: dict[str, Any] = {"stderr": stderr, "highlight": False}
    if not markup:
        options.update(markup=False, emoji=False)
    console = Console(**options)
    if not console.is_terminal:
        console = Console(**options, width=160)
    return console


def _fail(as_json: bool, message: str, code: int, extra: dict[str, Any] | None = None) -> NoReturn:
    """One line `bakery: error: ...` on stderr, and with --json the one JSON line on stdout
    (`ok: false`, `error`, and what the command knew so far); then exit `code`."""
    if as_json:
        print(json.dumps({**(extra or {}), "ok": False, "error": message}))
    print(f"bakery: error: {message}", file=sys.stderr)
    raise typer.Exit(code)


def _lookup_fail(
    as_json: bool, message: str, code: int, out: dict[str, Any] | None = None
) -> NoReturn:
    _fail(as_json, message, code, {**(out or {}), "status": "error"})


def _store(
    store: str | Path | None,
    endpoint: str | None,
    plan: Any = None,
    *,
    create: bool = True,
    as_json: bool = False,
):
    """--s3-endpoint, else --store, else $BAKERY_STORE, else .bakery/store in the project.

    A bad endpoint URL or a store folder that cannot be used (a file, not creatable,
    not writable) is a usage error: one line, exit 2. `create` makes the folder (bake,
    sample-data); lookup only reads, so it leaves a missing folder missing.
    """
    from bakery.store import (
        DEFAULT_STORE,
        LocalStore,
        StoreUnusable,
        check_endpoint,
        check_local_root,
        open_store,
    )

    url = endpoint or os.environ.get("BAKERY_S3_ENDPOINT")
    if url:
        source = "--s3-endpoint" if endpoint else "$BAKERY_S3_ENDPOINT"
        try:
            url = check_endpoint(url)
        except StoreUnusable as exc:
            _fail(as_json, f"{source} {url!r} is not a usable S3 endpoint: {exc}", EXIT_USAGE)
        with _s3_errors(url, as_json=as_json):
            return open_store(None, url)
    if store is not None and not str(store).strip():
        # Path("") is the current directory: an empty --store is a mistake, not a choice
        _fail(as_json, "--store is empty; give a folder, e.g. --store .bakery/store", EXIT_USAGE)
    root = store or os.environ.get("BAKERY_STORE")
    if not root:
        root = Path(plan.root) / DEFAULT_STORE if plan is not None else Path(DEFAULT_STORE)
    try:
        path = check_local_root(Path(root), create=create)
    except StoreUnusable as exc:
        _fail(as_json, f"store {root} is not a usable directory: {exc}", EXIT_USAGE)
    return LocalStore(path)


class _S3Errors:
    """Turns connection and credential errors of boto3/botocore/DuckDB httpfs into one
    line, `bakery: error: cannot reach S3 endpoint URL: reason`, and a request the
    endpoint refused (no such bucket, access denied) into `S3 endpoint URL refused the
    request: reason`; exit 1."""

    def __init__(self, url: str | None, as_json: bool = False):
        self.url = url
        self.as_json = as_json

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, exc: Any, tb: Any) -> None:
        if exc is None or not self.url or not isinstance(exc, Exception):
            return
        reason = _s3_reason(exc)
        if reason is None:
            return
        if isinstance(exc, _client_error()):
            line = f"S3 endpoint {self.url} refused the request: {reason}"
        else:
            line = f"cannot reach S3 endpoint {self.url}: {reason}"
        _fail(self.as_json, line, EXIT_FAILED)


def _client_error() -> type | tuple[()]:
    try:
        from botocore.exceptions import ClientError
    except ImportError:  # pragma: no cover - boto3 is a dependency
        return ()
    return ClientError


def _s3_errors(url: str | None, *, as_json: bool = False) -> _S3Errors:
    return _S3Errors(url, as_json)


def _s3_reason(exc: Exception) -> str | None:
    """A short reason for an S3 access error, or None when exc is not one."""
    try:
        from botocore import exceptions as bx
    except ImportError:  # pragma: no cover - boto3 is a dependency
        bx = None
    if bx is not None:
        if isinstance(exc, bx.EndpointConnectionError | bx.ConnectTimeoutError):
            return "could not connect"
        if isinstance(exc, bx.NoCredentialsError):
            return "no AWS credentials (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
        if isinstance(exc, bx.ClientError):
            err = exc.response.get("Error", {})
            code = err.get("Code") or "error"
            text = err.get("Message") or ""
            return f"{code}: {text}".rstrip(": ") if text else str(code)
        if isinstance(exc, bx.BotoCoreError):
            return _first_line(exc)
    mod = type(exc).__module__ or ""
    if mod.startswith("duckdb") and type(exc).__name__ in ("HTTPException", "IOException"):
        return _first_line(exc)
    return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class _RichReporter:
    """Progress on stderr: a spinner per running step, one line per finished step."""

    def __init__(self, quiet: bool = False):
        self.console = _console()
        self.quiet = quiet
        self.status: Any = None
        self.started: list[str] = []  # layers in the order they started
        self.published: set[str] = set()  # layers whose staged tables were published

    def layer(self, layer: Any) -> None:
        self.started.append(layer.name)
        self.console.print(f"[bold cyan]layer {layer.name}[/]")

    def start(self, step: Any) -> None:
        if self.console.is_terminal:
            self.status = self.console.status(f"  {step.id} ({step.kind}) ...")
            self.status.start()

    def _stop(self) -> None:
        if self.status is not None:
            self.status.stop()
            self.status = None

    def done(self, result: Any) -> None:
        self._stop()
        mark = "[green]ok[/]" if result.ok else "[red]FAILED[/]"
        parts = [f"  {mark} {result.id} [dim]({result.kind})[/] {result.seconds:.2f}s"]
        if result.rows is not None:
            parts.append(f"{result.rows:,} rows")
        if result.files:
            parts.append(f"{result.files:,} files")
        if result.note and result.ok:
            parts.append(f"[dim]{result.note}[/]")
        self.console.print("  ".join(parts))

    def note(self, text: str) -> None:
        self._stop()
        if text.startswith("published ") and self.started:
            self.published.add(self.started[-1])
        self.console.print(f"  [dim]{text}[/]")

    def layer_status(self, order: list[str], ok: bool) -> dict[str, list[str]]:
        """Which layers were baked and published, which failed, which never started.

        Layers run one after another, so every started layer but the last finished; the
        last one finished only when the whole bake did."""
        done = self.started if ok else self.started[:-1]
        failed = [] if ok else self.started[-1:]
        return {
            "baked": list(done),
            "failed": failed,
            "failed_after_publishing": [n for n in failed if n in self.published],
            "not_started": [n for n in order if n not in self.started],
        }


def _status_line(status: dict[str, list[str]], verb: str = "failed") -> str:
    """`baked and published: a; failed: b (published data unchanged); not started: c`."""

    def names(items: list[str]) -> str:
        return ", ".join(items) or "none"

    failed = names(status["failed"])
    if status["failed"]:
        if status.get("unfinished_publish"):
            failed += " (its publish stopped half-way; the next bake finishes it)"
        elif status["failed_after_publishing"]:
            failed += " (it was published, then failed)"
        else:
            failed += " (its published data is unchanged)"
    return (
        f"baked and published: {names(status['baked'])}; {verb}: {failed}; "
        f"not started: {names(status['not_started'])}"
    )


def _summary(result: Any, status: dict[str, list[str]] | None = None) -> None:
    from rich.markup import escape
    from rich.table import Table

    console = _console()
    steps = Table("layer", "step", "kind", "rows", "files", "seconds", box=None, title="steps")
    for st in result.steps:
        steps.add_row(
            st.layer,
            st.id,
            st.kind,
            "" if st.rows is None else f"{st.rows:,}",
            "" if not st.files else f"{st.files:,}",
            f"{st.seconds:.2f}",
        )
    if result.steps:
        console.print(steps)
    if result.tables:
        tables = Table("table", "rows", "files", "location", box=None, title="published tables")
        for ref, info in result.tables.items():
            tables.add_row(ref, f"{info['rows']:,}", f"{info['files']:,}", info["location"])
        console.print(tables)
    if result.ok or status is None:
        verdict = "[green]baked[/]" if result.ok else "[red]failed[/]"
        console.print(
            f"{verdict} {', '.join(result.layers)} in {result.seconds:.1f}s "
            f"(store {escape(result.store)})",
            soft_wrap=True,
        )
    else:
        console.print(
            f"[red]failed[/] after {result.seconds:.1f}s (store {escape(result.store)}): "
            f"{escape(_status_line(status))}",
            soft_wrap=True,
        )


@app.command()
def bake(
    layers: Annotated[list[str], typer.Argument(help="Layers to bake.", show_default=False)],
    env: EnvOption = "development",
    store: StoreOption = None,
    s3_endpoint: EndpointOption = None,
    with_upstream: Annotated[
        bool, typer.Option("--with-upstream", help="Bake the layers these depend on first.")
    ] = False,
    sample: SampleOption = False,
    ee_dsn: EeDsnOption = None,
    as_json: JsonOption = False,
) -> None:
    """Bake layers locally on DuckDB against a folder standing in for S3 (or an S3 endpoint).

    Every table a layer writes is staged and published only when all its checks pass;
    a failed or killed bake leaves published data as it was. Exit 0 ok, 1 when a step
    or check fails, 2 on usage errors.
    """
    end_process_after_command()
    plan = load_plan(env)
    if message := unknown_layer(plan, layers):
        _fail(as_json, message, EXIT_USAGE)
    threads, memory_limit = _engine_settings(as_json)
    logging.basicConfig(level=logging.WARNING, format="  warning: %(message)s", stream=sys.stderr)
    from bakery.engine import BakeError
    from bakery.engine import bake as run_bake

    target = _store(store, s3_endpoint, plan, as_json=as_json)
    url = getattr(target, "endpoint", None)
    order = [
        ly.name
        for ly in (
            plan.upstream(layers)
            if with_upstream
            else [ly for ly in plan.layers if ly.name in set(layers)]
        )
    ]
    reporter = _RichReporter()
    started = time.perf_counter()
    try:
        with _s3_errors(url, as_json=as_json):
            if sample:
                _seed_missing(plan, target, order, reporter, url)
            result = run_bake(
                plan,
                layers,
                target,
                with_upstream=with_upstream,
                reporter=reporter,
                ee_dsn=ee_dsn,
                s3_endpoint=url,
                threads=threads,
                memory_limit=memory_limit,
            )
    except BakeError as exc:
        status = reporter.layer_status(order, ok=False)
        if exc.result is not None and exc.result.unfinished_publish:
            status["failed_after_publishing"] = list(status["failed"])
            status["unfinished_publish"] = list(status["failed"])
        if as_json:
            summary_json = exc.result.to_dict() if exc.result is not None else {"ok": False}
            print(json.dumps({**summary_json, "error": str(exc), "layer_status": status}))
        elif exc.result is not None:
            _summary(exc.result, status)
        print(f"bakery: error: {exc}", file=sys.stderr)
        raise typer.Exit(EXIT_FAILED) from None
    except KeyboardInterrupt:
        reporter._stop()
        status = reporter.layer_status(order, ok=False)
        line = (
            f"interrupted after {time.perf_counter() - started:.1f}s "
            f"(store {target.description}): {_status_line(status, 'interrupted')}"
        )
        if as_json:
            print(json.dumps({"ok": False, "error": line, "layer_status": status}))
        print(line, file=sys.stderr)
        raise
    status = reporter.layer_status(order, ok=True)
    if as_json:
        print(json.dumps({**result.to_dict(), "layer_status": status}))
    else:
        _summary(result)


def _seed_missing(plan: Any, target: Any, order: list[str], reporter: Any, url: Any) -> None:
    """bake --sample: seed the inputs of the layers being baked that have no files."""
    from bakery import sample_data

    missing = sample_data.missing(plan, target, order)
    if not missing:
        return
    t0 = time.perf_counter()
    try:
        seeded = sample_data.seed_tables(plan, target, missing, s3_endpoint=url)
    except sample_data.SampleError as exc:
        print(f"bakery: error: {exc}", file=sys.stderr)
        raise typer.Exit(EXIT_FAILED) from None
    reporter.note(
        f"seeded sample data for {', '.join(s.ref for s in seeded)} in "
        f"{time.perf_counter() - t0:.1f}s: {', '.join(f for s in seeded for f in s.files)}"
    )


def _sizes(rows: list[str], addresses: int | None, ballots: int | None) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for item in rows:
        name, sep, value = item.partition("=")
        if not sep or not name or not value.isdigit() or int(value) < 1:
            usage_error(f"--rows {item!r}: give NAME=N (a generator or table, N >= 1)")
        sizes[name] = int(value)
    if addresses is not None:
        sizes["addressbase"] = addresses
    if ballots is not None:
        sizes["ballots"] = ballots
    return sizes


MAX_THREADS = 256
MIN_MEMORY = 64 * 2**20
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*(b|kb|mb|gb|tb|kib|mib|gib|tib)?", re.IGNORECASE)
_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}  # fmt: skip


def _engine_settings(as_json: bool) -> tuple[int | None, str | None]:
    """BAKERY_THREADS and BAKERY_MEMORY_LIMIT, checked before anything runs: a value
    DuckDB cannot use is a usage error (exit 2) saying what would work."""
    threads: int | None = None
    raw = os.environ.get("BAKERY_THREADS", "").strip()
    if raw:
        if not raw.isdigit() or not 1 <= int(raw) <= MAX_THREADS:
            _fail(
                as_json,
                f"BAKERY_THREADS={raw!r} is not a number of threads: use a whole number "
                f"from 1 to {MAX_THREADS}, e.g. BAKERY_THREADS=2",
                EXIT_USAGE,
            )
        threads = int(raw)
    memory: str | None = None
    raw = os.environ.get("BAKERY_MEMORY_LIMIT", "").strip()
    if raw:
        m = _SIZE.fullmatch(raw)
        if m is None:
            _fail(
                as_json,
                f"BAKERY_MEMORY_LIMIT={raw!r} is not a size: use a number and a unit, "
                "e.g. BAKERY_MEMORY_LIMIT=2GB",
                EXIT_USAGE,
            )
        size = float(m.group(1)) * _UNITS[(m.group(2) or "b").lower()]
        if size < MIN_MEMORY:
            _fail(
                as_json,
                f"BAKERY_MEMORY_LIMIT={raw!r} is too small for DuckDB: use at least 64MB, "
                "e.g. BAKERY_MEMORY_LIMIT=2GB",
                EXIT_USAGE,
            )
        memory = f"{int(size)}B"
    return threads, memory


@app.command("sample-data")
def sample_data_command(
    layers: Annotated[
        list[str] | None,
        typer.Argument(
            help="Layers whose inputs to seed (default: every layer).",
            show_default=False,
        ),
    ] = None,
    rows: Annotated[
        list[str],
        typer.Option(
            "--rows",
            help="Size of a generated sample, NAME=N with NAME a generator (addressbase, "
            "ballots) or a table (layer.table); repeatable. Default: the YAML's rows, else "
            "the generator's own default.",
            metavar="NAME=N",
            show_default=False,
        ),
    ] = [],  # noqa: B006 - typer needs a literal default for a repeatable option
    addresses: Annotated[
        int | None, typer.Option("--addresses", min=1, hidden=True, help="= --rows addressbase=N")
    ] = None,
    ballots: Annotated[
        int | None, typer.Option("--ballots", min=2, hidden=True, help="= --rows ballots=N")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (same seed, same data).")] = 1,
    store: StoreOption = None,
    s3_endpoint: SampleEndpointOption = None,
    env: EnvOption = "development",
) -> None:
    """Write the sample rows of every input that declares a `sample` (a file next to the
    layer or a registered generator) at its real location, replacing what is there.

    Exit 0 when written, 1 when an input declares no sample or the S3 endpoint cannot be
    reached, 2 on usage errors (including a --store that is not a usable directory or a
    malformed --s3-endpoint).
    """
    from bakery import sample_data

    end_process_after_command()
    plan = load_plan(env)
    _check_layers(plan, layers or [])
    sizes = _sizes(rows, addresses, ballots)
    target = _store(store, s3_endpoint, plan)
    url = getattr(target, "endpoint", None)
    tables = sample_data.inputs(plan, layers or None)
    t0 = time.perf_counter()
    try:
        with _s3_errors(url):
            seeded = sample_data.seed_tables(
                plan, target, tables, rows=sizes, seed=seed, s3_endpoint=url
            )
    except sample_data.SampleError as exc:
        print(f"bakery: error: {exc}", file=sys.stderr)
        raise typer.Exit(EXIT_FAILED) from None
    for item in seeded:
        print(f"wrote {item.summary} for {item.ref} ({item.source})", file=sys.stderr)
        for uri in item.files:
            print(f"  {uri}", file=sys.stderr)
    print(
        f"seeded {len(seeded)} input table{'s' if len(seeded) != 1 else ''} "
        f"in {time.perf_counter() - t0:.1f}s",
        file=sys.stderr,
    )


def _check_layers(plan: Any, layers: list[str]) -> None:
    if message := unknown_layer(plan, layers):
        usage_error(message)


def normalise_postcode(text: str) -> str:
    """'sw1a1aa' / ' SW1A  1AA ' -> 'SW1A 1AA' (upper case, one space before the inward code)."""
    squashed = "".join(text.split()).upper()
    if len(squashed) < 5:
        return squashed
    return f"{squashed[:-3]} {squashed[-3:]}"


POSTCODE = re.compile(r"[A-Z]{1,2}[0-9][A-Z0-9]? [0-9][A-Z]{2}")


def is_postcode(normal: str) -> bool:
    """A normalised full UK postcode: `CB1 9FN`, `SW1A 1AA`, `M1 1AE` (ASCII only)."""
    return normal.isascii() and POSTCODE.fullmatch(normal) is not None


def _shown(text: str) -> str:
    """The user's input on one line: control characters escaped, the rest as typed."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _export_step(plan: Any) -> Any:
    from bakery import lookup_boundary_changes

    for layer in plan.layers:
        for step in layer.walk():
            if (
                step.kind == "export_by_key"
                and step.spec.key == "outcode"
                and not lookup_boundary_changes.is_boundary_export(step)
            ):
                return step
    return None


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
    import io

    import pyarrow.parquet as pq

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
    outcode = normal.split(" ")[0]
    target = _store(store, s3_endpoint, plan, create=False, as_json=as_json)
    url = getattr(target, "endpoint", None)
    uri = f"{step.location}{outcode}.parquet"
    out: dict[str, Any] = {"postcode": normal, "outcode": outcode, "file": uri}
    with _s3_errors(url, as_json=as_json):
        if not target.list(step.location):
            _lookup_fail(
                as_json,
                f"nothing is baked for env {env} in store {target.description} "
                f"yet (no files at {step.location}); bake first: "
                f"{_bake_hint(plan, step, env, store, s3_endpoint)}",
                EXIT_FAILED,
                out,
            )
        data = target.read_bytes(uri) if target.exists(uri) else None
    if data is None:
        out.update(status="unknown outcode", addresses=[])
        message = f"{normal}: unknown outcode {outcode} (no file {uri})"
    else:
        try:
            # one thread, no pre-buffering: the read starts none of Arrow's pool threads
            table = pq.read_table(io.BytesIO(data), use_threads=False, pre_buffer=False)
        except Exception as exc:  # noqa: BLE001 - pyarrow raises several kinds for one damage
            _lookup_fail(
                as_json,
                f"the outcode file {uri} is damaged ({_first_line(exc)}); bake again to "
                f"rewrite it: {_bake_hint(plan, step, env, store, s3_endpoint)}",
                EXIT_FAILED,
                out,
            )
        if table.num_columns == 0:
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
    from bakery import lookup_boundary_changes

    with _s3_errors(url, as_json=as_json):
        lookup_boundary_changes.add(out, target, plan, outcode, normal)
    if as_json:
        print(json.dumps(out, indent=2))
        return
    from rich.table import Table

    console = _console(stderr=False, markup=False)  # data is printed as it is
    console.print(message, soft_wrap=True)
    if out["addresses"]:
        table_out = Table("uprn", "address", "ballots", box=None)
        for row in out["addresses"]:
            ballots = ", ".join(row["ballot_ids"]) or "(none)"
            table_out.add_row(str(row["uprn"] or ""), str(row["address"] or ""), ballots)
        console.print(table_out)
    lookup_boundary_changes.render(console, out)
