"""Peer implementations that the engine benchmark times gradlab against.

Both peers compute the quantities of docs/maths.md in gradlab's sign
convention (true gradients dJ/dU, dJ/dV, dJ/dW, summed over every loss of every
sentence; sigmoid hidden units; zero initial state; a loss at every step):

* ``numpy_*``  -- the plain NumPy, per-sentence, per-time-step code that a student
  writes for the coursework: ``predict`` returns y (T rows) and s (T + 1 rows, the
  last one the zero initial state, so ``s[t - 1]`` works at t = 0); ``acc_deltas``
  runs full BPTT by carrying ``U^T delta`` back one step at a time; ``acc_deltas_bptt``
  sends every loss back ``steps`` steps.  The one improvement over the coursework
  skeleton is that ``V x(t)`` and the V update use the column ``V[:, x(t)]`` instead
  of a one-hot vector (a one-hot dot product/outer product costs |V| times more).
  The coursework accumulates the negative gradient; these functions return the
  gradient itself.

* ``torch_*``  -- PyTorch eager on the CPU, batched, in the weights' dtype (float64, or
  float32 for float32 weights; the loss is summed in float64).  Sentences are sorted
  by length; the recurrence runs over a [B_t, H] state per time step, where B_t is
  the number of sentences longer than t (a "packed" layout: sentences of equal
  length are contiguous and each step is one batched matmul for all of them, so
  there are max(T) sequential steps instead of one loop per length bucket).  The
  output layer of all tokens is one matmul + (log-)softmax, done in row chunks that
  stay in cache.
    - full BPTT: autograd (``method="autograd"``) or an explicit backward recursion
      over the packed layout (``method="manual"``); or, as a PyTorch user writes it,
      ``method="bucketed"``: padded (B, L) buckets of similar lengths, per bucket the
      recurrence, one output matmul, masked cross-entropy and ``backward()``;
    - sliding TBPTT(tau) and per-(t, k) contributions by autograd
      (``torch_window_autograd``): every loss's own window of lags, all losses at once,
      one ``backward()``;
    - sliding TBPTT(tau) and per-(t, k) contributions: an explicit recursion over the
      lag k for *all* losses at once.  Tokens are laid out time-major in a few dense
      length groups ([T_g, B_g, H]); with A_k[m] = delta(m + k, m) (the signal that
      the loss k steps later sends to position m), A_{k+1}[m] = (A_k[m + 1] U) *
      f'(m) is one contiguous matmul per lag and group, and padding stays zero by
      induction.  TBPTT(tau) then needs a single dU = (sum_k A_k)^T s_prev matmul;
      the contributions need one G_U[k] matmul and one row-norm per lag.

The torch peers take a :class:`TorchLayout` (index arrays built once per batch, like
gradlab's ``Batch``); building it is not part of a gradient evaluation.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

try:  # the benchmark reports torch as skipped when it is missing
    import torch
    import torch.nn.functional as F
except ImportError:  # pragma: no cover - exercised only without torch
    torch = None
    F = None


@dataclass
class Gradient:
    """dJ/dU, dJ/dV, dJ/dW summed over all losses, and the total loss."""

    U: np.ndarray
    V: np.ndarray
    W: np.ndarray
    loss: float


# ====================================================================== NumPy (student)
def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _softmax(x):
    e = np.exp(x - np.max(x))
    return e / e.sum()


def numpy_predict(U, V, W, x):
    """Forward pass of one sentence: y (T, |O|) and s (T + 1, H) with s[-1] = 0."""
    T, H = len(x), U.shape[0]
    s = np.zeros((T + 1, H), dtype=U.dtype)   # float32 weights: float32 throughout
    y = np.zeros((T, W.shape[0]), dtype=U.dtype)
    for t in range(T):
        net_in = V[:, x[t]] + U.dot(s[t - 1])
        s[t] = _sigmoid(net_in)
        y[t] = _softmax(W.dot(s[t]))
    return y, s


def numpy_acc_deltas(U, V, W, x, d, y, s, dU, dV, dW):
    """Full BPTT for one sentence, accumulating into dU, dV, dW (linear in T)."""
    carry = np.zeros(U.shape[0], dtype=U.dtype)  # U^T delta(., t + 1): what later losses send to step t
    for t in reversed(range(len(x))):
        delta_out = y[t].copy()
        delta_out[d[t]] -= 1.0
        dW += np.outer(delta_out, s[t])
        delta_in = (W.T.dot(delta_out) + carry) * s[t] * (1.0 - s[t])
        dV[:, x[t]] += delta_in
        dU += np.outer(delta_in, s[t - 1])
        carry = U.T.dot(delta_in)


def numpy_acc_deltas_bptt(U, V, W, x, d, y, s, steps, dU, dV, dW):
    """The coursework's TBPTT(steps): every loss goes back lags 0..min(steps, t)."""
    for t in reversed(range(len(x))):
        delta_out = y[t].copy()
        delta_out[d[t]] -= 1.0
        dW += np.outer(delta_out, s[t])
        delta_in = W.T.dot(delta_out) * s[t] * (1.0 - s[t])
        for k in range(min(steps, t) + 1):
            dV[:, x[t - k]] += delta_in
            dU += np.outer(delta_in, s[t - k - 1])
            if k < min(steps, t):
                delta_in = U.T.dot(delta_in) * s[t - k - 1] * (1.0 - s[t - k - 1])


