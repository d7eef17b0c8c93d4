"""synth, deploy, diff: the commands that turn the plan into AWS infrastructure (`run`,
which starts a deployed state machine, is in run_command.py).

aws_cdk is imported inside the commands only (jsii starts Node: seconds), so
`bakery validate` never pays for it.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from bakery.cli.common import (
    EXIT_FAILED,
    EnvOption,
    app,
    load_plan,
    unknown_layer,
    usage_error,
)

for _name, _value in (
    ("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1"),
    ("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20"),
):
    os.environ.setdefault(_name, _value)


def fail(message: str) -> NoReturn:
    print(f"bakery: error: {message}", file=sys.stderr)
    raise typer.Exit(EXIT_FAILED)


def _check_layers(plan: Any, layers: list[str]) -> None:
    if message := unknown_layer(plan, layers):
        usage_error(message)


# ---------------------------------------------------------------- synth


def write_asl(plan: Any, asl_dir: Path) -> list[Path]:
    """Each layer's state machine definition, pretty and sorted, to <asl_dir>/<layer>.asl.json."""
    from bakery.compile.asl import layer_asl_json

    asl_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for layer in plan.layers:
        path = asl_dir / f"{layer.name}.asl.json"
        text = layer_asl_json(plan, layer)
        if not path.is_file() or path.read_text() != text:
            path.write_text(text)
        written.append(path)
    for stale in asl_dir.glob("*.asl.json"):
        if stale not in written:
            stale.unlink()
    return written


def synthesize(plan: Any, out: Path, *, nag: bool = True) -> list[Path]:
    """The cloud assembly in `out` (emptied first when it is one); return the templates."""
    if out.exists() and (out / "manifest.json").is_file():
        shutil.rmtree(out)
    from bakery.constructs import build_app

    cdk_app, _core, _layers = build_app(plan, outdir=str(out), nag=nag)
    assembly = cdk_app.synth()
    return [Path(out) / Path(s.template_file).name for s in assembly.stacks]


@app.command()
def synth(
    env: EnvOption = "development",
    out: Annotated[Path, typer.Option("--out", help="Cloud assembly folder.")] = Path("cdk.out"),
    asl_dir: Annotated[
        Path, typer.Option("--asl-dir", help="Folder for <layer>.asl.json definitions.")
    ] = Path("build/asl"),
    nag: Annotated[
        bool, typer.Option("--nag/--no-nag", help="Run cdk-nag's AwsSolutions checks.")
    ] = True,
) -> None:
    """Compile every layer into CDK stacks (cdk.out/) and state machine definitions (build/asl/).

    Needs no AWS credentials and no Docker; the output is deterministic, so a diff
    of build/asl/ in review shows exactly what changed in each state machine.
    """
    started = time.perf_counter()
    plan = load_plan(env)
    from bakery.compile.asl import CompileError

    try:
        asl = write_asl(plan, asl_dir)
        templates = synthesize(plan, out, nag=nag)
    except CompileError as exc:
        fail(str(exc))
    except Exception as exc:  # jsii surfaces CDK errors (and cdk-nag failures) as RuntimeError
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        report = out / "validation-report.json"
        hint = f" (see {report})" if report.is_file() else ""
        fail(f"synth failed: {first}{hint}")
    elapsed = time.perf_counter() - started
    for path in templates:
        print(f"template {path}", file=sys.stderr)
    for path in asl:
        print(f"asl      {path}", file=sys.stderr)
    print(
        f"ok: {len(templates)} stacks, {len(asl)} state machines ({plan.env})"
        f"{', cdk-nag AwsSolutions clean' if nag else ''} in {elapsed:.1f}s",
        file=sys.stderr,
    )


# ---------------------------------------------------------------- deploy / diff


def cdk_command(action: str, plan: Any, layers: list[str], extra: list[str]) -> list[str]:
    """The pinned CDK CLI's command line for `action` on `layers` (every stack when none).

    `cdk deploy` needs `--all` to act on every stack; `cdk diff` covers every stack
    by default and has no `--all` option (the CLI refuses it).
    """
    from bakery.planning.names import layer_stack_name

    stacks = [layer_stack_name(plan, name) for name in layers]
    if not stacks and action == "deploy":
        stacks = ["--all"]
    return [
        "npx",
        "--no-install",
        "cdk",
        action,
        *stacks,
        "-c",
        f"dc-environment={plan.env}",
        *extra,
    ]


def _run_cdk(command: list[str], plan: Any, dry_run: bool) -> None:
    if dry_run:
        print(shlex.join(command))
        return
    if shutil.which(command[0]) is None:
        fail(f"{command[0]} not found: install Node.js, then run `npm ci` in {plan.root}")
    if not (plan.root / "node_modules" / ".bin" / "cdk").exists():
        fail(f"the CDK CLI is not installed: run `npm ci` in {plan.root}")
    env = {**os.environ, "DC_ENVIRONMENT": plan.env}
    code = subprocess.run(command, cwd=plan.root, env=env, check=False).returncode
    if code:
        print(f"bakery: error: {shlex.join(command)} exited with {code}", file=sys.stderr)
        raise typer.Exit(EXIT_FAILED)


LayersArg = Annotated[
    list[str] | None,
    typer.Argument(help="Layers to act on (default: all); stacks they depend on come along."),
]
DryRunOption = Annotated[
    bool, typer.Option("--dry-run", help="Print the exact cdk command and exit.")
]


@app.command()
def deploy(
    layers: LayersArg = None,
    env: EnvOption = "development",
    approve: Annotated[
        bool,
        typer.Option("--approve", help="Do not ask before security changes (for CI)."),
    ] = False,
    dry_run: DryRunOption = False,
) -> None:
    """Deploy layer stacks (and the core stack they need) with the pinned CDK CLI."""
    plan = load_plan(env)
    _check_layers(plan, layers or [])
    extra = ["--require-approval", "never"] if approve else []
    _run_cdk(cdk_command("deploy", plan, layers or [], extra), plan, dry_run)


@app.command()
def diff(
    layers: LayersArg = None,
    env: EnvOption = "development",
    dry_run: DryRunOption = False,
) -> None:
    """Show what `bakery deploy` would change, stack by stack (`cdk diff`)."""
    plan = load_plan(env)
    _check_layers(plan, layers or [])
    _run_cdk(cdk_command("diff", plan, layers or [], []), plan, dry_run)
