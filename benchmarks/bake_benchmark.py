"""Benchmark the local bake at several sizes: per step, wall time and peak memory.

    uv run python benchmarks/bake_benchmark.py --sizes 1M,4M,16M --ballots 5000

For each size: sample data is generated into a temporary store, `bake current_elections
--with-upstream` runs in a child process that samples its own resident memory (every
20 ms) to give each step's peak, then the export core (bakery/lambdas/export_by_key.py,
what the AWS Lambda runs) runs alone, in a fresh process, on the biggest first-letter
partition of the joined table. The generated inputs are deleted after each size (a 33M
run needs ~3 GB of CSV; check `df -h` first) unless `--samples DIR` keeps them for the
next run (hard links into each run's store). At the end: the time and memory of the
sizes measured, projected to `--project` addresses (time by a power law through the
two biggest sizes, memory linearly). `--hand-join` also times a hand-written DuckDB
spatial join over the same files, for comparison with the geo-join step.

Prints markdown (paste it into README.md / docs/local.md).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pickle
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# The bake, in a child: a thread samples VmRSS so every step gets its own peak.
BAKE = r"""
import json, os, sys, threading, time
from bakery.engine import bake
from bakery.engine.runner import Reporter
from bakery.plan import build_plan
from bakery.store import LocalStore
from bakery.workspace import load_workspace

def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

def cpu() -> float:
    t = os.times()
    return t.user + t.system

class Sampler(Reporter):
    def __init__(self):
        self.peak = self.step_peak = rss()
        self.peaks = []
        self.cpus = []
        self.cpu0 = cpu()
        threading.Thread(target=self.run, daemon=True).start()
    def run(self):
        while True:
            now = rss()
            self.peak = max(self.peak, now)
            self.step_peak = max(self.step_peak, now)
            time.sleep(0.02)
    def start(self, step):
        self.step_peak = rss()
        self.cpu0 = cpu()
    def done(self, result):
        self.peaks.append(max(self.step_peak, rss()))
        self.cpus.append(cpu() - self.cpu0)

sampler = Sampler()
plan = build_plan(load_workspace(), "development")
t0 = time.perf_counter()
result = bake(plan, ["current_elections"], LocalStore(sys.argv[1]), with_upstream=True,
              reporter=sampler)
