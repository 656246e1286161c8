"""Backward pass under a lag limit per loss, in linear time for block schemes."""
import numpy as np
from numba import njit

from .._config import JIT
from ._common import derivative_from_state, rows_times, running


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
    U : float (H, H)
    S : float (N, H)
        Hidden states (f' is computed from them).
    E : float (N, H)
        delta(t, t) of the loss at each position; rows of steps without a loss are ignored.
    lo : int64 (N,)
        For a step with a loss, the earliest flat position its signal reaches
        (t - min(L(t), t) in flat coordinates); -1 for a step without a loss.
    offsets : int64 (n + 1,)
    code : int
    D : float (N, H)
        Output, zero on entry: D[j] = sum over kept losses t of delta(t, j).
    s0, s1 : int
        Sentence range.

    Notes
    -----
    delta(t, j-1) = (U^T delta(t, j)) o f'(net_in(j-1)). Because this map is linear,
    consecutive losses that reach the same earliest position form a group, summed
    as the sweep passes them and carried back together: full BPTT is one group per
    sentence, a block scheme one per block, the sliding window one per loss
    (O(T tau) in all). All groups of the sentence range move back one step at a
    time in lockstep, longest first, so that each step is one matrix product over
    the groups still running (``rows_times``); each group writes a different
    position at a given step.
    """
    H = U.shape[0]
    n_groups = 0
    for p in range(offsets[s0], offsets[s1]):
        if lo[p] >= 0:
            n_groups += 1  # at most one group per loss
    if n_groups == 0:
        return
    last = np.empty(n_groups, dtype=np.int64)   # the group's latest loss: where its sweep begins
    first = np.empty(n_groups, dtype=np.int64)  # its earliest loss
    stop = np.empty(n_groups, dtype=np.int64)   # the earliest position it reaches
    g = 0
    for i in range(s0, s1):
        a = offsets[i]
        p = offsets[i + 1] - 1
        while p >= a:
            if lo[p] < 0:
                p -= 1
                continue
            first[g] = p
            r = p - 1
            while r >= a:
                if lo[r] < 0:
                    r -= 1
                elif lo[r] == lo[p]:
                    first[g] = r
                    r -= 1
                else:
                    break
            last[g] = p
            stop[g] = lo[p]
            g += 1
            p = r
    n_groups = g
    span = last[:n_groups] - stop[:n_groups] + 1
    order = np.argsort(-span, kind="mergesort")
    acc = np.zeros((n_groups, H), dtype=D.dtype)
    tmp = np.empty((n_groups, H), dtype=D.dtype)
    active = n_groups
    k = 0
    while True:
        active = running(active, span, order, k)
        if active == 0:
            break
        if k > 0:
            rows_times(acc, active, U, tmp)
            for r in range(active):
                j = last[order[r]] - k
                for h in range(H):
                    acc[r, h] = tmp[r, h] * derivative_from_state(S[j, h], code)
        for r in range(active):
            g = order[r]
            j = last[g] - k
            if j >= first[g] and lo[j] >= 0:
                for h in range(H):
                    acc[r, h] += E[j, h]
            for h in range(H):
                D[j, h] += acc[r, h]
        k += 1


@njit(**JIT)
def scatter_rows(ids, D, out, p0, p1):
    """out[ids[p]] += D[p] for p in p0..p1-1 (dV^T from the accumulated signals)."""
    H = D.shape[1]
    for p in range(p0, p1):
        x = ids[p]
        for h in range(H):
            out[x, h] += D[p, h]
