"""Training throughput at the coursework size: gradlab's Trainer against a plain NumPy loop.

One epoch of per-sentence SGD (batch_size 1, the coursework's setting) over random
sentences, |V| = 2000, H = 50, lengths 10..40, under TBPTT(3) and full BPTT, three ways:
gradlab's fused trainer (``Trainer()``: many sentences per compiled call), gradlab's
step-by-step trainer (``Trainer(fused=False)``: one engine call per update) and the NumPy
loop. The three are timed in turn in every repeat (so a busy machine slows all of them
alike) and the ratios are of medians. The NumPy
loop is what a student writes for the coursework: ``predict`` (y with T rows, s with
T + 1 rows, s[-1] the zero initial state), ``acc_deltas_bptt`` (every loss sent back
``steps`` steps; full BPTT carries the summed delta back once per step), then
``U += lr * deltaU`` etc. (update directions = negative gradients). The one
improvement over the coursework skeleton is that V x(t) and the V update use the
column V[:, x(t)] rather than one-hot products.

Both train from the same model in the same (shuffled) order with the same learning
rate, so the benchmark also checks that they end at the same parameters.

With ``--grid`` it also estimates the wall time of the coursework tuning grid
(analyses/coursework-tuning-grid.toml: 18 runs of 10 epochs over 1,000 sentences, dev
evaluation after every epoch) from one run per hidden size (25 and 50, TBPTT(2), lr 0.1),
each timed end to end as the study runs it (training, evaluation, CSVs, checkpoints):
9 x (one H = 25 run + one H = 50 run) in CPU seconds, and that divided by 2 for two
worker processes on 2 cores. It needs ../shared/data/linzen-agreement.

With ``--grid-run`` it runs the grid itself, end to end, as a user does
(``gradlab train analyses/coursework-tuning-grid.toml --workers 2`` into a temporary
folder, in a fresh process: start-up, data, 18 runs on 2 local Dask workers, CSVs,
figures) and prints its wall time against issue 11's target of 60 s. ``--grid-spec``
runs another training spec the same way; with ``--quick`` the study runs as
``gradlab train --quick`` (a smoke run). A spec whose data files are missing is skipped
with a message.

With the float32 API (``RNN.init(..., dtype=)``, ``RNN.astype``) the fused trainer is also
timed on the float32 model; its parameters are compared with the float64 NumPy loop's at
float32 tolerance. Without it the float32 rows are skipped with a note.

Run:  python benchmarks/bench_train.py [--sentences 200] [--repeats 3] [--quick] [--grid] [--grid-run]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import gradlab as gl
from gradlab.train import Trainer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_engine import float32_api  # noqa: E402
from peers import numpy_acc_deltas, numpy_acc_deltas_bptt, numpy_predict  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
GRID_SPEC = ROOT / "analyses" / "coursework-tuning-grid.toml"
#: Issue 11: the coursework tuning grid in under a minute of wall time on 2 cores.
GRID_TARGET_S = 60.0
#: One epoch of float32 SGD against the float64 NumPy loop, max |dtheta|: float32 rounds every
#: update to 6e-8 relative; the NumPy loop itself run in float32 ends 2.5e-7 (--quick) and 1.5e-6
#: (default size, 200 sentences) from its float64 run, while one wrong update moves a parameter by
#: lr * |gradient| ~ 1e-2.
F32_PARAM_TOL = 1e-4


# ====================================================================== NumPy (student)
# The student's predict and acc_deltas live in peers.py (shared with bench_engine.py); they
# accumulate gradients, so the SGD step subtracts them.
def numpy_epoch(model: gl.RNN, xs, ds, order, lr: float, steps: int | None):
    U, V, W = model.U.copy(), model.V.copy(), model.W.copy()
    for i in order:
        x, d = xs[i], ds[i]
        y, s = numpy_predict(U, V, W, x)
        dU, dV, dW = np.zeros_like(U), np.zeros_like(V), np.zeros_like(W)
        if steps is None:
            numpy_acc_deltas(U, V, W, x, d, y, s, dU, dV, dW)
        else:
            numpy_acc_deltas_bptt(U, V, W, x, d, y, s, steps, dU, dV, dW)
        U -= lr * dU
        V -= lr * dV
        W -= lr * dW
    return U, V, W


# ====================================================================== benchmark
def make_data(n: int, vocab: int, lo: int, hi: int, seed: int):
    rng = np.random.default_rng(seed)
    sents = [rng.integers(0, vocab, size=int(T) + 1) for T in rng.integers(lo, hi + 1, size=n)]
    xs = [w[:-1] for w in sents]
    ds = [w[1:] for w in sents]
    return xs, ds, gl.Batch.for_language_model(xs, ds)


def median_time(fn, repeats: int, clock=time.perf_counter):
    times, out = [], None
    for _ in range(repeats):
        t0 = clock()
        out = fn()
        times.append(clock() - t0)
    return float(np.median(times)), times, out


def _missing_file(exc: BaseException | None) -> bool:
    """Whether ``exc`` is, or was raised while handling, a FileNotFoundError (the spec checks wrap it)."""
    while exc is not None:
        if isinstance(exc, FileNotFoundError):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def grid_run(spec_path: Path = GRID_SPEC, workers: int = 2, quick: bool = False) -> float | None:
    """Run a training spec end to end with ``gradlab train --workers N`` into a temporary folder; its wall time.

    The spec's relative data paths are read from the repository root, as ``gradlab train`` run
    there reads them. Returns None (after a message) when its data files are missing.
    """
    from gradlab.study.training import load_data, load_train_spec, runs

    spec_path = Path(spec_path).resolve()
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        spec = load_train_spec(spec_path)    # checks that the data files exist
        load_data(spec)
    except (ValueError, OSError) as exc:
        if not _missing_file(exc):
            raise
        print(f"\ntuning grid run: {spec_path.name}: data not found ({exc}); skipped")
        return None
    finally:
        os.chdir(cwd)
    n_runs = len(runs(spec.quick() if quick else spec))
    print(f"\ntuning grid run: {spec_path.name}{' --quick' if quick else ''}, {n_runs} runs of "
          f"{1 if quick else spec.epochs} epochs, `gradlab train --workers {workers}` in a fresh process ...", flush=True)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    with tempfile.TemporaryDirectory(prefix="gradlab-grid-") as tmp:
        cmd = [sys.executable, "-m", "gradlab.cli", "train", str(spec_path), "--out", tmp, "--workers", str(workers)]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd + (["--quick"] if quick else []), cwd=ROOT, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise SystemExit(f"tuning grid run failed (rc={proc.returncode}): {' '.join(cmd)}\n"
                             f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
        import pandas as pd
        timings = pd.concat([pd.read_csv(f) for f in Path(tmp).glob("*/timings.csv")], ignore_index=True)
    run_s = timings["wall_seconds"]
    verdict = "(--quick: not evaluated)" if quick else ("MET" if wall < GRID_TARGET_S else "NOT MET")
    print(f"  wall time {wall:.1f} s (target < {GRID_TARGET_S:.0f} s: {verdict}); {len(run_s)} runs took "
          f"{run_s.sum():.1f} s together (mean {run_s.mean():.1f} s, max {run_s.max():.1f} s, each inside a "
          f"worker); the rest is start-up, data, workers, files and figures")
    return wall


def grid_estimate() -> None:
    """Time one run per hidden size of the coursework tuning grid; estimate the whole grid."""
    import tempfile
    from dataclasses import replace

    from gradlab.study.training import load_data, load_train_spec, run_one, runs

    root = ROOT
    spec = load_train_spec(GRID_SPEC)
    if not (root / "../shared/data/linzen-agreement").exists():
        print("\ntuning grid: ../shared/data/linzen-agreement not found; skipped")
        return
    cwd = os.getcwd()
    os.chdir(root)  # the spec's data paths are relative to the repository root
    try:
        train, dev = load_data(spec)
        print(f"\ntuning grid ({len(runs(spec))} runs of {spec.epochs} epochs over {train.n_sentences} sentences, "
              f"{train.batch(spec.task).n_tokens} tokens, dev {dev.n_sentences} sentences): one run per hidden size")
        cpu_sum = 0.0
        for H in spec.hidden_sizes:
            one = replace(spec, hidden_sizes=[H], schemes=["tbptt:2"], learning_rates=[0.1])
            run = runs(one)[0]
            with tempfile.TemporaryDirectory() as tmp:
                c0, t0 = time.process_time(), time.perf_counter()
                run_one(one, run, Path(tmp) / "run", train, dev)
                cpu, wall = time.process_time() - c0, time.perf_counter() - t0
            cpu_sum += cpu
            print(f"  H = {H}: {wall:.1f} s wall, {cpu:.1f} s CPU (training, evaluation, files)")
        n_per = len(runs(spec)) // len(spec.hidden_sizes)
        total = n_per * cpu_sum
        print(f"  estimate for the grid: {total:.0f} s CPU; {total:.0f} s on one core, {total / 2:.0f} s wall with "
              f"two worker processes on 2 idle cores (runs are independent)")
    finally:
        os.chdir(cwd)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sentences", type=int, default=200)
    ap.add_argument("--vocab", type=int, default=2000)
    ap.add_argument("--hidden", type=int, default=50)
    ap.add_argument("--min-len", type=int, default=10)
    ap.add_argument("--max-len", type=int, default=40)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--extra", action="store_true",
                    help="also time gradlab with block schemes and minibatches (no NumPy counterpart)")
    ap.add_argument("--quick", action="store_true", help="tiny sizes (a smoke run of a few seconds)")
    ap.add_argument("--grid", action="store_true",
                    help="also estimate the coursework tuning grid's wall time from one run per hidden size")
    ap.add_argument("--grid-run", action="store_true",
                    help="also run the coursework tuning grid end to end with 2 workers and print its wall time")
    ap.add_argument("--grid-spec", type=Path, default=GRID_SPEC,
                    help="the training spec --grid-run runs (default analyses/coursework-tuning-grid.toml)")
    ap.add_argument("--grid-workers", type=int, default=2, help="Dask workers of --grid-run (default 2)")
    ap.add_argument("--no-float32", dest="float32", action="store_false",
                    help="skip the float32 rows (default: on where gradlab has the float32 API)")
    args = ap.parse_args(argv)
    if args.quick:
        args.sentences, args.vocab, args.hidden, args.repeats = 20, 200, 10, 1

    import numba
    print("gradlab training benchmark" + (" (--quick)" if args.quick else ""))
    print(f"python {sys.version.split()[0]}, numpy {np.__version__}, numba {numba.__version__}, "
          f"cores {os.cpu_count()}, numba threads {numba.get_num_threads()}")
    print(f"gradlab warmup() {gl.warmup():.2f} s")
    xs, ds, batch = make_data(args.sentences, args.vocab, args.min_len, args.max_len, args.seed)
    model = gl.RNN.init(args.vocab, args.hidden, rng=args.seed)
    n_tok = batch.n_tokens
    print(f"|V| = {args.vocab}, H = {args.hidden}, {args.sentences} sentences of {args.min_len}..{args.max_len} "
          f"steps ({n_tok} tokens), one epoch of per-sentence SGD, lr {args.lr}, median of {args.repeats}\n")
    order = np.random.default_rng(args.seed).permutation(args.sentences)

    has_f32, why = float32_api(gl)
    model32 = model.astype("float32") if args.float32 and has_f32 else None
    if args.float32 and not has_f32:
        print(f"float32: {why}: the float32 rows are skipped\n")

    def gradlab_epoch(scheme, batch_size=1, fused=True, start=model):
        return Trainer(scheme=scheme, learning_rate=args.lr, epochs=1, batch_size=batch_size, seed=args.seed,
                       progress=False, fused=fused).fit(start, batch).model

    t0 = time.perf_counter()
    gradlab_epoch("tbptt:1")  # warm every path once (the first fused call loads its kernel)
    gradlab_epoch("tbptt:1", fused=False)
    if model32 is not None:
        gradlab_epoch("tbptt:1", start=model32)
    print(f"first epochs (kernels loaded from Numba's cache or compiled): {time.perf_counter() - t0:.2f} s\n")
    print(f"{'scheme':<12s} {'implementation':<30s} {'seconds':>9s} {'tokens/s':>10s} {'vs NumPy':>9s}  "
          f"max |dtheta| vs NumPy")
    rows, rows32 = [], []
    for scheme, steps in (("tbptt:3", 3), ("full", None)):
        impls = [("numpy", lambda: numpy_epoch(model, xs, ds, order, args.lr, steps)),
                 ("fused", lambda: gradlab_epoch(scheme)),
                 ("step", lambda: gradlab_epoch(scheme, fused=False))]
        if model32 is not None:
            impls.append(("fused f32", lambda: gradlab_epoch(scheme, start=model32)))
        times = {k: [] for k, _ in impls}
        cpu = {k: [] for k, _ in impls}
        ends = {}
        for _ in range(args.repeats):  # interleaved: load on the machine hits all of them alike
            for key, fn in impls:
                c0 = time.process_time()
                t, _, ends[key] = median_time(fn, 1)
                cpu[key].append(time.process_time() - c0)
                times[key].append(t)
        U, V, W = ends["numpy"]
        t_np, t_gl, t_step = (float(np.median(times[k])) for k in ("numpy", "fused", "step"))

        def dtheta(m):
            return max(float(np.max(np.abs(np.asarray(a, dtype=np.float64) - b))) for a, b in
                       ((m.U, U), (m.V, V), (m.W, W)))
        diff = dtheta(ends["fused"])
        print(f"{scheme:<12s} {'NumPy per-sentence loop':<30s} {t_np:9.3f} {n_tok / t_np:10.0f} {1.0:9.2f}")
        print(f"{scheme:<12s} {'gradlab step by step':<30s} {t_step:9.3f} {n_tok / t_step:10.0f} "
              f"{t_np / t_step:9.2f}")
        print(f"{scheme:<12s} {'gradlab fused (default)':<30s} {t_gl:9.3f} {n_tok / t_gl:10.0f} {t_np / t_gl:9.2f}  "
              f"{diff:.1e}")
        if "fused f32" in times:
            t32, m32 = float(np.median(times["fused f32"])), ends["fused f32"]
            d32 = dtheta(m32)
            print(f"{scheme:<12s} {'gradlab fused float32':<30s} {t32:9.3f} {n_tok / t32:10.0f} {t_np / t32:9.2f}  "
                  f"{d32:.1e} (float32: <= {F32_PARAM_TOL:.0e}; {str(np.asarray(m32.U).dtype)}); "
                  f"float64/float32 {t_gl / t32:.2f}x")
            rows32.append((scheme, t32, d32, str(np.asarray(m32.U).dtype)))
        print(f"{scheme:<12s} ratios of repeats: NumPy/fused "
              + " ".join(f"{a / b:.1f}" for a, b in zip(times["numpy"], times["fused"]))
              + ", step/fused " + " ".join(f"{a / b:.1f}" for a, b in zip(times["step"], times["fused"])))
        c_np, c_gl, c_step = (float(np.median(cpu[k])) for k in ("numpy", "fused", "step"))
        print(f"{scheme:<12s} CPU seconds (all threads): NumPy {c_np:.3f}, step by step {c_step:.3f}, fused "
              f"{c_gl:.3f}; NumPy/fused {c_np / c_gl:.2f}, step/fused {c_step / c_gl:.2f}")
        rows.append((scheme, t_np, t_gl, diff))
    if args.extra:
        print()
        for scheme, bs in (("chunked:3", 1), ("block:3,6", 1), ("tbptt:3", 16), ("full", 16)):
            t, _, _ = median_time(lambda: gradlab_epoch(scheme, bs), args.repeats)
            print(f"{scheme:<12s} {f'gradlab fused, batch_size {bs}':<30s} {t:9.3f} {n_tok / t:10.0f}")
    print("\nvs NumPy = NumPy seconds / gradlab seconds (same work: one epoch, same order, same updates)")
    if args.grid:
        grid_estimate()
    if args.grid_run:
        grid_run(args.grid_spec, args.grid_workers, quick=args.quick)
    status = 0
    worst = max(r[3] for r in rows)
    if worst > 1e-9:  # both loops make the same updates: anything beyond rounding is a bug
        print(f"MISMATCH: gradlab and the NumPy loop end {worst:.1e} apart")
        status = 1
    for scheme, _, d32, dtype in rows32:
        if d32 > F32_PARAM_TOL or dtype != "float32":
            print(f"MISMATCH: gradlab float32 ({scheme}) ends {d32:.1e} from the float64 NumPy loop "
                  f"(tolerance {F32_PARAM_TOL:.0e}), parameters of dtype {dtype}")
            status = 1
    return status


if __name__ == "__main__":
    raise SystemExit(main())
