"""synth, deploy, diff, run: the commands that turn the plan into AWS infrastructure and run it.

aws_cdk is imported inside the commands only (jsii starts Node: seconds), so
`bakery validate` never pays for it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated, Any, NoReturn, TextIO, cast

import typer

from bakery.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    EnvOption,
    app,
    load_plan,
    usage_error,
)

for _name, _value in (
    ("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1"),
    ("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20"),
):
    os.environ.setdefault(_name, _value)


def fail(message: str) -> NoReturn:
    print(f"bakery: error: {message}", file=sys.stderr)
    raise typer.Exit(EXIT_FAILED)


def _check_layers(plan: Any, layers: list[str]) -> None:
    names = [ly.name for ly in plan.layers]
    for name in layers:
        if name not in names:
            usage_error(f"unknown layer {name!r}; layers: {', '.join(names)}")


# ---------------------------------------------------------------- synth


def write_asl(plan: Any, asl_dir: Path) -> list[Path]:
    """Each layer's state machine definition, pretty and sorted, to <asl_dir>/<layer>.asl.json."""
    from bakery.compile.asl import layer_asl_json

    asl_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for layer in plan.layers:
        path = asl_dir / f"{layer.name}.asl.json"
        text = layer_asl_json(plan, layer)
        if not path.is_file() or path.read_text() != text:
            path.write_text(text)
        written.append(path)
    for stale in asl_dir.glob("*.asl.json"):
        if stale not in written:
            stale.unlink()
    return written


def synthesize(plan: Any, out: Path, *, nag: bool = True) -> list[Path]:
    """The cloud assembly in `out` (emptied first when it is one); return the templates."""
    if out.exists() and (out / "manifest.json").is_file():
        shutil.rmtree(out)
    from bakery.constructs import build_app

    cdk_app, _core, _layers = build_app(plan, outdir=str(out), nag=nag)
    assembly = cdk_app.synth()
    return [Path(out) / Path(s.template_file).name for s in assembly.stacks]


@app.command()
def synth(
    env: EnvOption = "development",
    out: Annotated[Path, typer.Option("--out", help="Cloud assembly folder.")] = Path("cdk.out"),
    asl_dir: Annotated[
        Path, typer.Option("--asl-dir", help="Folder for <layer>.asl.json definitions.")
    ] = Path("build/asl"),
    nag: Annotated[
        bool, typer.Option("--nag/--no-nag", help="Run cdk-nag's AwsSolutions checks.")
    ] = True,
) -> None:
    """Compile every layer into CDK stacks (cdk.out/) and state machine definitions (build/asl/).

    Needs no AWS credentials and no Docker; the output is deterministic, so a diff
    of build/asl/ in review shows exactly what changed in each state machine.
    """
    started = time.perf_counter()
    plan = load_plan(env)
    from bakery.compile.asl import CompileError

    try:
        asl = write_asl(plan, asl_dir)
        templates = synthesize(plan, out, nag=nag)
    except CompileError as exc:
        fail(str(exc))
    except Exception as exc:  # jsii surfaces CDK errors (and cdk-nag failures) as RuntimeError
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        report = out / "validation-report.json"
        hint = f" (see {report})" if report.is_file() else ""
        fail(f"synth failed: {first}{hint}")
    elapsed = time.perf_counter() - started
    for path in templates:
        print(f"template {path}", file=sys.stderr)
    for path in asl:
        print(f"asl      {path}", file=sys.stderr)
    print(
        f"ok: {len(templates)} stacks, {len(asl)} state machines ({plan.env})"
        f"{', cdk-nag AwsSolutions clean' if nag else ''} in {elapsed:.1f}s",
        file=sys.stderr,
    )


# ---------------------------------------------------------------- deploy / diff


def cdk_command(action: str, plan: Any, layers: list[str], extra: list[str]) -> list[str]:
    """The pinned CDK CLI's command line for `action` on `layers` (every stack when none).

    `cdk deploy` needs `--all` to act on every stack; `cdk diff` covers every stack
    by default and has no `--all` option (the CLI refuses it).
    """
    from bakery.compile.names import layer_stack_name

    stacks = [layer_stack_name(plan, name) for name in layers]
    if not stacks and action == "deploy":
        stacks = ["--all"]
    return [
        "npx",
        "--no-install",
        "cdk",
        action,
        *stacks,
        "-c",
        f"dc-environment={plan.env}",
        *extra,
    ]


def _run_cdk(command: list[str], plan: Any, dry_run: bool) -> None:
    if dry_run:
        print(shlex.join(command))
        return
    if shutil.which(command[0]) is None:
        fail(f"{command[0]} not found: install Node.js, then run `npm ci` in {plan.root}")
    if not (plan.root / "node_modules" / ".bin" / "cdk").exists():
        fail(f"the CDK CLI is not installed: run `npm ci` in {plan.root}")
    env = {**os.environ, "DC_ENVIRONMENT": plan.env}
    code = subprocess.run(command, cwd=plan.root, env=env, check=False).returncode
    if code:
        print(f"bakery: error: {shlex.join(command)} exited with {code}", file=sys.stderr)
        raise typer.Exit(EXIT_FAILED)


