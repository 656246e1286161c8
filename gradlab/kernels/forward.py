"""Forward pass: hidden states of every sentence of a batch, sentences in lockstep."""
import numpy as np
from numba import njit

from .._config import JIT
from ._common import activate, lockstep_order, rows_times, running


@njit(**JIT)
def forward_states(UT, VT, ids, offsets, code, S0, S, s0, s1):
    """Hidden states s(t) of sentences s0..s1-1, written into ``S``.

    Parameters
    ----------
    UT : float (H, H)
        U transposed, so that the row s(t-1)^T U^T is U s(t-1) as a row.
    VT : float (n_vocab, H)
        V transposed; row x is the embedding V[:, x].
    ids : int64 (N,)
        Input ids, concatenated; every id is in range (checked by the caller).
    offsets : int64 (n + 1,)
        Sentence boundaries.
    code : int
        Activation code (see ``_common``).
    S0 : float (n, H)
        s(-1) of every sentence (zeros for the usual zero initial state).
    S : float (N, H)
        Output: S[p] = s(t) for the token at flat position p.
    s0, s1 : int
        Sentence range.

    Notes
    -----
    net_in(t) = V[:, x(t)] + U s(t-1),  s(t) = f(net_in(t)),  s(-1) = S0[i].
    The sentences run in lockstep, longest first: at step t the rows of the
    sentences still running are a prefix, and U s(t-1) for all of them is one
    matrix product (``rows_times``).
    """
    H = UT.shape[0]
    n = s1 - s0
    if n <= 0:
        return
    order, start, lengths = lockstep_order(offsets[s0:s1 + 1])
    P = np.empty((n, H), dtype=S.dtype)   # s(t-1) of the running sentences, longest first
    N = np.empty((n, H), dtype=S.dtype)
    for r in range(n):
        for h in range(H):
            P[r, h] = S0[s0 + order[r], h]
    active = n
    t = 0
    while True:
        active = running(active, lengths, order, t)
        if active == 0:
            break
        rows_times(P, active, UT, N)
        for r in range(active):
            p = start[r] + t
            x = ids[p]
            for h in range(H):
                v = activate(VT[x, h] + N[r, h], code)
                S[p, h] = v
                P[r, h] = v
        t += 1
