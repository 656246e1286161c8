#!/usr/bin/env python
"""Cell training benchmark: gradlab's Trainer on GRU / LSTM against the PyTorch SGD loop making the same updates.

    python benchmarks/bench_train_cells.py              # H = 50, |V| = 200, 200 sentences of 5..40 words
    python benchmarks/bench_train_cells.py --quick      # tiny sizes, seconds (CI smoke run)
    python benchmarks/bench_train_cells.py --cells gru --schemes full,chunked:10 --no-cold

One epoch of per-sentence SGD (batch_size 1, lr 0.1, the epoch's order drawn from ``--seed`` as
the Trainer draws it) from ``CellModel.init(cell, |V|, H, seed)``, one-hot input, a language-model
loss with a random target at every step, float64. gradlab: ``Trainer(scheme=...).fit(model, batch)``
(a cell model trains step by step: one ``cell_engine.gradient`` per update, then
theta -= lr g). PyTorch: ``model.to_torch()``'s modules (nn.GRU / nn.LSTM, nn.RNN for "rnn"; the
nn.Linear output layer), ``torch.optim.SGD(lr)``, eager autograd, float64, one sentence (a batch
of one, its one-hot inputs made before timing) at a time:

    full        the module over the sentence, cross_entropy(reduction="sum"), backward, step
    tbptt:K     sliding TBPTT(K): every loss t sends its signal back to step t-K only. The loop
                that gives this gradient runs every loss's own window of steps t-K..t, all of
                the sentence's losses at once, lag by lag (bench_cells.TorchPeer.window_loss,
                started from the detached states of a no-grad forward), then backward, step
    chunked:h   the sentence in blocks of h steps: the module over the block from the state the
                previous block ended in, detached; backward and step after every block (the
                "detach every h steps" loop, the Trainer's carry="before_update")

Before anything is timed the first update of every (cell, scheme) is timed on its own (in this
process: gradlab's kernels compiled or loaded from Numba's cache; torch's first autograd call),
and, unless ``--no-cold`` (default with ``--quick``), again in a fresh interpreter with an empty
``NUMBA_CACHE_DIR`` (gradlab's compile time). Both loops are then cross-checked: after the first
``--check`` sentences of the epoch their parameters agree to 1e-9 (max |a - b| / max |b| per array)
and they made the same number of updates, or the script exits with status 1. The epochs are then
timed in turn (``--repeats`` each, median); the table gives sentences per second and
torch / gradlab (> 1: gradlab is faster). See benchmarks/README.md, "Gated-cell benchmark".
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_cells import AGREE_RTOL, CELLS, ROOT, TorchPeer, parse_cells, rel, timed  # noqa: E402
from bench_engine import environment, print_environment  # noqa: E402
from bench_train import make_data  # noqa: E402

#: The schemes this benchmark has a PyTorch loop for (the number is K or h).
SCHEME_KINDS = ("full", "tbptt", "chunked")


def parse_schemes(ap: argparse.ArgumentParser, text: str) -> list[str]:
    """The schemes of ``--schemes``: "full", "tbptt:K", "chunked:h" (K, h >= 1); an argparse error otherwise."""
    out = []
    for s in (s.strip() for s in text.split(",") if s.strip()):
        kind, _, n = s.partition(":")
        if not ((kind == "full" and not n) or (kind in SCHEME_KINDS[1:] and n.isdigit() and int(n) >= 1)):
            ap.error(f"--schemes must be comma-separated full, tbptt:K or chunked:h (K, h >= 1); received {s!r}")
        out.append(s)
    if not out:
        ap.error(f"--schemes names no scheme; received {text!r}")
    return out


# ---------------------------------------------------------------------- the two training loops
def gradlab_epoch(model, batch, scheme: str, lr: float, seed: int, n_sentences: int | None = None):
    """One epoch of gradlab's per-sentence SGD (or its first ``n_sentences`` sentences): (model, updates)."""
    from gradlab.train import Trainer
    stop = None if n_sentences is None else (lambda p: p.sentences_seen >= n_sentences)
    res = Trainer(scheme=scheme, learning_rate=lr, epochs=1, batch_size=1, seed=seed, progress=False,
                  callback=stop).fit(model, batch)
    return res.model, res.updates


