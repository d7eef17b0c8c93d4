"""Athena's concurrency quota: the DML queries the layers start at once, per AWS account.

Athena counts every running and queued DML query of an account (per Region) against its
"Active DML queries" quota, and refuses the next one with TooManyRequestsException
(https://docs.aws.amazon.com/athena/latest/ug/service-limits.html). DML is SELECT, CTAS,
INSERT INTO and UNLOAD (https://docs.aws.amazon.com/athena/latest/ug/dml-queries-functions-operators.html);
MSCK REPAIR TABLE is DDL (https://docs.aws.amazon.com/athena/latest/ug/ddl-reference.html),
which has a quota of its own, so refresh and publish's repair are not counted here.

A layer's figure is its peak: its top-level steps run one after another, so the largest
step's count (a Map's MaxConcurrency, at most its item count, times the queries one
iteration runs at once). The layers that start at once are the ones one trigger starts:
the same schedule expression or the same EventBridge detail-type, in every environment
of one account (an environment without `account` is in the default account, shared by
all such environments), plus `athena.other_queries` declared beside any of them. A layer
without triggers is started by hand, alone. Pure Python: `bakery validate` runs it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from bakery.errors import Problem
from bakery.loader import load_yaml
from bakery.planning.model import LayerPlan, Plan, StepPlan

PROJECT_FILE = "bakery.yaml"
QUOTA_PATH = ("athena", "active_dml_queries")


def _map_width(step: StepPlan) -> int:
    """Iterations of a Map at once: MaxConcurrency, at most the items fixed at synth."""
    width = step.max_concurrency or 1
    return min(width, len(step.over_values)) if step.over_values is not None else width


def _geo_join(step: StepPlan) -> int:
    return _map_width(step) if step.over_values else 1  # one UNLOAD per fan-out value


def _for_each(step: StepPlan) -> int:
    # The body's steps run one after another; the row query runs before the Map.
    per_item = max((step_queries(child) for child in step.children), default=0)
    return max(1 if step.over_sql else 0, _map_width(step) * per_item)


def _none(step: StepPlan) -> int:
    return 0


def _one(step: StepPlan) -> int:
    return 1


# DML queries each kind runs at once, keyed by kind like every back-end's table
# (tests/spec/test_athena_concurrency.py checks it covers every kind).
DML_QUERIES: dict[str, Callable[[StepPlan], int]] = {
    "purge_prefix": _none,  # a Lambda deleting S3 objects
    "athena_query": _one,  # UNLOAD (INSERT INTO inside a for_each)
    "geo_join": _geo_join,
    "check": _one,  # its SELECT; GetQueryResults is no query
    "for_each": _for_each,
    "lambda": _none,
    "export_by_key": _one,  # at most the SELECT listing partitions; Lambdas read S3
    "refresh_partitions": _none,  # MSCK REPAIR TABLE: DDL
}


def step_queries(step: StepPlan) -> int:
    return DML_QUERIES[step.kind](step)


def layer_queries(layer: LayerPlan) -> int:
    """The most DML queries the layer has running or queued at once."""
    return max((step_queries(step) for step in layer.steps), default=0)


def _moments(layer: LayerPlan) -> list[str]:
    """What starts the layer: each is a moment at which it runs with the others it starts."""
    triggers = layer.triggers
    out = [f"schedule {' '.join(triggers.schedule.split())}"] if triggers.schedule else []
    out += [f"event {event}" for event in triggers.events]
    return out or [f"a run of {layer.name} by hand"]


@dataclass
class Load:
    """The queries one moment starts in one account."""

    account: str
    moment: str
    parts: list[tuple[str, int, list[str]]] = field(default_factory=list)  # name, figure, envs

    @property
    def total(self) -> int:
        return sum(figure * max(len(envs), 1) for _, figure, envs in self.parts)

    def describe(self) -> str:
        terms = []
        for name, figure, envs in self.parts:
            if envs and len(envs) > 1:
                terms.append(f"{name} {figure} x {len(envs)} ({', '.join(envs)})")
            elif envs:
                terms.append(f"{name} {figure} ({envs[0]})")
            else:
                terms.append(f"{name} {figure}")
        return " + ".join(terms)


def account_name(plan: Plan, env: str) -> str:
    account = plan.project.environments[env].account
    return f"account {account}" if account else "the default account"


def loads(plan: Plan, envs: list[str] | None = None) -> list[Load]:
    """Per account holding one of `envs` (default: every environment), per moment, what
    starts at once. Step concurrency has no per-environment setting, so one plan's
    layers stand for every environment's."""
    project = plan.project
    by_account: dict[str, list[str]] = {}
    for env in project.environments:
        by_account.setdefault(account_name(plan, env), []).append(env)
    wanted = {account_name(plan, env) for env in envs or project.environments}
    out: list[Load] = []
    for account, account_envs in by_account.items():
        if account not in wanted:
            continue
        others: list[tuple[str, int, list[str]]] = [
            (o.name, o.queries, [])
            for o in project.athena.other_queries
            if o.beside in project.environments and account_name(plan, o.beside) == account
        ]
        moments: dict[str, Load] = {}
        for layer in plan.layers:
            figure = layer_queries(layer)
            for moment in _moments(layer):
                load = moments.setdefault(moment, Load(account, moment))
                # By hand, a person starts one run in one environment.
                runs = account_envs[:1] if moment.endswith("by hand") else account_envs
                if figure:
                    load.parts.append((layer.name, figure, list(runs)))
        if others and not moments:
            moments["any time"] = Load(account, "any time")
        for load in moments.values():
            load.parts.extend(others)
            out.append(load)
    return out


def over_quota(plans: list[Plan]) -> list[Problem]:
    """A problem at bakery.yaml's quota for each moment that starts more queries than it
    allows, and for an `other_queries` entry beside an unknown environment."""
    plan = plans[0]
    project = plan.project
    doc = load_yaml(plan.root / PROJECT_FILE, PROJECT_FILE, root=plan.root)
    problems = []
    for i, other in enumerate(project.athena.other_queries):
        if other.beside not in project.environments:
            problems.append(
                doc.problem(
                    ("athena", "other_queries", i, "beside"),
                    f"unknown environment {other.beside!r}; use one of: "
                    f"{', '.join(project.environments)}",
                )
            )
    quota = project.athena.active_dml_queries
    athena = doc.data.get("athena") if isinstance(doc.data, dict) else None
    declared = isinstance(athena, dict) and QUOTA_PATH[1] in athena
    quota_text = f"{quota}" if declared else f"{quota} (AWS's default: {QUOTA_PATH[1]} unset)"
    for load in loads(plan, [p.env for p in plans]):
        if load.total <= quota:
            continue
        problems.append(
            doc.problem(
                QUOTA_PATH,
                f"{load.moment} starts {load.total} Athena queries at once in {load.account}, "
                f"over its quota of {quota_text}: {load.describe()} = {load.total}; lower the "
                "layers' max_concurrency, give environments their own account "
                "(environments.<env>.account), or raise the quota (Service Quotas, "
                "docs/aws.md) and declare it here",
            )
        )
    return problems
