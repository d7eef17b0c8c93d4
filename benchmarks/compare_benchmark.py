"""Benchmark `bakery compare` on a whole-UK-sized pair of product trees.

Writes tree A (--files outcode files, --addresses rows in all, the product's six columns),
then tree B: A with every file changed (worst case: each file read and compared row by
row; --changed of the rows get another ballot list, a few removed and added), and tree C:
A with --nightly of the files changed (a usual night: the rest are byte-identical and
skipped by hash). Runs `bakery compare A B --json` and `bakery compare A C --json` in a
child process each and prints the wall time, peak memory and counts.

    uv run python benchmarks/compare_benchmark.py                 # 2,900 files, 30M rows
    uv run python benchmarks/compare_benchmark.py --addresses 3000000 --keep /tmp/trees

Target (issue 11): a whole-UK tree in under a minute on this machine.
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

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
SOURCE = "s3://pollingstations.private.data/addressbase/2026-02-02/addressbase_cleaned/"
BALLOTS = [f"local.council-{i}.ward-{j}.2026-05-07" for i in range(40) for j in range(5)] + [
    f"parl.constituency-{i}.2026-05-07" for i in range(20)
]


def outcodes(n: int) -> list[str]:
    letters = "ABCDEFGHJKLMNOPRSTUWYZ"
    out = []
    for a in letters:
        for b in letters:
            for d in range(1, 100):
                out.append(f"{a}{b}{d}")
    return sorted(out[:: max(1, len(out) // n)][:n])


def ballot_lists(rng: np.random.Generator, n: int, shift: int = 0) -> pa.Array:
    """n lists of 0-3 sorted ballot ids (about half of the addresses have none)."""
    counts = rng.choice([0, 0, 1, 2, 3], size=n)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    picks = (rng.integers(0, len(BALLOTS), size=int(offsets[-1])) + shift) % len(BALLOTS)
    values = pa.array(BALLOTS).take(pa.array(picks))
    return pa.ListArray.from_arrays(pa.array(offsets), values)


def outcode_table(outcode: str, first_uprn: int, rows: int, rng: np.random.Generator) -> pa.Table:
    uprns = pc.cast(pa.array(np.arange(first_uprn, first_uprn + rows)), pa.string())
    numbers = pc.cast(pa.array(np.arange(rows) % 200 + 1), pa.string())
    address = pc.binary_join_element_wise(numbers, pa.scalar(f" Station Road, Town {outcode}"), "")
    inward = pa.array([f"{outcode} {d}{a}{b}" for d, a, b in zip(
        rng.integers(1, 10, rows), rng.choice(list("ABDEFG"), rows),
        rng.choice(list("HJLNPQ"), rows), strict=True)])  # fmt: skip
    table = pa.table(
        {
            "uprn": uprns,
            "address": address,
            "postcode": inward,
            "addressbase_source": pa.array([SOURCE] * rows),
            "ballot_ids": ballot_lists(rng, rows),
            "outcode": pa.array([outcode] * rows),
        }
    )
    return table.sort_by([("postcode", "ascending"), ("uprn", "ascending")])


def changed(table: pa.Table, rng: np.random.Generator, share: float) -> pa.Table:
    """Another ballot list for `share` of the rows, one row removed, one added."""
    n = table.num_rows
    mask = rng.random(n) < share
    new_lists = ballot_lists(rng, n, shift=7)
    ballots = pc.if_else(pa.array(mask), new_lists, table["ballot_ids"])
    table = table.set_column(table.schema.get_field_index("ballot_ids"), "ballot_ids", ballots)
    table = table.slice(1)
    extra = table.slice(0, 1).set_column(0, "uprn", pa.array(["9" + table["uprn"][0].as_py()]))
    return pa.concat_tables([table, extra])


def write_trees(root: Path, files: int, addresses: int, share: float, nightly: float) -> None:
    rng = np.random.default_rng(11)
    names = outcodes(files)
    sizes = rng.multinomial(addresses, rng.dirichlet(np.ones(len(names)) * 3))
    for side in ("a", "b", "c"):
        (root / side).mkdir(parents=True)
    nightly_set = set(rng.choice(len(names), size=int(len(names) * nightly), replace=False))
    uprn = 100_000_000_000
    for i, (name, rows) in enumerate(zip(names, sizes, strict=True)):
        rows = max(int(rows), 2)
        a = outcode_table(name, uprn, rows, rng)
        uprn += rows
        pq.write_table(a, root / "a" / f"{name}.parquet", compression="snappy")
        b = changed(a, rng, share)
        pq.write_table(b, root / "b" / f"{name}.parquet", compression="snappy")
        if i in nightly_set:
            shutil.copy(root / "b" / f"{name}.parquet", root / "c" / f"{name}.parquet")
        else:
            shutil.copy(root / "a" / f"{name}.parquet", root / "c" / f"{name}.parquet")


def run_compare(a: Path, b: Path) -> dict:
    bakery = str(Path(sys.executable).parent / "bakery")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(
        [bakery, "compare", str(a), str(b), "--json", "--tolerance", "100"],
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - t0
    if proc.returncode not in (0, 1):
        raise SystemExit(f"compare failed ({proc.returncode}): {proc.stderr.strip()}")
    data = json.loads(proc.stdout)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    # CPU seconds too: on a shared machine the wall time says more about the others.
    return {"wall": wall, "cpu": cpu, "peak_mb": after.ru_maxrss / 1024, **data}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2900)
    parser.add_argument("--addresses", type=int, default=30_000_000)
    parser.add_argument("--changed", type=float, default=0.01, help="Share of rows changed in B.")
    parser.add_argument("--nightly", type=float, default=0.05, help="Share of files changed in C.")
    parser.add_argument("--keep", type=Path, help="Write the trees here and keep them.")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="bakery-compare-"))
    try:
        if not (root / "a").is_dir():
            t0 = time.perf_counter()
            write_trees(root, args.files, args.addresses, args.changed, args.nightly)
            print(f"wrote the trees in {time.perf_counter() - t0:.0f}s", file=sys.stderr)
        size = sum(f.stat().st_size for f in (root / "a").glob("*.parquet")) / 1e9
        worst = run_compare(root / "a", root / "b")
        night = run_compare(root / "a", root / "c")
        print(f"{platform.node()}: {os.cpu_count()} cores; tree A {size:.2f} GB\n")
        load = os.getloadavg()[0]
        print(f"load average {load:.1f} at the end (other work on the machine)\n")
        print("| comparison | files | rows of A | files read | rows differing | wall s | CPU s "
              "| peak MB |")  # fmt: skip
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        nightly = f"{args.nightly:.0%} of files changed"
        for label, r in (("every file changed", worst), (nightly, night)):
            print(
                f"| {label} | {r['files_a']:,} | {r['addresses_a']:,} | "
                f"{r['files_compared']:,} | {r['differing']:,} | {r['wall']:.1f} | "
                f"{r['cpu']:.1f} | {r['peak_mb']:.0f} |"
            )
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
