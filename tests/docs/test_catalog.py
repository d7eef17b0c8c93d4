"""`bakery docs`: the Markdown catalog of layers and tables, and its staleness check."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from bakery.catalog import render_catalog
from bakery.cli.common import app

REPO = Path(__file__).resolve().parents[2]
PROJECT = REPO / "tests" / "fixtures" / "project"
runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def plans(root: Path = PROJECT):
    from bakery.plan import build_plan
    from bakery.workspace import load_workspace

    ws = load_workspace(root)
    return [build_plan(ws, env) for env in ws.project.environments]


def test_committed_catalog_is_up_to_date():
    committed = (REPO / "docs" / "catalog.md").read_text()
    assert committed == render_catalog(plans(REPO)), (
        "docs/catalog.md is stale: run `uv run bakery docs` and commit"
    )


def test_catalog_covers_layers_steps_and_tables():
    text = render_catalog(plans())
    assert "## Layer addressbase" in text and "## Layer current_elections" in text
    assert (
        "- Triggers: schedule `cron(0 1 * * ? *)`; EventBridge events with detail-type "
        "`elections_set_changed`; through a FIFO queue with a 300 s delivery delay"
    ) in text
    singleton = "one run at a time (a start while one runs is deferred, not failed)"
    assert f"- Singleton: yes, {singleton}" in text
    assert "| 3 | `join_ballots_to_addresses` | geo_join (x26 over first_letter) |" in text
    assert "One Parquet file per outcode, read directly by the APIs." in text
    # A table: location per environment, format, partitions, columns, readers and writers.
    for env in ("development", "staging", "production"):
        assert (
            f"  - {env}: `s3://pollingstations.private.data/addressbase/{env}/"
            "addressbase_partitioned/`"
        ) in text
        assert (
            f"- {env}: `s3://pollingstations.private.data/addressbase/{env}/"
            "current_elections_parquet/`"
        ) in text
    assert "- Partitioned by: `first_letter`" in text
    assert (
        "| `ballot_ids` | `array<string>` | Sorted distinct ballot ids; empty where none. |" in text
    )
    assert "| `first_letter` | `string` | Partition key. First character of the postcode. |" in text
    assert (
        "- Read by: `addressbase.partition_addressbase`, `addressbase.same_uprns_as_raw`, "
        "`current_elections.same_uprns_as_raw`"
    ) in text
    assert "- Written by: no step (produced elsewhere)" in text
    assert "- Written by: `current_elections.export_ballots`" in text


def test_cli_check_and_write(copy):
    result = run("docs", "--check")
    assert result.exit_code == 0, result.stderr
    layer = copy / "layers" / "current_elections.yaml"
    layer.write_text(
        layer.read_text().replace(
            "{name: division_id, type: string}",
            "{name: division_id, type: string, description: New.}",
        )
    )
    result = run("docs", "--check")
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        f"{copy / 'docs' / 'catalog.md'} is out of date; run `bakery docs` and commit it"
    ]
    result = run("docs")
    assert result.exit_code == 0
    assert "| `division_id` | `string` | New. |" in (copy / "docs" / "catalog.md").read_text()
    assert run("docs", "--check").exit_code == 0
    result = run("docs", "--out", "-")
    assert result.stdout.startswith("# Catalog of layers and tables\n")


def test_cli_reports_spec_problems_without_a_traceback(copy):
    layer = copy / "layers" / "addressbase.yaml"
    layer.write_text(
        layer.read_text().replace("table: addressbase_partitioned\n", "table: nope\n", 1)
    )
    result = run("docs")
    assert result.exit_code == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].endswith("found")