def _numpy_gradient(U, V, W, sentences_x, sentences_d, steps):
    dU, dV, dW = np.zeros_like(U), np.zeros_like(V), np.zeros_like(W)
    loss = 0.0
    for x, d in zip(sentences_x, sentences_d):
        y, s = numpy_predict(U, V, W, x)
        loss -= np.log(y[np.arange(len(d)), d]).sum()
        if steps is None:
            numpy_acc_deltas(U, V, W, x, d, y, s, dU, dV, dW)
        else:
            numpy_acc_deltas_bptt(U, V, W, x, d, y, s, steps, dU, dV, dW)
    return Gradient(dU, dV, dW, float(loss))


def numpy_full_gradient(U, V, W, sentences_x, sentences_d) -> Gradient:
    """Full-BPTT gradient of the summed loss, sentence by sentence, step by step."""
    return _numpy_gradient(U, V, W, sentences_x, sentences_d, None)


def numpy_tbptt_gradient(U, V, W, sentences_x, sentences_d, tau) -> Gradient:
    """Sliding TBPTT(tau) gradient: every loss t backpropagates lags 0..min(tau, t)."""
    return _numpy_gradient(U, V, W, sentences_x, sentences_d, int(tau))


def numpy_contributions(U, V, W, xs, ds, K):
    """Every ||delta(t, t - k)|| (k <= K) and the per-lag sums G_U (K + 1, H, H).

    Returns
    -------
    norms : float64 array, one entry per (sentence, t, k), ordered by sentence, then t
        ascending, then k ascending (gradlab's ``contributions`` order).
    G_U : float64 array (K + 1, H, H), G_U[k] = sum_t delta(t, t - k) (x) s(t - k - 1).
    """
    H = U.shape[0]
    G_U = np.zeros((K + 1, H, H))
    norms = []
    for x, d in zip(xs, ds):
        y, s = numpy_predict(U, V, W, x)
        for t in range(len(x)):
            delta_out = y[t].copy()
            delta_out[d[t]] -= 1.0
            delta = W.T.dot(delta_out) * s[t] * (1.0 - s[t])
            last = min(t, K)
            for k in range(last + 1):
                norms.append(np.sqrt(delta.dot(delta)))
                G_U[k] += np.outer(delta, s[t - k - 1])
                if k < last:
                    delta = U.T.dot(delta) * s[t - k - 1] * (1.0 - s[t - k - 1])
    return np.asarray(norms), G_U


# ====================================================================== PyTorch (batched)
def torch_available() -> bool:
    return torch is not None


def torch_setup(threads: int = 2) -> None:
    """Pin torch's intra-op threads (the benchmark machine has 2 cores)."""
    torch.set_num_threads(threads)


