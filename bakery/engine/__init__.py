"""The local engine: a layer's plan baked end to end on DuckDB against an object store.

Modules: duck (connection, extensions, Athena macros, types), transpile (Athena SQL to
DuckDB), tables (views over table locations, COPY into them), publish (staging,
publishing, recovery), steps (one function per step kind), runner (the bake).
"""

from bakery.engine.runner import BakeError, BakeResult, bake

__all__ = ["BakeError", "BakeResult", "bake"]
