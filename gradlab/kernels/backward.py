"""Backward pass under a lag limit per loss, in linear time for block schemes."""
import numpy as np
from numba import njit

from .._config import JIT
from ._common import derivative_from_state


@njit(inline="always", **JIT)
def step_back(U, S, q, code, acc, tmp):
    """acc <- (U^T acc) o f'(net_in at flat position q): one step of delta(t, j) -> delta(t, j-1)."""
    H = U.shape[0]
    tmp[:] = 0.0
    for h in range(H):
        ah = acc[h]
        for c in range(H):
            tmp[c] += U[h, c] * ah
    for c in range(H):
        acc[c] = tmp[c] * derivative_from_state(S[q, c], code)


@njit(**JIT)
def injected_errors(dS, S, pos, code, E):
    """E[pos[l]] = delta(t, t) = dS[l] o f'(net_in(t)) for every loss l; other rows are left as they are."""
    H = S.shape[1]
    for l in range(pos.size):
        p = pos[l]
        for h in range(H):
            E[p, h] = dS[l, h] * derivative_from_state(S[p, h], code)


@njit(**JIT)
def accumulate_deltas(U, S, E, lo, offsets, code, D, s0, s1):
    """Sum of the error signals that reach every position, under a lag limit per loss.

    Parameters
    ----------
    U : float64 (H, H)
    S : float64 (N, H)
        Hidden states (f' is computed from them).
    E : float64 (N, H)
        delta(t, t) of the loss at each position; rows of steps without a loss are ignored.
    lo : int64 (N,)
        For a step with a loss, the earliest flat position its signal reaches
        (t - min(L(t), t) in flat coordinates); -1 for a step without a loss.
    offsets : int64 (n + 1,)
    code : int
    D : float64 (N, H)
        Output, zero on entry: D[j] = sum over kept losses t of delta(t, j).
    s0, s1 : int
        Sentence range.

    Notes
    -----
    delta(t, j-1) = (U^T delta(t, j)) o f'(net_in(j-1)). Because this map is linear,
    consecutive losses that reach the same earliest position are summed first and
    carried back together: full BPTT is one sweep per sentence, a block scheme one
    sweep per block, and the sliding window one short sweep per loss, O(T tau).
    """
    H = U.shape[0]
    acc = np.empty(H)
    tmp = np.empty(H)
    for i in range(s0, s1):
        a = offsets[i]
        p = offsets[i + 1] - 1
        while p >= a:
            if lo[p] < 0:
                p -= 1
                continue
            start = lo[p]
            first = p
            r = p - 1
            while r >= a:
                if lo[r] < 0:
                    r -= 1
                elif lo[r] == start:
                    first = r
                    r -= 1
                else:
                    break
            acc[:] = 0.0
            for j in range(p, start - 1, -1):
                if j >= first and lo[j] >= 0:
                    for h in range(H):
                        acc[h] += E[j, h]
                for h in range(H):
                    D[j, h] += acc[h]
                if j > start:
                    step_back(U, S, j - 1, code, acc, tmp)
            p = r


@njit(**JIT)
def scatter_rows(ids, D, out, p0, p1):
    """out[ids[p]] += D[p] for p in p0..p1-1 (dV^T from the accumulated signals)."""
    H = D.shape[1]
    for p in range(p0, p1):
        x = ids[p]
        for h in range(H):
            out[x, h] += D[p, h]
