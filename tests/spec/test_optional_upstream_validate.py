"""`optional_upstream` (a step's tables of other layers that may never have been
published) is checked by `validate`: each entry names, at its line, a table of another
layer that the step reads. Run on tests/fixtures/project with the reading layer of
tests/fixtures/upstream."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bakery.cli import app
from bakery.errors import SpecError
from bakery.plan import build_plan
from bakery.workspace import load_workspace

REPO = Path(__file__).resolve().parents[2]
READER = REPO / "tests" / "fixtures" / "upstream" / "outcode_addresses.yaml"
L = "layers/outcode_addresses.yaml"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "p"
    shutil.copytree(REPO / "tests" / "fixtures" / "project", root)
    shutil.copy(READER, root / L)
    return root


def with_optional(root: Path, step: str, refs: str) -> None:
    path = root / L
    text = path.read_text()
    anchor = f"    id: {step}\n" if step else "    name: outcode_addresses\n"
    assert anchor in text
    path.write_text(text.replace(anchor, f"{anchor}    optional_upstream: {refs}\n"))


def problems(root: Path) -> list[str]:
    try:
        build_plan(load_workspace(root), "development")
    except SpecError as exc:
        return [str(p) for p in exc.problems]
    return []


def test_a_table_the_step_reads_is_resolved_into_its_plan(root):
    with_optional(root, "copy_addresses", "[addressbase.addressbase_partitioned]")
    plan = build_plan(load_workspace(root), "development")
    steps = {s.id: s for s in plan.layer("outcode_addresses").steps}
    assert steps["copy_addresses"].optional_upstream == ["addressbase.addressbase_partitioned"]
    assert steps["same_uprns"].optional_upstream == []


@pytest.mark.parametrize(
    ("step", "refs", "expected"),
    [
        pytest.param(
            "copy_addresses",
            "[outcode_addresses]",
            f"{L}:17:25: steps[1].optional_upstream[0]: 'outcode_addresses.outcode_addresses' "
            "is a table of this layer; optional_upstream lists tables of other layers that "
            "may never have been published",
            id="own-table",
        ),
        pytest.param(
            "copy_addresses",
            "[addressbase.addressbase_cleaned_raw]",
            f"{L}:17:25: steps[1].optional_upstream[0]: step 'copy_addresses' does not read "
            "'addressbase.addressbase_cleaned_raw'; list only tables it reads",
            id="not-read",
        ),
        pytest.param(
            "copy_addresses",
            "[addressbase.addressbase_partitione]",
            f"{L}:17:25: steps[1].optional_upstream[0]: layer 'addressbase' declares no "
            "table 'addressbase_partitione'; did you mean 'addressbase_partitioned'?",
            id="unknown-table",
        ),
        pytest.param(
            "",
            "[addressbase.addressbase_partitioned]",
            f"{L}:9:25: steps[0].optional_upstream[0]: a glue_table step reads no table",
            id="glue-table",
        ),
    ],
)
def test_a_wrong_entry_is_refused_at_its_line(root, step, refs, expected):
    with_optional(root, step, refs)
    assert problems(root) == [expected]


def test_validate_prints_one_line_and_exits_1(root, monkeypatch):
    with_optional(root, "same_uprns", "[addressbase.addressbase_cleaned_raw]")
    monkeypatch.chdir(root)
    monkeypatch.delenv("BAKERY_PROJECT", raising=False)
    result = CliRunner().invoke(app, ["validate"])
    assert result.exit_code == 1, result.output
    assert (
        f"{L}:22:25: steps[2].optional_upstream[0]: step 'same_uprns' does not read "
        "'addressbase.addressbase_cleaned_raw'; list only tables it reads"
    ) in result.output
    assert "Traceback" not in result.output
