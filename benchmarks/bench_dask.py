#!/usr/bin/env python
"""Scale-out: local Dask workers against in-process, and corpus-size memory.

    python benchmarks/bench_dask.py            # full sizes
    python benchmarks/bench_dask.py --quick    # small sizes (CI smoke run)

1. **Training grid**: the coursework tuning grid's shape (hidden 25/50 x tau 0/2/5 x lr
   0.5/0.1/0.05, |V| = 2000) on built-in Markov text, in-process and on a local cluster of
   1 and 2 worker processes (``--workers``), each in a fresh process and output folder.
   Prints wall time, speed-up over in-process and parallel efficiency (speed-up / workers);
   checks the CSVs of every run are byte-identical (timings.csv aside).
2. **Report batch**: two report specs the same way.
3. **Memory**: peak resident memory (ru_maxrss) of the vanishing profile of a Markov corpus
   with partitions (``partition_size``) at N_big sentences, against the in-memory path at
   N_small sentences, each in its own process.

Compile time is included in every run (Numba's on-disk cache is warm after the first).
"""
from __future__ import annotations

import argparse
import filecmp
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GRADLAB = [sys.executable, "-c", "from gradlab.cli import app; app()"]


def grid_spec(n: int, epochs: int, hidden: list) -> str:
    return (f'title = "Tuning grid shape"\ntrain = "markov:n_symbols=2000,order=1,n={n + n // 9}"\n'
            f"hidden_sizes = {hidden}\nschemes = [\"tbptt:0\", \"tbptt:2\", \"tbptt:5\"]\n"
            f"learning_rates = [0.5, 0.1, 0.05]\nepochs = {epochs}\nbatch_size = 1\nn_dev = {n // 9}\n")


def report_spec(name: str, n: int, K: int) -> str:
    return (f'title = "{name}"\ndatasets = ["agreement:distance=8,n={n}", "recall:distance=8,n={n}", '
            f'"markov:n={n}", "dyck:n={n}"]\nstates = ["init:scale=0.316", "init:scale=1.0"]\n'
            f"hidden_size = 50\nmax_lag = {K}\nn_sentences = {n}\n")


def run(cmd: list, cwd: Path) -> float:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return time.perf_counter() - start


def same_csvs(a: Path, b: Path) -> bool:
    names = sorted(p.name for p in a.glob("*.csv") if p.name != "timings.csv")
    _, mismatch, errors = filecmp.cmpfiles(a, b, names, shallow=False)
    return bool(names) and not mismatch and not errors


def compare(label: str, command: str, specs: list, tmp: Path, workers: list) -> None:
    base = None
    print(f"\n{label}")
    print(f"{'executor':>14} {'wall s':>8} {'speed-up':>9} {'efficiency':>11}  outputs")
    for w in [None] + workers:
        out = tmp / f"{command}-{w or 0}"
        cmd = GRADLAB + [command, *map(str, specs), "--out", str(out)] + (["--workers", str(w)] if w else [])
        seconds = run(cmd, tmp)
        if base is None:
            base, ref = seconds, out
            print(f"{'in-process':>14} {seconds:8.1f} {'1.00':>9} {'':>11}  reference")
            continue
        same = all(same_csvs(ref / s.stem, out / s.stem) for s in specs)
        print(f"{f'{w} worker(s)':>14} {seconds:8.1f} {base / seconds:9.2f} {base / seconds / w:11.2f}  "
              f"{'identical' if same else 'MISMATCH'}")


MEMORY_SCRIPT = """
import resource, sys, time
from gradlab.study.spec import Spec
from gradlab.study.report import run_spec
n, part, K = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
spec = Spec(name="m", datasets=[f"markov:n={n}"], states=["init"], hidden_size=50, max_lag=K,
            per_sentence=False, block_schemes=[], partition_size=part or None)
t = time.perf_counter()
run_spec(spec, sys.argv[4], progress=False, render=False)
print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def memory(n: int, part: int, K: int, tmp: Path) -> tuple[float, float]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    out = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT, str(n), str(part), str(K), str(tmp / f"m{n}")],
                         env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(out.stderr[-3000:])
    seconds, mb = map(float, out.stdout.split()[-2:])
    return seconds, mb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--skip", nargs="*", default=[], choices=["grid", "report", "memory"])
    parser.add_argument("--grid-sentences", type=int, help="training sentences of the grid (default 1000)")
    parser.add_argument("--grid-epochs", type=int, help="epochs of the grid (default 10)")
    parser.add_argument("--report-sentences", type=int, help="sentences per dataset of the reports (default 1000)")
    parser.add_argument("--report-max-lag", type=int, help="K of the reports (default 40)")
    args = parser.parse_args()
    import dask
    import distributed
    print(f"cores: {os.cpu_count()}; dask {dask.__version__}, distributed {distributed.__version__}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if "grid" not in args.skip:
            n, epochs, hidden = (20, 1, [4]) if args.quick else (1000, 10, [25, 50])
            n, epochs = args.grid_sentences or n, args.grid_epochs or epochs
            spec = tmp / "grid.toml"
            spec.write_text(grid_spec(n, epochs, hidden))
            compare(f"training grid: {len(hidden) * 9} runs, {n} sentences, {epochs} epochs", "train", [spec],
                    tmp, [1, 2])
        if "report" not in args.skip:
            n, K = (30, 5) if args.quick else (1000, 40)
            n, K = args.report_sentences or n, args.report_max_lag or K
            specs = []
            for name in ("batch-a", "batch-b"):
                specs.append(tmp / f"{name}.toml")
                specs[-1].write_text(report_spec(name, n, K))
            compare(f"report batch: 2 specs x 4 datasets x 2 states, {n} sentences, K = {K}", "batch", specs,
                    tmp, [1, 2])
        if "memory" not in args.skip:
            big, small, part, K = (2000, 200, 100, 10) if args.quick else (1_000_000, 10_000, 5_000, 40)
            print(f"\nmemory: vanishing profile of markov text, H = 50, K = {K}")
            print(f"{'path':>34} {'sentences':>10} {'seconds':>8} {'peak RSS MB':>12}")
            s, mb = memory(small, 0, K, tmp)
            print(f"{'in memory':>34} {small:>10} {s:8.1f} {mb:12.0f}")
            s, mb = memory(big, part, K, tmp)
            print(f"{f'partitions of {part}':>34} {big:>10} {s:8.1f} {mb:12.0f}")


if __name__ == "__main__":
    main()
