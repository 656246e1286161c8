"""Per-(loss, lag) contributions and per-lag summed gradients."""
import numpy as np
from numba import njit, prange

from .._config import PARALLEL_JIT
from .backward import step_back


@njit(**PARALLEL_JIT)
def pair_deltas(U, S, E, loss_pos, loss_t, pair_start, max_lag, code, offsets_loss, delta, delta_norm):
    """delta(t, t-k) for every loss and every lag k = 0..min(t, K), one row per pair.

    Parameters
    ----------
    U : float64 (H, H)
    S, E : float64 (N, H)
        Hidden states and delta(t, t) of the loss at each position.
    loss_pos, loss_t : int64 (n_loss,)
        Flat position and step t of each loss.
    pair_start : int64 (n_loss + 1,)
        The pairs of loss l are rows pair_start[l] .. pair_start[l+1]-1, lag ascending.
    max_lag : int
        K.
    code : int
        Activation code.
    offsets_loss : int64 (n + 1,)
        The losses of sentence i are l = offsets_loss[i] .. offsets_loss[i+1]-1.
    delta : float64 (n_pairs, H), output
    delta_norm : float64 (n_pairs,), output, ||delta(t, t-k)||.

    Notes
    -----
    delta(t, t-k-1) = (U^T delta(t, t-k)) o f'(net_in(t-k-1)); O(K H^2) per loss.
    """
    H = U.shape[0]
    n = offsets_loss.size - 1
    for i in prange(n):
        tmp = np.empty(H)
        acc = np.empty(H)
        for l in range(offsets_loss[i], offsets_loss[i + 1]):
            p = loss_pos[l]
            K = min(loss_t[l], max_lag)
            acc[:] = E[p]
            row = pair_start[l]
            for k in range(K + 1):
                sq = 0.0
                for h in range(H):
                    delta[row + k, h] = acc[h]
                    sq += acc[h] * acc[h]
                delta_norm[row + k] = np.sqrt(sq)
                if k < K:
                    step_back(U, S, p - k - 1, code, acc, tmp)


@njit(**PARALLEL_JIT)
def per_lag_sums(delta, src, src_prev, S, ids, lag_order, lag_bounds, lag_sequence, tile, GU, GVT):
    """Add every pair's contribution into the sums of its lag.

    Parameters
    ----------
    delta : float64 (n_pairs, H)
    src : int64 (n_pairs,)
        Flat position j = t - k that each pair reaches.
    src_prev : int64 (n_pairs,)
        j - 1, or -1 where j is the first step of its sentence (s(-1) = 0).
    S : float64 (N, H); ids : int64 (N,)
    lag_order : int64 (n_pairs,)
        Pair indices grouped by lag: the pairs at lag k are
        lag_order[lag_bounds[k]:lag_bounds[k+1]], in table order.
    lag_bounds : int64 (K + 2,)
    lag_sequence : int64 (K + 1,)
        The lags in the order they are handed out (heavy and light interleaved).
    GU : float64 (K + 1, H, H), accumulated: G_U[k] += delta (x) s(j-1).
    GVT : float64 (K + 1, n_vocab, H), accumulated: G_V[k] transposed, row x(j) += delta.

    Each lag is reduced by one thread in table order, so the result does not
    depend on the number of threads.
    """
    H = S.shape[1]
    n_lags = lag_sequence.size
    for q in prange(n_lags):
        k = lag_sequence[q]
        Dt = np.empty((tile, H))
        St = np.empty((tile, H))
        tmp = np.empty((H, H))
        b0 = lag_bounds[k]
        b1 = lag_bounds[k + 1]
        for a in range(b0, b1, tile):
            m = min(tile, b1 - a)
            for r in range(m):
                pr = lag_order[a + r]
                Dt[r] = delta[pr]
                jp = src_prev[pr]
                if jp >= 0:
                    St[r] = S[jp]
                else:
                    St[r] = 0.0
                x = ids[src[pr]]
                for h in range(H):
                    GVT[k, x, h] += delta[pr, h]
            np.dot(Dt[:m].T, St[:m], tmp)
            GU[k] += tmp
