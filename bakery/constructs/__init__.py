"""CDK constructs compiled from the plan: a core stack and one stack per layer.

Import this package only where aws_cdk may load (synth/deploy, app.py): it
starts a Node process through jsii, which `bakery validate` must not pay for.
"""

from __future__ import annotations

import os

os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from bakery.constructs.app import build_app  # noqa: E402
from bakery.planning.names import core_stack_name, layer_stack_name  # noqa: E402

__all__ = ["build_app", "core_stack_name", "layer_stack_name"]