class TorchLayout:
    """Index arrays of a batch for the torch peers (built once per batch).

    Sentences are sorted by length, longest first (stable).

    * packed rows: step t of sorted sentence j lives at row ``offs[t] + j``; step t
      holds the ``b[t]`` sentences longer than t.  Row N is a zero row for gathers.
    * dense groups: the sorted sentences are cut into ``n_groups`` runs of similar
      length; group g is a time-major [T_g, B_g] block (T_g its longest length) at
      ``dense_base[g]`` in a flat buffer of D rows; padding points at row N.
    """

    def __init__(self, xs: Sequence[np.ndarray], ds: Sequence[np.ndarray], n_groups: int = 8,
                 max_lag: int | None = None):
        lengths = np.fromiter((len(x) for x in xs), dtype=np.int64, count=len(xs))
        if (lengths <= 0).any():
            raise ValueError("every sentence needs at least one token")
        order = np.argsort(-lengths, kind="stable")
        Ls = lengths[order]
        n, N, Tmax = len(xs), int(lengths.sum()), int(Ls[0])
        b = np.array([(Ls > t).sum() for t in range(Tmax)], dtype=np.int64)
        offs = np.zeros(Tmax + 1, dtype=np.int64)
        np.cumsum(b, out=offs[1:])

        # packed row of every (sorted sentence j, step t)
        row = [offs[:L] + j for j, L in enumerate(Ls)]
        ids = np.empty(N, dtype=np.int64)
        tgt = np.empty(N, dtype=np.int64)
        prev = np.empty(N, dtype=np.int64)
        for j, i in enumerate(order):
            r = row[j]
            ids[r] = xs[i]
            tgt[r] = ds[i]
            prev[r[0]] = N
            prev[r[1:]] = r[:-1]
        if (tgt < 0).any():
            raise ValueError("the torch peers expect a target at every step (language modelling)")
        self.n_sentences, self.N, self.Tmax = n, N, Tmax
        self.lengths = lengths
        self.offs, self.b = offs.tolist(), b.tolist()
        self.ids = torch.from_numpy(ids)
        self.targets = torch.from_numpy(tgt)
        self.prev = torch.from_numpy(prev)
        self.ids_np = ids

        # dense length groups (equal sentence counts)
        n_groups = max(1, min(int(n_groups), n))
        cuts = np.linspace(0, n, n_groups + 1).round().astype(np.int64)
        groups, dense_idx, dense_prev, base = [], [], [], 0
        dense_pos_of = np.empty(n, dtype=object)  # per sorted sentence: (group base, B_g, slot)
        for g in range(n_groups):
            a, e = int(cuts[g]), int(cuts[g + 1])
            if e <= a:
                continue
            Tg, Bg = int(Ls[a]), e - a
            idx = np.full((Tg, Bg), N, dtype=np.int64)
            pidx = np.full((Tg, Bg), N, dtype=np.int64)
            for jj in range(Bg):
                r = row[a + jj]
                idx[: len(r), jj] = r
                pidx[: len(r), jj] = prev[r]
                dense_pos_of[a + jj] = (base, Bg, jj)
            groups.append((base, Tg, Bg))
            dense_idx.append(idx.ravel())
            dense_prev.append(pidx.ravel())
            base += Tg * Bg
        self.groups = groups
        self.D = base
        dense_idx = np.concatenate(dense_idx)
        self.dense_idx = torch.from_numpy(dense_idx)
        self.dense_prev = torch.from_numpy(np.concatenate(dense_prev))
        self.dense_ids = torch.from_numpy(np.where(dense_idx < N, np.append(ids, 0)[dense_idx], 0))
        self._dense_pos_of = dense_pos_of
        self._inverse_order = np.argsort(order, kind="stable")
        self._pair_cache: dict[int, torch.Tensor] = {}
        # packed row of every token in the batch's own (flat, sentence-major) order
        self.flat_to_packed = np.concatenate([row[self._inverse_order[i]] for i in range(n)])
        self._buckets = None
        self._windows: dict[tuple[int, bool], dict] = {}
        if max_lag is not None:
            self.pair_index(max_lag)

    def buckets(self) -> list[tuple["torch.Tensor", "torch.Tensor"]]:
        """The dense length groups as padded batch-first buckets: (ids (B_g, T_g), targets (B_g T_g,)).

        Padding has input 0 and target -100 (``cross_entropy``'s ``ignore_index``: the mask).
        """
        if self._buckets is None:
            tgt = torch.cat([self.targets, torch.tensor([-100])])
            out = []
            for base, Tg, Bg in self.groups:
                sl = slice(base, base + Tg * Bg)
                ids = self.dense_ids[sl].view(Tg, Bg).t().contiguous()
                out.append((ids, tgt[self.dense_idx[sl]].view(Tg, Bg).t().reshape(-1).contiguous()))
            self._buckets = out
        return self._buckets

    def windows(self, K: int, per_lag: bool) -> dict:
        """Index arrays of the per-loss windows of ``torch_window_autograd`` (lags 0..K), built once.

        Rows are the losses (tokens) sorted by their first lag min(t, K), descending, those
        whose window starts from the state s(t - K - 1) first; at lag k the rows with
        min(t, K) >= k are a prefix of ``counts[k]`` rows.
        """
        key = (int(K), bool(per_lag))
        if key in self._windows:
            return self._windows[key]
        K = int(K)
        pos = np.concatenate([np.arange(L) for L in self.lengths])
        flat_ids = self.ids_np[self.flat_to_packed]
        flat_tgt = self.targets.numpy()[self.flat_to_packed]
        start = np.minimum(pos, K)
        rows = np.argsort(-(2 * start + (pos > K)), kind="stable")
        counts = [int((start >= k).sum()) for k in range(K + 1)]
        carry = rows[: counts[K]][pos[rows[: counts[K]]] > K]
        out = dict(counts=counts, n_carry=int(carry.size),
                   carry_src=torch.from_numpy(self.flat_to_packed[carry - K - 1]),
                   x_at=[torch.from_numpy(flat_ids[rows[: counts[k]] - k]) for k in range(K + 1)],
                   targets=torch.from_numpy(flat_tgt[rows]))
        if per_lag:  # where row j's pair (t, k) goes in gradlab's order (sentence, t, k ascending)
            n_pairs = start + 1
            first = np.concatenate([[0], np.cumsum(n_pairs)[:-1]])
            out["pair_at"] = [torch.from_numpy(first[rows[: counts[k]]] + k) for k in range(K + 1)]
            out["n_pairs"] = int(n_pairs.sum())
        self._windows[key] = out
        return out

    def pair_index(self, K: int) -> "torch.Tensor":
        """Flat index into norms[K + 1, D] of every (sentence, t, k <= K), in gradlab order."""
        if K in self._pair_cache:
            return self._pair_cache[K]
        parts = []
        for i in range(self.n_sentences):
            gbase, Bg, jj = self._dense_pos_of[self._inverse_order[i]]
            T = int(self.lengths[i])
            t = np.repeat(np.arange(T), np.minimum(np.arange(T), K) + 1)
            k = np.concatenate([np.arange(min(tt, K) + 1) for tt in range(T)])
            parts.append(k * self.D + gbase + (t - k) * Bg + jj)
        out = torch.from_numpy(np.concatenate(parts).astype(np.int64))
        self._pair_cache[K] = out
        return out


