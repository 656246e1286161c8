#!/usr/bin/env python
"""Cell benchmark: gradlab's nn.RNN / GRU / LSTM engine against PyTorch eager autograd, batched by length.

    python benchmarks/bench_cells.py                 # full run (H = 50 and 200, ~1500 tokens)
    python benchmarks/bench_cells.py --quick         # tiny sizes, seconds (CI smoke run)
    python benchmarks/bench_cells.py --cells gru --sizes 50

Workloads (one-hot input, |V| = |O| = 200, sentence lengths uniform in 5..40, random LM
targets, float64, weights as ``CellModel.init`` draws them; "rnn" is nn.RNN with biases and tanh):

    grad full      full-BPTT gradient              gradlab.cell_engine.gradient(model, batch, "full")
    grad tbptt:5   sliding TBPTT(5) gradient       gradlab.cell_engine.gradient(model, batch, "tbptt:5")
    contrib K      every ||dJ(t)/dh(t-k)|| (and c) and G_theta[k], k <= K
                                                   gradlab.cell_engine.contributions(model, batch, K)

Both implementations are cross-checked on the workload itself before they are timed; the
script exits with status 1 if they disagree. Training these cells is timed by
bench_train_cells.py. See benchmarks/README.md, "Gated-cell benchmark".
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from bench_engine import OtherLoad, environment, print_environment  # noqa: E402

#: Agreement required, per array (and per lag for the contributions): max |a - b| / max |b|.
AGREE_RTOL = 1e-9
#: gradlab / torch speed-up targets of issue 14 (item 5), for the gated cells.
TARGETS = {"grad": 2.0, "contrib": 3.0}
#: The cells this benchmark runs: nn.RNN (biases, tanh), nn.GRU, nn.LSTM.
CELLS = ("rnn", "gru", "lstm")
#: The torch function of one step, per cell (the rnn cell's activation is tanh here).
STEP = {"rnn": "rnn_tanh_cell", "gru": "gru_cell", "lstm": "lstm_cell"}
#: The recurrent and input parameters of the (one) layer, in the order the torch step functions take them.
LAYER0 = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")


# ---------------------------------------------------------------------- data
def make_problem(cell: str, H: int, n_tokens: int, vocab: int, lengths: tuple[int, int], seed: int):
    from gradlab import Batch
    from gradlab.cellmodel import CellModel
    rng = np.random.default_rng(seed)
    xs, ds, total = [], [], 0
    while total < n_tokens:
        T = int(rng.integers(lengths[0], lengths[1] + 1))
        xs.append(rng.integers(0, vocab, T).astype(np.int64))
        ds.append(rng.integers(0, vocab, T).astype(np.int64))
        total += T
    model = CellModel.init(cell, vocab, H, seed=seed)
    return model, Batch.for_language_model(xs, ds), xs, ds


# ---------------------------------------------------------------------- the torch peer
class TorchPeer:
    """PyTorch eager, float64, CPU. The index arrays are built once per batch (not timed).

    - ``grad_full``: nn.RNN / nn.GRU / nn.LSTM over a PackedSequence of the one-hot inputs (sentences
      sorted by length: each step runs one fused matmul over all sentences still running),
      nn.Linear, cross_entropy(reduction="sum"), one backward.
    - ``window(K, per_lag)``: every loss t runs back through its own window of steps
      t-K..t, all losses at once, by lag: at lag k the rows of every loss with t >= k take one
      torch.rnn_tanh_cell / gru_cell / lstm_cell step (rows sorted by min(t, K), so the rows still
      running are a prefix); a window starts from zero at t-k = 0 or from the *detached*
      state h(t-K-1) (c too) of a no-grad forward (the module on the packed batch), which is what
      detaching before step t-K gives. One backward of the summed losses then gives the
      sliding TBPTT(K) gradient (``per_lag=False``); with ``per_lag=True`` every lag uses its
      own copy of the recurrent parameters, so their .grad are G_theta[k], and the states of
      every lag keep their gradients (retain_grad): the rows' norms are ||dJ(t)/dh(t-k)||, as each
      row belongs to one loss. For the LSTM the retained dJ/dc(t-k) is the total derivative
      (torch's CPU lstm_cell is composed of autograd ops, so it includes the path through
      h(t-k) = o tanh(c(t-k))), as gradlab's c norm is.

    ``modules``: the (rnn, linear) modules to run (default: new ones from ``model.to_torch()``); a
    training loop passes the modules its optimiser updates.
    """

    def __init__(self, model, batch, xs, ds, torch, modules=None):
        self.torch, self.model, self.cell = torch, model, model.base
        self.V, self.H = model.vocab_size, model.hidden_size
        lengths = np.array([x.size for x in xs])
        self.order = np.argsort(-lengths, kind="stable")
        T = int(lengths.max())
        pad = np.zeros((len(xs), T), dtype=np.int64)
        for i, x in enumerate(xs):
            pad[i, : x.size] = x
        self.lengths = torch.from_numpy(lengths[self.order])
        self.pad = torch.from_numpy(pad[self.order])
        self.x_flat = torch.from_numpy(np.concatenate(xs))
        self.d_flat = torch.from_numpy(np.concatenate(ds))
        self.offsets = np.asarray(batch.offsets)
        pos = np.concatenate([np.arange(x.size) for x in xs])
        self.pos = pos
        # packed output (sorted sentences, time-major) -> flat batch order
        idx = []
        sorted_len = lengths[self.order]
        for t in range(T):
            for j in range(int((sorted_len > t).sum())):
                idx.append(self.offsets[self.order[j]] + t)
        self.packed_to_flat = torch.from_numpy(np.array(idx, dtype=np.int64))
        self.targets_packed = self.d_flat[self.packed_to_flat]
        self.eye = torch.eye(self.V, dtype=torch.float64)
        self._windows = {}
        self.rnn, self.lin = modules if modules is not None else model.to_torch()

    def _packed(self):
        from torch.nn.utils.rnn import pack_padded_sequence
        return pack_padded_sequence(self.eye[self.pad], self.lengths, batch_first=True, enforce_sorted=True)

    def grad_full(self):
        F = self.torch.nn.functional
        self.rnn.zero_grad(set_to_none=True)
        self.lin.zero_grad(set_to_none=True)
        out, _ = self.rnn(self._packed())
        loss = F.cross_entropy(self.lin(out.data), self.targets_packed, reduction="sum")
        loss.backward()
        return self._grads(float(loss.detach()))

    def _grads(self, loss):
        g = {n: p.grad.numpy().copy() for n, p in self.rnn.named_parameters()}
        g["W"], g["b"] = self.lin.weight.grad.numpy().copy(), self.lin.bias.grad.numpy().copy()
        return g, loss

    def _window_layout(self, K):
        if K not in self._windows:
            torch = self.torch
            start = np.minimum(self.pos, K)                     # the window's first lag
            # flat token index of every row: by first lag, those carried in from h(t-K-1) first
            rows = np.argsort(-(2 * start + (self.pos > K)), kind="stable")
            counts = [int((start >= k).sum()) for k in range(K + 1)]
            x_at = [torch.from_numpy(self.x_flat.numpy()[rows[: counts[k]] - k]) for k in range(K + 1)]
            # rows that start at lag K from the detached h(t-K-1) (the others start from zero)
            carry = rows[: counts[K]][self.pos[rows[: counts[K]]] > K]
            self._windows[K] = dict(rows=torch.from_numpy(rows), counts=counts, x_at=x_at,
                                    n_carry=carry.size, carry_src=self.packed_from_flat(carry - K - 1))
        return self._windows[K]

    def packed_from_flat(self, flat):
        inv = np.empty(self.packed_to_flat.numel(), dtype=np.int64)
        inv[self.packed_to_flat.numpy()] = np.arange(inv.size)
        return self.torch.from_numpy(inv[flat])

    def window(self, K, per_lag):
        """Sliding TBPTT(K) gradients (``per_lag=False``: ``(grads, loss)``) or the contributions
        (``per_lag=True``: ``(G, h norms, c norms, loss)``), see the class docstring."""
        self.rnn.zero_grad(set_to_none=True)
        self.lin.zero_grad(set_to_none=True)
        loss, kept = self.window_loss(K, per_lag)
        loss.backward()
        if not per_lag:
            return self._grads(float(loss.detach()))
        params, hs, cs = kept
        G = {n: np.stack([params[k][i].grad.numpy() for k in range(K + 1)]) for i, n in enumerate(LAYER0)}
        hn = [hs[K - k].grad.norm(dim=1).numpy() for k in range(K + 1)]    # lag k, rows of counts[k]
        cn = [cs[K - k].grad.norm(dim=1).numpy() for k in range(K + 1)] if cs else None
        return G, hn, cn, float(loss.detach())

    def window_loss(self, K, per_lag=False):
        """The summed losses of every loss's window of steps t-K..t, before ``backward``, and (per_lag) the
        per-lag parameter copies and the retained states (h, c) of every lag."""
        torch, F = self.torch, self.torch.nn.functional
        L = self._window_layout(K)
        lstm = self.cell == "lstm"
        step = getattr(torch, STEP[self.cell])
        shared = [getattr(self.rnn, n) for n in LAYER0]
        if per_lag:
            params = [[p.detach().clone().requires_grad_() for p in shared] for _ in range(K + 1)]
        counts = L["counts"]
        n0 = counts[K]
        h = torch.zeros(n0, self.H, dtype=torch.float64)
        c = torch.zeros(n0, self.H, dtype=torch.float64) if lstm else None
        nc = L["n_carry"]
        if nc:                      # rows with t > K come first and start from the detached h(t-K-1) (and c)
            with torch.no_grad():
                if lstm:                                       # the packed LSTM returns no c of every step
                    out_h, out_c = self._lstm_states()
                    h[:nc], c[:nc] = out_h[L["carry_src"]], out_c[L["carry_src"]]
                else:
                    h[:nc] = self.rnn(self._packed())[0].data[L["carry_src"]]
        hs, cs = [], []
        for k in range(K, -1, -1):
            m = counts[k]
            if h.shape[0] < m:
                z = torch.zeros(m - h.shape[0], self.H, dtype=torch.float64)
                h = torch.cat([h, z])
                c = torch.cat([c, z]) if lstm else None
            x = self.eye[L["x_at"][k]]
            w = params[k] if per_lag else shared
            if lstm:
                h, c = step(x, (h, c), *w)
            else:
                h = step(x, h, *w)
            if per_lag:
                h.retain_grad()
                hs.append(h)
                if lstm:
                    c.retain_grad()
                    cs.append(c)
        d = self.d_flat[L["rows"]]
        loss = F.cross_entropy(self.lin(h), d, reduction="sum")
        return loss, ((params, hs, cs) if per_lag else None)

    def _lstm_states(self):
        """h(t) and c(t) of every step (no grad), in packed order: the fused LSTM step by step."""
        torch = self.torch
        w = [getattr(self.rnn, n) for n in LAYER0]
        packed = self._packed()
        bs = packed.batch_sizes.tolist()
        h = torch.zeros(bs[0], self.H, dtype=torch.float64)
        c = torch.zeros_like(h)
        H_all, C_all, start = [], [], 0
        for b in bs:
            h, c = torch.lstm_cell(packed.data[start: start + b], (h[:b], c[:b]), *w)
            H_all.append(h)
            C_all.append(c)
            start += b
        return torch.cat(H_all), torch.cat(C_all)


# ---------------------------------------------------------------------- checks
def rel(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-300))


def check_grad(g_gradlab, g_torch, torch_names) -> float:
    worst = 0.0
    for n, a in g_gradlab.as_dict().items():
        key = torch_names[n].split(".", 1)[1]
        key = {"weight": "W", "bias": "b"}.get(key, key) if torch_names[n].startswith("linear.") else key
        worst = max(worst, rel(a, g_torch[key]))
    return worst


def check_contrib(cg, peer, res, K) -> float:
    G, hn, cn, _ = res
    worst = 0.0
    for n, arr in G.items():
        for k in range(K + 1):
            worst = max(worst, rel(cg.G[n][k], arr[k]))
    L = peer._window_layout(K)
    rows = L["rows"].numpy()
    flat = np.asarray(peer.offsets)[cg.sentence] + cg.t                  # every pair's loss, flat
    where = np.empty(rows.size, dtype=np.int64)
    where[rows] = np.arange(rows.size)
    r = where[flat]
    for k in range(K + 1):
        sel = cg.lag == k
        worst = max(worst, rel(cg.h_norm[sel], hn[k][r[sel]]))
        if cn is not None:
            worst = max(worst, rel(cg.c_norm[sel], cn[k][r[sel]]))
    return worst


# ---------------------------------------------------------------------- timing
def parse_cells(ap: argparse.ArgumentParser, text: str) -> list[str]:
    """The cells of ``--cells`` (comma-separated, each one of CELLS); an argparse error otherwise."""
    cells = [c.strip() for c in text.split(",") if c.strip()]
    bad = [c for c in cells if c not in CELLS]
    if bad or not cells:
        ap.error(f"--cells must be a comma-separated subset of {','.join(CELLS)}; received {text!r}")
    return cells


def timed(fns: dict, repeats: int) -> dict:
    """Round-robin warm runs; the median and min of each, and the other processes' mean load."""
    times = {k: [] for k in fns}
    loads = []
    for _ in range(repeats):
        for k, f in fns.items():
            with OtherLoad() as ol:
                t0 = time.perf_counter()
                f()
                times[k].append(time.perf_counter() - t0)
            loads.append(ol.value)
    return {k: (statistics.median(v), min(v)) for k, v in times.items()}, float(np.nanmean(loads))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="tiny sizes (CI smoke run, a few seconds)")
    ap.add_argument("--cells", default=",".join(CELLS), help=f"comma-separated subset of {','.join(CELLS)}")
    ap.add_argument("--sizes", default=None, help="hidden sizes, comma-separated (default 50,200; quick 8)")
    ap.add_argument("--tokens", type=int, default=None, help="tokens in the batch (default 1500; quick 60)")
    ap.add_argument("--max-lag", type=int, default=None, help="K of the contributions (default 20; quick 4)")
    ap.add_argument("--tau", type=int, default=5, help="TBPTT window (default 5)")
    ap.add_argument("--repeats", type=int, default=None, help="timed runs per implementation (default 5, quick 2)")
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default 2; quick 1)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    cells = parse_cells(ap, args.cells)
    try:
        import torch
    except ImportError:
        print("torch is not installed: nothing to compare with")
        return 0
    sizes = [int(s) for s in (args.sizes or ("8" if args.quick else "50,200")).split(",")]
    tokens = args.tokens or (60 if args.quick else 1500)
    K = args.max_lag if args.max_lag is not None else (4 if args.quick else 20)
    repeats = args.repeats or (2 if args.quick else 5)
    torch.set_num_threads(args.threads or (1 if args.quick else 2))
    import gradlab
    from gradlab import cell_engine
    t0 = time.perf_counter()
    gradlab.warmup()
    warm = time.perf_counter() - t0
    print("gradlab cell benchmark (nn.RNN, GRU, LSTM engine)")
    print(f"gradlab {gradlab.__version__} from {Path(gradlab.__file__).parent}; warmup() {warm:.2f} s")
    print(f"torch {torch.__version__}, intra-op threads {torch.get_num_threads()}")
    print_environment(environment())
    print(f"|V| = |O| = 200, ~{tokens} tokens, lengths 5..40, float64, TBPTT({args.tau}), contributions K = {K}, "
          f"median of {repeats} warm runs (min in brackets)")
    print("note: the machine is shared (2 cores); single numbers are noisy\n")
    tau = args.tau
    rows, ok = [], True
    for cell in cells:
        for H in sizes:
            model, batch, xs, ds = make_problem(cell, H, tokens, 200, (5, 40), args.seed)
            peer = TorchPeer(model, batch, xs, ds, torch)
            names = model.cell.torch_names()
            jobs = {
                "grad full": (lambda: cell_engine.gradient(model, batch, "full"), peer.grad_full,
                              lambda a, b: check_grad(a, b[0], names)),
                f"grad tbptt:{tau}": (lambda: cell_engine.gradient(model, batch, f"tbptt:{tau}"),
                                      lambda: peer.window(tau, False), lambda a, b: check_grad(a, b[0], names)),
                f"contrib K={K}": (lambda: cell_engine.contributions(model, batch, K),
                                   lambda: peer.window(K, True), lambda a, b: check_contrib(a, peer, b, K)),
            }
            for what, (fg, ft, check) in jobs.items():
                err = check(fg(), ft())                      # also the warm-up call of both
                good = err <= AGREE_RTOL
                ok &= good
                (med, load) = timed({"gradlab": fg, "torch": ft}, repeats)
                ratio = med["torch"][0] / med["gradlab"][0]
                rows.append((cell, H, what, len(peer.pos),
                             med["gradlab"], med["torch"], ratio, err, good, load))
                print(f"  done {cell} H={H} {what}: cross-check {err:.1e} {'OK' if good else 'NOT OK'}, "
                      f"other load {load:.0%}", flush=True)
    print("\n| cell | H | tokens | workload | gradlab s | torch s | torch / gradlab | target | cross-check |")
    print("| --- | ---: | ---: | --- | ---: | ---: | ---: | --- | --- |")
    for cell, H, what, n, g, t, ratio, err, good, _load in rows:
        target = TARGETS["contrib" if what.startswith("contrib") else "grad"]
        met = "" if args.quick or cell == "rnn" else (f"≥ {target:g}×: {'met' if ratio >= target else 'NOT met'}")
        print(f"| {cell} | {H} | {n} | {what} | {g[0]:.4f} [{g[1]:.4f}] | {t[0]:.4f} [{t[1]:.4f}] | "
              f"{ratio:.2f}× | {met} | {err:.1e} {'OK' if good else 'NOT OK'} |")
    if not ok:
        print("\ncross-check NOT OK: the implementations disagree")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
