#!/usr/bin/env python
"""Peak memory of a report unit whose dependencies are much longer than K, against the plan's estimate.

    python benchmarks/bench_memory.py                # recall distances 400 and 3000, 200 sentences, K = 10
    python benchmarks/bench_memory.py --quick        # distance 100, 50 sentences (CI smoke run)

Each configuration runs ``gradlab run`` on a one-dataset spec in a fresh process and reads
that process's peak resident set size (``getrusage(RUSAGE_CHILDREN).ru_maxrss``); it prints
the plan's estimate beside it. The dependency signal is carried back exactly each
dependency's lag (``gradlab.engine.dependency_deltas``), so memory follows the
number of tokens, K and the number of dependencies, not the longest lag: before
that, the contributions were computed up to the longest lag, and
``recall:distance=3000,n=200`` with K = 10 grew past 24 GB. Finally it shows that
``recall:distance=100000`` is refused by the plan, before any data is generated.
"""
from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def spec_text(distance: int, n: int, max_lag: int) -> str:
    return (f'datasets = ["recall:distance={distance},n={n}"]\nstates = ["init"]\nhidden_size = 50\n'
            f"max_lag = {max_lag}\n")


def gradlab(args: list[str], cwd: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-c", "from gradlab.cli import app; app()", *args], cwd=cwd, env=env,
                          capture_output=True, text=True)


def estimate_line(distance: int, n: int, max_lag: int, tmp: str) -> str:
    spec = Path(tmp) / f"plan-{distance}.toml"
    spec.write_text(spec_text(distance, n, max_lag))
    out = gradlab(["run", str(spec), "--out", str(Path(tmp) / "plans"), "--dry-run"], tmp)
    return (out.stdout.strip().splitlines() or [out.stderr.strip()])[-1].strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    args = parser.parse_args()
    configs = [(100, 50, 10)] if args.quick else [(400, 200, 10), (3000, 200, 10)]
    print(f"cores: {os.cpu_count()}; H = 50; peak RSS of a fresh `gradlab run` process per configuration")
    with tempfile.TemporaryDirectory() as tmp:
        for distance, n, max_lag in configs:
            print(f"\nrecall:distance={distance},n={n}, max_lag = {max_lag}")
            print(f"  plan: {estimate_line(distance, n, max_lag, tmp)}")
            spec = Path(tmp) / f"recall-{distance}.toml"
            spec.write_text(spec_text(distance, n, max_lag))
            before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            start = time.perf_counter()
            out = gradlab(["run", str(spec), "--out", str(Path(tmp) / "reports")], tmp)
            wall = time.perf_counter() - start
            peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            if out.returncode != 0:
                sys.exit(f"gradlab failed: {out.stderr.strip().splitlines()[-1:]}")
            note = "" if peak_kib > before else " (not above an earlier child's peak; run it alone)"
            print(f"  measured: peak RSS {peak_kib / 2**20:.2f} GiB{note}, wall {wall:.0f} s")
        print("\nrecall:distance=100000 (n=1000), max_lag = 10:")
        print(f"  plan: {estimate_line(100000, 1000, 10, tmp)}")


if __name__ == "__main__":
    main()
