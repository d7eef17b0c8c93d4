"""What a step of a bake runs with: the plan, the store, the DuckDB connection, the
staging area, and the views that let each query read the tables as this bake sees them
(staged if written, published otherwise). The runner makes one per layer; the step
bodies (steps.py, checks.py) only read it, so neither imports the runner.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any

from bakery.engine import damaged, publish, tables
from bakery.engine.damaged import is_interrupt as _interrupted
from bakery.plan import Plan, StepPlan, TablePlan
from bakery.store import Store

PAUSE_ENV = "BAKERY_TEST_PAUSE_AT"


class Context:
    def __init__(self, plan: Plan, store: Store, con: Any, staging: publish.Staging, ee_dsn):
        self.plan = plan
        self.store = store
        self.con = con
        self.staging = staging
        self.ee_dsn = ee_dsn
        self.lock = threading.Lock()
        self._registered = False  # every table gets its view at the first refresh
        self.runners: dict[str, Any] = {}  # step runners of another back-end (runner.bake)

    def refresh_views(self, refs: list[str] | None = None) -> None:
        """Bring views up to date: every table the first time, then only the tables
        staged, emptied, published or discarded since (writes refresh their own table
        at once, see `wrote`), plus `refs` when given."""
        with self.lock:
            if not self._registered:
                todo = list(self.plan.tables)
                self._registered = True
            else:
                todo = sorted(self.staging.changed | set(refs or []))
            self.staging.changed.clear()
            for ref in todo:
                self._register(self.con, self.plan.table(ref))

    def wrote(self, ref: str, con: Any = None) -> None:
        """Table `ref` has new files: its view now reads them, so the next query (the
        next child of a for_each iteration too) sees them, as it would on Athena.
        `con` is the caller's cursor (for_each children run on their own cursors)."""
        table = self.plan.table(ref)
        with self.lock:  # one catalog change at a time: no write-write conflicts
            self._register(con or self.con, table)

    def _register(self, con: Any, table: TablePlan) -> None:
        """The table's view over its files; when DuckDB cannot read them, a view that
        fails naming the damaged file (bakery.engine.damaged holds the rule)."""
        location = self.staging.read_location(table)
        try:
            tables.register(con, table, self.store, location)
        except Exception as exc:  # noqa: BLE001 - duckdb raises several kinds
            if _interrupted(exc):
                raise KeyboardInterrupt from None
            message = damaged.failing_message(con, table, self.store, location, exc)
            con.execute(damaged.failing_view(table, message))


def pause(step: StepPlan) -> None:
    """Test hook: sleep after this step has written its (staged) output, so a test can
    kill the bake at a known point."""
    if os.environ.get(PAUSE_ENV) in (step.id, step.qualified_id):
        print(f"bakery: paused at {step.qualified_id} ({PAUSE_ENV})", file=sys.stderr, flush=True)
        time.sleep(3600)
