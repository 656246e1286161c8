"""Forward pass: hidden states of every sentence of a batch."""
import numpy as np
from numba import njit

from .._config import JIT
from ._common import activate


@njit(**JIT)
def forward_states(UT, VT, ids, offsets, code, S0, S, s0, s1):
    """Hidden states s(t) of sentences s0..s1-1, written into ``S``.

    Parameters
    ----------
    UT : float64 (H, H)
        U transposed (row j is column j of U), so that U s is a sum of rows.
    VT : float64 (n_vocab, H)
        V transposed; row x is the embedding V[:, x].
    ids : int64 (N,)
        Input ids, concatenated; every id is in range (checked by the caller).
    offsets : int64 (n + 1,)
        Sentence boundaries.
    code : int
        Activation code (see ``_common``).
    S0 : float64 (n, H)
        s(-1) of every sentence (zeros for the usual zero initial state).
    S : float64 (N, H)
        Output: S[p] = s(t) for the token at flat position p.
    s0, s1 : int
        Sentence range.

    Notes
    -----
    net_in(t) = V[:, x(t)] + U s(t-1),  s(t) = f(net_in(t)),  s(-1) = S0[i].
    """
    H = UT.shape[0]
    net = np.empty(H)
    for i in range(s0, s1):
        a = offsets[i]
        b = offsets[i + 1]
        for p in range(a, b):
            x = ids[p]
            for h in range(H):
                net[h] = VT[x, h]
            for j in range(H):
                sj = S[p - 1, j] if p > a else S0[i, j]
                for h in range(H):
                    net[h] += UT[j, h] * sj
            for h in range(H):
                S[p, h] = activate(net[h], code)
