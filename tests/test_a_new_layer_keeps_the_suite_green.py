"""Adding a layer is the user's job and must need no test edit (issue 9, item 1).

In a copy of the repository, `bakery new` adds a layer whose name sorts between the
existing ones; the artefacts the README says to regenerate are regenerated (`synth`
writes build/asl, `graph`, `docs`, `schema`); then the tests that read layers/ or the
committed artefacts run there and must pass untouched. `synth` runs without cdk-nag
here (nag changes no file it writes; the suite runs it on the real layers).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NEW = "current_districts"  # sorts between current_boundary_changes and current_elections
IGNORE = shutil.ignore_patterns(
    ".git", ".venv", "node_modules", ".bakery", "cdk.out", "__pycache__", ".pytest_cache",
    ".ruff_cache", "*.egg-info",
)  # fmt: skip
# The tests that read layers/ or the committed artefacts, and the ones that failed when
# a layer was added before they were made layer-generic.
LAYER_GENERIC = [
    "tests/test_layers.py",
    "tests/aws/test_asl_committed.py",
    "tests/docs/test_graph.py::test_committed_dot_is_up_to_date",
    "tests/docs/test_graph.py::test_buckets_hold_the_prefixes_tables_live_at",
    "tests/docs/test_catalog.py::test_committed_catalog_is_up_to_date",
    "tests/docs/test_new.py::test_new_layer_validates_and_is_described",
    "tests/spec/test_cli.py::test_validate_ok",
    "tests/spec/test_cli.py::test_describe_json_is_stable_and_resolved",
    "tests/spec/test_cli.py::test_describe_one_layer_and_unknown_layer",
    "tests/spec/test_cli.py::test_committed_schemas_are_current",
    "tests/spec/test_cli.py::test_every_layer_file_has_the_schema_modeline",
    "tests/spec/test_validate_errors.py::test_the_repository_layers_are_valid",
    "tests/spec/test_validate_errors.py::test_bad_layer_input",
]


def run(copy: Path, *args: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PYTHONPATH": str(copy),  # the copy's bakery and tests, not the repository's
        "BAKERY_PROJECT": str(copy),
        "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
    }
    env.pop("DC_ENVIRONMENT", None)
    done = subprocess.run(
        [sys.executable, *args], cwd=copy, env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, f"{args}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def test_a_layer_added_with_bakery_new_needs_no_test_edit(tmp_path: Path):
    copy = tmp_path / "repo"
    shutil.copytree(REPO, copy, ignore=IGNORE)
    if (REPO / "node_modules").is_dir():
        (copy / "node_modules").symlink_to(REPO / "node_modules")
    run(copy, "-m", "bakery", "new", NEW)
    for command in (
        ["synth", "--env", "development", "--no-nag", "--out", str(tmp_path / "cdk.out")],
        ["graph"],
        ["docs"],
        ["schema"],
    ):
        run(copy, "-m", "bakery", *command)
    assert (copy / "build" / "asl" / f"{NEW}.asl.json").is_file()
    assert f"## Layer {NEW}\n" in (copy / "docs" / "catalog.md").read_text()
    done = run(copy, "-m", "pytest", "-q", "-p", "no:cacheprovider", *LAYER_GENERIC)
    assert " passed" in done.stdout and "failed" not in done.stdout, done.stdout
