"""build/asl/<layer>.asl.json is committed for review: it must be what synth writes now.

Fast and without aws_cdk: the files are compiled from the development plan by
the same function `bakery synth` uses to write build/asl/.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from aws_helpers import REPO

from bakery.compile.asl import layer_asl_json
from bakery.plan import Plan, build_plan
from bakery.workspace import load_workspace

ASL_DIR = REPO / "build" / "asl"


@pytest.fixture(scope="module")
def plan() -> Plan:
    """The repository's own layers, whatever they are (not the framework tests' project)."""
    return build_plan(load_workspace(REPO), "development")


def test_committed_asl_is_what_synth_writes(plan: Plan):
    assert plan.env == "development"
    for layer in plan.layers:
        path = ASL_DIR / f"{layer.name}.asl.json"
        hint = (
            f"build/asl/{layer.name}.asl.json is stale: run `uv run bakery synth --env development`"
        )
        assert path.is_file(), hint
        assert path.read_bytes() == layer_asl_json(plan, layer).encode(), hint


def test_no_committed_asl_for_a_layer_that_is_gone(plan: Plan):
    expected = {f"{layer.name}.asl.json" for layer in plan.layers}
    extra = sorted(p.name for p in ASL_DIR.glob("*.asl.json") if p.name not in expected)
    assert not extra, (
        f"build/asl/{extra[0]} has no layer: run `uv run bakery synth --env development`"
    )


def test_build_asl_is_tracked_and_the_rest_of_build_is_ignored(tmp_path: Path):
    # The repository's .gitignore in a scratch repository: works in any copy of the tree.
    shutil.copyfile(REPO / ".gitignore", tmp_path / ".gitignore")
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)

    def ignored(path: str) -> bool:
        done = subprocess.run(
            ["git", "check-ignore", "-q", "--no-index", path],
            cwd=tmp_path,
            capture_output=True,
            check=False,
        )
        return done.returncode == 0

    assert not ignored("build/asl/addressbase.asl.json")
    assert ignored("build/lambda/handler.py")


def test_the_staleness_check_needs_no_aws_cdk():
    code = (
        "import sys; from pathlib import Path\n"
        "from bakery.compile.asl import layer_asl_json\n"
        "from bakery.plan import build_plan\n"
        "from bakery.workspace import load_workspace\n"
        f"plan = build_plan(load_workspace(Path({str(REPO)!r})), 'development')\n"
        "[layer_asl_json(plan, layer) for layer in plan.layers]\n"
        "assert not [m for m in sys.modules if m.startswith(('aws_cdk', 'jsii'))]\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
