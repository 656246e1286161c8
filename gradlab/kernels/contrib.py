"""Per-(loss, lag) contributions and per-lag summed gradients."""
import numpy as np
from numba import njit, prange

from .._config import PARALLEL_JIT
from ._common import softmax_inplace
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


@njit(**PARALLEL_JIT)
def sentence_gaps(U, S, E, D, ids, offsets, loss_pos, loss_t, offsets_loss, max_lag, code,
                  err2, dot, prefix2, full2):
    """Per sentence and tau = 0..K: how far the TBPTT(tau) gradient is from the full one.

    Parameters
    ----------
    U : float64 (H, H); S, E : float64 (N, H)
    D : float64 (N, H)
        Full-BPTT accumulated signals (from ``accumulate_deltas`` with no limit).
    ids, offsets : int64
    loss_pos, loss_t, offsets_loss : int64
        Losses in flat order, their steps t, and the losses of each sentence.
    max_lag : int
    code : int
    err2, dot, prefix2 : float64 (n, K + 1, 2), outputs for parameters (U, V):
        ||g_tau - g_full||^2, <g_tau, g_full>, ||g_tau||^2 of the sentence's gradient.
    full2 : float64 (n, 2), output: ||g_full||^2 for U and V.

    Notes
    -----
    g_tau = sum_{k <= tau} G[k] with the sentence's own per-lag sums, the full
    gradient from D: U_full = sum_j D[j] (x) s(j-1), V_full[:, w] = sum_{x(j) = w} D[j].
    """
    H = U.shape[0]
    n = offsets.size - 1
    K1 = max_lag + 1
    for i in prange(n):
        a = offsets[i]
        b = offsets[i + 1]
        T = b - a
        # local column of each position's word
        col = np.empty(T, dtype=np.int64)
        n_words = 0
        for j in range(T):
            col[j] = -1
            for q in range(j):
                if ids[a + q] == ids[a + j]:
                    col[j] = col[q]
                    break
            if col[j] < 0:
                col[j] = n_words
                n_words += 1
        GU = np.zeros((K1, H, H))
        GV = np.zeros((K1, n_words, H))
        UF = np.zeros((H, H))
        VF = np.zeros((n_words, H))
        for j in range(T):
            p = a + j
            for h in range(H):
                VF[col[j], h] += D[p, h]
            if j > 0:
                for h in range(H):
                    dh = D[p, h]
                    for c in range(H):
                        UF[h, c] += dh * S[p - 1, c]
        acc = np.empty(H)
        tmp = np.empty(H)
        for l in range(offsets_loss[i], offsets_loss[i + 1]):
            p = loss_pos[l]
            K = min(loss_t[l], max_lag)
            acc[:] = E[p]
            for k in range(K + 1):
                j = p - k
                for h in range(H):
                    GV[k, col[j - a], h] += acc[h]
                if j > a:
                    for h in range(H):
                        ah = acc[h]
                        for c in range(H):
                            GU[k, h, c] += ah * S[j - 1, c]
                if k < K:
                    step_back(U, S, j - 1, code, acc, tmp)
        fu = 0.0
        for h in range(H):
            for c in range(H):
                fu += UF[h, c] * UF[h, c]
        fv = 0.0
        for w in range(n_words):
            for h in range(H):
                fv += VF[w, h] * VF[w, h]
        full2[i, 0] = fu
        full2[i, 1] = fv
        PU = np.zeros((H, H))
        PV = np.zeros((n_words, H))
        for k in range(K1):
            e = 0.0
            d = 0.0
            q = 0.0
            for h in range(H):
                for c in range(H):
                    PU[h, c] += GU[k, h, c]
                    diff = PU[h, c] - UF[h, c]
                    e += diff * diff
                    d += PU[h, c] * UF[h, c]
                    q += PU[h, c] * PU[h, c]
            err2[i, k, 0] = e
            dot[i, k, 0] = d
            prefix2[i, k, 0] = q
            e = 0.0
            d = 0.0
            q = 0.0
            for w in range(n_words):
                for h in range(H):
                    PV[w, h] += GV[k, w, h]
                    diff = PV[w, h] - VF[w, h]
                    e += diff * diff
                    d += PV[w, h] * VF[w, h]
                    q += PV[w, h] * PV[w, h]
            err2[i, k, 1] = e
            dot[i, k, 1] = d
            prefix2[i, k, 1] = q


@njit(**PARALLEL_JIT)
def sentence_output_norms(S, W, WT, loss_pos, d, offsets_loss, out2):
    """out2[i] = ||dJ_i/dW||_F^2, the W gradient of sentence i's losses alone."""
    n_out, H = W.shape
    n = offsets_loss.size - 1
    for i in prange(n):
        l0 = offsets_loss[i]
        m = offsets_loss[i + 1] - l0
        if m == 0:
            out2[i] = 0.0
            continue
        L = np.empty((m, n_out))
        St = np.empty((m, H))
        nbuf = np.empty(n_out, dtype=np.int64)
        pbuf = np.empty(n_out)
        for r in range(m):
            St[r] = S[loss_pos[l0 + r]]
        np.dot(St, WT, L)
        for r in range(m):
            softmax_inplace(L[r], nbuf, pbuf)
            L[r, d[l0 + r]] -= 1.0
        G = np.dot(L.T, St)
        out2[i] = np.sum(G * G)