def _dtype_of(U: np.ndarray):
    """The torch dtype the peers compute in: float32 for float32 weights, float64 otherwise."""
    return torch.float32 if np.asarray(U).dtype == np.float32 else torch.float64


def _as_t(a: np.ndarray, dt=None) -> "torch.Tensor":
    dt = torch.float64 if dt is None else dt
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32 if dt == torch.float32 else np.float64))


def _forward_packed(U, Vt, lay: TorchLayout):
    """s(t) of every token in packed order, shape (N + 1, H) with a zero last row."""
    N, H = lay.N, U.shape[0]
    X = Vt.index_select(0, lay.ids)
    S = torch.empty(N + 1, H, dtype=U.dtype)
    S[N].zero_()
    UT = U.t()
    offs, b = lay.offs, lay.b
    torch.sigmoid(X[: b[0]], out=S[: b[0]])
    for t in range(1, lay.Tmax):
        o, bt, op = offs[t], b[t], offs[t - 1]
        st = S[o: o + bt]
        torch.addmm(X[o: o + bt], S[op: op + bt], UT, out=st)
        st.sigmoid_()
    return S


def _output_layer(S, W, targets, N, chunk, want_dW=True):
    """delta_out = softmax(W s) - onehot(d), in row chunks: returns E = delta_out W, dW, loss.

    The chunk's logits and probabilities live in two reused buffers that stay in
    cache; W is used as a contiguous (H, |O|) matrix, the layout that MKL multiplies
    fastest here, and dW is accumulated transposed for the same reason.  The loss is
    -log p(d) from the softmax (float64: p(d) cannot underflow at these scales), which
    saves a log_softmax pass over N x |O|.
    """
    H, O = W.shape[1], W.shape[0]
    WT = W.t().contiguous()
    dt = W.dtype
    E = torch.empty(N, H, dtype=dt)
    dWT = torch.zeros(H, O, dtype=dt) if want_dW else None
    chunk = min(chunk, N)
    logits = torch.empty(chunk, O, dtype=dt)
    probs = torch.empty(chunk, O, dtype=dt)
    rows = torch.arange(chunk)
    minus_one = torch.tensor(-1.0, dtype=dt)
    loss = torch.zeros((), dtype=torch.float64)  # summed in float64 whatever the compute dtype
    softmax_out = torch.ops.aten._softmax.out
    for c0 in range(0, N, chunk):
        c1 = min(N, c0 + chunk)
        n = c1 - c0
        Sc, r, tg = S[c0:c1], rows[:n], targets[c0:c1]
        a, p = logits[:n], probs[:n]
        torch.mm(Sc, WT, out=a)
        softmax_out(a, 1, False, out=p)
        loss -= p[r, tg].log().sum(dtype=torch.float64)
        p.index_put_((r, tg), minus_one, accumulate=True)
        torch.mm(p, WT.t(), out=E[c0:c1])
        if want_dW:
            dWT.addmm_(Sc.t(), p)
    return E, (dWT.t() if want_dW else None), float(loss)


