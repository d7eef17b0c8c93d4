"""`bakery validate` adds up the Athena queries the layers start at once, per AWS account,
against the quota bakery.yaml declares (bakery/planning/athena_concurrency.py).

The fixture project (tests/fixtures/quota/) has two layers on the same nightly schedule
in two environments of one account: letters (a for_each of 6 at once) and checks (4 at
once), 20 queries against a declared quota of 15.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bakery import kinds
from bakery.cli.common import app
from bakery.plan import build_plan
from bakery.planning.athena_concurrency import DML_QUERIES, layer_queries, loads, over_quota
from bakery.workspace import load_workspace

REPO = Path(__file__).resolve().parents[2]
FIXTURE = REPO / "tests" / "fixtures" / "quota"
runner = CliRunner()


class Quota:
    """A throwaway copy of the fixture project."""

    def __init__(self, root: Path):
        self.root = root

    def edit(self, relative: str, old: str, new: str) -> None:
        path = self.root / relative
        text = path.read_text()
        assert old in text, f"{old!r} not in {relative}"
        path.write_text(text.replace(old, new, 1))

    def validate(self, *args: str) -> tuple[int, list[str]]:
        result = runner.invoke(app, ["validate", *args], catch_exceptions=False)
        return result.exit_code, result.stderr.splitlines()


@pytest.fixture
def quota(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Quota:
    root = tmp_path / "quota"
    shutil.copytree(FIXTURE, root)
    monkeypatch.chdir(root)
    monkeypatch.delenv("BAKERY_PROJECT", raising=False)
    monkeypatch.delenv("DC_ENVIRONMENT", raising=False)
    return Quota(root)


NIGHTLY = (
    "bakery.yaml:12:3: athena.active_dml_queries: schedule cron(0 1 * * ? *) starts 20 Athena "
    "queries at once in the default account, over its quota of 15: letters 6 x 2 "
    "(development, production) + checks 4 x 2 (development, production) = 20; lower the "
    "layers' max_concurrency, give environments their own account "
    "(environments.<env>.account), or raise the quota (Service Quotas, docs/aws.md) and "
    "declare it here"
)


def test_layers_over_the_quota_fail_validate_with_the_numbers(quota):
    code, lines = quota.validate("--all-envs")
    assert code == 1
    assert lines == [NIGHTLY, "1 problem found"]
    # Validating one environment still counts the other one in its account.
    assert quota.validate() == (1, [NIGHTLY, "1 problem found"])


def test_at_the_quota_it_passes(quota):
    quota.edit("bakery.yaml", "active_dml_queries: 15", "active_dml_queries: 20")
    code, lines = quota.validate("--all-envs")
    assert code == 0, lines
    assert lines[0].startswith("ok: 2 layers")


def test_layers_on_different_schedules_do_not_add_up(quota):
    quota.edit("layers/checks.yaml", "cron(0 1 * * ? *)", "cron(0 3 * * ? *)")
    code, lines = quota.validate("--all-envs")
    assert code == 0, lines
    # The shared event still adds up: give letters the event too and 01:00 is 12, the event 20.
    quota.edit(
        "layers/letters.yaml", "  schedule: cron(0 1 * * ? *)\n", "  events: [words_changed]\n"
    )
    code, lines = quota.validate("--all-envs")
    assert code == 1
    assert lines[0].startswith(
        "bakery.yaml:12:3: athena.active_dml_queries: event words_changed starts 20 Athena "
        "queries at once in the default account"
    )


def test_environments_in_different_accounts_do_not_add_up(quota):
    quota.edit("bakery.yaml", "development: {}", "development: {account: '111111111111'}")
    quota.edit("bakery.yaml", "production: {}", "production: {account: '222222222222'}")
    code, lines = quota.validate("--all-envs")
    assert code == 0, lines
    # The same account, written out, adds up again.
    quota.edit("bakery.yaml", "'222222222222'", "'111111111111'")
    code, lines = quota.validate("--all-envs")
    assert code == 1
    assert "in account 111111111111, over its quota of 15" in lines[0]


def test_other_systems_count_in_the_account_they_run_beside(quota):
    quota.edit("bakery.yaml", "development: {}", "development: {account: '111111111111'}")
    quota.edit("bakery.yaml", "production: {}", "production: {account: '222222222222'}")
    quota.edit(
        "bakery.yaml",
        "  active_dml_queries: 15\n",
        "  active_dml_queries: 15\n"
        "  other_queries:\n"
        "    - {name: old-baker, queries: 6, beside: production}\n",
    )
    code, lines = quota.validate("--all-envs")
    assert code == 1 and lines[-1] == "1 problem found"
    assert lines[0] == (
        "bakery.yaml:12:3: athena.active_dml_queries: schedule cron(0 1 * * ? *) starts 16 "
        "Athena queries at once in account 222222222222, over its quota of 15: letters 6 "
        "(production) + checks 4 (production) + old-baker 6 = 16; lower the layers' "
        "max_concurrency, give environments their own account (environments.<env>.account), "
        "or raise the quota (Service Quotas, docs/aws.md) and declare it here"
    )
    quota.edit("bakery.yaml", "beside: production", "beside: prod")
    code, lines = quota.validate("--all-envs")
    assert code == 1
    assert lines[0] == (
        "bakery.yaml:14:37: athena.other_queries[0].beside: unknown environment 'prod'; "
        "use one of: development, production"
    )


def test_a_layer_started_by_hand_counts_once_and_alone(quota):
    quota.edit("layers/letters.yaml", "triggers:\n  schedule: cron(0 1 * * ? *)\n", "")
    quota.edit("layers/letters.yaml", "max_concurrency: 6", "max_concurrency: 50")
    code, lines = quota.validate("--all-envs")
    # A Map runs at most as many iterations as it has items: 12 letters, not 50.
    assert code == 0, lines
    quota.edit("layers/letters.yaml", "over: {values: A..L}", "over: {values: A..P}")
    code, lines = quota.validate("--all-envs")
    assert code == 1
    assert lines[0].startswith(
        "bakery.yaml:12:3: athena.active_dml_queries: a run of letters by hand starts 16 "
        "Athena queries at once in the default account, over its quota of 15: letters 16 "
        "(development) = 16;"
    )


def test_an_undeclared_quota_is_aws_default(quota):
    quota.edit("bakery.yaml", "  active_dml_queries: 15\n", "")
    quota.edit("layers/letters.yaml", "max_concurrency: 6", "max_concurrency: 12")
    code, lines = quota.validate("--all-envs")
    assert code == 1
    over = "starts 32 Athena queries at once in the default account, over its quota of 25 "
    assert over in lines[0]
    assert "(AWS's default: active_dml_queries unset)" in lines[0]
    assert lines[0].startswith("bakery.yaml:9:1: athena.active_dml_queries: ")


def test_every_kind_has_a_query_count():
    kinds.check_backend(DML_QUERIES, "Athena query counts")


def test_the_real_project_passes_with_what_its_layers_start():
    ws = load_workspace(REPO)
    plans = [build_plan(ws, env) for env in ws.project.environments]
    assert over_quota(plans) == []
    plan = plans[0]
    # Not vacuous: the nightly schedule and the shared event start both layers in all
    # four environments of the default account.
    figures = {layer.name: layer_queries(layer) for layer in plan.layers}
    assert figures == {"addressbase": 1, "current_elections": 4, "current_boundary_changes": 2}
    totals = {load.moment: load.total for load in loads(plan)}
    assert totals["schedule cron(0 1 * * ? *)"] == 24
    assert totals["event elections_set_changed"] == 24
    assert totals["event boundary_change_set_changed"] == 8
    assert plan.project.athena.active_dml_queries == 25
