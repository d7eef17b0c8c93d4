"""One root for the errors a user reads (issue 8): every exception class the framework
defines derives from bakery.errors.BakeryError, unless it is listed below with the
reason it never reaches a user as such. A new error class that forgets the root fails
here, not in a user's terminal as a class name and a traceback."""

from __future__ import annotations

import importlib
import inspect
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import bakery
from bakery.errors import BakeryError

REPO = Path(__file__).resolve().parents[1]
# Caught where they are raised and turned into something else, or not errors at all.
INTERNAL = {
    "bakery.cli.plan_loading.Stop": "the command's end once its problems are printed: an exit code",
    "bakery.cli.validate_cache.Uncacheable": "the cache is skipped, validate runs in full",
    "bakery.kinds.registry.KindCoverageError": "a test-time assertion about back-ends",
    "bakery.pytest_plugin.LayerTestFailed": "pytest's failure report of a layer test",
    "bakery.simulate.definition.Unsupported": "becomes a SimulateError with the state name",
    "bakery.simulate.errors.TaskError": "a Step Functions task error the interpreter catches",
    "bakery.sandbox.RenderLimit": "the sandbox's error; reported as a spec problem at the line",
    "bakery.cli.signals.Terminated": "SIGTERM raised as Ctrl-C: the same undo runs, exit 143",
}
# Lambda handlers run with only bakery/lambdas/ in their bundle; CDK constructs need Node.
SKIP_PACKAGES = ("bakery.lambdas", "bakery.constructs")


def framework_exceptions() -> dict[str, type[BaseException]]:
    found = {}
    for info in pkgutil.walk_packages(bakery.__path__, "bakery."):
        if info.name.startswith(SKIP_PACKAGES) or info.name == "bakery.__main__":
            continue
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if (
                inspect.isclass(obj)
                and issubclass(obj, BaseException)
                and obj.__module__ == module.__name__
            ):
                found[f"{module.__name__}.{name}"] = obj
    return found


def test_every_framework_error_derives_from_bakery_error():
    found = framework_exceptions()
    assert "bakery.engine.runner.BakeError" in found  # the walk reached the engine
    strays = sorted(
        name
        for name, cls in found.items()
        if name not in INTERNAL and not issubclass(cls, BakeryError)
    )
    assert strays == [], f"derive these from bakery.errors.BakeryError (or list why not): {strays}"
    assert set(INTERNAL) <= set(found), "INTERNAL names a class that no longer exists"


def test_a_bakery_error_reaching_the_cli_is_one_line_without_a_class_name():
    """The last-resort handler prints a BakeryError's own words (a command registered
    for this test raises one), exit 1, no traceback."""
    script = (
        "import sys\n"
        "from bakery.errors import BakeryError\n"
        "import bakery.cli.common as common\n"
        "@common.app.command('boom')\n"
        "def boom() -> None:\n"
        "    raise BakeryError('the store is busy: wait for the other bake, then run again')\n"
        "sys.argv = ['bakery', 'boom']\n"
        "from bakery.cli import main\n"
        "main()\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "BAKERY_DEBUG"}
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert done.returncode == 1
    assert done.stderr == (
        "bakery: error: the store is busy: wait for the other bake, then run again\n"
    )
