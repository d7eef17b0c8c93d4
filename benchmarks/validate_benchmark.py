"""Wall time of `bakery validate` as a whole process, the way a pre-commit hook runs it.

    uv run python benchmarks/validate_benchmark.py [--runs 20] [--source DIR]

Target: under 0.3 s on a 2-core machine. Runs the installed console script directly
(not through `uv run`, whose own start-up is not bakery's); with --source DIR, runs
`python -m bakery` with DIR first on PYTHONPATH instead (e.g. an older checkout from
`git archive`, to compare before and after). Each command is timed twice: on an
unchanged project (validate answers from its record of passing runs,
bakery/cli/validate_cache.py) and as after a change (the record deleted before every
run, so every run is a full check). Median CPU time (user + system) is printed beside
the wall times: on a shared machine it is the figure that does not depend on others.
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
RECORD = REPO / ".bakery" / "validate-ok.json"


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
    results = {}
    for extra in ([], ["--all-envs"]):
        command = [*base, "validate", *extra]
        for changed in (True, False):
            subprocess.run(command, cwd=REPO, env=env, check=True, capture_output=True)
            times, cpus = [], []
            for _ in range(args.runs):
                if changed:
                    RECORD.unlink(missing_ok=True)
                wall, cpu = run(command, env)
                times.append(wall)
                cpus.append(cpu)
            label = "changed project (full check)" if changed else "unchanged project"
            results[(" ".join(["bakery validate", *extra]), label)] = (times, cpus)
    probe = subprocess.run(
        [sys.executable, "-c", "import sys; sys.argv=['bakery','validate']\n"
         "from bakery.cli import main\ntry: main()\nexcept SystemExit: pass\n"
         "print(any(m.startswith('aws_cdk') for m in sys.modules))"],
        cwd=REPO, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    print(f"load average: {os.getloadavg()[0]:.1f}\n")
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
