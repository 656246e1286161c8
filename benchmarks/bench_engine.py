#!/usr/bin/env python
"""Engine benchmark: gradlab against a NumPy student implementation and batched PyTorch peers.

    python benchmarks/bench_engine.py                  # full run (several minutes)
    python benchmarks/bench_engine.py --quick          # tiny sizes, a few seconds (CI)
    python benchmarks/bench_engine.py --only W1,W3     # a subset of the workloads
    python benchmarks/bench_engine.py --no-float32     # float64 only

Workloads (|V| = |O| = 2000, sentence lengths uniform in 10..40, random LM targets):

    W1  full-BPTT gradient of 500 sentences, H = 50 and H = 200
    W2  sliding TBPTT(3) gradient of 500 sentences, H = 50
    W3  every ||delta(t, t-k)|| plus the per-lag G_U, K = 40 (>= every lag), 200 sentences,
        H = 50 and H = 200

Every implementation is cross-checked against the others on the workload itself before
it is timed; times are medians of warm runs. The targets (issue 11) are speed-ups of
gradlab over the hand-written torch peer; each is printed beside two bounds: all useful
FLOPs at the matmul peak, and the output layer's GEMMs alone at the rate OpenBLAS (what
gradlab calls) reaches on the workload's own shapes. See benchmarks/README.md.
"""
from __future__ import annotations

import argparse
import inspect
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

import peers  # noqa: E402

#: Agreement required between implementations, entry by entry: |a - ref| / max(|ref|, floor),
#: with the floor AGREE_FLOOR times the largest |ref| of the entry's lag (G_U, G_V and the
#: pair norms of W3, which span many orders of magnitude across lags) or of its array (U, V,
#: W, G_W, loss). All implementations compute the same sums in float64 and differ only in
#: summation order: entries far above the floor agree to ~1e-13 relative, and a sum that
#: cancels down to the floor to ~1e-16 x (its terms' magnitude) / floor. Measured worst at
#: the full sizes, floor 1e-3: 3e-12 (W3, H = 200; 2e-11 with a floor of 1e-4, 1e-9 with
#: 1e-6). A lag that an implementation dropped or zeroed gives 1.
AGREE_RTOL = 1e-10
AGREE_FLOOR = 1e-3

#: float32 results against the float64 reference, entry by entry as above (per lag or array), with a
#: higher floor: float32 rounds to 6e-8, and a sum over ~10^4 tokens (and 40 lags of recurrence) of
#: terms as large as the lag's largest entry is off by ~1e-6 of it, i.e. ~1e-3 relative at a floor
#: of 1e-3 (measured, torch float32 at the full sizes: 2.6e-4 W1 H=50, 8.8e-4 W3 H=200). With the
#: floor at 3e-2 the same runs measure 1.8e-5 (W1 H=200) and 4.5e-5 (W3 H=200). A dropped lag still
#: scores 1.
F32_RTOL = 2e-4
F32_FLOOR = 3e-2

#: Issue 11's targets: gradlab's speed-up over the hand-written torch peer (workload key -> factor).
TARGETS = {("W1", 50): 1.2, ("W2", 50): 1.2, ("W3", 50): 1.5, ("W1", 200): 1.1, ("W3", 200): 1.2}
#: The hand-written peer of each workload (peers.py: explicit batched backward), and the autograd one.
HAND_WRITTEN = {"W1": "torch manual", "W2": "torch batched", "W3": "torch batched"}
AUTOGRAD = "torch autograd"
#: Suffix of the float32 implementations' names.
F32 = " f32"


# ---------------------------------------------------------------------- machine state
def _cpu_times():
    with open("/proc/stat") as fh:
        vals = [int(v) for v in fh.readline().split()[1:]]
    idle = vals[3] + (vals[4] if len(vals) > 4 else 0)
    return sum(vals), idle


def background_cpu(interval: float = 0.5) -> float:
    """Fraction of all cores busy over ``interval`` s while this process sleeps (other load)."""
    try:
        t0, i0 = _cpu_times()
        time.sleep(interval)
        t1, i1 = _cpu_times()
    except OSError:
        return float("nan")
    return 1.0 - (i1 - i0) / max(t1 - t0, 1)


def wait_quiet(max_wait: float, threshold: float = 0.15) -> float:
    """Wait (up to ``max_wait`` s) until other processes use < ``threshold`` of the cores."""
    if max_wait <= 0:
        return float("nan")
    busy = background_cpu()
    deadline = time.monotonic() + max_wait
    while busy > threshold and time.monotonic() < deadline:
        busy = background_cpu(1.0)
    return busy


