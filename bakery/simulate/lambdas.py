"""`lambda:invoke`, answered by the real handlers in bakery/lambdas/ against moto's S3.

The functions a layer's state machine invokes are the ones its CDK stack creates, known
in the definition as `${Function_<name>}` (bakery.constructs.steps): `purge`, `publish`,
`singleton`, one per `lambda` step (its id) and one per `export_by_key` step
(`<id>_export`). Each call runs the handler with the environment the
stack gives it and returns what the integration returns: the handler's result under
`Payload` with StatusCode 200. A handler that raises fails the Task with the exception's
class name as the error and Lambda's error document (errorMessage, errorType) as the cause.

Handlers that export from EveryElection (their module has `run_local(dsn, folder,
environment)`, as for `bake`) read a database named in SSM over TLS, so they do not run
as they are: with a DSN (`--ee-dsn`) their export core writes into a folder whose files
are put where the Lambda writes them (the staged location the state machine passes,
bakery.planning.publish_plan); without one, the files already published are used, as
`bakery bake` does: copied into that staging, so the layer's publish keeps them.
"""

from __future__ import annotations

import importlib
import json
import os
import tempfile
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bakery.plan import Plan
from bakery.simulate import services
from bakery.simulate.errors import TaskError


@dataclass
class Function:
    handler: str  # module.function
    environment: dict[str, str] = field(default_factory=dict)
    live: str | None = None  # the live location of the table it writes

    def run_local(self) -> Callable | None:
        module = importlib.import_module(self.handler.rsplit(".", 1)[0])
        return getattr(module, "run_local", None)


def functions(plan: Plan) -> dict[str, Function]:
    """Every function a state machine of `plan` may invoke, by its definition name."""
    out = {
        "purge": Function("bakery.lambdas.purge.handler"),
        "publish": Function("bakery.lambdas.publish.handler"),
        "singleton": Function("bakery.lambdas.singleton.handler"),
    }
    for layer in plan.layers:
        for step in layer.walk():
            if step.kind == "lambda":
                env = dict(step.environment)  # rendered for the environment, as deployed
                env.update(step.spec.ssm_parameters)
                live = plan.table(step.writes[0]).location if step.writes else None
                out[step.id] = Function(step.spec.handler, env, live)
            elif step.kind == "export_by_key":
                out[f"{step.id}_export"] = Function("bakery.lambdas.export_by_key.handler")
    return out


@contextmanager
def _environment(env: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class Lambdas:
    def __init__(self, plan: Plan, arns: dict[str, str], s3: Any, ee_dsn: str | None = None):
        self.plan = plan
        self.arns = arns  # ARN in the definition -> function name
        self.functions = functions(plan)
        self.s3 = s3
        self.ee_dsn = ee_dsn

    def invoke(self, request: dict[str, Any]) -> dict[str, Any]:
        arn = request.get("FunctionName", "")
        if arn.startswith(services.STAND_IN):  # a DynamoDB or SQS Task (definition.py)
            return services.call(arn, request.get("Payload") or {})
        name = self.arns.get(arn)
        function = self.functions.get(name or "")
        if function is None:
            raise TaskError(
                "Lambda.ResourceNotFoundException", f"Function not found: {arn or '(none)'}"
            )
        payload = request.get("Payload")
        # The payload crosses a JSON boundary on AWS too; the lock table's name is the
        # layer stack's substitution there.
        event = services.resolve(json.loads(json.dumps(payload)))
        try:
            with _environment(function.environment):
                run_local = function.run_local()
                if run_local is not None:
                    result = self._export(event, function, run_local)
                else:
                    module, attr = function.handler.rsplit(".", 1)
                    handler: Callable = getattr(importlib.import_module(module), attr)
                    result = handler(event, None)
        except TaskError:
            raise
        except Exception as exc:
            error = {
                "errorMessage": str(exc),
                "errorType": type(exc).__name__,
                "requestId": "simulated",
                "stackTrace": traceback.format_tb(exc.__traceback__)[-3:],
            }
            raise TaskError(type(exc).__name__, json.dumps(error)) from None
        return {
            "ExecutedVersion": "$LATEST",
            "Payload": json.loads(json.dumps(result)),
            "SdkHttpMetadata": {"HttpStatusCode": 200},
            "SdkResponseMetadata": {"RequestId": "simulated"},
            "StatusCode": 200,
        }

    def _export(self, event: dict[str, Any], function: Function, run_local: Callable) -> dict:
        from bakery.lambdas.purge import split_location

        location = event["table_location"]
        bucket, prefix = split_location(location)
        if self.ee_dsn:
            with tempfile.TemporaryDirectory(prefix="bakery-simulate-") as tmp:
                folder = Path(tmp)
                rows = run_local(self.ee_dsn, folder, dict(function.environment))
                files = sorted(p for p in folder.rglob("*") if p.is_file())
                for path in files:
                    key = prefix + path.relative_to(folder).as_posix()
                    self.s3.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())
            return {"location": location, "rows": rows, "files": len(files)}
        from bakery.lambdas.publish import mirror

        live = function.live or location
        listed = self.s3.list_objects_v2(
            Bucket=split_location(live)[0], Prefix=split_location(live)[1], MaxKeys=1
        )
        if not listed.get("Contents"):
            raise RuntimeError(
                f"nothing at {live} and no EveryElection database configured: set "
                "BAKERY_EE_DSN (or --ee-dsn), or seed sample data (--sample)"
            )
        mirror(self.s3, live, location)
        return {"location": location, "rows": None, "note": "files already in the store"}