def _to_grad(dU, dVt, dW, loss) -> Gradient:
    return Gradient(dU.numpy(), dVt.t().contiguous().numpy(), dW.contiguous().numpy(), float(loss))


def torch_full_gradient(U, V, W, xs=None, ds=None, *, layout: TorchLayout | None = None,
                        method: str = "autograd", chunk: int = 512) -> Gradient:
    """Full-BPTT gradient, batched over sentences (packed layout).

    ``method="bucketed"``: per padded bucket (``TorchLayout.buckets``) forward, masked
    ``cross_entropy`` and ``backward()``, the gradients accumulated over the buckets.
    ``method="autograd"``: forward graph over the packed layout + ``loss.backward()``.
    ``method="manual"``: chunked output layer, then delta(t) = (E(t) + delta(t + 1) U) * f'(t)
    one packed step at a time, dU = delta^T s_prev and dV by index_add.
    """
    lay = layout if layout is not None else TorchLayout(xs, ds)
    dt = _dtype_of(U)
    if method == "bucketed":
        return _torch_bucketed_autograd(U, V, W, lay, dt)
    if method == "autograd":
        Ut, Vt_, Wt = (_as_t(M, dt).requires_grad_() for M in (U, V, W))
        X = F.embedding(lay.ids, Vt_.t())
        offs, b = lay.offs, lay.b
        s = torch.sigmoid(X[: b[0]])
        states = [s]
        UT = Ut.t()
        for t in range(1, lay.Tmax):
            o, bt = offs[t], b[t]
            s = torch.sigmoid(torch.addmm(X[o: o + bt], s[:bt], UT))
            states.append(s)
        S = torch.cat(states)
        loss = F.cross_entropy(torch.mm(S, Wt.t()), lay.targets, reduction="sum")
        loss.backward()
        return Gradient(Ut.grad.numpy(), Vt_.grad.numpy(), Wt.grad.numpy(), float(loss.detach()))
    if method != "manual":
        raise ValueError(f"method must be 'bucketed', 'autograd' or 'manual'; received {method!r}")
    with torch.no_grad():
        Ut, Wt = _as_t(U, dt), _as_t(W, dt)
        Vt = _as_t(V, dt).t().contiguous()
        N = lay.N
        S = _forward_packed(Ut, Vt, lay)
        E, dW, loss = _output_layer(S, Wt, lay.targets, N, chunk)
        Fp = S[:N] * (1.0 - S[:N])
        offs, b = lay.offs, lay.b
        for t in range(lay.Tmax - 1, -1, -1):
            o, bt = offs[t], b[t]
            Dt = E[o: o + bt]
            Dt.mul_(Fp[o: o + bt])
            if t > 0:
                op = offs[t - 1]
                E[op: op + bt].addmm_(Dt, Ut)
        dU = torch.mm(E.t(), S.index_select(0, lay.prev))
        dVt = torch.zeros_like(Vt).index_add_(0, lay.ids, E)
        return _to_grad(dU, dVt, dW, loss)


