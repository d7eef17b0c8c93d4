"""A Lambda handler for the simulated fixture layers (tests/fixtures/simulate/): it keeps
every event, then calls the test's HOOK, if any, with it (to act in the middle of a run)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

EVENTS: list[dict[str, Any]] = []
HOOK: Callable[[dict[str, Any]], Any] | None = None


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    EVENTS.append(event)
    if HOOK is not None:
        HOOK(event)
    return {"events": len(EVENTS)}
