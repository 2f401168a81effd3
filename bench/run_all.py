"""Run every benchmark in its own process and print their RESULT lines.

Why separate processes: each benchmark sets its own SLUICE_HOME before importing sluice, and one-time
costs (imports, the bwrap probe, the database) must not leak from one benchmark into the next.

Usage: ``python bench/run_all.py [-v] [--strict] [name ...]``. ``-v`` also prints each benchmark's
detail lines; ``--strict`` exits non-zero on a MISS as well as on a crash.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
BENCHMARKS = ("job_overhead", "staging", "sharding", "pipe_throughput", "training_overhead", "tuning_overhead",
              "endpoint_latency", "transform_throughput", "pipeline_step_overhead", "pipeline_cached_rerun",
              "pipeline_schedule_1000")
TIMEOUT_SECONDS = 300


def run_one(name: str, verbose: bool) -> tuple[list[str], bool]:
    """Run ``bench/<name>.py``; returns its RESULT lines and whether it ran to the end."""
    start = time.perf_counter()
    try:
        done = subprocess.run([sys.executable, str(BENCH_DIR / f"{name}.py")], capture_output=True, text=True,
                              timeout=TIMEOUT_SECONDS, cwd=BENCH_DIR.parent)
    except subprocess.TimeoutExpired:
        print(f"{name}: timed out after {TIMEOUT_SECONDS} s", flush=True)
        return [], False
    elapsed = time.perf_counter() - start
    lines = done.stdout.splitlines()
    results = [line for line in lines if line.startswith("RESULT ")]
    if verbose:
        print(f"==== {name} ({elapsed:.1f} s)")
        print("\n".join(line for line in lines if not line.startswith("RESULT ")))
    ok = done.returncode == 0 and bool(results)
    if not ok:
        print(f"{name}: failed (exit code {done.returncode}) after {elapsed:.1f} s", flush=True)
        print(done.stderr[-3000:], file=sys.stderr)
    return results, ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"benchmarks to run, of {', '.join(BENCHMARKS)} (default: all)")
    parser.add_argument("-v", "--verbose", action="store_true", help="print the detail lines too")
    parser.add_argument("--strict", action="store_true", help="exit non-zero on a MISS too")
    args = parser.parse_args()
    unknown = sorted(set(args.names) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")

    all_results: list[str] = []
    crashed = False
    for name in args.names or BENCHMARKS:
        results, ok = run_one(name, args.verbose)
        all_results += results
        crashed |= not ok
    if args.verbose:
        print("==== results")
    for line in all_results:
        print(line)
    missed = any(line.endswith(" MISS") for line in all_results)
    return 1 if crashed or (args.strict and missed) else 0


if __name__ == "__main__":
    sys.exit(main())