class TorchTraining:
    """The PyTorch per-sentence SGD loops of one problem; inputs, targets and window layouts built once."""

    def __init__(self, model, xs, ds, torch, lr: float, seed: int):
        self.torch, self.model, self.lr, self.xs, self.ds = torch, model, lr, xs, ds
        self.order = np.random.default_rng(seed).permutation(len(xs))       # the Trainer's epoch order
        self.eye = eye = torch.eye(model.vocab_size, dtype=torch.float64)
        self.inputs = [eye[torch.from_numpy(np.asarray(x))][:, None] for x in xs]   # [T, 1, |V|]
        self.targets = [torch.from_numpy(np.asarray(d)) for d in ds]
        self._peers = None

    def _window_peers(self, K: int, modules):
        """One bench_cells.TorchPeer per sentence (its layout of windows built once), running ``modules``."""
        if self._peers is None:
            from gradlab import Batch
            self._peers = []
            for x, d in zip(self.xs, self.ds):
                p = TorchPeer(self.model, Batch.for_language_model([x], [d]), [x], [d], self.torch, modules)
                p.eye = self.eye                                # one identity for all (|V| x |V| each)
                p._window_layout(K)
                self._peers.append(p)
        for p in self._peers:
            p.rnn, p.lin = modules
        return self._peers

    def epoch(self, scheme: str, n_sentences: int | None = None):
        """One epoch (or its first ``n_sentences``): (the trained rnn and linear modules, updates)."""
        torch, F = self.torch, self.torch.nn.functional
        rnn, lin = modules = self.model.to_torch()
        opt = torch.optim.SGD([*rnn.parameters(), *lin.parameters()], lr=self.lr)
        kind, _, n = scheme.partition(":")
        peers = self._window_peers(int(n), modules) if kind == "tbptt" else None
        updates = 0

        def update(loss):
            nonlocal updates
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            updates += 1

        for i in self.order[:n_sentences]:
            x, d = self.inputs[i], self.targets[i]
            if kind == "full":
                update(F.cross_entropy(lin(rnn(x)[0][:, 0]), d, reduction="sum"))
            elif kind == "tbptt":
                update(peers[i].window_loss(int(n))[0])
            else:                                              # chunked:h
                h, state = int(n), None
                for b0 in range(0, x.shape[0], h):
                    out, state = rnn(x[b0:b0 + h], state)
                    update(F.cross_entropy(lin(out[:, 0]), d[b0:b0 + h], reduction="sum"))
                    state = tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()
        return modules, updates


def disagreement(model, modules) -> float:
    """max over the arrays of max |gradlab - torch| / max |torch|."""
    from gradlab import from_torch
    ref = from_torch(*modules)
    return max(rel(model.params[n], ref.params[n]) for n in model.cell.names)


# ---------------------------------------------------------------------- first calls
def first_calls(cells, schemes, H: int, vocab: int, seed: int, torch=None) -> dict:
    """Seconds of the first update of every (cell, scheme), in this order, and of the second (warm) one.

    Every call trains one sentence of 12 steps (so chunked:h with h < 12 makes several updates).
    Later rows reuse what earlier rows compiled (the Trainer, the cell's forward pass).
    """
    from gradlab import Batch
    from gradlab.cellmodel import CellModel
    rng = np.random.default_rng(seed)
    x, d = rng.integers(0, vocab, 12), rng.integers(0, vocab, 12)
    batch = Batch.for_language_model([x], [d])
    out = {}
    for cell in cells:
        model = CellModel.init(cell, vocab, H, seed=seed)
        tt = TorchTraining(model, [x], [d], torch, 0.1, seed) if torch is not None else None
        for scheme in schemes:
            row = {}
            for name, f in (("gradlab", lambda: gradlab_epoch(model, batch, scheme, 0.1, seed)),
                            ("torch", (lambda: tt.epoch(scheme)) if tt is not None else None)):
                if f is None:
                    continue
                times = []
                for _ in range(2):
                    t0 = time.perf_counter()
                    f()
                    times.append(time.perf_counter() - t0)
                row[name] = times
            out[f"{cell} {scheme}"] = row
    return out