LayersArg = Annotated[
    list[str] | None,
    typer.Argument(help="Layers to act on (default: all); stacks they depend on come along."),
]
DryRunOption = Annotated[
    bool, typer.Option("--dry-run", help="Print the exact cdk command and exit.")
]


@app.command()
def deploy(
    layers: LayersArg = None,
    env: EnvOption = "development",
    approve: Annotated[
        bool,
        typer.Option("--approve", help="Do not ask before security changes (for CI)."),
    ] = False,
    dry_run: DryRunOption = False,
) -> None:
    """Deploy layer stacks (and the core stack they need) with the pinned CDK CLI."""
    plan = load_plan(env)
    _check_layers(plan, layers or [])
    extra = ["--require-approval", "never"] if approve else []
    _run_cdk(cdk_command("deploy", plan, layers or [], extra), plan, dry_run)


@app.command()
def diff(
    layers: LayersArg = None,
    env: EnvOption = "development",
    dry_run: DryRunOption = False,
) -> None:
    """Show what `bakery deploy` would change, stack by stack (`cdk diff`)."""
    plan = load_plan(env)
    _check_layers(plan, layers or [])
    _run_cdk(cdk_command("diff", plan, layers or [], []), plan, dry_run)


# ---------------------------------------------------------------- run

DONE = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}


def find_state_machine(sfn: Any, name: str) -> str | None:
    for page in sfn.get_paginator("list_state_machines").paginate():
        for machine in page.get("stateMachines", []):
            if machine["name"] == name:
                return machine["stateMachineArn"]
    return None


def history_since(sfn: Any, execution_arn: str, last_id: int) -> list[dict]:
    """Events newer than `last_id`, over every page of get_execution_history."""
    events: list[dict] = []
    kwargs: dict[str, Any] = {"executionArn": execution_arn, "maxResults": 1000}
    while True:
        page = sfn.get_execution_history(**kwargs)
        events.extend(e for e in page.get("events", []) if e["id"] > last_id)
        token = page.get("nextToken")
        if not token:
            return sorted(events, key=lambda e: e["id"])
        kwargs["nextToken"] = token


def describe_event(event: dict) -> tuple[str, str] | None:
    """(marker, text) for the events worth a line: states entered/exited, failures."""
    kind = event["type"]
    if kind.endswith("StateEntered"):
        return "->", event["stateEnteredEventDetails"]["name"]
    if kind.endswith("StateExited"):
        return "ok", event["stateExitedEventDetails"]["name"]
    if kind.endswith("Failed") or kind.endswith("TimedOut") or kind.endswith("Aborted"):
        details = next((v for k, v in event.items() if k.endswith("EventDetails")), {}) or {}
        text = " ".join(str(details.get(k, "")) for k in ("error", "cause") if details.get(k))
        return "!!", f"{kind}: {text}".strip(": ")
    return None


def follow(
    sfn: Any,
    execution_arn: str,
    *,
    poll_seconds: float = 5.0,
    on_event: Any = None,
    timeout_seconds: float | None = None,
) -> dict[str, Any]:
    """Poll an execution to its end, calling on_event(event) for every new history event."""
    last_id = 0
    started = time.monotonic()
    while True:
        status = sfn.describe_execution(executionArn=execution_arn)
        for event in history_since(sfn, execution_arn, last_id):
            last_id = event["id"]
            if on_event:
                on_event(event)
        if status["status"] in DONE:
            return status
        if timeout_seconds is not None and time.monotonic() - started > timeout_seconds:
            return {**status, "status": "RUNNING"}
        time.sleep(poll_seconds)