def _torch_bucketed_autograd(U, V, W, lay: TorchLayout, dt) -> Gradient:
    """What a PyTorch user writes: per padded (B, L) bucket, the recurrence, one output matmul,
    masked cross-entropy and ``backward()``; the gradients accumulate over the buckets."""
    Ut, Vt_, Wt = (_as_t(M, dt).requires_grad_() for M in (U, V, W))
    H = Ut.shape[0]
    loss = 0.0
    for ids, tgt in lay.buckets():
        B, L = ids.shape
        X = F.embedding(ids, Vt_.t())                   # (B, L, H)
        s = torch.zeros(B, H, dtype=dt)
        states = []
        for t in range(L):
            s = torch.sigmoid(torch.addmm(X[:, t], s, Ut.t()))
            states.append(s)
        S = torch.stack(states, 1).reshape(B * L, H)
        bucket_loss = F.cross_entropy(torch.mm(S, Wt.t()), tgt, reduction="sum", ignore_index=-100)
        bucket_loss.backward()
        loss += float(bucket_loss.detach())
    return Gradient(Ut.grad.numpy(), Vt_.grad.numpy(), Wt.grad.numpy(), loss)


def torch_window_autograd(U, V, W, K: int, *, layout: TorchLayout, per_lag: bool):
    """Autograd over every loss's own window of lags 0..min(t, K), all losses at once, by lag.

    A no-grad packed forward gives s(t - K - 1), the *detached* state a window of K + 1 steps
    starts from (zero at the sentence start, where the window is shorter). From lag K down to
    0 one step net = V x + s U^T, s = sigmoid(net) runs over the rows of every loss whose
    window reaches that lag (a prefix of the rows); then the output layer on the lag-0 rows,
    ``cross_entropy(reduction="sum")`` and one ``backward()``.

    ``per_lag=False``: the gradient of sliding TBPTT(K) (every loss reaches back K steps), a
    :class:`Gradient`. ``per_lag=True``: every lag uses its own copy of U, whose ``.grad`` is
    G_U[k], and the pre-activations keep their gradients (``retain_grad``): a row belongs to
    one loss, so row j's gradient at lag k is delta(t, t - k). Returns (norms in gradlab's
    order, G_U (K + 1, H, H)), as :func:`torch_contributions`.
    """
    lay, K, dt = layout, int(K), _dtype_of(U)
    L = lay.windows(K, per_lag)
    Ut, Vt_, Wt = (_as_t(M, dt).requires_grad_() for M in (U, V, W))
    H, counts, nc = Ut.shape[0], L["counts"], L["n_carry"]
    with torch.no_grad():
        S = _forward_packed(Ut.detach(), Vt_.detach().t().contiguous(), lay)
    Uk = [Ut.detach().clone().requires_grad_() for _ in range(K + 1)] if per_lag else None
    s = torch.zeros(counts[K], H, dtype=dt)
    s[:nc] = S[L["carry_src"]]
    nets = [None] * (K + 1)
    for k in range(K, -1, -1):
        m = counts[k]
        if s.shape[0] < m:     # windows that start at the sentence start, from the zero state
            s = torch.cat([s, torch.zeros(m - s.shape[0], H, dtype=dt)])
        net = torch.addmm(F.embedding(L["x_at"][k], Vt_.t()), s, (Uk[k] if per_lag else Ut).t())
        if per_lag:
            net.retain_grad()
            nets[k] = net
        s = torch.sigmoid(net)
    loss = F.cross_entropy(torch.mm(s, Wt.t()), L["targets"], reduction="sum")
    loss.backward()
    if not per_lag:
        return Gradient(Ut.grad.numpy(), Vt_.grad.numpy(), Wt.grad.numpy(), float(loss.detach()))
    norms = torch.empty(L["n_pairs"], dtype=dt)
    for k in range(K + 1):
        norms[L["pair_at"][k]] = torch.linalg.vector_norm(nets[k].grad, dim=1)
    return norms.numpy(), torch.stack([u.grad for u in Uk]).numpy()


