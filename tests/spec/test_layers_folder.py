"""A layers folder that cannot be listed (a symlink loop, a file, a broken symlink) is a
usage error (one line, exit 2), not "ok: 0 layers"; a layer file that is a symlink loop
is one problem line naming it (issue 13, finding 12). Run on tests/fixtures/guards."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bakery.cli import app

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "guards"
runner = CliRunner()


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "guards"
    shutil.copytree(FIXTURE, root)
    monkeypatch.chdir(root)
    monkeypatch.delenv("BAKERY_PROJECT", raising=False)
    monkeypatch.delenv("DC_ENVIRONMENT", raising=False)
    return root


def _replace_layers(root: Path, how: str) -> None:
    shutil.rmtree(root / "layers")
    if how == "loop":
        (root / "layers").symlink_to("layers")  # layers -> layers
    elif how == "two-step loop":
        (root / "layers").symlink_to("other")
        (root / "other").symlink_to("layers")
    elif how == "file":
        (root / "layers").write_text("not a folder\n")
    elif how == "broken symlink":
        (root / "layers").symlink_to("nowhere")


@pytest.mark.parametrize("how", ["loop", "two-step loop", "file", "broken symlink"])
@pytest.mark.parametrize("command", [["validate"], ["validate", "--all-envs"], ["graph"]])
def test_an_unusable_layers_folder_is_a_usage_error(project, how, command):
    _replace_layers(project, how)
    result = runner.invoke(app, command)
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("bakery: error: the layers folder layers/ "), lines[0]
    reason = {
        "loop": "a symlink loop",
        "two-step loop": "a symlink loop",
        "file": "not a folder",
        "broken symlink": "a broken symlink",
    }[how]
    assert reason in lines[0], lines[0]
    assert lines[0].endswith("; make it a folder inside the project holding the layer files")


def test_a_layer_file_that_is_a_symlink_loop_is_one_problem_line(project):
    (project / "layers" / "loop.yaml").symlink_to("loop.yaml")
    result = runner.invoke(app, ["validate"])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert (
        "layers/loop.yaml:1:1: cannot read file: cannot read it: Too many levels of "
        "symbolic links" in result.output
    ), result.output


def test_a_remembered_ok_does_not_hide_a_layers_folder_turned_into_a_loop(project):
    assert runner.invoke(app, ["validate"]).exit_code == 0
    assert runner.invoke(app, ["validate"]).exit_code == 0  # answered from the record
    _replace_layers(project, "loop")
    result = runner.invoke(app, ["validate"])
    assert result.exit_code == 2, result.output
    assert "the layers folder layers/ cannot be read (a symlink loop)" in result.stderr
