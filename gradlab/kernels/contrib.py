"""Per-sentence truncation gaps (the per-lag sums of each sentence against its full gradient)."""
import numpy as np
from numba import njit

from .._config import JIT
from ._common import derivative_from_state
from .backward import step_back


@njit(**JIT)
def sentence_gaps(U, S, E, D, ids, offsets, loss_pos, loss_t, offsets_loss, max_lag, code,
                  err2, dot, prefix2, full2, s0, s1):
    """Per sentence and tau = 0..K: how far the TBPTT(tau) gradient is from the full one.

    Parameters
    ----------
    U : float64 (H, H); S, E : float64 (N, H)
    D : float64 (N, H)
        Full-BPTT accumulated signals (``accumulate_deltas`` with no limit).
    ids, offsets : int64
    loss_pos, loss_t, offsets_loss : int64
        Losses in flat order, their steps t, and the losses of each sentence.
    max_lag : int
    code : int
    err2, dot, prefix2 : float64 (n, K + 1, 2), outputs for the parameters (U, V):
        ||g_tau - g_full||^2, <g_tau, g_full> and ||g_tau||^2 of the sentence's gradient.
    full2 : float64 (n, 2), output: ||g_full||^2 for U and V.
    s0, s1 : int
        Sentence range.

    Notes
    -----
    g_tau = sum_{k <= tau} G[k] with the sentence's own per-lag sums; the full
    gradient comes from D: U_full = sum_j D[j] (x) s(j-1), V_full[:, w] = sum_{x(j) = w} D[j].
    """
    H = U.shape[0]
    K1 = max_lag + 1
    acc = np.empty(H)
    tmp = np.empty(H)
    for i in range(s0, s1):
        a = offsets[i]
        T = offsets[i + 1] - a
        col = np.empty(T, dtype=np.int64)  # each position's word as a local column
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
        full2[i, 0] = np.sum(UF * UF)
        full2[i, 1] = np.sum(VF * VF)
        PU = np.zeros((H, H))
        PV = np.zeros((n_words, H))
        for k in range(K1):
            PU += GU[k]
            PV += GV[k]
            err2[i, k, 0] = np.sum((PU - UF) ** 2)
            dot[i, k, 0] = np.sum(PU * UF)
            prefix2[i, k, 0] = np.sum(PU * PU)
            err2[i, k, 1] = np.sum((PV - VF) ** 2)
            dot[i, k, 1] = np.sum(PV * VF)
            prefix2[i, k, 1] = np.sum(PV * PV)


@njit(**JIT)
def lag_step(U, S, s_norm, pos, pair_row, n_inner, k, move, code, delta, Sp, tmp, GU_part,
             delta_norm, prev_norm, r0, r1):
    """One lag of ``contributions`` for rows r0..r1-1 of the losses, longest first.

    Parameters
    ----------
    U : float (H, H); S : float (N, H); s_norm : float (N,) (||s(j)||)
    pos : int64 (n,)
        Flat position of each loss, the losses sorted by step t, latest first, so
        that the losses that reach lag k are a prefix.
    pair_row : int64 (n,)
        Row of each loss's lag 0 in the pair tables.
    n_inner : int
        Rows 0..n_inner-1 have t > k (a real s(t-k-1)); the others have t = k.
    k : int
    move : bool
        Carry the signals on to lag k + 1.
    code : int
    delta : float (n, H)
        delta(t, t-k) of every row on entry; delta(t, t-k-1) on return (rows < n_inner, with ``move``).
    Sp, tmp : float (>= r1 - r0, H), scratch
    GU_part : float (H, H), output: sum over rows of delta(t, t-k) (x) s(t-k-1)
    delta_norm, prev_norm : float (n_pairs,), outputs at pair_row + k: ||delta(t, t-k)|| and ||s(t-k-1)|| (0 for t = k)
    r0, r1 : int
    """
    H = U.shape[0]
    for r in range(r0, r1):
        total = 0.0
        for h in range(H):
            total += delta[r, h] * delta[r, h]
        delta_norm[pair_row[r] + k] = np.sqrt(total)
        prev_norm[pair_row[r] + k] = s_norm[pos[r] - k - 1] if r < n_inner else 0.0
    r2 = min(r1, n_inner)
    m = r2 - r0
    if m <= 0:
        GU_part[:] = 0.0
        return
    for r in range(m):
        q = pos[r0 + r] - k - 1
        for h in range(H):
            Sp[r, h] = S[q, h]
    np.dot(delta[r0:r2].T, Sp[:m], GU_part)
    if move:
        np.dot(delta[r0:r2], U, tmp[:m])
        for r in range(m):
            for h in range(H):
                delta[r0 + r, h] = tmp[r, h] * derivative_from_state(Sp[r, h], code)
