"""Sentry for every Lambda handler, when the environment configures a DSN.

The deployed functions' handler is `bakery.lambdas.reporting.handler` (set by the CDK
app when `alerts.sentry_dsn` is in bakery.yaml); it starts Sentry once per container,
calls the handler named by BAKERY_HANDLER, and reports any exception before re-raising
it, so the state machine still sees the failure. Without SENTRY_DSN it only delegates.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from typing import Any

HANDLER_ENV = "BAKERY_HANDLER"
_started = False


def _target() -> Callable[[dict[str, Any], Any], Any]:
    module, _, name = os.environ[HANDLER_ENV].rpartition(".")
    return getattr(importlib.import_module(module), name)


def _start() -> bool:
    global _started
    dsn = os.environ.get("SENTRY_DSN")
    if not dsn:
        return False
    if not _started:
        import sentry_sdk

        sentry_sdk.init(
            dsn=dsn,
            environment=os.environ.get("BAKERY_ENVIRONMENT"),
            default_integrations=False,  # no logging hooks: the handler's logs go to CloudWatch
        )
        _started = True
    return True


def handler(event: dict[str, Any], context: Any = None) -> Any:
    target = _target()
    if not _start():
        return target(event, context)
    import sentry_sdk

    with sentry_sdk.new_scope() as scope:
        scope.set_tag("handler", os.environ[HANDLER_ENV])
        if context is not None and getattr(context, "function_name", None):
            scope.set_tag("function", context.function_name)
        try:
            return target(event, context)
        except Exception:
            sentry_sdk.capture_exception()
            sentry_sdk.flush(timeout=5)
            raise