class OtherLoad:
    """Share of all cores used by *other* processes while a block of our code runs.

    /proc/stat gives the busy time of the whole machine; our own CPU time (all threads)
    is subtracted. Used to throw away timings taken while something else ran.
    """

    HZ = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    NCPU = os.cpu_count() or 1

    def __enter__(self):
        try:
            self.t0, self.i0 = _cpu_times()
        except OSError:
            self.t0 = None
        self.p0, self.w0 = time.process_time(), time.perf_counter()
        return self

    def __exit__(self, *exc):
        wall = time.perf_counter() - self.w0
        if self.t0 is None:
            self.value = float("nan")
            return False
        t1, i1 = _cpu_times()
        busy = ((t1 - self.t0) - (i1 - self.i0)) / self.HZ
        mine = time.process_time() - self.p0
        # /proc/stat counts in clock ticks: allow two ticks of rounding before calling it load
        self.value = max(0.0, busy - mine - 2.0 / self.HZ) / max(wall * self.NCPU, 1e-9)
        return False


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo; platform.processor() elsewhere)."""
    import platform
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def environment() -> dict:
    """CPU, core count, library versions and the BLAS / OpenMP libraries loaded (threadpoolctl), for the record.

    Call it after numpy, scipy, numba and torch are imported, so that their BLAS is loaded.
    """
    import platform
    from importlib.metadata import PackageNotFoundError, version
    from threadpoolctl import threadpool_info
    libs = {}
    for name in ("numpy", "scipy", "numba", "llvmlite", "torch", "threadpoolctl"):
        try:
            libs[name] = version(name)
        except PackageNotFoundError:
            libs[name] = None
    pools = [{k: info.get(k) for k in ("user_api", "internal_api", "version", "architecture", "threading_layer",
                                       "num_threads", "filepath")} for info in threadpool_info()]
    return dict(cpu=cpu_model(), cores=os.cpu_count(), python=platform.python_version(),
                platform=platform.platform(), libraries=libs, threadpools=pools)


def print_environment(env: dict) -> None:
    print(f"CPU: {env['cpu']}, {env['cores']} cores; {env['platform']}; python {env['python']}")
    print("libraries: " + ", ".join(f"{k} {v}" for k, v in env["libraries"].items() if v is not None)
          + "".join(f"; {k} not installed" for k, v in env["libraries"].items() if v is None))
    for p in env["threadpools"]:
        print(f"  {p['user_api']:6s} {p['internal_api']} {p['version'] or ''} ({p['architecture'] or '-'}, "
              f"{p['threading_layer'] or '-'}, {p['num_threads']} threads): {Path(p['filepath']).name}")


def matmul_peak(n: int, repeats: int, dtype=np.float64) -> dict:
    """Best GEMM rate (GFLOP/s) of numpy (and torch, for information) on n x n in ``dtype``."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((n, n)).astype(dtype), rng.standard_normal((n, n)).astype(dtype)
    out = {}
    best = min(_time_once(lambda: a @ b) for _ in range(repeats + 1))
    out["numpy"] = 2.0 * n ** 3 / best / 1e9
    if peers.torch_available():
        ta, tb = peers.torch.from_numpy(a), peers.torch.from_numpy(b)
        best = min(_time_once(lambda: ta @ tb) for _ in range(repeats + 1))
        out["torch"] = 2.0 * n ** 3 / best / 1e9
    return out


#: The output layer's products on a tile of r losses (S: r x H states, P: r x |O| softmax - onehot,
#: W: |O| x H as the model stores it): the logits, the signal back to the states, and dW.
OUTPUT_GEMMS = {"logits S W^T": lambda S, P, W: S @ W.T,
                "back P W": lambda S, P, W: P @ W,
                "dW P^T S": lambda S, P, W: P.T @ S}