class _Recorder:
    """A write-through wrapper of stderr that keeps what was written (for --json errors)."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.parts: list[str] = []

    def write(self, text: str) -> int:
        self.parts.append(text)
        return self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)

    def message(self) -> str:
        lines = [line.strip() for line in "".join(self.parts).splitlines() if line.strip()]
        return "; ".join(line.removeprefix("bakery: error: ") for line in lines)


def parse_poll(text: str) -> float:
    """--poll: a finite number of seconds above 0, or a usage error."""
    try:
        seconds = float(text)
    except ValueError:
        usage_error(f"--poll must be a number of seconds above 0, not {text!r}")
    if not seconds > 0 or seconds == float("inf"):
        usage_error(f"--poll must be a number of seconds above 0, not {text!r}")
    return seconds


@app.command()
def run(
    layer: Annotated[str, typer.Argument(help="The layer to run.")],
    env: EnvOption = "development",
    input_json: Annotated[
        str, typer.Option("--input", help="Execution input (JSON).")
    ] = '{"trigger": "bakery run"}',
    poll: Annotated[
        str, typer.Option("--poll", metavar="SECONDS", help="Seconds between polls (above 0).")
    ] = "5",
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print exactly one JSON line on stdout, whatever the outcome "
            "(layer, status, error, ...).",
        ),
    ] = False,
) -> None:
    """Start a layer's state machine and follow it to the end; exit 0 only on SUCCEEDED."""
    summary: dict[str, Any] = {
        "layer": layer,
        "env": env,
        "execution_arn": None,
        "status": None,
        "error": None,
        "cause": None,
        "start_date": "",
        "stop_date": "",
    }
    recorder = _Recorder(sys.stderr)
    try:
        if as_json:
            with contextlib.redirect_stderr(cast(TextIO, recorder)):  # write + flush suffice
                _run_layer(summary, input_json, poll, as_json)
        else:
            _run_layer(summary, input_json, poll, as_json)
    except typer.Exit as exc:
        # Every error (before or after the execution starts) is one line on stderr,
        # and with --json one JSON line on stdout as well.
        code = exc.exit_code or EXIT_FAILED
        if as_json:
            summary["status"] = "USAGE_ERROR" if code == EXIT_USAGE else "ERROR"
            summary["error"] = summary["error"] or recorder.message() or f"exit {code}"
            summary["exit_code"] = code
            print(json.dumps(summary, sort_keys=True))
        raise
    status = summary["status"]
    code = EXIT_OK if status == "SUCCEEDED" else EXIT_FAILED
    if as_json:
        summary["exit_code"] = code
        print(json.dumps(summary, sort_keys=True))
    else:
        line = f"{layer}: {status}"
        if summary["error"]:
            line += f" ({summary['error']}: {summary['cause'] or ''})"
        print(line, file=sys.stderr if status != "SUCCEEDED" else sys.stdout)
    if code:
        raise typer.Exit(code)


def _run_layer(summary: dict[str, Any], input_json: str, poll_text: str, quiet: bool) -> None:
    """Start summary["layer"]'s state machine and follow it, filling in `summary`."""
    layer = summary["layer"]
    plan = load_plan(summary["env"], check_sql=False)
    summary["env"] = plan.env
    _check_layers(plan, [layer])
    poll = parse_poll(poll_text)
    try:
        payload = json.loads(input_json)
    except json.JSONDecodeError as exc:
        usage_error(f"--input is not JSON: {exc}")
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    from bakery.compile.names import state_machine_name

    name = state_machine_name(plan, layer)
    try:
        sfn = boto3.client("stepfunctions", region_name=plan.project.region)
        arn = find_state_machine(sfn, name)
        if arn is None:
            fail(
                f"state machine {name} not found in {plan.project.region}: `bakery deploy {layer}`"
            )
        run_name = f"bakery-run-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{os.getpid()}"
        execution = sfn.start_execution(
            stateMachineArn=arn, name=run_name, input=json.dumps(payload)
        )
        summary["execution_arn"] = execution["executionArn"]
        result = _follow_with_display(sfn, execution["executionArn"], poll, quiet=quiet)
    except (BotoCoreError, ClientError) as exc:
        from botocore import exceptions as bx

        if isinstance(exc, bx.ConnectionError | bx.NoCredentialsError):
            fail(
                f"cannot reach AWS Step Functions in {plan.project.region} "
                f"({type(exc).__name__}: {exc}); check the network (and any proxy) and the "
                "AWS credentials, then run again"
            )
        fail(f"{type(exc).__name__}: {exc}")
    summary.update(
        execution_arn=result["executionArn"],
        status=result["status"],
        error=result.get("error"),
        cause=result.get("cause"),
        start_date=str(result.get("startDate") or ""),
        stop_date=str(result.get("stopDate") or ""),
    )


def _follow_with_display(sfn: Any, execution_arn: str, poll: float, *, quiet: bool) -> dict:
    from rich.console import Console

    console = Console(stderr=True, quiet=quiet, highlight=False)
    started = time.monotonic()
    styles = {"->": "cyan", "ok": "green", "!!": "bold red"}

    with console.status(f"running {execution_arn.rsplit(':', 1)[-1]}") as spinner:

        def on_event(event: dict) -> None:
            line = describe_event(event)
            if line is None:
                return
            marker, text = line
            elapsed = time.monotonic() - started
            console.print(f"[{styles[marker]}]{marker:>2}[/] {elapsed:7.1f}s  {text}")
            if marker == "->":
                spinner.update(f"in [bold]{text}[/]")

        return follow(sfn, execution_arn, poll_seconds=poll, on_event=on_event)
