"""Run layers' compiled state machines on this machine: aws-local-stepfunctions (Node)
interprets the definition, this process answers its Tasks.

Per layer, the definition is the one `bakery synth` writes (bakery.compile.asl), made
runnable by bakery.simulate.definition. Node runs bakery/simulate/runner.cjs; every Task
it reaches comes here as one JSON line and is answered by Athena on DuckDB
(bakery.simulate.athena), the real Lambda handlers (bakery.simulate.lambdas) or an S3
read for a Distributed Map's items, all against moto's S3 (bakery.simulate.s3). Retry,
Catch, Choice, Map, Parallel and Fail are the interpreter's.

Tasks are answered one at a time, in the order the interpreter asks (Map iterations
interleave there as on AWS, bounded by MaxConcurrency). Retry waits are cut to
`retry_interval_ms` (0 by default): only the waiting, not the retrying, is shortened.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import os
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bakery.compile.asl import ATHENA_RESULTS, ATHENA_SYNC, LAMBDA_INVOKE, compile_layer
from bakery.errors import BakeryError
from bakery.plan import LayerPlan, Plan
from bakery.planning.names import state_machine_name
from bakery.simulate import definition as defn
from bakery.simulate import services
from bakery.simulate.errors import TaskError

RUNNER = Path(__file__).with_name("runner.cjs")
INTERPRETER = "aws-local-stepfunctions"


class SimulateError(BakeryError):
    """The simulation could not run (not: the state machine failed); one line."""


@dataclass
class Fault:
    """Make the Task state(s) matching `state` (a glob) fail with `error`, `times` times.

    `after`: fail after the Task did its work (an UNLOAD that wrote its files, then lost
    its answer), else before it starts (a refused request)."""

    state: str
    error: str
    times: int = 1
    after: bool = False
    cause: str = "injected by bakery simulate"


@dataclass
class LayerRun:
    layer: str
    status: str  # SUCCEEDED, FAILED, TIMED_OUT, ERROR
    error: str | None = None
    cause: str | None = None
    seconds: float = 0.0
    tasks: int = 0
    published: list[str] = field(default_factory=list)  # into the store, after SUCCEEDED
    events: list[dict[str, Any]] = field(default_factory=list)

    def entered(self) -> list[str]:
        return [e["state"] for e in self.events if e["type"] == "StateEntered"]

    def retried(self) -> list[str]:
        return [e["state"] for e in self.events if e["type"] == "StateRetried"]

    def failure(self) -> str:
        """Why the run did not succeed, in one line: the state that failed first (every
        Catch of a compiled definition leads to a Fail state, so the first failure is
        the cause) and its error; a Lambda's error document gives its type and message,
        never its stack trace."""
        first = next((e for e in self.events if e["type"] == "StateFailed"), None)
        error = (first or {}).get("error") or self.error or self.status
        cause = _brief((first or {}).get("cause") or self.cause)
        what = cause if cause.startswith(error) else f"{error}: {cause}" if cause else error
        where = f' at state "{first["state"]}"' if first else ""
        return f"{self.layer} {self.status}{where}: {what}"


def _brief(cause: str | None) -> str:
    text = cause or ""
    try:
        doc = json.loads(text)
    except ValueError:
        doc = None
    if isinstance(doc, dict) and "errorMessage" in doc:  # Lambda's error document
        text = f"{doc.get('errorType') or 'Error'}: {doc['errorMessage']}"
    else:  # a cause that quotes such a document without being one
        text = re.sub(r',?\s*"stackTrace":\s*\[.*\]', "", text, flags=re.S)
    return " ".join(text.split())


@dataclass
class SimulateResult:
    ok: bool
    env: str
    store: str
    layers: list[LayerRun] = field(default_factory=list)
    seconds: float = 0.0
    # why the simulation failed after its state machines succeeded (copying a layer's
    # outputs into the store); one line
    error: str | None = None
    notes: list[str] = field(default_factory=list)
    # the journal of a publish into the store that stopped half-way: the next bake or
    # simulate finishes it
    unfinished_publish: str | None = None

    def to_dict(self, events: bool = False) -> dict[str, Any]:
        out = asdict(self)
        if not events:
            for layer in out["layers"]:
                layer.pop("events")
        return out


def node_root(start: Path | None = None) -> Path:
    """The folder whose node_modules holds the interpreter: $BAKERY_NODE_ROOT, else the
    nearest one up from `start` (the project), else bakery's own checkout."""
    if os.environ.get("BAKERY_NODE_ROOT"):
        return Path(os.environ["BAKERY_NODE_ROOT"])
    candidates = []
    if start is not None:
        candidates += [start, *start.absolute().parents]
    candidates.append(Path(__file__).resolve().parents[2])
    for folder in candidates:
        if (folder / "node_modules" / INTERPRETER / "package.json").is_file():
            return folder
    raise SimulateError(
        f"the npm package {INTERPRETER} is not installed: run `npm ci` in the project"
    )


