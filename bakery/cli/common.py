"""Shared pieces of the CLI: the Typer app, options, and how spec problems are reported."""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from bakery.cli import plan_loading
from bakery.cli.plan_loading import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    Stop,
    problems_stop,
    usage_stop,
)
from bakery.errors import SpecError

if TYPE_CHECKING:  # the plan module imports sqlglot: only when a command needs it
    from bakery.plan import Plan

app = typer.Typer(
    name="bakery",
    help="Declarative data layers: YAML specs validated, compiled to AWS, or baked on DuckDB.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_USAGE"]


def _one_help_convention() -> None:
    """Every --help uses click's convention, not typer's Python types (`paths...
    <list[Path]>`): arguments by name in capitals (`LAYER...`, `[PATHS]...`), option
    values by their metavar or their type (`--env ENV`, `--store PATH`, `--seed INTEGER`)."""
    from typer.core import TyperArgument, TyperOption

    def argument_name(self: TyperArgument) -> str:
        return self.metavar or (self.name or "").upper()

    def usage_name(self: TyperArgument) -> str:
        name = argument_name(self)
        name = name if self.required else f"[{name}]"
        return name + ("..." if self.nargs != 1 else "")

    def help_name(self: TyperArgument) -> str:
        return argument_name(self) + ("..." if self.nargs != 1 else "")

    names = {"int": "INTEGER", "str": "TEXT", "path": "PATH", "float": "FLOAT"}

    def option_value(self: TyperOption, ctx: typer.Context) -> str | None:
        if self.metavar:
            return self.metavar
        label = self.display_type(ctx).strip("<>")  # typer's: <int>, <list[str]>, <path>
        if label.startswith("list[") and label.endswith("]"):
            label = label[5:-1]
        return names.get(label.lower(), label.upper())

    TyperArgument.display_name_raw = property(argument_name)  # type: ignore[assignment]
    TyperArgument._usage_display_name = usage_name  # type: ignore[method-assign]
    TyperArgument._rich_display_name = help_name  # type: ignore[method-assign]
    TyperArgument.display_type_rich = lambda self, ctx: None  # type: ignore[method-assign]
    TyperOption.display_type_rich = option_value  # type: ignore[method-assign,assignment]


_one_help_convention()


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        print(f"bakery {version('bakery')}")
        raise typer.Exit(EXIT_OK)


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Declarative data layers: YAML specs validated, compiled to AWS, or baked on DuckDB."""


EnvOption = Annotated[
    str,
    typer.Option(
        "--env",
        "-e",
        envvar="DC_ENVIRONMENT",
        metavar="ENV",
        help="Environment: development, staging or production ($DC_ENVIRONMENT).",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
SampleOption = Annotated[
    bool, typer.Option("--sample", help="Seed sample data first when the store lacks inputs.")
]
EeDsnOption = Annotated[
    str | None,
    typer.Option(
        "--ee-dsn",
        envvar="BAKERY_EE_DSN",
        help="EveryElection Postgres DSN for the ballots export ($BAKERY_EE_DSN); "
        "without it the ballots CSV already in the store is used.",
    ),
]


def fail_spec(exc: SpecError) -> NoReturn:
    try:
        problems_stop(exc)
    except Stop as stop:
        raise typer.Exit(stop.code) from None


_END_PROCESS = False


def end_process_after_command() -> None:
    """Ask main() to end the process with os._exit once this command has finished and
    its output is flushed, skipping the interpreter's teardown. Commands that load
    pyarrow ask for it: Arrow's thread pools can abort the process while C++ static
    objects are destroyed at exit (apache/arrow#34314), after the command's output and
    with exit code 134, so a lookup that printed its answer would look failed."""
    global _END_PROCESS
    _END_PROCESS = True


def process_end_requested() -> bool:
    return _END_PROCESS


def usage_error(message: str) -> NoReturn:
    try:
        usage_stop(message)
    except Stop as stop:
        raise typer.Exit(stop.code) from None


def unknown_layer(plan: Any, layers: list[str]) -> str | None:
    """The usage error for the first name in `layers` that is not a layer of the plan,
    with the closest name or, failing one, the list of layers."""
    import difflib

    names = [ly.name for ly in plan.layers]
    for name in layers:
        if name not in names:
            close = difflib.get_close_matches(name, names, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; layers: {', '.join(names)}"
            return f"unknown layer {name!r}{hint}"
    return None


def load_plan(env: str, paths: list[Path] | None = None, *, check_sql: bool = True) -> Plan:
    """Workspace + plan for `env`, exiting 1 with every problem, or 2 for an unknown env."""
    return load_plans([env], paths, check_sql=check_sql)[0]


def load_plans(
    envs: list[str] | None, paths: list[Path] | None = None, *, check_sql: bool = True
) -> list[Plan]:
    """Plans for several environments (all when `envs` is None) from one reading of the files."""
    try:
        return plan_loading.load_plans(envs, paths, check_sql=check_sql)
    except Stop as stop:
        raise typer.Exit(stop.code) from None


# Every command group registers on `app` when this module is first imported (so that
# `from bakery.cli.common import app` is the whole CLI); here, at the end, because the
# groups import the names above. Registration order is the order `--help` lists them.
# An installed package adds commands through the entry point group `bakery.commands`
# (`name = "module"`, a module that registers on `app` when imported): listed after the
# local commands, in the order of their names.
COMMANDS_ENTRY_POINT_GROUP = "bakery.commands"
for _group in ("bakery.cli.spec_commands", "bakery.cli.local_commands"):
    importlib.import_module(_group)
for _plugin in sorted(entry_points(group=COMMANDS_ENTRY_POINT_GROUP), key=lambda ep: ep.name):
    _plugin.load()
for _group in (
    "bakery.cli.authoring_commands",
    "bakery.cli.simulate_commands",
    "bakery.cli.compare_commands",
    "bakery.review.command",
    "bakery.cli.docs_commands",
    "bakery.cli.aws_commands",
    "bakery.cli.run_command",
    "bakery.cli.engine_commands",
):
    importlib.import_module(_group)
