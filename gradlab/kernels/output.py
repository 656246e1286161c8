"""The output layer: softmax, cross-entropy and its gradient, on tiles that stay in cache.

The output layer does not depend on the recurrence, so every loss of a batch goes
through it at once, as matrix products on tiles of ``OUTPUT_TILE`` losses: the
tile's logits (tile x |O|) are computed, turned into probabilities and into
delta_out in place while they are still in cache, and never stored for the batch.
"""
import numpy as np
from numba import njit, prange

from .._config import JIT, PARALLEL_JIT
from ._common import softmax_inplace


@njit(**JIT)
def _output_range(S, W, WT, pos, d, r0, r1, tile, want_grad, losses, dS, dW):
    n_out, H = W.shape
    logits = np.empty((tile, n_out))
    St = np.empty((tile, H))
    tmp = np.empty((n_out, H))
    nbuf = np.empty(n_out, dtype=np.int64)
    pbuf = np.empty(n_out)
    for a in range(r0, r1, tile):
        b = min(a + tile, r1)
        m = b - a
        for r in range(m):
            St[r] = S[pos[a + r]]
        L = logits[:m]
        Sm = St[:m]
        np.dot(Sm, WT, L)
        for r in range(m):
            row = L[r]
            target = d[a + r]
            logit = row[target]
            log_z = softmax_inplace(row, nbuf, pbuf)
            losses[a + r] = log_z - logit
            row[target] -= 1.0
        if want_grad:
            np.dot(L, W, dS[a:b])
            np.dot(L.T, Sm, tmp)
            dW += tmp


@njit(**PARALLEL_JIT)
def output_layer(S, W, WT, pos, d, tile, n_groups, want_grad, losses, dS, dW_groups):
    """Per-loss cross-entropy and, if ``want_grad``, its gradient.

    Parameters
    ----------
    S : float64 (N, H)
        Hidden states.
    W : float64 (n_out, H); WT : float64 (H, n_out)
        Output weights and their transpose.
    pos : int64 (n_loss,)
        Flat positions of the steps that have a loss.
    d : int64 (n_loss,)
        Target id of each loss (in range, checked by the caller).
    tile, n_groups : int
        Losses per tile; the losses are split into ``n_groups`` fixed contiguous
        groups, each reduced into ``dW_groups[g]`` — the split does not depend on
        the number of threads, so neither do the results.
    losses : float64 (n_loss,)
        Output: J(t) = -log y(t)[d(t)].
    dS : float64 (n_loss, H)
        Output: dJ(t)/ds(t) = W^T delta_out(t), delta_out = y - onehot(d).
    dW_groups : float64 (n_groups, n_out, H)
        Output, zero on entry: per-group sums of delta_out (x) s(t); the caller adds them in order.
    """
    n_loss = pos.size
    per = (n_loss + n_groups - 1) // n_groups
    for g in prange(n_groups):
        r0 = g * per
        r1 = min(n_loss, r0 + per)
        if r0 < r1:
            _output_range(S, W, WT, pos, d, r0, r1, tile, want_grad, losses, dS, dW_groups[g])


@njit(**PARALLEL_JIT)
def output_probs(S, WT, probs):
    """probs[p] = softmax(W s) for every row of S (the coursework's y)."""
    N = S.shape[0]
    n_out = WT.shape[1]
    for p in prange(N):
        nbuf = np.empty(n_out, dtype=np.int64)
        pbuf = np.empty(n_out)
        row = probs[p]
        row[:] = 0.0
        for h in range(WT.shape[0]):
            s = S[p, h]
            for o in range(n_out):
                row[o] += s * WT[h, o]
        softmax_inplace(row, nbuf, pbuf)
