"""PyTorch's nn.RNN cell (Elman with biases): forward pass and per-loss backward sweeps.

h(t) = f(W_ih[:, x(t)] + b_ih + W_hh h(t-1) + b_hh), f given by its kernel code (``_common``:
sigmoid, tanh, relu, identity); one-hot input (column x(t) of W_ih), every sentence from its
initial state (``H0``, (n_sentences, H); no rows: zero states), as the gated kernels.

In lockstep as ``gated.gru_forward`` / ``gated.gru_sweep``: forward, W_hh h(t-1) of every running
sentence is one matrix product per step; backward, the groups of losses carry their signals back
together, d(j) = dJ/dh(j) * f'(net(j)) (f' from the state), and W_hh^T d and the outer products
with h(j-1) are matrix products per step.
"""
import numpy as np
from numba import njit

from .._config import JIT
from ._common import activate, derivative_from_state, lockstep_order, rows_times, running
from .gated import _add_product, _group_order, _initial_rows, _take_in, prev


@njit(**JIT)
def rnn_forward(Wih, Whh, bih, bhh, code, ids, offsets, H0, Hs):
    """Hs[p] = h(t) of every step; sentences in lockstep, longest first."""
    H = Whh.shape[1]
    n = offsets.size - 1
    if n == 0:
        return
    order, start, lengths = lockstep_order(offsets)
    WhhT = np.ascontiguousarray(Whh.T)
    WihT = np.ascontiguousarray(Wih.T)  # row x is the input column of word x
    P = _initial_rows(H0, order, n, H)
    GH = np.empty((n, H))
    active = n
    t = 0
    while True:
        active = running(active, lengths, order, t)
        if active == 0:
            break
        rows_times(P, active, WhhT, GH)
        for r in range(active):
            p = start[r] + t
            x = ids[p]
            for u in range(H):
                h = activate(WihT[x, u] + bih[u] + GH[r, u] + bhh[u], code)
                Hs[p, u] = h
                P[r, u] = h
        t += 1


@njit(**JIT)
def rnn_sweep(Whh, code, ids, starts, sent, last, first, stop, loss_at, dH, Hs, H0, per_lag, gWihT, gWhh, gbih, gbhh,
              row0, hnorm):
    """``gated.gru_sweep`` for the nn.RNN cell (same groups, slots, norms and ``gWihT`` layout, (slots, |V|, H))."""
    H = Whh.shape[1]
    ng = last.size
    if ng == 0:
        return
    span, order = _group_order(last, stop)
    DH = np.zeros((ng, H))
    HP = np.empty((ng, H))
    D = np.empty((ng, H))
    tmpW = np.empty((H, H))
    active = ng
    k = 0
    while True:
        active = running(active, span, order, k)
        if active == 0:
            break
        slot = k if per_lag else 0
        for r in range(active):
            g = order[r]
            j = _take_in(DH, r, g, k, last, first, loss_at, dH, row0, hnorm)
            fst = j == starts[j]
            x = ids[j]
            for u in range(H):
                HP[r, u] = prev(Hs, H0, sent[j], j, fst, u)
                d = DH[r, u] * derivative_from_state(Hs[j, u], code)
                D[r, u] = d
                gWihT[slot, x, u] += d
                gbih[slot, u] += d
                gbhh[slot, u] += d
        _add_product(D, HP, active, gWhh[slot], tmpW)
        rows_times(D, active, Whh, DH)       # dJ/dh(j-1) = W_hh^T d
        k += 1
