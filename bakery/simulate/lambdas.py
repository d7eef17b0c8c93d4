"""`lambda:invoke`, answered by the real handlers in bakery/lambdas/ against moto's S3.

The functions a layer's state machine invokes are the ones its CDK stack creates, known
in the definition as `${Function_<name>}` (bakery.constructs.steps): `purge`, `publish`,
`singleton`, one per `lambda` step (its id) and two per `export_by_key` step
(`<id>_export`, `<id>_delete_stale`). Each call runs the handler with the environment the
stack gives it and returns what the integration returns: the handler's result under
`Payload` with StatusCode 200. A handler that raises fails the Task with the exception's
class name as the error and Lambda's error document (errorMessage, errorType) as the cause.

One handler is not run as it is: EveryElection's export reads a database named in SSM
over TLS. With a DSN (`--ee-dsn`) its export core runs against that database and the CSV
is written where the Lambda writes it; without one, the ballots already in the store are
used, as `bakery bake` does.
"""

from __future__ import annotations

import importlib
import io
import json
import os
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from bakery.plan import Plan
from bakery.simulate.errors import TaskError

EE_EXPORT = "bakery.lambdas.ee_export.handler"


@dataclass
class Function:
    handler: str  # module.function
    environment: dict[str, str] = field(default_factory=dict)


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
                env = dict(step.spec.environment)
                env.update(step.spec.ssm_parameters)
                if step.writes:
                    env["TABLE_LOCATION"] = plan.table(step.writes[0]).location
                out[step.id] = Function(step.spec.handler, env)
            elif step.kind == "export_by_key":
                out[f"{step.id}_export"] = Function("bakery.lambdas.export_by_key.handler")
                out[f"{step.id}_delete_stale"] = Function(
                    "bakery.lambdas.export_by_key.delete_stale_handler"
                )
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
        name = self.arns.get(arn)
        function = self.functions.get(name or "")
        if function is None:
            raise TaskError(
                "Lambda.ResourceNotFoundException", f"Function not found: {arn or '(none)'}"
            )
        payload = request.get("Payload")
        # The payload crosses a JSON boundary on AWS too.
        event = json.loads(json.dumps(payload))
        try:
            with _environment(function.environment):
                if function.handler == EE_EXPORT:
                    result = self._ee_export(event, function)
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

    def _ee_export(self, event: dict[str, Any], function: Function) -> dict[str, Any]:
        from bakery.lambdas.purge import split_location

        location = event.get("table_location") or function.environment["TABLE_LOCATION"]
        bucket, prefix = split_location(location)
        key = prefix + function.environment.get("FILE_NAME", "current_elections.csv")
        if self.ee_dsn:
            from bakery.lambdas.ee_export import run_export

            buf = io.StringIO()
            rows = run_export(self.ee_dsn, buf)
            self.s3.put_object(Bucket=bucket, Key=key, Body=buf.getvalue().encode())
            return {"location": f"s3://{bucket}/{key}", "rows": rows}
        listed = self.s3.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1)
        if not listed.get("Contents"):
            raise RuntimeError(
                f"no ballots CSV at {location} and no EveryElection database configured: "
                "set BAKERY_EE_DSN (or --ee-dsn), or seed sample data (--sample)"
            )
        return {"location": location, "rows": None, "note": "ballots already in the store"}
