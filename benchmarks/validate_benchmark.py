"""Wall time of `bakery validate` as a whole process, the way a pre-commit hook runs it.

    uv run python benchmarks/validate_benchmark.py [--runs 20] [--source DIR]

Target: under 0.3 s on a 2-core machine (issue 9 asks under 0.5 s for the full check).
Runs the installed console script directly (not through `uv run`, whose own start-up is
not bakery's); with --source DIR, runs `python -m bakery` with DIR first on PYTHONPATH
instead (e.g. an older checkout from `git archive`, to compare before and after). Each
command is timed in three cases:

- cold: `.bakery/` deleted before every run (no record of passing runs, no remembered
  query analyses), so everything is checked from nothing;
- one file changed: a comment with a new number appended to one query file before every
  run (restored at the end), the way a commit that edits one query is checked: the
  record of passing runs no longer applies and that file's queries are analysed again
  (bakery/query_cache.py remembers the others);
- unchanged: nothing changes between runs (answered from the record of passing runs,
  bakery/cli/validate_cache.py).

Median CPU time (user + system) is printed beside the wall times: on a shared machine
it is the figure that does not depend on others.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / ".bakery"
CASES = ("cold", "one file changed", "unchanged")


def run(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system, from the child's rusage) of one run:
    on a shared machine the CPU time is what the command costs, the wall time what it
    was given."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        sys.exit(f"{' '.join(command)} exited {proc.returncode}")
    return wall, usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--source", type=Path, help="Run the bakery package found here.")
    args = parser.parse_args()
    env = dict(os.environ)
    if args.source:
        base = [sys.executable, "-P", "-m", "bakery"]  # -P: not the checkout in the cwd
        env["PYTHONPATH"] = str(args.source.resolve())
    else:
        base = [shutil.which("bakery") or str(Path(sys.executable).parent / "bakery")]
    edited = sorted((REPO / "layers").rglob("*.sql"))[0]
    original = edited.read_bytes()
    results = {}
    try:
        for extra in ([], ["--all-envs"]):
            command = [*base, "validate", *extra]
            for case in CASES:
                subprocess.run(command, cwd=REPO, env=env, check=True, capture_output=True)
                times, cpus = [], []
                for n in range(args.runs):
                    if case == "cold":
                        shutil.rmtree(CACHE, ignore_errors=True)
                    elif case == "one file changed":
                        edited.write_bytes(original + f"\n-- benchmark edit {n}\n".encode())
                    wall, cpu = run(command, env)
                    times.append(wall)
                    cpus.append(cpu)
                edited.write_bytes(original)
                results[(" ".join(["bakery validate", *extra]), case)] = (times, cpus)
    finally:
        edited.write_bytes(original)
    probe = subprocess.run(
        [sys.executable, "-c", "import sys; sys.argv=['bakery','validate']\n"
         "from bakery.cli import main\ntry: main()\nexcept SystemExit: pass\n"
         "print(any(m.startswith('aws_cdk') for m in sys.modules))"],
        cwd=REPO, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    print(f"load average: {os.getloadavg()[0]:.1f}; edited: {edited.relative_to(REPO)}\n")
    print("| command | case | runs | min | median | max | median CPU | imports aws_cdk |")
    print("|---|---|---|---|---|---|---|---|")
    for (name, label), (times, cpus) in results.items():
        print(
            f"| `{name}` | {label} | {args.runs} | {min(times):.3f} s "
            f"| {statistics.median(times):.3f} s | {max(times):.3f} s "
            f"| {statistics.median(cpus):.3f} s | {probe.stdout.strip()} |"
        )


if __name__ == "__main__":
    main()
