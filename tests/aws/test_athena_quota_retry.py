"""A query Athena refuses at its active-query quota (TooManyRequestsException) keeps being
retried for more than a busy hour; every other error keeps its shorter policy.

Computed from the compiled definitions of the repository's layers (what build/asl/ holds
and the stacks deploy), without aws_cdk.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from aws_helpers import REPO

from bakery.compile.asl import compile_layer
from bakery.plan import Plan, build_plan
from bakery.workspace import load_workspace

QUOTA = "Athena.TooManyRequestsException"
HOUR = 3600


@pytest.fixture(scope="module")
def plan() -> Plan:
    return build_plan(load_workspace(REPO), "development")


def _states(states: dict[str, Any]) -> Iterator[tuple[str, dict]]:
    """Every state, inside Map bodies and Parallel branches too."""
    for name, state in states.items():
        yield name, state
        if "ItemProcessor" in state:
            yield from _states(state["ItemProcessor"]["States"])
        for branch in state.get("Branches", []):
            yield from _states(branch["States"])


def _retried_states(plan: Plan) -> Iterator[tuple[str, dict]]:
    for layer in plan.layers:
        definition = compile_layer(plan, layer).definition
        for name, state in _states(definition["States"]):
            if state.get("Retry"):
                yield f"{layer.name}: {name}", state


def _retrier(state: dict, error: str) -> dict | None:
    """The retrier Step Functions applies to `error`: the first that names it."""
    return next((r for r in state["Retry"] if error in r["ErrorEquals"]), None)


def _expected_wait(retrier: dict) -> float:
    """Seconds of waiting over every attempt: each wait is IntervalSeconds x BackoffRate^n
    capped at MaxDelaySeconds; FULL jitter draws it uniformly from 0 to that, so half of
    it is expected."""
    waits = [
        min(
            retrier["IntervalSeconds"] * retrier["BackoffRate"] ** n,
            retrier.get("MaxDelaySeconds", float("inf")),
        )
        for n in range(retrier["MaxAttempts"])
    ]
    return sum(waits) / (2 if retrier.get("JitterStrategy") == "FULL" else 1)


def test_a_refused_query_is_retried_for_more_than_an_hour(plan: Plan):
    athena = [
        (name, state) for name, state in _retried_states(plan) if _retrier(state, QUOTA) is not None
    ]
    # Every Athena query state of the layers: tasks, UNLOADs (Parallel) and INSERTs.
    assert len(athena) >= 10
    for name, state in athena:
        retrier = _retrier(state, QUOTA)
        assert retrier is not None
        assert retrier["ErrorEquals"] == [QUOTA], name  # a retrier of its own
        assert retrier["JitterStrategy"] == "FULL", name
        assert retrier["MaxDelaySeconds"] <= 300, name  # refused queries retry every few minutes
        assert _expected_wait(retrier) > HOUR, (name, _expected_wait(retrier))


def test_other_errors_keep_their_policy(plan: Plan):
    seen = set()
    for name, state in _retried_states(plan):
        for error, interval, attempts, cap in [
            ("Athena.InternalServerException", 5, 6, 120),
            ("Athena.AmazonAthenaException", 5, 3, 60),
            ("Lambda.TooManyRequestsException", 2, 6, 60),
        ]:
            retrier = _retrier(state, error)
            if retrier is None:
                continue
            seen.add(error)
            assert QUOTA not in retrier["ErrorEquals"], name
            got = [retrier[k] for k in ("IntervalSeconds", "MaxAttempts", "MaxDelaySeconds")]
            assert got == [interval, attempts, cap], (name, error)
            assert _expected_wait(retrier) < 10 * 60, name
    assert seen == {
        "Athena.InternalServerException",
        "Athena.AmazonAthenaException",
        "Lambda.TooManyRequestsException",
    }