def output_gemm_rates(H: int, O: int, tiles, threads, tokens: int, repeats: int, dtype=np.float64) -> dict:
    """GFLOP/s that numpy (OpenBLAS, what gradlab's kernels call) and torch (MKL) reach on the output layer.

    For every tile height r, ceil(tokens / r) tiles of each product of ``OUTPUT_GEMMS`` are
    timed (best of ``repeats``), on 1 and 2 BLAS threads (``threadpoolctl`` for numpy,
    ``torch.set_num_threads`` for torch).

    Returns
    -------
    dict
        ``{(library, threads, r): {"product name": GFLOP/s, ..., "all": GFLOP/s}}`` with "all" the rate of
        the three products together.
    """
    from threadpoolctl import threadpool_limits
    rng = np.random.default_rng(1)
    W = rng.standard_normal((O, H)).astype(dtype)
    libs = {"numpy": np} if not peers.torch_available() else {"numpy": np, "torch": peers.torch}
    out = {}
    for lib in libs:
        for n_threads in threads:
            if lib == "torch":
                saved = peers.torch.get_num_threads()
                peers.torch.set_num_threads(n_threads)
                limit = None
            else:
                limit = threadpool_limits(limits=n_threads, user_api="blas")
            try:
                for r in tiles:
                    S = rng.standard_normal((r, H)).astype(dtype)
                    P = rng.standard_normal((r, O)).astype(dtype)
                    args = (S, P, W) if lib == "numpy" else tuple(peers.torch.from_numpy(a) for a in (S, P, W))
                    n_tiles = -(-tokens // r)
                    rates, total = {}, 0.0
                    for name, f in OUTPUT_GEMMS.items():
                        def run():
                            for _ in range(n_tiles):
                                f(*args)
                        best = min(_time_once(run) for _ in range(repeats + 1))  # the first warms up
                        rates[name] = 2.0 * n_tiles * r * H * O / best / 1e9
                        total += best
                    rates["all"] = 3 * 2.0 * n_tiles * r * H * O / total / 1e9
                    out[(lib, n_threads, r)] = rates
            finally:
                if lib == "torch":
                    peers.torch.set_num_threads(saved)
                else:
                    limit.unregister()
    return out


def best_output_rate(rates: dict, lib: str, cores: int, products=tuple(OUTPUT_GEMMS)) -> tuple[float, str]:
    """The best rate of ``lib`` over tiles for ``products`` together (equal FLOPs each: n / sum of 1 / rate),
    on 2 threads or as ``cores`` single-threaded workers (1-thread rate x cores: kernels that run one
    BLAS call per thread); and where it is."""
    best, where = 0.0, ""
    for (l, n, r), v in rates.items():
        if l != lib:
            continue
        rate = len(products) / sum(1.0 / v[p] for p in products)
        scaled = rate * (min(cores, 2) if n == 1 else 1)
        if scaled > best:
            best, where = scaled, (f"{r} rows, {n} threads" if n > 1 else f"{r} rows, {min(cores, 2)} x 1 thread")
    return best, where


def print_output_rates(rates: dict, H: int, O: int, label: str) -> None:
    print(f"output-layer GEMM rates, {label}, H = {H}, |O| = {O} (GFLOP/s; tile = rows of losses):")
    names = list(OUTPUT_GEMMS) + ["all"]
    print(f"  {'library':8s} {'thr':>3s} {'tile':>5s} " + " ".join(f"{n:>14s}" for n in names))
    for (lib, n, r), v in sorted(rates.items()):
        print(f"  {lib:8s} {n:3d} {r:5d} " + " ".join(f"{v[k]:14.1f}" for k in names))


def _time_once(f) -> float:
    t0 = time.perf_counter()
    f()
    return time.perf_counter() - t0


# ---------------------------------------------------------------------- workloads
@dataclass
class Data:
    U: np.ndarray
    V: np.ndarray
    W: np.ndarray
    xs: list
    ds: list

    @property
    def n_tokens(self) -> int:
        return int(sum(len(x) for x in self.xs))


def make_data(n_sentences: int, vocab: int, H: int, lengths: tuple[int, int], seed: int) -> Data:
    """Weights as ``RNN.init(vocab, H, rng=seed)`` draws them; sentences from ``seed + 1``."""
    rng = np.random.default_rng(seed)
    scale = np.sqrt(0.1)
    U = rng.standard_normal((H, H)) * scale
    V = rng.standard_normal((H, vocab)) * scale
    W = rng.standard_normal((vocab, H)) * scale
    rng = np.random.default_rng(seed + 1)
    L = rng.integers(lengths[0], lengths[1] + 1, n_sentences)
    xs = [rng.integers(0, vocab, size=int(l)) for l in L]
    ds = [rng.integers(0, vocab, size=int(l)) for l in L]  # random targets: the cost does not depend on them
    return Data(U, V, W, xs, ds)


@dataclass
class Workload:
    key: str            # W1, W2, W3
    H: int
    n_sentences: int
    tau: int | None = None   # W2
    K: int | None = None     # W3
    data: Data | None = None

    @property
    def name(self) -> str:
        what = {"W1": "full BPTT", "W2": f"TBPTT({self.tau})", "W3": f"contrib K={self.K}"}[self.key]
        return f"{self.key} {what} H={self.H} n={self.n_sentences}"

    def flops(self) -> float:
        """Useful FLOPs, counted analytically (see README)."""
        return sum(self.flops_parts().values())

    def flops_parts(self) -> dict:
        """Useful FLOPs in the output layer ("output": its GEMMs) and in the rest ("recurrence")."""
        d, H = self.data, self.H
        O = d.W.shape[0]
        Ls = np.array([len(x) for x in d.xs])
        N = int(Ls.sum())
        lim = {"W1": None, "W2": self.tau, "W3": self.K}[self.key]
        lag = Ls.max() if lim is None else lim
        # pairs (t, k) with k = 0..min(t, lim) per sentence
        pairs = int(sum(np.minimum(np.arange(L), lag).sum() + L for L in Ls))
        fwd = 2.0 * N * H * H
        if self.key == "W1":
            out = 3 * 2.0 * N * O * H              # logits, dS = W^T delta_out, dW
            back = (N - len(Ls)) * 2.0 * H * H     # linear full BPTT: one U^T step per token with t >= 1
            back += 2.0 * N * H * H                # dU = sum over tokens of delta (x) s(t-1)
        elif self.key == "W2":
            out = 3 * 2.0 * N * O * H
            back = (pairs - N) * 2.0 * H * H       # U^T delta once per kept pair with k >= 1
            back += 2.0 * N * H * H                # dU (the kept deltas of a position are summed first)
        else:
            out = 2 * 2.0 * N * O * H              # logits, dS
            back = (pairs - N) * 2.0 * H * H       # U^T delta for every pair with k >= 1
            back += pairs * (2.0 * H * H + 2.0 * H)  # G_U[k] += delta (x) s per pair, plus ||delta||
        return {"output": out, "recurrence": fwd + back}


def build_workloads(args) -> list[Workload]:
    if args.quick:
        spec = dict(vocab=300, lengths=(4, 12), n1=40, n3=20, H=(8, 24), K=12, tau=3)
    else:
        spec = dict(vocab=2000, lengths=(10, 40), n1=500, n3=200, H=(50, 200), K=40, tau=3)
    small, big = spec["H"]
    wls = [Workload("W1", small, spec["n1"]), Workload("W1", big, spec["n1"]),
           Workload("W2", small, spec["n1"], tau=spec["tau"]),
           Workload("W3", small, spec["n3"], K=spec["K"]), Workload("W3", big, spec["n3"], K=spec["K"])]
    only = {w.strip().upper() for w in args.only.split(",")} if args.only else None
    if only is not None:
        unknown = only - {"W1", "W2", "W3"}
        if unknown:
            raise SystemExit(f"--only takes W1, W2, W3 (comma-separated); received {sorted(unknown)}")
        wls = [w for w in wls if w.key in only]
    for w in wls:
        # one data set per (H, n): W1 and W2 at the same H share sentences and weights
        w.data = make_data(w.n_sentences, spec["vocab"], w.H, spec["lengths"], seed=1000 + w.H)
    return wls


# ---------------------------------------------------------------------- implementations
def _import_gradlab():
    try:
        import gradlab
        gradlab.gradient, gradlab.contributions, gradlab.Full, gradlab.Sliding  # noqa: B018
        return gradlab, None
    except Exception as exc:  # report, don't crash: the peers still run
        return None, f"{type(exc).__name__}: {exc}"


def float32_api(gradlab) -> tuple[bool, str]:
    """Whether this gradlab has the float32 API (``RNN.init(..., dtype=)``, ``RNN.astype``); else why not."""
    if gradlab is None:
        return False, "gradlab is not importable"
    try:
        params = inspect.signature(gradlab.RNN.init).parameters
    except (TypeError, ValueError, AttributeError):
        return False, "gradlab.RNN.init cannot be inspected"
    if "dtype" not in params:
        return False, "gradlab.RNN.init has no dtype parameter (this gradlab predates float32)"
    if not callable(getattr(gradlab.RNN, "astype", None)):
        return False, "gradlab.RNN has no astype()"
    return True, ""


def impls_for(w: Workload, gradlab, layouts, float32: bool = False) -> dict:
    """name -> zero-argument callable returning a comparable dict of arrays.

    With ``float32`` it adds the float32 implementations (names ending in ``F32``): the
    hand-written torch peer in float32 and, where this gradlab has the float32 API
    (:func:`float32_api`), gradlab on ``model.astype("float32")``.
    """
    d = w.data
    U, V, W, xs, ds = d.U, d.V, d.W, d.xs, d.ds
    out = {}

    def grad_dict(g):
        return {"U": np.asarray(g.U), "V": np.asarray(g.V), "W": np.asarray(g.W), "loss": np.array([g.loss])}

    if w.key == "W1":
        out["numpy student"] = lambda: grad_dict(peers.numpy_full_gradient(U, V, W, xs, ds))
    elif w.key == "W2":
        out["numpy student"] = lambda: grad_dict(peers.numpy_tbptt_gradient(U, V, W, xs, ds, w.tau))
    else:
        out["numpy student"] = lambda: dict(zip(("norms", "G_U"), peers.numpy_contributions(U, V, W, xs, ds, w.K)))

    def torch_impls(U, V, W, suffix, hand_written_only):
        lay = layouts[(w.H, w.n_sentences)]
        if w.key == "W1":
            if not hand_written_only:
                out[AUTOGRAD] = lambda: grad_dict(peers.torch_full_gradient(U, V, W, layout=lay, method="bucketed"))
                out["torch autograd packed"] = lambda: grad_dict(
                    peers.torch_full_gradient(U, V, W, layout=lay, method="autograd"))
            out["torch manual" + suffix] = lambda: grad_dict(
                peers.torch_full_gradient(U, V, W, layout=lay, method="manual"))
        elif w.key == "W2":
            if not hand_written_only:
                out[AUTOGRAD] = lambda: grad_dict(peers.torch_window_autograd(U, V, W, w.tau, layout=lay,
                                                                              per_lag=False))
            out["torch batched" + suffix] = lambda: grad_dict(peers.torch_tbptt_gradient(U, V, W, tau=w.tau,
                                                                                          layout=lay))
        else:
            if not hand_written_only:
                out[AUTOGRAD] = lambda: dict(zip(("norms", "G_U"), peers.torch_window_autograd(
                    U, V, W, w.K, layout=lay, per_lag=True)))
            out["torch batched" + suffix] = lambda: dict(zip(("norms", "G_U"),
                                                             peers.torch_contributions(U, V, W, K=w.K, layout=lay)))
            if not hand_written_only:
                # not part of W3 (norms + G_U), shown because gradlab's contributions also builds G_V and G_W
                out["torch +G_V,G_W"] = lambda: dict(zip(("norms", "G_U", "G_V", "G_W"), peers.torch_contributions(
                    U, V, W, K=w.K, layout=lay, with_GV_GW=True)))

    def gradlab_impl(model, name):
        batch = gradlab.Batch.for_language_model(xs, ds)
        if w.key == "W1":
            out[name] = lambda: grad_dict(gradlab.gradient(model, batch, gradlab.Full()))
        elif w.key == "W2":
            out[name] = lambda: grad_dict(gradlab.gradient(model, batch, gradlab.Sliding(w.tau)))
        else:
            def run():
                c = gradlab.contributions(model, batch, max_lag=w.K)
                res = {"norms": np.asarray(c.delta_norm), "G_U": np.asarray(c.G_U)}
                if getattr(c, "G_V", None) is not None:
                    res["G_V"] = np.asarray(c.G_V)
                if getattr(c, "G_W", None) is not None:
                    res["G_W"] = np.asarray(c.G_W)
                return res
            out[name] = run

    if layouts is not None:
        torch_impls(U, V, W, "", False)
    if gradlab is not None:
        gradlab_impl(gradlab.RNN(U, V, W), "gradlab")
    if float32:
        if layouts is not None:
            torch_impls(*(M.astype(np.float32) for M in (U, V, W)), F32, True)
        if float32_api(gradlab)[0]:
            gradlab_impl(gradlab.RNN(U, V, W).astype("float32"), "gradlab" + F32)
    return out


def pair_lags(xs, K: int) -> np.ndarray:
    """The lag of every (sentence, t, k) pair in gradlab's order (sentence, then t, then k <= min(t, K))."""
    return np.concatenate([np.arange(min(t, K) + 1) for x in xs for t in range(len(x))])


def entry_errors(a: np.ndarray, ref: np.ndarray, groups: np.ndarray | None, floor: float) -> tuple[float, int]:
    """Worst |a - ref| / max(|ref|, floor * max |ref| of the entry's group), and the group where it is.

    ``groups`` gives each entry's lag (pair norms), or is None: a leading lag axis when
    ``ref`` has 3 dimensions (G_U, G_V), otherwise one group (the whole array). A group
    whose reference is all zeros is compared in absolute terms.
    """
    a = np.asarray(a, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    if ref.size == 0:
        return 0.0, -1
    if groups is None:
        groups = (np.broadcast_to(np.arange(ref.shape[0])[:, None, None], ref.shape) if ref.ndim == 3
                  else np.zeros(ref.shape, dtype=np.int64))
    groups = np.asarray(groups).ravel()
    a, ref = a.ravel(), ref.ravel()
    scale = np.zeros(int(groups.max()) + 1)
    np.maximum.at(scale, groups, np.abs(ref))
    denom = np.maximum(np.abs(ref), floor * scale[groups])
    err = np.abs(a - ref) / np.where(denom > 0, denom, 1.0)
    err[~np.isfinite(err)] = np.inf
    i = int(np.argmax(err))
    return float(err[i]), int(groups[i])


def compare(results: dict, reference: str, lags: dict | None = None, floor: float = AGREE_FLOOR) -> dict:
    """Per implementation: the worst entry error (``entry_errors``) over its arrays, the array and lag where
    it is, and each array's worst. ``lags`` maps an array name to the lag of each of its entries."""
    ref = results[reference]
    lags = lags or {}
    report = {}
    for name, res in results.items():
        if name == reference:
            continue
        worst, where, detail = 0.0, "", {}
        for key, r in ref.items():
            a = res.get(key)
            if a is None or np.shape(a) != np.shape(r):
                detail[key] = f"shape {None if a is None else np.shape(a)} vs {np.shape(r)}"
                worst, where = float("inf"), key
                continue
            err, group = entry_errors(a, r, lags.get(key), floor)
            detail[key] = err
            if not err <= worst:
                worst = err
                where = key + (f" lag {group}" if key in lags or np.ndim(r) == 3 else "")
        report[name] = (worst, where, detail)
    return report


# ---------------------------------------------------------------------- cold start
_COLD_SCRIPT = textwrap.dedent("""
    import json, sys, time
    t0 = time.perf_counter()
    import gradlab
    t_import = time.perf_counter() - t0
    import numpy as np
    z = np.load(sys.argv[1])
    model = gradlab.RNN(z["U"], z["V"], z["W"])
    batch = gradlab.Batch(z["ids"], z["targets"], z["offsets"])
    K = int(z["K"])
    calls = [("gradient Full", lambda: gradlab.gradient(model, batch, gradlab.Full())),
             ("gradient Sliding(3)", lambda: gradlab.gradient(model, batch, gradlab.Sliding(3))),
             ("contributions", lambda: gradlab.contributions(model, batch, max_lag=K))]
    out = {"import": t_import}
    for name, f in calls:
        t = time.perf_counter(); f(); first = time.perf_counter() - t
        t = time.perf_counter(); f(); second = time.perf_counter() - t
        out[name] = [first, second]
    print("@@" + json.dumps(out))
""")


def cold_start(w: Workload, K: int, quiet_wait: float = 0.0) -> list[tuple[str, dict | str]]:
    """Import + first calls of gradlab in fresh interpreters: empty Numba cache, then the same cache again."""
    d = w.data
    rows = []
    with tempfile.TemporaryDirectory(prefix="gradlab-bench-") as tmp:
        lengths = np.array([len(x) for x in d.xs])
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        npz = Path(tmp) / "data.npz"
        np.savez(npz, U=d.U, V=d.V, W=d.W, ids=np.concatenate(d.xs), targets=np.concatenate(d.ds),
                 offsets=offsets, K=K)
        script = Path(tmp) / "cold.py"
        script.write_text(_COLD_SCRIPT)
        cache = Path(tmp) / "numba_cache"
        cache.mkdir()
        runs = [("cold compile (empty NUMBA_CACHE_DIR)", {"NUMBA_CACHE_DIR": str(cache)}),
                ("cached cold start (same cache, new process)", {"NUMBA_CACHE_DIR": str(cache)}),
                ("normal cache (user environment)", {})]
        for label, extra in runs:
            wait_quiet(quiet_wait)
            env = dict(os.environ, **extra)
            env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
            t0 = time.perf_counter()
            proc = subprocess.run([sys.executable, str(script), str(npz)], env=env, cwd=tmp,
                                  capture_output=True, text=True)
            wall = time.perf_counter() - t0
            line = next((l for l in proc.stdout.splitlines() if l.startswith("@@")), None)
            if proc.returncode != 0 or line is None:
                rows.append((label, f"failed (rc={proc.returncode}): {proc.stderr.strip()[-400:]}"))
                continue
            res = json.loads(line[2:])
            res["process wall"] = wall
            rows.append((label, res))
    return rows


# ---------------------------------------------------------------------- main
@dataclass
class Row:
    workload: Workload
    impl: str
    times: list = field(default_factory=list)
    note: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.times) if self.times else float("nan")


def time_impl(f, repeats: int) -> list[float]:
    return [_time_once(f) for _ in range(repeats)]


def tolerance(name: str) -> float:
    """Cross-check tolerance of an implementation: float32 ones against the float64 reference get F32_RTOL."""
    return F32_RTOL if name.endswith(F32) else AGREE_RTOL


def cross_check(results: dict, lags: dict | None) -> dict:
    """Every implementation against the numpy student (float64): float64 ones with floor AGREE_FLOOR,
    float32 ones with F32_FLOOR (and their arrays must be float32); 'torch +G_V,G_W' against gradlab on
    G_V and G_W as well. Returns ``compare``'s report, in the order of ``results``."""
    f64 = {k: v for k, v in results.items() if not k.endswith(F32)}
    f32 = {k: v for k, v in results.items() if k.endswith(F32) or k == "numpy student"}
    cmp = compare(f64, "numpy student", lags)
    for name, res in compare(f32, "numpy student", lags, floor=F32_FLOOR).items():
        wrong = {k: str(np.asarray(v).dtype) for k, v in results[name].items()
                 if k != "loss" and np.asarray(v).dtype != np.float32}
        if wrong:   # a float32 row that computed in float64 would time the wrong thing
            res = (float("inf"), "dtype", dict(res[2], **{k: f"dtype {d}, not float32" for k, d in wrong.items()}))
        cmp[name] = res
    if "torch +G_V,G_W" in results and "G_V" in results.get("gradlab", {}):
        extra = compare({k: results[k] for k in ("gradlab", "torch +G_V,G_W")}, "gradlab", lags)
        cmp["torch +G_V,G_W"] = extra["torch +G_V,G_W"]
    return {name: cmp[name] for name in results if name in cmp}


def target_rows(workloads, rows, peak_gflops: float, out_rates: dict, cores: int) -> list[dict]:
    """Issue 11's table: per float64 workload, gradlab's speed-up over the autograd and the hand-written
    peer, the target, and two bounds on what gradlab could reach against the hand-written peer.

    ``out_rates`` maps H to the output-layer GEMM rates of :func:`output_gemm_rates` (float64).
    The bounds: every useful FLOP at the float64 matmul peak; the output layer's GEMMs alone at
    the best rate numpy's BLAS (OpenBLAS, gradlab's) reaches on the workload's shapes (the
    *floor* of gradlab's time), and, for comparison, at torch's BLAS rate.
    """
    out = []
    for w in workloads:
        times = {r.impl: r.median for r in rows if r.workload is w}
        g = times.get("gradlab")
        hw = times.get(HAND_WRITTEN[w.key])
        ag = times.get(AUTOGRAD)
        parts = w.flops_parts()
        rates = out_rates.get(w.H, {})
        products = tuple(OUTPUT_GEMMS)[:2] if w.key == "W3" else tuple(OUTPUT_GEMMS)   # W3 needs no dW
        blas, blas_where = best_output_rate(rates, "numpy", cores, products)
        mkl, mkl_where = best_output_rate(rates, "torch", cores, products)
        out.append(dict(
            workload=w.name, key=w.key, H=w.H, target=TARGETS.get((w.key, w.H)), hand_written=HAND_WRITTEN[w.key],
            gradlab_s=g, hand_written_s=hw, autograd_s=ag,
            vs_hand_written=(hw / g if g and hw else None), vs_autograd=(ag / g if g and ag else None),
            flops_floor_s=w.flops() / (peak_gflops * 1e9),
            output_flops=parts["output"], blas_gflops=blas or None, blas_where=blas_where,
            blas_floor_s=(parts["output"] / (blas * 1e9) if blas else None),
            mkl_gflops=mkl or None, mkl_where=mkl_where,
            mkl_floor_s=(parts["output"] / (mkl * 1e9) if mkl else None)))
    return out


def print_targets(table: list[dict], quick: bool) -> None:
    print("Targets (issue 11): speed-up = peer seconds / gradlab seconds, float64")

    def x(v):
        return f"{v:5.2f}x" if v is not None else "   n/a"
    hdr = (f"  {'workload':34s} {'vs autograd':>11s} {'vs hand-written':>15s} {'target':>7s}  {'status':8s} "
           f"{'FLOP bound':>10s} {'BLAS bound':>10s}")
    print(hdr)
    for t in table:
        if t["target"] is None:
            status = "-"
        elif t["vs_hand_written"] is None:
            status = "n/a"
        elif quick:
            status = "(quick)"
        else:
            status = "MET" if t["vs_hand_written"] >= t["target"] else "NOT MET"
        hw = t["hand_written_s"]
        fb = hw / t["flops_floor_s"] if hw else None
        bb = hw / t["blas_floor_s"] if hw and t["blas_floor_s"] else None
        target = f">={t['target']}x" if t["target"] else "-"
        print(f"  {t['workload']:34s} {x(t['vs_autograd']):>11s} {x(t['vs_hand_written']):>15s} {target:>7s}  "
              f"{status:8s} {x(fb):>10s} {x(bb):>10s}")
    print("  FLOP bound: the speed-up over the hand-written peer if gradlab ran every useful FLOP at the float64")
    print("  matmul peak; BLAS bound: if gradlab's time were only its output-layer GEMMs at the best rate numpy's")
    print("  BLAS (what gradlab calls) reaches on this workload's shapes (the floor below).")
    print("  Floor: the output layer's GEMMs alone (2 or 3 products of 2 N |O| H FLOPs) at the best rate measured above")
    print("  on the workload's shapes, numpy's BLAS for gradlab, torch's for the peer; ms:")
    print(f"  {'workload':34s} {'out GFLOP':>9s} {'gradlab floor':>13s} {'at GFLOP/s':>10s} {'torch floor':>11s} "
          f"{'at GFLOP/s':>10s} {'hand-written':>12s} {'gradlab':>8s} {'needed':>7s}  within the floor?")
    for t in table:
        if t["hand_written_s"] is None or t["blas_floor_s"] is None or t["gradlab_s"] is None:
            continue
        need = f"{1e3 * t['hand_written_s'] / t['target']:7.1f}" if t["target"] else "      -"
        if t["target"]:   # the target asks gradlab to be faster than its output layer's GEMMs alone can be
            need += ("  no: below the floor" if t["hand_written_s"] / t["target"] < t["blas_floor_s"] else "  yes")
        mkl = (f"{1e3 * t['mkl_floor_s']:11.1f} {t['mkl_gflops']:10.1f}" if t["mkl_floor_s"] else f"{'-':>11s} {'-':>10s}")
        print(f"  {t['workload']:34s} {t['output_flops'] / 1e9:9.2f} {1e3 * t['blas_floor_s']:13.1f} "
              f"{t['blas_gflops']:10.1f} {mkl} {1e3 * t['hand_written_s']:12.1f} {1e3 * t['gradlab_s']:8.1f} {need}")
    print("  (needed: the gradlab time that meets the target; rates are 2 threads or 2 x 1 thread, whichever is "
          "higher, best tile)")
    if quick:
        print("  (--quick: sizes too small for the targets to mean anything; not evaluated)")
    print()


def float32_rows(workloads, rows) -> list[dict]:
    """float64 seconds / float32 seconds of every implementation timed in both."""
    out = []
    for w in workloads:
        times = {r.impl: r.median for r in rows if r.workload is w}
        for name, t32 in times.items():
            if name.endswith(F32) and name[: -len(F32)] in times:
                t64 = times[name[: -len(F32)]]
                out.append(dict(workload=w.name, impl=name[: -len(F32)], f64_s=t64, f32_s=t32, speedup=t64 / t32))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="tiny sizes (CI smoke run, a few seconds)")
    ap.add_argument("--only", default="", help="comma-separated subset of W1,W2,W3")
    ap.add_argument("--repeats", type=int, default=None, help="timed runs per fast implementation (default 7, quick 3)")
    ap.add_argument("--numpy-budget", type=float, default=3.0,
                    help="seconds: a NumPy student run slower than this is timed once more only (default 3)")
    ap.add_argument("--cold", dest="cold", action="store_true", default=None, help="measure cold starts (default: on unless --quick)")
    ap.add_argument("--no-cold", dest="cold", action="store_false")
    ap.add_argument("--float32", dest="float32", action="store_true", default=True,
                    help="also time float32: the hand-written torch peers and, with the float32 API, gradlab "
                         "(default on)")
    ap.add_argument("--no-float32", dest="float32", action="store_false")
    ap.add_argument("--wait-quiet", type=float, default=None,
                    help="before each workload wait up to this many seconds for other processes to go idle "
                         "(default 180, quick 0)")
    ap.add_argument("--max-other-load", type=float, default=None,
                    help="discard a timing round if other processes used more than this share of the cores "
                         "(default 0.10; quick: 1.0, i.e. keep everything)")
    ap.add_argument("--profile", action="store_true", help="print a torch.profiler breakdown of the torch peers")
    ap.add_argument("--json", default=None, help="also write the results to this JSON file")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch intra-op threads (default 2; quick: 1, because tiny ops with 2 OpenMP threads "
                         "stall badly on a busy CI machine)")
    args = ap.parse_args(argv)
    repeats = args.repeats or (3 if args.quick else 7)
    cold = (not args.quick) if args.cold is None else args.cold
    quiet_wait = (0.0 if args.quick else 180.0) if args.wait_quiet is None else args.wait_quiet
    if args.threads is None:
        args.threads = 1 if args.quick else 2
    if args.max_other_load is None:
        args.max_other_load = 1.0 if args.quick else 0.10

    print(f"gradlab engine benchmark{' (--quick)' if args.quick else ''}")
    print(f"python {sys.version.split()[0]}, numpy {np.__version__}, cores {os.cpu_count()}")
    try:
        import numba
        print(f"numba {numba.__version__}, NUMBA_NUM_THREADS={numba.config.NUMBA_NUM_THREADS}")
    except ImportError:
        print("numba not importable")
    layouts = None
    if peers.torch_available():
        peers.torch_setup(args.threads)
        print(f"torch {peers.torch.__version__}, intra-op threads {peers.torch.get_num_threads()}")
    else:
        print("torch: not importable -- the torch peer is skipped")

    gradlab, gerr = _import_gradlab()
    if gradlab is None:
        print(f"gradlab: NOT importable ({gerr}) -- only the peers are timed")
    else:
        t = gradlab.warmup()
        print(f"gradlab {getattr(gradlab, '__version__', '?')} from {Path(gradlab.__file__).parent}; warmup() {t:.2f} s")
    if args.float32:
        has_f32, why = float32_api(gradlab)
        print("float32: gradlab float32 rows on (model.astype('float32'))" if has_f32 else
              f"float32: {why}: gradlab float32 rows skipped; the torch float32 peers still run")
    machine = environment()
    print_environment(machine)

    n_peak = 500 if args.quick else 2000
    wait_quiet(quiet_wait)
    peaks = {}
    for dtype in (np.float64, np.float32) if args.float32 else (np.float64,):
        peak = {}
        for _ in range(1 if args.quick else 3):  # best over a few quiet attempts: load only ever lowers it
            with OtherLoad() as load:
                p = matmul_peak(n_peak, 2 if args.quick else 4, dtype)
            peak = {k: max(v, peak.get(k, 0.0)) for k, v in p.items()}
            if load.value <= args.max_other_load:
                break
            wait_quiet(quiet_wait / 4)
        peaks[np.dtype(dtype).name] = peak
        print(f"{np.dtype(dtype).name} matmul peak ({n_peak}x{n_peak}, best of runs): numpy {peak['numpy']:.1f} GFLOP/s"
              + (f", torch {peak['torch']:.1f} GFLOP/s" if "torch" in peak else ""))
    peak = peaks["float64"]
    peak_gflops = peak["numpy"]

    workloads = build_workloads(args)
    vocab = workloads[0].data.W.shape[0] if workloads else 0
    tiles, gemm_tokens = ((64, 128), 256) if args.quick else ((64, 128, 256, 512), 2048)
    out_rates = {}   # (dtype name, H) -> rates
    for H in sorted({w.H for w in workloads}):
        for dtype in (np.float64, np.float32) if args.float32 else (np.float64,):
            rates = {}
            for _ in range(1 if args.quick else 3):  # as for the peak: the best of a few quiet attempts
                wait_quiet(quiet_wait / 4)
                with OtherLoad() as load:
                    r = output_gemm_rates(H, vocab, tiles, (1, 2), gemm_tokens, 1 if args.quick else 3, dtype)
                rates = {k: {n: max(v, rates.get(k, {}).get(n, 0.0)) for n, v in rv.items()} for k, rv in r.items()}
                if load.value <= args.max_other_load:
                    break
            out_rates[(np.dtype(dtype).name, H)] = rates
            print_output_rates(rates, H, vocab, np.dtype(dtype).name)
    if peers.torch_available():
        layouts = {}
        for w in workloads:
            k = (w.H, w.n_sentences)
            if k not in layouts:
                t0 = time.perf_counter()
                layouts[k] = peers.TorchLayout(w.data.xs, w.data.ds)
                if w.K is not None:
                    layouts[k].pair_index(w.K)
                    layouts[k].windows(w.K, True)
                else:
                    layouts[k].buckets()
                print(f"torch layout for H={w.H}, n={w.n_sentences} built in {1e3 * (time.perf_counter() - t0):.0f} ms "
                      "(once per batch, not timed)")

    rows: list[Row] = []
    checks = []
    for w in workloads:
        busy = wait_quiet(quiet_wait)
        impls = impls_for(w, gradlab, layouts, args.float32)
        # cross-check on the workload itself; for torch and gradlab this is also the warm-up run
        results, first = {}, {}
        for name, f in impls.items():
            t0 = time.perf_counter()
            results[name] = f()
            first[name] = time.perf_counter() - t0
        lags = {"norms": pair_lags(w.data.xs, w.K)} if w.K is not None else None
        checks.append((w, cross_check(results, lags)))
        del results
        # The fast implementations are timed round-robin, so that a change in background
        # load hits all of them alike. A round during which other processes used more than
        # --max-other-load of the cores is discarded and repeated (up to 4x the repeats).
        wrows = {name: Row(w, name) for name in impls}
        fast = [name for name in impls if name != "numpy student"]
        kept, dropped, loads = 0, 0, []
        while fast and kept < repeats and kept + dropped < 4 * repeats:
            if dropped and dropped % repeats == 0:
                wait_quiet(quiet_wait / 4)
            times = {}
            with OtherLoad() as load:
                for name in fast:
                    times[name] = _time_once(impls[name])
            if load.value > args.max_other_load:
                dropped += 1
                continue
            kept += 1
            loads.append(load.value)
            for name in fast:
                wrows[name].times.append(times[name])
        if fast and kept < repeats:  # never got quiet enough: keep what was measured, loudly
            print(f"  WARNING {w.name}: only {kept} quiet rounds; timing {repeats - kept} more under load")
            for _ in range(repeats - kept):
                for name in fast:
                    wrows[name].times.append(_time_once(impls[name]))
        for name in fast:
            row = wrows[name]
            row.note = (f"median of {len(row.times)} warm runs (min {1e3 * min(row.times):.1f})"
                        + (f"; {dropped} noisy rounds dropped" if dropped else ""))
        if "numpy student" in impls:
            f, row = impls["numpy student"], wrows["numpy student"]
            extra = 1 if first["numpy student"] > args.numpy_budget else 2
            row.times = [first["numpy student"]]
            with OtherLoad() as load:
                row.times += time_impl(f, extra)
            row.note = (f"median of {len(row.times)} runs incl. the cross-check run (min {1e3 * min(row.times):.1f})"
                        + (f"; other load {100 * load.value:.0f}%" if load.value > args.max_other_load else ""))
        rows.extend(wrows.values())
        mean_load = 100 * statistics.mean(loads) if loads else float("nan")
        print(f"  done {w.name}: N={w.data.n_tokens} tokens; other load before {100 * busy:.0f}%, "
              f"mean during the kept rounds {mean_load:.0f}%", flush=True)

    # ------------------------------------------------------------------ report
    print()
    print(f"Cross-check, entry by entry: |a - b| / max(|b|, {AGREE_FLOOR:.0e} x max |b| of the entry's lag (G_U, G_V,")
    print(f"             norms) or array (U, V, W, G_W, loss)), b = numpy student (float64); must be <= {AGREE_RTOL:.0e}")
    print(f"             (float32 implementations, '{F32.strip()}': floor {F32_FLOOR:.0e}, <= {F32_RTOL:.0e}); "
          "'torch +G_V,G_W' is checked against gradlab, which also returns G_V and G_W):")
    all_ok = True
    for w, cmp in checks:
        for name, (worst, where, detail) in cmp.items():
            ok = worst <= tolerance(name)
            all_ok &= ok
            det = ", ".join(f"{k}={v:.1e}" if isinstance(v, float) else f"{k}: {v}" for k, v in detail.items())
            print(f"  {w.name:34s} {name:21s} {'OK ' if ok else 'MISMATCH'} worst {worst:.1e} ({where}); {det}")

    print()
    hdr = f"{'workload':34s} {'impl':21s} {'time ms':>10s} {'vs gradlab':>10s} {'GFLOP/s':>8s} {'% peak':>7s}  note"
    print(hdr)
    print("-" * len(hdr))
    print("(vs gradlab: this row's time / gradlab's float64 time; % peak: of the numpy matmul peak of the row's dtype)")
    summary = []
    for w in workloads:
        wrows = [r for r in rows if r.workload is w]
        g = next((r.median for r in wrows if r.impl == "gradlab"), None)
        fl = w.flops()
        for r in wrows:
            ratio = f"{r.median / g:9.2f}x" if g else "      n/a"
            gf = fl / r.median / 1e9
            pk = peaks["float32" if r.impl.endswith(F32) else "float64"]["numpy"]
            print(f"{w.name:34s} {r.impl:21s} {1e3 * r.median:10.1f} {ratio:>10s} {gf:8.2f} {100 * gf / pk:6.1f}%  {r.note}")
            summary.append(dict(workload=w.name, key=w.key, H=w.H, impl=r.impl, median_s=r.median, times_s=r.times,
                                gflops=gf, flops=fl, ratio_vs_gradlab=(r.median / g if g else None)))
        print()

    table = []
    if layouts is not None and gradlab is not None:
        rates64 = {H: r for (dt, H), r in out_rates.items() if dt == "float64"}
        table = target_rows(workloads, rows, peak_gflops, rates64, os.cpu_count() or 1)
        print_targets(table, args.quick)

    f32 = float32_rows(workloads, rows) if args.float32 else []
    if args.float32:
        print("float32 speed-up (float64 seconds / float32 seconds, same implementation):")
        for r in f32:
            print(f"  {r['workload']:34s} {r['impl']:21s} {1e3 * r['f64_s']:9.1f} ms -> {1e3 * r['f32_s']:9.1f} ms: "
                  f"{r['speedup']:5.2f}x")
        if not float32_api(gradlab)[0]:
            print(f"  gradlab: not timed in float32 ({float32_api(gradlab)[1]})")
        print(f"  matmul peak float32 / float64: numpy {peaks['float32']['numpy'] / peaks['float64']['numpy']:.2f}x"
              + (f", torch {peaks['float32']['torch'] / peaks['float64']['torch']:.2f}x" if "torch" in peak else ""))
        print()

    cold_rows = []
    if cold and gradlab is not None:
        w = next((w for w in workloads if w.key in ("W1", "W2") and w.H == min(x.H for x in workloads)), workloads[0])
        K = w.K if w.K is not None else 40
        print(f"gradlab cold start (fresh interpreter; data of '{w.name}'; contributions with K={K}); seconds:")
        for label, res in cold_start(w, K, quiet_wait):
            if isinstance(res, str):
                print(f"  {label}: {res}")
                continue
            parts = [f"import {res['import']:.2f}"]
            for k in ("gradient Full", "gradient Sliding(3)", "contributions"):
                parts.append(f"{k}: first {res[k][0]:.2f} / second {res[k][1]:.3f}")
            print(f"  {label}: " + "; ".join(parts) + f"; process wall {res['process wall']:.1f}")
            cold_rows.append((label, res))
        print()

    if args.profile and layouts is not None:
        profile_torch(workloads, layouts)

    if args.json:
        rates_json = [dict(dtype=dt, H=H, library=lib, threads=n, tile=r, **v)
                      for (dt, H), rates in out_rates.items() for (lib, n, r), v in rates.items()]
        Path(args.json).write_text(json.dumps(dict(machine=machine, peak=peak, peaks=peaks, rows=summary,
                                                   targets=table, float32=f32, output_gemm_rates=rates_json,
                                                   cold=cold_rows, agree_ok=bool(all_ok)), indent=1, default=float))
    if not all_ok:
        print("WARNING: implementations disagree (see cross-check above)")
    return 0 if all_ok else 1


def profile_torch(workloads, layouts) -> None:
    """Top torch ops by self CPU time for one call of each torch peer."""
    from torch.profiler import ProfilerActivity, profile
    for w in workloads:
        impls = impls_for(w, None, layouts)
        for name, f in impls.items():
            if not name.startswith("torch") or "+" in name:
                continue
            f()
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                f()
            print(f"torch profile: {w.name} / {name}")
            print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=10))


if __name__ == "__main__":
    sys.exit(main())
