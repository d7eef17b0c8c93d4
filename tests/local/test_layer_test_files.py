"""A layer test's `file:` reads only project files under the layers folder (issue 19,
item 9): an absolute path, a `../../..` path, a symlink out, a hidden name or a file
elsewhere in the project is refused by `bakery validate`, `bakery test` and pytest, which
never print its rows. On the fixture project tests/fixtures/wards."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bakery.cli import app

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "wards"
SECRET = "TOPSECRET"
TESTS = "layers/tests/wards.yaml"
CASE = """\
layer: wards
tests:
  - name: reads_a_file
    given:
      homes: [{uprn: "1", postcode: AB1 2CD, longitude: 1, latitude: 1.5}]
      ward_polygons: {file: ../samples/ward_polygons.csv}
    expect:
      homes_in_wards: {file: FILE}
"""
# line 8, column 24: where `file:` is in CASE
AT = f"{TESTS}:8:24: tests[0].expect.homes_in_wards.file"
runner = CliRunner()


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "project"
    shutil.copytree(FIXTURE, root)
    monkeypatch.setenv("BAKERY_PROJECT", str(root))
    return root


def secret_csv(path: Path) -> Path:
    """A CSV shaped like homes_in_wards whose rows must never be printed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"uprn,postcode,outcode,ward_ids,wards\n{SECRET},AB1 2CD,AB1,[],1\n")
    return path


def name_in_test(project: Path, file: str) -> None:
    (project / TESTS).write_text(CASE.replace("FILE", file))


def outputs(project: Path) -> list[tuple[int, str]]:
    """(exit code, stdout + stderr) of `bakery validate` and `bakery test`."""
    found = []
    for command in ("validate", "test"):
        result = runner.invoke(app, [command], catch_exceptions=False)
        found.append((result.exit_code, result.stdout + result.stderr))
    return found


@pytest.mark.parametrize(
    ("where", "written", "reason"),
    [
        pytest.param(
            "outside", "ABSOLUTE", "it is not under layers/; keep the files layers use under "
            "layers/, with plain names", id="absolute-path",
        ),
        pytest.param(
            "outside", "../../../outside/rows.csv", "it is not under layers/; keep the files "
            "layers use under layers/, with plain names", id="dotdot-out-of-the-project",
        ),
        pytest.param(
            "rows.csv", "../../rows.csv", "it is not under layers/; keep the files layers use "
            "under layers/, with plain names", id="project-file-outside-layers",
        ),
        pytest.param(
            "layers/.cache/rows.csv", "../.cache/rows.csv", "'.cache' is a hidden name, not a "
            "project file; keep the files layers use under layers/, with plain names",
            id="hidden-folder",
        ),
        pytest.param(
            "symlink", "../samples/link.csv", "it leads outside the project (a symlink?); "
            "keep files inside it", id="symlink-out",
        ),
    ],
)  # fmt: skip
def test_a_file_outside_the_layers_folder_is_refused_and_never_printed(
    project, tmp_path, where, written, reason
):
    outside = secret_csv(tmp_path / "outside" / "rows.csv")
    if where == "symlink":
        (project / "layers/samples/link.csv").symlink_to(outside)
    elif where != "outside":
        secret_csv(project / where)
    file = str(outside) if written == "ABSOLUTE" else written
    name_in_test(project, file)
    expected = f"{AT}: file {file!r} refused: {reason}"
    for code, text in outputs(project):
        assert code == 1
        assert text.splitlines()[0] == expected
        assert SECRET not in text


def test_pytest_refuses_the_file_too(project, tmp_path):
    outside = secret_csv(tmp_path / "outside" / "rows.csv")
    name_in_test(project, str(outside))
    env = {k: v for k, v in os.environ.items() if k != "BAKERY_PROJECT"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "bakery.pytest_plugin", "-p", "no:cacheprovider",
         "-q", str(project / "layers" / "tests")],
        capture_output=True, text=True, cwd=project, env=env, timeout=300,
    )  # fmt: skip
    assert done.returncode != 0
    assert "it is not under layers/" in done.stdout + done.stderr
    assert SECRET not in done.stdout + done.stderr


def test_a_file_under_the_layers_folder_is_read(project):
    secret_csv(project / "layers/tests/cases/rows.csv")
    name_in_test(project, "cases/rows.csv")
    (validated, _), (tested, text) = outputs(project)
    assert validated == 0
    # read and compared: the row from the file is an expected row not found
    assert tested == 1
    assert f"    - {SECRET}" in text
