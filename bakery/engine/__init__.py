"""The local engine: a layer's plan baked end to end on DuckDB against an object store.

Modules: duck (connection, extensions, Athena macros, types), transpile (Athena SQL to
DuckDB), tables (views over table locations, COPY into them), publish (staging,
publishing, recovery), steps (one function per step kind), runner (the bake).

`bake`, `BakeError` and `BakeResult` load the runner when first asked for: importing one
module of the engine (duck, to list its functions) must not load every step and publisher.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bakery.engine.runner import BakeError, BakeResult, bake

__all__ = ["BakeError", "BakeResult", "bake"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from bakery.engine import runner

        return getattr(runner, name)
    raise AttributeError(f"module 'bakery.engine' has no attribute {name!r}")
