"""PyTorch's nn.RNN cell (Elman with biases) as a cell kind: its backward sweep kernel and its hooks.

h(t) = f(W_ih[:, x(t)] + b_ih + W_hh h(t-1) + b_hh), f given by its kernel code (``_common``:
sigmoid, tanh, relu, identity); one-hot input (column x(t) of W_ih), every sentence from its
initial state (``H0``, (n_sentences, H); no rows: zero states), as the gated kernels.

The forward pass is the Elman kernel's (``forward.forward_states``, U = W_hh and V's column x
= W_ih[:, x] + b_ih + b_hh). Backward in lockstep as ``gated.gru_sweep``: the groups of losses
carry their signals back together, d(j) = dJ/dh(j) * f'(net(j)) (f' from the state), W_hh^T d is
a matrix product per step, and the outer products with h(j-1) one product per lag (or, for a
gradient, one over all positions after the sweep).
"""
import numpy as np
from numba import njit

from .. import _config
from .._config import JIT
from . import stacked
from ._common import derivative_from_state, rows_times, running
from .forward import forward_states
from .gated import _add_signal, _group_order, _position_grads, _positions, _take_in, prev_row
from .kinds import LockstepKind, register


@njit(**JIT)
def rnn_sweep(Whh, code, ids, starts, sent, last, first, stop, loss_at, dH, Hs, H0, per_lag, gWihT, gWhh, gbih, gbhh,
              row0, hnorm):
    """``gated.gru_sweep`` for the nn.RNN cell (same groups, slots, norms, per-position sums of a gradient and
    ``gWihT`` layout, (slots, |V|, H)); the gradient arrays must be zero on entry."""
    H = Whh.shape[1]
    ng = last.size
    if ng == 0:
        return
    span, order = _group_order(last, stop)
    base, DP, touched = _positions(per_lag, last, stop, H)
    DH = np.zeros((ng, H))
    HP = np.empty((ng, H))
    D = np.empty((ng, H))
    active = ng
    k = 0
    while True:
        active = running(active, span, order, k)
        if active == 0:
            break
        for r in range(active):
            g = order[r]
            j = _take_in(DH, r, g, k, last, first, loss_at, dH, row0, hnorm)
            if per_lag:
                prev_row(Hs, H0, sent[j], j, j == starts[j], HP[r])
            for u in range(H):
                D[r, u] = DH[r, u] * derivative_from_state(Hs[j, u], code)
            _add_signal(per_lag, k, ids[j], D, r, DP, touched, j - base, gWihT, gbih)
            if per_lag:
                for u in range(H):
                    gbhh[k, u] += D[r, u]
        if per_lag:
            np.dot(D[:active].T, HP[:active], gWhh[k])
        rows_times(D, active, Whh, DH)       # dJ/dh(j-1) = W_hh^T d
        k += 1
    if not per_lag:
        _position_grads(base, DP, touched, -1, ids, starts, sent, Hs, H0, Hs[:0], gWihT, gWhh, gbih, gbhh)


class RNNKind(LockstepKind):
    name = "rnn"
    gates = 1
    stacked_code = 3

    def forward(self, w, code, ids, offsets, h0, c0, Hs, Cs, G, chunks):
        """The Elman forward kernel with U = W_hh and V's column x = W_ih[:, x] + b_ih + b_hh."""
        Wih, Whh, bih, bhh = w
        VT = np.ascontiguousarray((Wih + (bih + bhh)[:, None]).T)
        UT = np.ascontiguousarray(Whh.T)
        S0 = h0 if h0.shape[0] else np.zeros((offsets.size - 1, Hs.shape[1]))
        _config.run_parallel(lambda c: forward_states(UT, VT, ids, offsets, code, S0, Hs, *chunks[c]), len(chunks))

    def forward_dense(self, w, code, X, offsets, h0, c0, Hs, Cs, G):
        stacked.rnn_forward_dense(*w, code, X, offsets, h0, Hs)

    def sweep_kernel(self, Whh, code, sw, part, Hs, Cs, G, h0, c0, g, row0, hnorm, cnorm):
        last, first, stop, loss_at = part
        rnn_sweep(Whh, code, sw.ids, sw.starts, sw.sent, last, first, stop, loss_at, sw.dH, Hs, h0, sw.per_lag, *g,
                  row0, hnorm)


RNN = register(RNNKind())