def read_items(s3: Any, request: dict[str, Any], files: dict[str, bytes]) -> list[Any]:
    """A Distributed Map's ItemReader, read as Step Functions reads it (s3:getObject of a
    CSV with its header as the first row, or of a JSON array); `files` holds objects
    known without asking S3 (the simulated Athena's result files)."""
    params = request.get("Parameters") or {}
    config = request.get("ReaderConfig") or {}
    if request.get("Resource") != "arn:aws:states:::s3:getObject":
        reader = request.get("Resource")
        raise TaskError("States.ItemReaderFailed", f"reader {reader} is not simulated")
    uri = f"s3://{params.get('Bucket')}/{params.get('Key')}"
    try:
        body = files.get(uri)
        if body is None:
            body = s3.get_object(Bucket=params["Bucket"], Key=params["Key"])["Body"].read()
    except Exception as exc:
        raise TaskError("States.ItemReaderFailed", f"cannot read the items: {exc}") from None
    kind = config.get("InputType", "JSON")
    if kind == "CSV":
        # Step Functions' own CSV rules (backslash escapes), not Python's csv module's.
        from bakery.simulate import item_csv

        if config.get("CSVHeaderLocation", "FIRST_ROW") != "FIRST_ROW":
            raise TaskError("States.ItemReaderFailed", "only CSVHeaderLocation FIRST_ROW")
        delimiter = item_csv.DELIMITERS.get(config.get("CSVDelimiter", "COMMA"))
        if delimiter is None:
            raise TaskError("States.ItemReaderFailed", f"CSVDelimiter {config['CSVDelimiter']}")
        return item_csv.items(body.decode("utf-8"), delimiter)
    if kind == "JSON":
        return json.loads(body)
    raise TaskError("States.ItemReaderFailed", f"InputType {kind} not simulated")


