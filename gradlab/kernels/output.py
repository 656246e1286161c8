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
