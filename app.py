"""CDK entry point: `npx cdk synth|diff|deploy -c dc-environment=ENV` (or DC_ENVIRONMENT=ENV).

cdk.json runs this through `uv run python app.py`; `bakery synth` builds the same app.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from aws_cdk import App  # noqa: E402

from bakery.constructs import build_app  # noqa: E402
from bakery.constructs.app import APP_CONTEXT  # noqa: E402
from bakery.errors import SpecError  # noqa: E402
from bakery.plan import build_plan  # noqa: E402
from bakery.workspace import find_root, load_workspace  # noqa: E402


def main() -> None:
    app = App(context=APP_CONTEXT, analytics_reporting=False, stack_traces=False)
    env = app.node.try_get_context("dc-environment") or os.environ.get("DC_ENVIRONMENT")
    if not env:
        sys.exit("app.py: choose the environment with -c dc-environment=ENV or DC_ENVIRONMENT")
    try:
        plan = build_plan(load_workspace(find_root()), env)
    except SpecError as exc:
        sys.exit("\n".join(str(p) for p in exc.problems))
    build_app(plan, app=app)
    app.synth()


if __name__ == "__main__":
    main()
