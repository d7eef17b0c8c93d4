"""Helpers shared by the AWS back-end tests (imported as a plain module)."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bakery.plan import Plan

REPO = Path(__file__).resolve().parents[2]
# The framework tests' own project: independent of the layers in layers/.
PROJECT = REPO / "tests" / "fixtures" / "project"
ASL_VALIDATOR = REPO / "node_modules" / ".bin" / "asl-validator"


@dataclass
class Synthesized:
    plan: Plan
    outdir: Path
    templates: dict[str, dict]  # stack name -> template
    stacks: dict[str, object]  # stack name -> Stack construct
    layer_stacks: dict[str, object]  # layer name -> LayerStack
    report: dict


def resources(template: dict, kind: str) -> dict[str, dict]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def synth_templates(plan: Plan, tmp: Path) -> dict[str, dict]:
    """stack name -> template of `plan`'s app, synthesized with cdk-nag's AwsSolutions
    (app.synth() raises on any of its errors)."""
    from bakery.constructs import build_app

    app, _, _ = build_app(plan, outdir=str(tmp / "cdk.out"), nag=True, build_dir=tmp / "build")
    assembly = app.synth()
    return {
        s.stack_name: json.loads(Path(s.template_full_path).read_text()) for s in assembly.stacks
    }


def asl_validate(*paths: Path) -> subprocess.CompletedProcess:
    if not ASL_VALIDATOR.exists():
        npx = shutil.which("npx")
        assert npx, "asl-validator is not installed: run `npm ci` (Node.js needed)"
        command = [npx, "--no-install", "asl-validator"]
    else:
        command = [str(ASL_VALIDATOR)]
    for path in paths:
        command += ["--json-path", str(path)]
    return subprocess.run(command, capture_output=True, text=True, check=False)


def fail_first_delete(s3) -> None:
    """Make `s3.delete_objects` refuse the first key of every batch (AccessDenied)."""

    def partial(**kwargs):
        objects = kwargs["Delete"]["Objects"]
        return {
            "Deleted": [{"Key": o["Key"]} for o in objects[1:]],
            "Errors": [{"Key": objects[0]["Key"], "Code": "AccessDenied", "Message": "denied"}],
        }

    s3.delete_objects = partial