def cold_first_calls(cells, schemes, H: int, vocab: int, seed: int) -> dict | str:
    """``first_calls`` of gradlab in a fresh interpreter with an empty Numba cache: compile times (or why not)."""
    with tempfile.TemporaryDirectory(prefix="gradlab-bench-") as tmp:
        env = dict(os.environ, NUMBA_CACHE_DIR=tmp,
                   PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        cmd = [sys.executable, str(Path(__file__).resolve()), "--first-calls-json", "--cells", ",".join(cells),
               "--schemes", ",".join(schemes), "--hidden", str(H), "--vocab", str(vocab), "--seed", str(seed)]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, env=env, cwd=tmp, capture_output=True, text=True)
        wall = time.perf_counter() - t0
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("@@")), None)
    if proc.returncode != 0 or line is None:
        return f"failed (rc={proc.returncode}): {proc.stderr.strip()[-400:]}"
    res = json.loads(line[2:])
    res["process wall"] = wall
    return res


# ---------------------------------------------------------------------- main
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="tiny sizes (CI smoke run, a few seconds)")
    ap.add_argument("--cells", default="gru,lstm", help=f"comma-separated subset of {','.join(CELLS)}")
    ap.add_argument("--schemes", default="full,tbptt:5,chunked:10",
                    help="comma-separated full, tbptt:K, chunked:h (default full,tbptt:5,chunked:10)")
    ap.add_argument("--hidden", type=int, default=None, help="H (default 50; quick 8)")
    ap.add_argument("--vocab", type=int, default=None, help="|V| = |O| (default 200; quick 20)")
    ap.add_argument("--sentences", type=int, default=None, help="sentences in the epoch (default 200; quick 12)")
    ap.add_argument("--min-len", type=int, default=5)
    ap.add_argument("--max-len", type=int, default=40)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--check", type=int, default=None,
                    help="sentences of the cross-check before timing (default 5; quick 3)")
    ap.add_argument("--repeats", type=int, default=None, help="timed epochs per implementation (default 3, quick 1)")
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default 2; quick 1)")
    ap.add_argument("--cold", dest="cold", action="store_true", default=None,
                    help="also time the first calls in a fresh interpreter with an empty Numba cache "
                         "(default: on unless --quick)")
    ap.add_argument("--no-cold", dest="cold", action="store_false")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--first-calls-json", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    cells, schemes = parse_cells(ap, args.cells), parse_schemes(ap, args.schemes)
    H = args.hidden or (8 if args.quick else 50)
    vocab = args.vocab or (20 if args.quick else 200)
    if args.first_calls_json:            # the fresh interpreter of cold_first_calls: gradlab only
        print("@@" + json.dumps(first_calls(cells, schemes, H, vocab, args.seed)))
        return 0
    try:
        import torch
    except ImportError:
        print("torch is not installed: nothing to compare with")
        return 0
    n_sent = args.sentences or (12 if args.quick else 200)
    n_check = min(args.check or (3 if args.quick else 5), n_sent)
    repeats = args.repeats or (1 if args.quick else 3)
    cold = (not args.quick) if args.cold is None else args.cold
    torch.set_num_threads(args.threads or (1 if args.quick else 2))
    import gradlab
    from gradlab.cellmodel import CellModel

    print("gradlab cell training benchmark" + (" (--quick)" if args.quick else ""))
    print(f"gradlab {gradlab.__version__} from {Path(gradlab.__file__).parent}")
    print(f"torch {torch.__version__}, intra-op threads {torch.get_num_threads()}")
    print_environment(environment())
    xs, ds, batch = make_data(n_sent, vocab, args.min_len, args.max_len, args.seed)
    print(f"|V| = |O| = {vocab}, H = {H}, {n_sent} sentences of {args.min_len}..{args.max_len} steps "
          f"({batch.n_tokens} tokens), one epoch of per-sentence SGD, lr {args.lr}, float64, median of {repeats} "
          f"epochs (min in brackets); cross-check after {n_check} sentences")
    print("note: the machine may be shared; single numbers are noisy\n")

    t0 = time.perf_counter()
    first = first_calls(cells, schemes, H, vocab, args.seed, torch)
    print(f"first calls in this process (one sentence of 12 steps; gradlab: kernels compiled or loaded from "
          f"Numba's cache), {time.perf_counter() - t0:.1f} s in all; seconds, first [second]:")
    for key, row in first.items():
        print(f"  {key:<22s} gradlab {row['gradlab'][0]:8.3f} [{row['gradlab'][1]:.4f}]   "
              f"torch {row['torch'][0]:7.3f} [{row['torch'][1]:.4f}]")
    if cold:
        print("\nfirst calls in a fresh interpreter with an empty NUMBA_CACHE_DIR (gradlab's compile time) ...",
              flush=True)
        res = cold_first_calls(cells, schemes, H, vocab, args.seed)
        if isinstance(res, str):
            print(f"  {res}")
        else:
            print(f"  process wall {res.pop('process wall'):.1f} s (start-up, imports and these calls)")
            for key, row in res.items():
                print(f"  {key:<22s} gradlab {row['gradlab'][0]:8.3f} [{row['gradlab'][1]:.4f}]")
    print()

    rows, ok = [], True
    for cell in cells:
        model = CellModel.init(cell, vocab, H, seed=args.seed)
        tt = TorchTraining(model, xs, ds, torch, args.lr, args.seed)
        for scheme in schemes:
            g_model, g_upd = gradlab_epoch(model, batch, scheme, args.lr, args.seed, n_check)
            t_modules, t_upd = tt.epoch(scheme, n_check)
            err = disagreement(g_model, t_modules)
            good = err <= AGREE_RTOL and g_upd == t_upd
            ok &= good
            ends = {}

            def run(name, f):
                return lambda: ends.__setitem__(name, f())
            med, load = timed({"gradlab": run("gradlab", lambda: gradlab_epoch(model, batch, scheme, args.lr,
                                                                              args.seed)),
                               "torch": run("torch", lambda: tt.epoch(scheme))}, repeats)
            end_err = disagreement(ends["gradlab"][0], ends["torch"][0])
            rows.append((cell, scheme, ends["gradlab"][1], med["gradlab"], med["torch"], err, g_upd == t_upd,
                         good, end_err))
            print(f"  done {cell} {scheme}: cross-check {err:.1e} after {n_check} sentences "
                  f"({g_upd} / {t_upd} updates) {'OK' if good else 'NOT OK'}, other load {load:.0%}", flush=True)

    print(f"\n| cell | H | scheme | updates | gradlab s | torch s | gradlab sent/s | torch sent/s | torch / gradlab "
          f"| cross-check ({n_check} sentences) | epoch end |")
    print("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |")
    for cell, scheme, upd, g, t, err, same_upd, good, end_err in rows:
        print(f"| {cell} | {H} | {scheme} | {upd} | {g[0]:.3f} [{g[1]:.3f}] | {t[0]:.3f} [{t[1]:.3f}] | "
              f"{n_sent / g[0]:.0f} | {n_sent / t[0]:.0f} | {t[0] / g[0]:.2f}× | "
              f"{err:.1e}{'' if same_upd else ' (updates differ)'} {'OK' if good else 'NOT OK'} | {end_err:.1e} |")
    print("\ntorch / gradlab: PyTorch's seconds per epoch over gradlab's (same updates, same order); "
          "epoch end: the parameters' disagreement after the whole timed epoch (information)")
    if not ok:
        print("\ncross-check NOT OK: the training loops disagree")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
