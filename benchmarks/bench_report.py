#!/usr/bin/env python
"""The default report, end to end, timed in fresh processes (compile included).

    python benchmarks/bench_report.py            # default report + the coursework-size variant
    python benchmarks/bench_report.py --quick    # small sizes
    python benchmarks/bench_report.py --only coursework --sentences 10 --max-lag 3 --no-cold   # CI smoke run

Runs ``gradlab`` (the README's main command) in a subprocess with an empty Numba cache
(cold: every kernel compiles) and again with the cache filled (warm), into temporary
folders, and prints the wall time of each. The variant "coursework" gives every dataset
a vocabulary of about |V| = 2000 (the coursework's size): the built-in agreement and Dyck
grammars have fixed small vocabularies, so it uses recall with 2000 distractor symbols,
bigram Markov text over 2000 symbols, and the Wikipedia agreement sentences with the
coursework's 2000-word vocabulary when ../shared/data is present.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "linzen-agreement"


def coursework_spec(n: int, max_lag: int) -> str:
    datasets = [f"agreement:distance=8,n={n}", f"recall:distance=8,n_distractors=1996,n={n}",
                f"markov:n_symbols=2000,order=2,n={n}"]
    if SHARED.exists():
        datasets.append(f"linzen:path={SHARED / 'wiki-test.txt'},vocab={SHARED / 'vocab.wiki.txt'},n_vocab=2000")
    else:
        datasets.append(f"dyck:n={n}")
    quoted = ", ".join(f'"{d}"' for d in datasets)
    return (f'title = "Coursework size"\ndatasets = [{quoted}]\nstates = ["init", "init:scale=1.0"]\n'
            f"hidden_size = 50\nmax_lag = {max_lag}\nn_sentences = {n}\n")


def timed(cmd: list[str], cache: str | None, cwd: str) -> float:
    """Wall time of ``cmd`` with Numba's cache in ``cache`` (None: the user's), running this checkout's gradlab."""
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    if cache is not None:
        env["NUMBA_CACHE_DIR"] = cache
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed (rc={proc.returncode}):\n{proc.stderr[-3000:]}")
    return time.perf_counter() - start


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="small sizes: `gradlab --quick`, and 50 sentences with K = 8 in the coursework variant")
    parser.add_argument("--only", choices=("default", "coursework"), default=None, help="run one of the two reports")
    parser.add_argument("--sentences", type=int, default=None,
                        help="sentences per dataset in the coursework variant (default 1000, quick 50)")
    parser.add_argument("--max-lag", type=int, default=None, help="K of the coursework variant (default 40, quick 8)")
    parser.add_argument("--no-cold", dest="cold", action="store_false",
                        help="skip the run with an empty Numba cache; time one run with the user's cache")
    args = parser.parse_args(argv)
    n = args.sentences or (50 if args.quick else 1000)
    max_lag = args.max_lag if args.max_lag is not None else (8 if args.quick else 40)
    exe = [sys.executable, "-m", "gradlab.cli"]
    print(f"cores: {os.cpu_count()}; coursework variant: {n} sentences per dataset, K = {max_lag}, H = 50")
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "coursework.toml"
        spec.write_text(coursework_spec(n, max_lag))
        runs = [("default report (gradlab)", exe + (["--quick"] if args.quick else [])),
                ("coursework-size variant", exe + ["run", str(spec)])]
        if args.only:
            runs = [runs[0 if args.only == "default" else 1]]
        for label, cmd in runs:
            if not args.cold:
                warm = timed(cmd + ["--out", str(Path(tmp) / "warm")], None, tmp)
                print(f"{label:28s} warm (the user's Numba cache) {warm:6.1f} s")
                continue
            cache = tempfile.mkdtemp(dir=tmp)
            cold = timed(cmd + ["--out", str(Path(tmp) / "cold")], cache, tmp)
            warm = timed(cmd + ["--out", str(Path(tmp) / "warm")], cache, tmp)
            print(f"{label:28s} cold (compile included) {cold:6.1f} s   warm (cached kernels) {warm:6.1f} s")


if __name__ == "__main__":
    main()