def _dense_start(U, V, W, lay: TorchLayout, chunk: int, want_dW: bool):
    """Forward + output layer, then A_0 = delta(t, t), f'(t) and s(t - 1) in the dense layout."""
    dt = _dtype_of(U)
    Ut, Wt = _as_t(U, dt), _as_t(W, dt)
    Vt = _as_t(V, dt).t().contiguous()
    N = lay.N
    S = _forward_packed(Ut, Vt, lay)
    E, dW, loss = _output_layer(S, Wt, lay.targets, N, chunk, want_dW)
    Fp = torch.empty_like(S)
    torch.mul(S, 1.0 - S, out=Fp)  # row N: 0 * 1 = 0
    A0 = torch.empty_like(S)
    torch.mul(E, Fp[:N], out=A0[:N])
    A0[N].zero_()
    Ad = A0.index_select(0, lay.dense_idx)
    Fpd = Fp.index_select(0, lay.dense_idx)
    Spd = S.index_select(0, lay.dense_prev)
    return Ut, Vt, dW, loss, Ad, Fpd, Spd


def torch_tbptt_gradient(U, V, W, xs=None, ds=None, tau: int = 3, *, layout: TorchLayout | None = None,
                         chunk: int = 512) -> Gradient:
    """Sliding TBPTT(tau): G = sum_{k <= tau} A_k, dU = G^T s_prev, dV = index_add(G)."""
    lay = layout if layout is not None else TorchLayout(xs, ds)
    with torch.no_grad():
        Ut, Vt, dW, loss, Ad, Fpd, Spd = _dense_start(U, V, W, lay, chunk, True)
        G = Ad.clone()
        for base, Tg, Bg in lay.groups:
            A = Ad[base: base + Tg * Bg]
            for k in range(1, min(int(tau), Tg - 1) + 1):
                n = (Tg - k) * Bg
                A = torch.mm(A[Bg:], Ut)
                A.mul_(Fpd[base: base + n])
                G[base: base + n] += A
        dU = torch.mm(G.t(), Spd)
        dVt = torch.zeros_like(Vt).index_add_(0, lay.dense_ids, G)
        return _to_grad(dU, dVt, dW, loss)


def torch_contributions(U, V, W, xs=None, ds=None, K: int = 40, *, layout: TorchLayout | None = None,
                        chunk: int = 512, with_GV_GW: bool = False):
    """All ||delta(t, t - k)|| for k <= K (gradlab order) and G_U (K + 1, H, H), as NumPy arrays.

    With ``with_GV_GW`` it also returns G_V (K + 1, H, |V|) (a transposed view) and G_W,
    the other outputs of gradlab's ``contributions``, to show what they cost.
    """
    lay = layout if layout is not None else TorchLayout(xs, ds)
    K = int(K)
    with torch.no_grad():
        Ut, Vt, dW, loss, Ad, Fpd, Spd = _dense_start(U, V, W, lay, chunk, with_GV_GW)
        H = Ut.shape[0]
        dt = Ut.dtype
        norms = torch.zeros(K + 1, lay.D, dtype=dt)
        G_U = torch.zeros(K + 1, H, H, dtype=dt)
        G_Vt = torch.zeros(K + 1, Vt.shape[0], H, dtype=dt) if with_GV_GW else None
        for base, Tg, Bg in lay.groups:
            A = Ad[base: base + Tg * Bg]
            for k in range(min(K, Tg - 1) + 1):
                n = (Tg - k) * Bg
                if k:
                    A = torch.mm(A[Bg:], Ut)
                    A.mul_(Fpd[base: base + n])
                torch.linalg.vector_norm(A, dim=1, out=norms[k, base: base + n])
                G_U[k].addmm_(A.t(), Spd[base: base + n])
                if with_GV_GW:  # A_k[m] goes to the column of x(m), the input at position m = t - k
                    G_Vt[k].index_add_(0, lay.dense_ids[base: base + n], A)
        pair_norms = norms.view(-1).index_select(0, lay.pair_index(K))
        if with_GV_GW:
            return pair_norms.numpy(), G_U.numpy(), G_Vt.numpy().transpose(0, 2, 1), dW.contiguous().numpy()
        return pair_norms.numpy(), G_U.numpy()