out = result.to_dict()
out["engine_seconds"] = time.perf_counter() - t0
out["peaks"] = sampler.peaks
out["cpus"] = sampler.cpus
out["peak"] = max(sampler.peak, hwm())
print(json.dumps(out))
"""

# The export core alone on one partition, as the Lambda runs it.
EXPORT = r"""
import json, sys, time
import pyarrow as pa
from bakery.lambdas import export_by_key as ebk
from bakery.plan import build_plan
from bakery.store import LocalStore
from bakery.workspace import load_workspace
store, table, letter, dest = LocalStore(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
plan = build_plan(load_workspace(), "development")
spec = next(s for s in plan.layer("current_elections").walk() if s.kind == "export_by_key").spec
t0 = time.perf_counter()
keys = ebk.export_partition(
    store, table_location=table, partition={"first_letter": letter}, destination=dest,
    key=spec.key, columns=list(spec.columns), sort_by=list(spec.sort_by),
    unique_by=spec.unique_by, empty_unless_any=spec.empty_unless_any,
)
print(json.dumps({"seconds": time.perf_counter() - t0, "keys": len(keys),
                  "arrow_peak": pa.default_memory_pool().max_memory(), "peak": hwm()}))
"""

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

MIB = 2**20

# A child's own peak RSS: VmHWM, reset at exec (ru_maxrss is not: a child forked from
# this process, which holds the generated data, would report this process's size).
HWM = r"""
def hwm() -> int:
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmHWM:"))
"""


def child(code: str, *args: str) -> tuple[str, float, int]:
    """Run python code in a child; stdout, wall seconds, CPU seconds of the child."""
    t0 = time.perf_counter()
    with subprocess.Popen(
        [sys.executable, "-c", HWM + code, *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        out, err = "", ""
        # the outputs are small: read them, then reap the child ourselves for its rusage
        out = proc.stdout.read() if proc.stdout else ""
        err = proc.stderr.read() if proc.stderr else ""
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    if proc.returncode:
        sys.exit(f"child failed:\n{err[-3000:]}")
    return out, wall, usage.ru_utime + usage.ru_stime


def size(text: str) -> int:
    text = text.strip().upper()
    mult = {"K": 1_000, "M": 1_000_000}.get(text[-1:], 1)
    return int(float(text.rstrip("KM")) * mult)


def label(n: int) -> str:
    return f"{n / 1e6:g}M" if n >= 1_000_000 else f"{n / 1e3:g}k"


def run_size(n: int, args: argparse.Namespace) -> dict:
    sys.path.insert(0, str(REPO))
    from bakery import sample_data
    from bakery.plan import build_plan
    from bakery.store import LocalStore
    from bakery.workspace import load_workspace

    if args.tmp:  # a fresh machine has no /tmp/bench yet
        os.makedirs(args.tmp, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="bakery-bench-", dir=args.tmp))
    try:
        store = LocalStore(root)
        plan = build_plan(load_workspace(REPO), "development")
        kept = Path(args.samples, f"{n}-{args.ballots}-{args.seed}") if args.samples else None
        t0 = time.perf_counter()
        reused = kept is not None and (kept / "summary.pickle").exists()
        if reused:
            # the bake replaces files (write, then rename), never writes into one: links
            # to the kept inputs are safe
            shutil.copytree(kept / "store", root, copy_function=os.link, dirs_exist_ok=True)
            summary = pickle.loads((kept / "summary.pickle").read_bytes())
        else:
            summary = sample_data.write_sample_data(
                plan, store, addresses=n, ballots=args.ballots, seed=args.seed
            )
            if kept is not None:
                shutil.rmtree(kept, ignore_errors=True)
                shutil.copytree(root, kept / "store", copy_function=os.link)
                (kept / "summary.pickle").write_bytes(pickle.dumps(summary))
        gen = time.perf_counter() - t0
        out, wall, cpu = child(BAKE, str(root))
        result = json.loads(out.strip().splitlines()[-1])
        peak = result["peak"]
        joined = plan.table("current_elections.current_ballots_joined_to_address_base")
        folder = store.path(joined.location)
        letters = {
            p.name.split("=", 1)[1]: sum(f.stat().st_size for f in p.iterdir())
            for p in folder.iterdir()
            if p.name.startswith("first_letter=")
        }
        biggest = max(letters, key=letters.get)
        import pyarrow.parquet as pq

        letter_rows = sum(
            pq.ParquetFile(f).metadata.num_rows
            for f in (folder / f"first_letter={biggest}").iterdir()
        )
        dest = "s3://bench/export-core/"
        eout, ewall, _ = child(EXPORT, str(root), joined.location, biggest, dest)
        export = json.loads(eout.strip().splitlines()[-1])
        big = None
        if args.export_rows and args.export_rows <= n and args.export_rows > letter_rows:
            big = export_letter(store, joined, args.export_rows)
        hand = None
        if args.hand_join:
            src = store.path(plan.table("addressbase.addressbase_partitioned").location)
            ballots = store.path(plan.table("current_elections.current_ballots").location)
            hand_out = root / "hand-join"
            hout, _, _ = child(HAND_JOIN, str(src), str(ballots / "*.csv"), str(hand_out))
            hand = float(hout.strip().splitlines()[-1])
        return {
            "n": n,
            "summary": summary,
            "gen": gen,
            "reused": reused,
            "result": result,
            "wall": wall,
            "peak": peak,
            "cpu": cpu,
            "export": {
                **export,
                "wall": ewall,
                "letter": biggest,
                "rows": letter_rows,
            },
            "hand": hand,
            "big": big,
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)


LETTER = r"""
import sys
import duckdb
src, out, rows = sys.argv[1], sys.argv[2], int(sys.argv[3])
con = duckdb.connect(config={"preserve_insertion_order": False})
con.execute(f"COPY (SELECT * EXCLUDE (first_letter) FROM read_parquet('{src}/*/*.parquet', "
            f"hive_partitioning=true) LIMIT {rows}) TO '{out}' (FORMAT parquet)")
"""


def export_letter(store, joined, rows: int) -> dict:
    """The export core alone on one partition of `rows` rows (the first rows of the
    joined table, every letter's, as one partition): a letter as big as the UK's."""
    location = "s3://bench/one-letter/"
    folder = store.path(location + "first_letter=S/")
    folder.mkdir(parents=True)
    child(LETTER, str(store.path(joined.location)), str(folder / "part.parquet"), str(rows))
    out, wall, _ = child(EXPORT, str(store.root), location, "S", "s3://bench/one-letter-out/")
    return {**json.loads(out.strip().splitlines()[-1]), "wall": wall, "rows": rows}


def print_size(r: dict) -> None:
    s, res = r["summary"], r["result"]
    print(
        f"\n### {label(r['n'])}: {s.addresses:,} addresses ({s.outcodes:,} outcodes), "
        f"{s.ballots:,} ballots ({s.polygon_rows:,} polygon rows)\n"
    )
    print("| layer | step | kind | rows | files | seconds | CPU s | peak MiB |")
    print("|---|---|---|---:|---:|---:|---:|---:|")
    cpus = res.get("cpus") or [None] * len(res["peaks"])
    for st, peak, used in zip(res["steps"], res["peaks"], cpus, strict=False):
        if st["seconds"] < 0.05:
            continue
        rows = "" if st["rows"] is None else f"{st['rows']:,}"
        files = "" if not st["files"] else f"{st['files']:,}"
        print(
            f"| {st['layer']} | {st['id']} | {st['kind']} | {rows} | {files} "
            f"| {st['seconds']:.2f} | {'' if used is None else f'{used:.1f}'} "
            f"| {peak / MIB:,.0f} |"
        )
    print(
        f"| **whole bake, process wall** | | | | | **{r['wall']:.2f}** | **{r['cpu']:.1f}** "
        f"| **{r['peak'] / MIB:,.0f}** |"
    )
    print(f"\nCPU time of the bake process (user + system): {r['cpu']:.1f} s.")
    e = r["export"]
    print(
        f"\nSteps under 0.05 s not shown; sample data "
        f"{'linked from --samples' if r['reused'] else 'written'} in {r['gen']:.1f} s. "
        f"Export core alone on the biggest letter ({e['letter']}, {e['rows']:,} rows, "
        f"{e['keys']:,} outcodes): {e['seconds']:.2f} s, peak RSS {e['peak'] / MIB:,.0f} MiB "
        f"(Arrow {e['arrow_peak'] / MIB:,.0f} MiB)."
    )
    if r["big"] is not None:
        b = r["big"]
        print(
            f"Export core alone on a {b['rows']:,}-row letter (the first rows of every "
            f"letter as one partition, {b['keys']:,} outcodes): {b['seconds']:.2f} s, "
            f"peak RSS {b['peak'] / MIB:,.0f} MiB (Arrow {b['arrow_peak'] / MIB:,.0f} MiB)."
        )
    if r["hand"] is not None:
        geo = next(st for st in res["steps"] if st["kind"] == "geo_join")
        print(
            f"Hand-written DuckDB spatial join: {r['hand']:.2f} s; the geo_join step "
            f"{geo['seconds']:.2f} s ({geo['seconds'] / r['hand']:.2f}x)."
        )


def print_projection(runs: list[dict], target: int) -> None:
    print(f"\n### Summary and projection to {label(target)}\n")
    print("| addresses | bake wall s | bake CPU s | peak MiB | export core s | export peak MiB |")
    print("|---:|---:|---:|---:|---:|---:|")
    for r in runs:
        e = r["export"]
        print(
            f"| {label(r['n'])} | {r['wall']:.1f} | {r['cpu']:.1f} | {r['peak'] / MIB:,.0f} "
            f"| {e['seconds']:.1f} | {e['peak'] / MIB:,.0f} |"
        )
    if len(runs) < 2 or target <= runs[-1]["n"]:
        return
    a, b = runs[-2], runs[-1]
    slope = math.log(b["wall"] / a["wall"]) / math.log(b["n"] / a["n"])
    wall = b["wall"] * (target / b["n"]) ** slope
    cpu_slope = math.log(b["cpu"] / a["cpu"]) / math.log(b["n"] / a["n"])
    cpu = b["cpu"] * (target / b["n"]) ** cpu_slope
    per = (b["peak"] - a["peak"]) / (b["n"] - a["n"])
    peak = b["peak"] + per * (target - b["n"])
    print(
        f"| {label(target)} (projected) | {wall:.0f} | {cpu:.0f} | {peak / MIB:,.0f} | | |\n\n"
        f"Wall time grows with exponent {slope:.2f} between {label(a['n'])} and "
        f"{label(b['n'])}, CPU time with {cpu_slope:.2f}; "
        f"memory by {per * 1e6 / MIB:,.0f} MiB per million addresses."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1M", help="Comma-separated, e.g. 1M,4M,16M.")
    parser.add_argument("--ballots", type=int, default=5_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--project", default="33M", help="Project the figures to this size.")
    parser.add_argument("--tmp", default=None, help="Folder for the temporary stores.")
    parser.add_argument(
        "--samples",
        default=None,
        help="Keep the generated inputs in this folder (same file system as --tmp) and "
        "reuse them on the next run with the same size, ballots and seed.",
    )
    parser.add_argument(
        "--export-rows",
        type=size,
        default=size("5M"),
        help="Also run the export core on one letter of this many rows (when the size allows).",
    )
    parser.add_argument("--hand-join", action="store_true", help="Also time a hand join.")
    args = parser.parse_args()
    sizes = [size(s) for s in args.sizes.split(",") if s.strip()]
    memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    print(
        f"Machine: {os.cpu_count()} cores, {memory / 2**30:.0f} GiB, "
        f"{platform.system()} {platform.machine()}, Python {platform.python_version()}; "
        f"load average at start {os.getloadavg()[0]:.1f}"
    )
    runs = []
    for n in sizes:
        r = run_size(n, args)
        print_size(r)
        runs.append(r)
        sys.stdout.flush()
    print_projection(runs, size(args.project))
    print(f"\nLoad average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
