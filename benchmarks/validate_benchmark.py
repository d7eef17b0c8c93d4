"""Wall time of `bakery validate` as a whole process, the way a pre-commit hook runs it.

    uv run python benchmarks/validate_benchmark.py [--runs 20]

Target: under 0.5 s on a 2-core machine. Runs the installed console script
directly (not through `uv run`, whose own start-up is not bakery's).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    bakery = shutil.which("bakery") or str(Path(sys.executable).parent / "bakery")
    results = {}
    for extra in ([], ["--all-envs"]):
        command = [bakery, "validate", *extra]
        subprocess.run(command, cwd=REPO, check=True, capture_output=True)  # warm the cache
        times = []
        for _ in range(args.runs):
            started = time.perf_counter()
            subprocess.run(command, cwd=REPO, check=True, capture_output=True)
            times.append(time.perf_counter() - started)
        results[" ".join(["bakery validate", *extra])] = times
    probe = subprocess.run(
        [sys.executable, "-c", "import sys; sys.argv=['bakery','validate']\n"
         "from bakery.cli import main\ntry: main()\nexcept SystemExit: pass\n"
         "print(any(m.startswith('aws_cdk') for m in sys.modules))"],
        cwd=REPO, capture_output=True, text=True, check=True,
    )  # fmt: skip
    print("| command | runs | min | median | max | imports aws_cdk |")
    print("|---|---|---|---|---|---|")
    for name, times in results.items():
        print(
            f"| `{name}` | {args.runs} | {min(times):.3f} s | {statistics.median(times):.3f} s "
            f"| {max(times):.3f} s | {probe.stdout.strip()} |"
        )


if __name__ == "__main__":
    main()
