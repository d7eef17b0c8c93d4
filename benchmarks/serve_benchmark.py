"""Load test of `bakery serve` on loopback: a fixed rate of GET /postcode/<postcode>
requests (open loop: each request has its scheduled time, and its latency counts from
then, so a slow answer delays the ones behind it in the figures too) over the postcodes
of a sample bake, from a pool of keep-alive connections. Prints throughput and the
latency percentiles.

    uv run python benchmarks/serve_benchmark.py                      # 200 req/s, 20 s
    uv run python benchmarks/serve_benchmark.py --rate 400 --seconds 30 --store .bakery/store

Without --store it bakes the documents' sample (400 addresses) into a temporary store.
Target (issue 24): p99 under 20 ms at 200 requests/s, warm store.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import queue
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
EXPORT = "pollingstations.private.data/addressbase/development/current_elections_parquet"


def bakery(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "bakery", *args], cwd=REPO, check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip


def postcodes(store: Path) -> list[str]:
    found: set[str] = set()
    for path in (store / EXPORT).glob("*.parquet"):
        table = pq.read_table(path)
        if table.num_columns:
            found |= set(table.column("postcode").to_pylist())
    if not found:
        sys.exit(f"no postcodes in {store / EXPORT}: bake first")
    return sorted(found)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_up(port: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit("bakery serve exited before answering")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/openapi.json")
            conn.getresponse().read()
            return
        except OSError:
            time.sleep(0.2)
    sys.exit("bakery serve did not answer within 60 s")


def load(port: int, codes: list[str], rate: float, seconds: float, workers: int) -> dict:
    jobs: queue.Queue[tuple[float, str] | None] = queue.Queue()
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        while (job := jobs.get()) is not None:
            when, code = job
            pause = when - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            try:
                conn.request("GET", "/postcode/" + code.replace(" ", ""))
                response = conn.getresponse()
                response.read()
                status = str(response.status)
            except OSError as exc:  # counted, and the connection opened again
                status = type(exc).__name__
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            took = time.perf_counter() - when
            with lock:
                latencies.append(took)
                if status != "200":
                    errors.append(f"{code}: {status}")

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for t in threads:
        t.start()
    start = time.perf_counter() + 0.2
    total = int(rate * seconds)
    for i in range(total):
        jobs.put((start + i / rate, codes[i % len(codes)]))
    for _ in threads:
        jobs.put(None)
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    ms = sorted(x * 1000 for x in latencies)

    def pct(p: float) -> float:
        return round(ms[min(len(ms) - 1, int(p / 100 * len(ms)))], 2)

    return {"requests": len(ms), "errors": len(errors), "rate_asked": rate,
            "throughput": round(len(ms) / wall, 1), "p50_ms": pct(50), "p90_ms": pct(90),
            "p99_ms": pct(99), "max_ms": round(ms[-1], 2)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200.0, help="requests per second")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--workers", type=int, default=8, help="keep-alive connections")
    parser.add_argument("--store", type=Path, help="a baked store (default: bake a sample)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bakery-serve-bench-") as tmp:
        store = args.store
        if store is None:
            store = Path(tmp) / "store"
            bakery("sample-data", "--rows", "addressbase=400", "--rows", "ballots=24",
                   "--seed", "7", "--store", str(store))  # fmt: skip
            bakery("bake", "current_elections", "current_boundary_changes", "--with-upstream",
                   "--sample", "--store", str(store))  # fmt: skip
        codes = postcodes(store)
        port = free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "bakery", "serve", "--store", str(store), "--port", str(port)],
            cwd=REPO,
        )
        try:
            wait_up(port, proc)
            load(port, codes, args.rate, 2.0, args.workers)  # warm: the files in the cache
            result = load(port, codes, args.rate, args.seconds, args.workers)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    result.update(postcodes=len(codes), cpus=os.cpu_count())
    print(json.dumps(result))
    if result["errors"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