class _Session:
    """One simulation: moto, DuckDB, the Athena and Lambda stand-ins, the faults."""

    def __init__(self, plan: Plan, endpoint: str, ee_dsn: str | None, faults: list[Fault]):
        from bakery.engine import duck
        from bakery.simulate import s3 as sim_s3
        from bakery.simulate.athena import Athena
        from bakery.simulate.lambdas import Lambdas
        from bakery.store import S3Store

        self.plan = plan
        self.s3 = sim_s3.client(endpoint)
        self.sfn = sim_s3.client(endpoint, "stepfunctions")
        self.store = S3Store(endpoint)
        self.con = duck.connect(s3_endpoint=endpoint)
        self.athena = Athena(plan, self.store, self.con)
        self.arns: dict[str, str] = {}
        self.lambdas = Lambdas(plan, self.arns, self.s3, ee_dsn)
        self.faults = [Fault(**asdict(f)) for f in faults]  # counted down here

    def close(self) -> None:
        self.con.close()

    def answer(self, state: str, resource: str, request: Any) -> Any:
        fault = next(
            (f for f in self.faults if f.times > 0 and fnmatch.fnmatchcase(state, f.state)),
            None,
        )
        if fault is not None:
            fault.times -= 1
            if not fault.after:
                raise TaskError(fault.error, fault.cause)
        try:
            result = self._dispatch(resource, request)
        except TaskError as exc:
            # DuckDB turns a Ctrl-C (or SIGTERM, bakery.cli.signals) during a query into a
            # failed query: the run is interrupted, not failed
            if "INTERRUPT Error" in exc.cause or "Query interrupted" in exc.cause:
                raise KeyboardInterrupt from None
            raise
        if fault is not None:
            raise TaskError(fault.error, fault.cause)
        return result

    def _dispatch(self, resource: str, request: Any) -> Any:
        if resource == ATHENA_SYNC:
            return self.athena.start_sync(request)
        if resource == ATHENA_RESULTS:
            return self.athena.get_results(request)
        if resource == LAMBDA_INVOKE:
            self.athena.stale = True  # a handler may write anywhere
            return self.lambdas.invoke(request)
        if resource == defn.ITEM_READER:
            return read_items(self.s3, request, self.athena.result_files)
        raise TaskError("States.Runtime", f"bakery simulate has no stand-in for {resource}")

    def run_layer(
        self, layer: LayerPlan, on_event: Callable[[dict[str, Any]], None], root: Path
    ) -> LayerRun:
        name = state_machine_name(self.plan, layer.name)
        text, arns = defn.substitute_functions(
            compile_layer(self.plan, layer).to_json(), self.plan.project.region, name
        )
        self.arns.update(arns)
        definition, tasks, retrying = defn.prepare(json.loads(text))
        machine = self.sfn.create_state_machine(
            name=name,
            definition=json.dumps({"StartAt": "s", "States": {"s": {"Type": "Pass", "End": True}}}),
            roleArn=f"arn:aws:iam::{defn.ACCOUNT}:role/{name}",
        )["stateMachineArn"]
        execution = self.sfn.start_execution(stateMachineArn=machine, input="{}")["executionArn"]
        request = {
            "definition": definition,
            "input": {},
            "context": {
                "Execution": {"Id": execution, "Name": execution.rsplit(":", 1)[-1]},
                "StateMachine": {"Id": machine, "Name": name},
            },
            "tasks": tasks,
            "retrying": retrying,
            "retryIntervalMs": 0,
        }
        run = LayerRun(layer.name, "ERROR")
        started = time.perf_counter()
        node = shutil.which("node")
        if node is None:
            raise SimulateError("node is not installed (Node 20+ runs the interpreter)")
        env = dict(os.environ, BAKERY_NODE_ROOT=str(root))
        proc = subprocess.Popen(
            [node, str(RUNNER)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write(json.dumps(request) + "\n")
            proc.stdin.flush()
            for line in proc.stdout:
                message = json.loads(line)
                kind = message.get("type")
                if kind == "event":
                    run.events.append(message["event"])
                    on_event({"layer": layer.name, **message["event"]})
                elif kind == "call":
                    run.tasks += 1
                    reply: dict[str, Any] = {"id": message["id"]}
                    try:
                        reply["result"] = self.answer(
                            message["state"], message["resource"], message["input"]
                        )
                    except TaskError as exc:
                        reply["error"] = {"name": exc.name, "cause": exc.cause}
                    # The runner may have ended already (a failed Map iteration ends the
                    # execution while other iterations' calls are queued): its last lines,
                    # the "end" one included, are still to be read.
                    with contextlib.suppress(BrokenPipeError):
                        proc.stdin.write(json.dumps(reply, default=str) + "\n")
                        proc.stdin.flush()
                elif kind == "end":
                    run.status = message["status"]
                    run.error = message.get("error")
                    run.cause = message.get("cause")
                    break
        except BaseException:
            proc.kill()  # Ctrl-C or SIGTERM here: the interpreter must not wait for answers
            raise
        finally:
            with contextlib.suppress(BrokenPipeError):
                proc.stdin.close()
            proc.wait(timeout=30)
            stderr = proc.stderr.read() if proc.stderr else ""
            run.seconds = time.perf_counter() - started
            self.sfn.stop_execution(executionArn=execution)
        if run.status == "ERROR" and not run.cause:
            last = stderr.strip().splitlines()[-1] if stderr.strip() else ""
            run.cause = f"the interpreter stopped (exit {proc.returncode}): {last}".strip()
        if layer.singleton and run.status != "SUCCEEDED":
            services.release_after(layer, execution)  # the release rule (bakery.compile.lock)
        return run


def simulate(
    plan: Plan,
    layers: Iterable[str],
    store_root: Path,
    *,
    with_upstream: bool = False,
    ee_dsn: str | None = None,
    faults: Iterable[Fault] = (),
    on_event: Callable[[dict[str, Any]], None] | None = None,
    project_root: Path | None = None,
) -> SimulateResult:
    """Run the state machines of `layers` (and their upstream layers) in order against the
    store folder; stop at the first that does not succeed, as `bake` does.

    The store is held with bake's lock for the whole run (a bake started meanwhile is
    refused, and this refuses to start while one runs), and what a bake killed before
    left is rolled forward first. Each layer whose state machine succeeded is published
    into the store at once, staged and journaled as a bake publishes (bakery.engine.
    publish); a layer that failed, or a run interrupted or killed before its publish,
    leaves the layer's published tables and export folders as they were."""
    from bakery.engine.publish import Staging, StoreBusy
    from bakery.simulate import s3 as sim_s3
    from bakery.simulate.publish import discard, publish_layer
    from bakery.store import LocalStore

    names = list(layers)
    order = (
        plan.upstream(names) if with_upstream else [ly for ly in plan.layers if ly.name in names]
    )
    root = node_root(project_root)
    store_root = Path(store_root).absolute()
    store_root.mkdir(parents=True, exist_ok=True)
    result = SimulateResult(ok=False, env=plan.env, store=str(store_root))
    emit = on_event or (lambda _e: None)
    started = time.perf_counter()
    buckets = sorted(
        {t.bucket for t in plan.tables.values()}
        | set(plan.project.buckets.values())
        | {plan.project.athena.results.split("/")[2]}
    )
    run_id = time.strftime("%Y%m%dT%H%M%S") + "-sim-" + uuid.uuid4().hex[:8]
    staging = Staging(LocalStore(store_root), plan, run_id)
    try:
        staging.acquire()
    except StoreBusy as exc:
        raise SimulateError(str(exc)) from None
    try:
        for note in staging.recover():
            result.notes.append(note)
            emit({"type": "Note", "layer": "", "text": note})
        with sim_s3.moto_endpoint() as endpoint:
            session = _Session(plan, endpoint, ee_dsn, list(faults))
            try:
                sim_s3.load(session.s3, store_root, buckets)
                for layer in order:
                    run = session.run_layer(layer, emit, root)
                    result.layers.append(run)
                    if run.status != "SUCCEEDED" or not publish_layer(
                        session.s3, staging, run, result, emit
                    ):
                        break
                else:
                    result.ok = True
            finally:
                session.close()
    finally:
        try:
            discard(staging, result)
        finally:
            staging.release()
            result.seconds = time.perf_counter() - started
    return result
