"""`bakery run LAYER`: start a deployed layer's state machine and follow it to the end,
one line per state entered or failed (boto3, imported when the command runs).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from typing import Annotated, Any, TextIO, cast

import typer

from bakery.cli.aws_commands import _check_layers, fail
from bakery.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    EnvOption,
    app,
    load_plan,
    usage_error,
)

DONE = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}
# A singleton layer's execution that found another one holding the lock ends SUCCEEDED
# without running (bakery.compile.lock): not a failure, but not a run either.
EXIT_ALREADY_RUNNING = 3


def already_running(execution: dict[str, Any]) -> dict[str, Any] | None:
    """The lock a SUCCEEDED execution found taken ($.lock of its output), or None when it
    ran (or is not a singleton layer's)."""
    try:
        output = json.loads(execution.get("output") or "null")
    except ValueError:
        return None
    lock = output.get("lock") if isinstance(output, dict) else None
    if isinstance(lock, dict) and lock.get("taken") is False:
        return lock
    return None


def already_running_line(layer: str, lock: dict[str, Any]) -> str:
    holder = str(lock.get("holder") or "another execution").rsplit(":", 1)[-1]
    if lock.get("deferred"):
        then = "this run was deferred: that execution runs the layer again when it ends"
    else:
        then = "not run again (no trigger queue to defer to): run it once that one has ended"
    return f"{layer}: already running ({holder}); {then}"


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
    """Start a layer's state machine and follow it to the end; exit 0 only on SUCCEEDED,
    3 when a singleton layer was already running (this execution did not run it)."""
    summary: dict[str, Any] = {
        "layer": layer,
        "env": env,
        "execution_arn": None,
        "status": None,
        "error": None,
        "cause": None,
        "start_date": "",
        "stop_date": "",
        "already_running": None,
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
    if summary["already_running"] is not None:
        code = EXIT_ALREADY_RUNNING
    if as_json:
        summary["exit_code"] = code
        print(json.dumps(summary, sort_keys=True))
    elif code == EXIT_ALREADY_RUNNING:
        print(already_running_line(layer, summary["already_running"]), file=sys.stderr)
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

    from bakery.planning.names import state_machine_name

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
        already_running=already_running(result) if result["status"] == "SUCCEEDED" else None,
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
