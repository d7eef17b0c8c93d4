"""Benchmark the local bake: sample data at a given size, `bakery bake current_elections
--with-upstream` in a child process (time per step, wall time, peak memory), and a
hand-written DuckDB spatial join over the same files for comparison.

    uv run python benchmarks/bake_benchmark.py --addresses 1000000 --ballots 2000

Prints a markdown table (paste it into docs/local.md).
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

HAND_JOIN = r"""
import sys, time
from bakery.engine import duck
con = duck.connect()
src, ballots, out = sys.argv[1], sys.argv[2], sys.argv[3]
t0 = time.perf_counter()
con.execute(f'''
COPY (
    WITH g AS (
        SELECT election_id, ST_GeomFromText(geometry) AS geom
        FROM read_csv('{ballots}', header=true, all_varchar=true)
        WHERE geometry <> '' AND election_id IS NOT NULL
    )
    SELECT p.outcode, p.uprn, p.address, p.postcode, p.longitude, p.latitude,
           p.addressbase_source, list_sort(list_distinct(list(g.election_id))) AS ballot_ids,
           p.first_letter
    FROM read_parquet('{src}/*/*.parquet', hive_partitioning=true) AS p
    LEFT JOIN g ON ST_Contains(g.geom, ST_Point(p.longitude, p.latitude))
    GROUP BY ALL
) TO '{out}' (FORMAT parquet, PARTITION_BY (first_letter))
''')
print(time.perf_counter() - t0)
"""

BAKE = r"""
import json, sys
from bakery.engine import bake
from bakery.plan import build_plan
from bakery.store import LocalStore
from bakery.workspace import load_workspace
plan = build_plan(load_workspace(), "development")
result = bake(plan, ["current_elections"], LocalStore(sys.argv[1]), with_upstream=True)
print(json.dumps(result.to_dict()))
"""


def child(code: str, *args: str) -> tuple[str, float, int]:
    """Run python code in a child; return stdout, wall seconds, peak RSS (MiB) of the child."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", code, *args], cwd=REPO, capture_output=True, text=True
    )
    wall = time.perf_counter() - t0
    if proc.returncode:
        sys.exit(f"child failed:\n{proc.stderr}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return proc.stdout, wall, max(peak, before) // 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--addresses", type=int, default=1_000_000)
    parser.add_argument("--ballots", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--store", type=Path, help="Store folder (default: a temporary one).")
    parser.add_argument("--keep", action="store_true", help="Keep the temporary store.")
    args = parser.parse_args()

    sys.path.insert(0, str(REPO))
    from bakery import sample_data
    from bakery.plan import build_plan
    from bakery.store import LocalStore
    from bakery.workspace import load_workspace

    root = args.store or Path(tempfile.mkdtemp(prefix="bakery-bench-"))
    store = LocalStore(root)
    plan = build_plan(load_workspace(REPO), "development")
    t0 = time.perf_counter()
    summary = sample_data.write_sample_data(
        plan, store, addresses=args.addresses, ballots=args.ballots, seed=args.seed
    )
    gen = time.perf_counter() - t0

    out, wall, peak = child(BAKE, str(root))
    result = json.loads(out.strip().splitlines()[-1])

    src = store.path(plan.table("addressbase.addressbase_partitioned").location)
    ballots = store.path(plan.table("current_elections.current_ballots").location)
    hand_out = Path(tempfile.mkdtemp(prefix="bakery-hand-join-"))
    shutil.rmtree(hand_out)
    out2, _, _ = child(HAND_JOIN, str(src), str(ballots / "*.csv"), str(hand_out))
    hand = float(out2.strip().splitlines()[-1])
    shutil.rmtree(hand_out, ignore_errors=True)

    geo = next(s for s in result["steps"] if s["kind"] == "geo_join")
    print(
        f"Machine: {os.cpu_count()} cores, {platform.system()} {platform.machine()}, "
        f"Python {platform.python_version()}"
    )
    print(
        f"Data: {summary.addresses:,} addresses ({summary.outcodes:,} outcodes), "
        f"{summary.ballots:,} ballots ({summary.polygon_rows:,} polygon rows); "
        f"sample data written in {gen:.1f}s\n"
    )
    print("| layer | step | kind | rows | files | seconds |")
    print("|---|---|---|---:|---:|---:|")
    for s in result["steps"]:
        rows = "" if s["rows"] is None else f"{s['rows']:,}"
        files = "" if not s["files"] else f"{s['files']:,}"
        print(f"| {s['layer']} | {s['id']} | {s['kind']} | {rows} | {files} | {s['seconds']:.2f} |")
    print(f"| **bake (engine)** | | | | | **{result['seconds']:.2f}** |")
    print(f"| **bake (process wall, incl. start-up)** | | | | | **{wall:.2f}** |")
    print(f"\nPeak memory of the bake process: **{peak:,} MiB**")
    print(
        f"\nHand-written DuckDB spatial join over the same files: **{hand:.2f}s**; "
        f"the geo_join step took {geo['seconds']:.2f}s "
        f"(**{geo['seconds'] / hand:.2f}x** the hand-written join)"
    )
    if not args.store and not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    elif args.keep:
        print(f"\nstore kept at {root}")


if __name__ == "__main__":
    main()
