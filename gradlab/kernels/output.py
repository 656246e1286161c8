"""The output layer's row work: softmax, cross-entropy and delta_out, in place.

The matrix products around it (logits = S W^T, dS = delta_out W, dW += delta_out^T S)
are BLAS calls made by the engine on tiles of losses, so a tile's logits stay in
cache between the product, this kernel and the next product.
"""
from numba import njit
import numpy as np

from .._config import JIT
from ._common import softmax_inplace


@njit(**JIT)
def softmax_rows(L, d, losses, probs=True):
    """Turn logits into probabilities, record the losses, subtract the one-hot targets.

    Parameters
    ----------
    L : float64 (m, n_out)
        Logits W s(t) of m steps; on return y(t) - onehot(d(t)) (rows with
        d < 0: y(t)).
    d : int64 (m,)
        Targets (in range, checked by the caller), or -1 for "no loss".
    losses : float64 (m,)
        Output: J(t) = -log y(t)[d(t)] = log sum exp(logits) - logit[d]; 0 where d < 0.
    probs : bool, default True
        False: only the losses (the same values); ``L`` is left as scratch.
    """
    m, n_out = L.shape
    nbuf = np.empty(n_out, dtype=np.int64)
    pbuf = np.empty(n_out)
    for r in range(m):
        row = L[r]
        target = d[r]
        logit = row[target] if target >= 0 else 0.0
        log_z = softmax_inplace(row, nbuf, pbuf, probs)
        if target >= 0:
            losses[r] = log_z - logit
            row[target] -= 1.0
        else:
            losses[r] = 0.0


@njit(**JIT)
def output_tiles(S, pos, W, d, losses, dS, dW, tmpW, logits, St, r0, r1, want_grad):
    """The output layer of losses r0..r1-1 (one group), tile by tile, in one compiled call.

    Parameters
    ----------
    S : float (N, H)
        States; the losses' rows are ``S[pos]``.
    pos : int64 (n_losses,); W : float (n_out, H); d : int64 (n_losses,) targets
    losses : float (n_losses,), output: J(t) of each loss
    dS : float (n_losses, H), output (with ``want_grad``): dJ(t)/ds(t) = delta_out(t) W
    dW : float (n_out, H), output (with ``want_grad``): the group's sum of delta_out(t) (x) s(t)
    tmpW : float (n_out, H), scratch
    logits : float (tile, n_out); St : float (tile, H), scratch: one tile of losses
    r0, r1 : int
    want_grad : bool

    Notes
    -----
    Each tile: logits = S_tile W^T, softmax, loss and delta_out in place (``softmax_rows``),
    dS_tile = delta_out W and delta_out^T S_tile, while the tile's logits are in cache. The
    first tile's product is dW itself, later ones are added to it (the fused trainer's order,
    so that the trainers agree bit for bit). The products are BLAS calls made without the GIL.
    """
    tile = logits.shape[0]
    H = S.shape[1]
    first = True
    for a in range(r0, r1, tile):
        b = min(a + tile, r1)
        nt = b - a
        Stt = St[:nt]
        for r in range(nt):
            for h in range(H):
                Stt[r, h] = S[pos[a + r], h]
        L = logits[:nt]
        np.dot(Stt, W.T, L)
        softmax_rows(L, d[a:b], losses[a:b], want_grad)
        if want_grad:
            np.dot(L, W, dS[a:b])
            if first:
                np.dot(L.T, Stt, dW)
                first = False
            else:
                np.dot(L.T, Stt, tmpW)
                for o in range(dW.shape[0]):
                    for h in range(H):
                        dW[o, h] += tmpW[o, h]
