"""Benchmark the current_boundary_changes layer: sample AddressBase and boundary reviews at
a given size, then `bakery bake current_boundary_changes --with-upstream` in a child
process (time per step, wall time, peak memory).

    uv run python benchmarks/boundary_changes_benchmark.py --addresses 1000000 --reviews 20

Prints a markdown table (paste it into the README). Targets: under 30 s, under 3 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LAYER = "current_boundary_changes"

BAKE = r"""
import json, sys
from bakery.engine import bake
from bakery.plan import build_plan
from bakery.store import LocalStore
from bakery.workspace import load_workspace
plan = build_plan(load_workspace(), "development")
result = bake(plan, [sys.argv[2]], LocalStore(sys.argv[1]), with_upstream=True)
print(json.dumps(result.to_dict()))
"""


def child(code: str, *args: str) -> tuple[str, float, int]:
    """Run python code in a child; return stdout, wall seconds, peak RSS (MiB) of the child."""
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", code, *args], cwd=REPO, capture_output=True, text=True
    )
    wall = time.perf_counter() - t0
    if proc.returncode:
        sys.exit(f"child failed:\n{proc.stderr}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return proc.stdout, wall, peak // 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--addresses", type=int, default=1_000_000)
    parser.add_argument("--reviews", type=int, default=20)
    parser.add_argument(
        "--divisions-per-set", type=int, default=49, help="DIW divisions per division set."
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--store", type=Path, help="Store folder (default: a temporary one).")
    parser.add_argument("--keep", action="store_true", help="Keep the temporary store.")
    args = parser.parse_args()

    sys.path.insert(0, str(REPO))
    from bakery import sample_data
    from bakery.democracy_club.samples import boundary_reviews
    from bakery.democracy_club.samples.addressbase import addresses_table
    from bakery.plan import build_plan
    from bakery.store import LocalStore
    from bakery.workspace import load_workspace

    root = args.store or Path(tempfile.mkdtemp(prefix="bakery-bench-"))
    store = LocalStore(root)
    plan = build_plan(load_workspace(REPO), "development")
    t0 = time.perf_counter()
    summary = sample_data.write_sample_data(
        plan, store, addresses=args.addresses, ballots=2, seed=args.seed,
        only=["addressbase.addressbase_cleaned_raw"],
    )  # fmt: skip
    table = plan.table(boundary_reviews.BOUNDARY_REVIEWS)
    points = addresses_table(args.addresses, args.seed)["location"].to_pylist()
    boundary_reviews.write(table, store, args.reviews, points, args.seed, args.divisions_per_set)
    rows = boundary_reviews.rows(
        boundary_reviews.reviews(
            args.reviews,
            args.seed,
            args.divisions_per_set,
            boundary_reviews.centres_from(points, max(1, args.reviews // 2), args.seed),
        )
    )
    divisions = len({(r[0], r[1], r[2], r[16]) for r in rows})
    gen = time.perf_counter() - t0

    out, wall, peak = child(BAKE, str(root), LAYER)
    result = json.loads(out.strip().splitlines()[-1])
    pairs = next(s for s in result["steps"] if s["id"] == "per_review_and_division_type")
    print(
        f"Machine: {os.cpu_count()} cores, {platform.system()} {platform.machine()}, "
        f"Python {platform.python_version()}, load average {os.getloadavg()[0]:.1f}"
    )
    print(
        f"Data: {summary.addresses:,} addresses ({summary.outcodes:,} outcodes), "
        f"{args.reviews} reviews, {divisions:,} divisions ({len(rows):,} pieces); "
        f"sample data written in {gen:.1f}s; fan-out: {pairs['note']}\n"
    )
    print("| layer | step | kind | rows | files | seconds |")
    print("|---|---|---|---:|---:|---:|")
    for s in result["steps"]:
        n = "" if s["rows"] is None else f"{s['rows']:,}"
        files = "" if not s["files"] else f"{s['files']:,}"
        print(f"| {s['layer']} | {s['id']} | {s['kind']} | {n} | {files} | {s['seconds']:.2f} |")
    print(f"| **bake (engine)** | | | | | **{result['seconds']:.2f}** |")
    print(f"| **bake (process wall, incl. start-up)** | | | | | **{wall:.2f}** |")
    print(f"\nPeak memory of the bake process: **{peak:,} MiB**")
    if not args.store and not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    elif args.keep:
        print(f"\nstore kept at {root}")


if __name__ == "__main__":
    main()
