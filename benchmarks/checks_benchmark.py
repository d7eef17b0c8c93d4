"""The built-in checks of a bake, each by its own SQL (as before) and by shared per-table
aggregates (bakery/engine/checks.py), on the same baked store.

    uv run python benchmarks/checks_benchmark.py --addresses 4M --ballots 5000

Bakes current_elections with its upstream on sample data in a temporary store, then
runs every built-in check of the plan both ways, each way on a fresh connection, and
prints the seconds per check and in total, and how many table scans each way made.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--addresses", default="1M")
    parser.add_argument("--ballots", type=int, default=5_000)
    parser.add_argument("--tmp", default=None)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    from bakery import sample_data
    from bakery.engine import bake, checks, duck
    from bakery.engine.publish import Staging
    from bakery.engine.runner import Context
    from bakery.engine.transpile import to_duckdb
    from bakery.plan import build_plan
    from bakery.store import LocalStore
    from bakery.workspace import load_workspace

    text = args.addresses.upper()
    n = int(float(text.rstrip("KM")) * {"K": 1_000, "M": 1_000_000}.get(text[-1], 1))
    if args.tmp:  # a folder to create, as bake_benchmark.py's --tmp
        os.makedirs(args.tmp, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="bakery-checks-", dir=args.tmp))
    try:
        store = LocalStore(root)
        plan = build_plan(load_workspace(REPO), "development")
        sample_data.write_sample_data(plan, store, addresses=n, ballots=args.ballots)
        bake(plan, ["current_elections"], store, with_upstream=True)
        steps = [s for ly in plan.layers for s in ly.steps if checks.builtin(s)]
        rows = []
        for way in ("own SQL", "shared aggregates"):
            con = duck.connect()
            ctx = Context(plan, store, con, Staging(store, plan, "bench"), None)
            ctx.refresh_views()
            total = 0.0
            for step in steps:
                t0 = time.perf_counter()
                if way == "own SQL":
                    con.execute(to_duckdb(step.sql or "")).fetchall()
                else:
                    checks.run(ctx, step)
                seconds = time.perf_counter() - t0
                total += seconds
                rows.append((way, step.qualified_id, seconds))
            scans = (
                sum(2 if s.spec.check.kind == "same_set" else 1 for s in steps)
                if way == "own SQL"
                else ctx.aggregates.scans
            )
            rows.append((way, f"**total, {scans} table scans**", total))
            con.close()
        print(f"{n:,} addresses, {args.ballots:,} ballots; load average {os.getloadavg()[0]:.1f}\n")
        print("| way | check | seconds |")
        print("|---|---|---:|")
        for way, name, seconds in rows:
            print(f"| {way} | {name} | {seconds:.2f} |")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
