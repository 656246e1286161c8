"""Stacked layers (num_layers >= 2) of the rnn, gated and linear cells, as PyTorch stacks them.

Layer 0 reads the one-hot word (``gated.*_forward``, ``rnn_cell.rnn_forward``); layer l >= 1 reads h_{l-1}(t) of the
same step through dense input weights (``*_forward_dense``). Backward, a loss's signals of
all layers travel together: at each step j (from t down to the window's start) the layers
are stepped back from the top, each adding its input gradient W_ih,l^T d to the layer
below at the same step, and its recurrent gradient to step j - 1 of its own layer, which
is not taken at the window's first step (what detaching the states of all layers before
step t - L(t) gives). Parameter gradients use the one-step functions of ``gated``; the
dense input weights' part is added here. Arrays carry the layer first.
"""
import numpy as np
from numba import njit

from .._config import JIT
from ._common import activate, derivative_from_state
from .gated import (_gru_gates, _gru_step, _linear_step, _lstm_back, _lstm_gates, _lstm_step, _norm, add_step_grads,
                    add_whh_t, prev, prev_row)


# ---------------------------------------------------------------------- forward of a dense-input layer
@njit(inline="always", **JIT)
def _dense_row(acc, a, Wih, X, p, Whh, hp, zero):
    """acc + Wih[a] . X[p] + Whh[a] . hp, with hp = h(p-1) (the recurrent term left out where ``zero``:
    h(p-1) is zero)."""
    for v in range(X.shape[1]):
        acc += Wih[a, v] * X[p, v]
    if not zero:
        for v in range(Whh.shape[1]):
            acc += Whh[a, v] * hp[v]
    return acc


@njit(**JIT)
def gru_forward_dense(Wih, Whh, bih, bhh, X, offsets, H0, Hs, G):
    H = Whh.shape[1]
    gi = np.empty(3 * H)
    gh = np.empty(3 * H)
    hp = np.empty(H)
    for s in range(offsets.size - 1):
        for p in range(offsets[s], offsets[s + 1]):
            first = p == offsets[s]
            zero = first and not H0.shape[0]
            prev_row(Hs, H0, s, p, first, hp)
            for a in range(3 * H):
                acc = bih[a]
                for v in range(X.shape[1]):
                    acc += Wih[a, v] * X[p, v]
                gi[a] = acc
                acc = bhh[a]
                if not zero:
                    for v in range(H):
                        acc += Whh[a, v] * hp[v]
                gh[a] = acc
            _gru_gates(gi, gh, hp, Hs, G, p)


@njit(**JIT)
def lstm_forward_dense(Wih, Whh, bih, bhh, X, offsets, H0, C0, Hs, Cs, G):
    H = Whh.shape[1]
    pre = np.empty(4 * H)
    hp, cp = np.empty(H), np.empty(H)
    for s in range(offsets.size - 1):
        for p in range(offsets[s], offsets[s + 1]):
            first = p == offsets[s]
            prev_row(Hs, H0, s, p, first, hp)
            for a in range(4 * H):
                pre[a] = _dense_row(bih[a] + bhh[a], a, Wih, X, p, Whh, hp, first and not H0.shape[0])
            prev_row(Cs, C0, s, p, first, cp)
            _lstm_gates(pre, cp, Hs, Cs, G, p)


@njit(**JIT)
def linear_forward_dense(lam, B, X, offsets, H0, Hs):
    H = lam.size
    for s in range(offsets.size - 1):
        for p in range(offsets[s], offsets[s + 1]):
            first = p == offsets[s]
            for u in range(H):
                acc = lam[u] * prev(Hs, H0, s, p, first, u) if (not first or H0.shape[0]) else 0.0
                for v in range(X.shape[1]):
                    acc += B[u, v] * X[p, v]
                Hs[p, u] = acc


@njit(**JIT)
def rnn_forward_dense(Wih, Whh, bih, bhh, code, X, offsets, H0, Hs):
    H = Whh.shape[1]
    hp = np.empty(H)
    for s in range(offsets.size - 1):
        for p in range(offsets[s], offsets[s + 1]):
            first = p == offsets[s]
            prev_row(Hs, H0, s, p, first, hp)
            for u in range(H):
                Hs[p, u] = activate(_dense_row(bih[u] + bhh[u], u, Wih, X, p, Whh, hp, first and not H0.shape[0]),
                                    code)


# ---------------------------------------------------------------------- one step of all layers
@njit(**JIT)
def _rnn_step(j, first, x, slot, last, code, Whh, Hs, H0, s, dh, hp, d, dnew, gWih, gWhh, gbih, gbhh):
    """The nn.RNN cell's step back (as ``gated._gru_step``): d = dh f'(net(j)); dh <- W_hh^T d unless ``last``."""
    H = Whh.shape[1]
    for u in range(H):
        hp[u] = prev(Hs, H0, s, j, first, u)
        d[u] = dh[u] * derivative_from_state(Hs[j, u], code)
    add_step_grads(slot, x, d, d, hp, first, H0, gWih, gWhh, gbih, gbhh)
    if not last:
        for v in range(H):
            dnew[v] = 0.0
        add_whh_t(Whh, d, dnew)
        for u in range(H):
            dh[u] = dnew[u]


@njit(**JIT)
def _rnn_layers(j, first, x, slot, last, code, Whh, Wih, Hs, H0, s, dh, bufs, dummy, gWih0, gWih, gWhh, gbih, gbhh,
                row, hnorm):
    L = Whh.shape[0]
    hp, d, dnew = bufs
    for l in range(L - 1, -1, -1):
        if row >= 0:
            hnorm[l, row] = _norm(dh[l])
        gi = gWih0 if l == 0 else dummy
        _rnn_step(j, first, x if l == 0 else 0, slot, last, code, Whh[l], Hs[l], H0[l], s, dh[l], hp, d, dnew, gi,
                  gWhh[l], gbih[l], gbhh[l])
        if l > 0:
            _dense_input(gWih[l], slot, d, Hs[l - 1, j], Wih[l], dh[l - 1])


@njit(**JIT)
def _dense_input(gWih, slot, d, x_in, Wih, below):
    """gWih[slot] += d (x) x_in; below += Wih^T d."""
    for a in range(d.size):
        for v in range(x_in.size):
            gWih[slot, a, v] += d[a] * x_in[v]
            below[v] += Wih[a, v] * d[a]


@njit(**JIT)
def _gru_layers(j, first, x, slot, last, Whh, Wih, Hs, H0, s, G, dh, bufs, dummy, gWih0, gWih, gWhh, gbih, gbhh,
                row, hnorm):
    L = Whh.shape[0]
    hp, di, dg, dnew = bufs
    for l in range(L - 1, -1, -1):
        if row >= 0:
            hnorm[l, row] = _norm(dh[l])
        gi = gWih0 if l == 0 else dummy
        _gru_step(j, first, x if l == 0 else 0, slot, last, Whh[l], Hs[l], H0[l], s, G[l], dh[l], hp, di, dg, dnew,
                  gi, gWhh[l], gbih[l], gbhh[l])
        if l > 0:
            _dense_input(gWih[l], slot, di, Hs[l - 1, j], Wih[l], dh[l - 1])


@njit(**JIT)
def _lstm_layers(j, first, x, slot, last, Whh, Wih, Hs, Cs, H0, C0, s, G, dh, dc, bufs, dummy, gWih0, gWih, gWhh,
                 gbih, gbhh, row, hnorm, cnorm):
    L = Whh.shape[0]
    hp, d, dnew = bufs
    for l in range(L - 1, -1, -1):
        if row >= 0:
            hnorm[l, row] = _norm(dh[l])
        gi = gWih0 if l == 0 else dummy
        _lstm_step(j, first, x if l == 0 else 0, slot, last, Whh[l], Hs[l], Cs[l], H0[l], C0[l], s, G[l], dh[l],
                   dc[l], hp, d, dnew, gi, gWhh[l], gbih[l], gbhh[l])
        if row >= 0:
            cnorm[l, row] = _norm(dc[l])
        if l > 0:
            _dense_input(gWih[l], slot, d, Hs[l - 1, j], Wih[l], dh[l - 1])
        if not last:
            _lstm_back(j, Whh[l], G[l], dh[l], dc[l], d, dnew)


@njit(**JIT)
def _linear_layers(j, first, x, slot, lam, B, Hs, H0, s, dh, dummy, glam, gB0, gB, row, hnorm):
    L = lam.shape[0]
    for l in range(L - 1, -1, -1):
        if row >= 0:
            hnorm[l, row] = _norm(dh[l])
        if l > 0:
            _dense_input(gB[l], slot, dh[l], Hs[l - 1, j], B[l], dh[l - 1])
        _linear_step(j, first, x if l == 0 else 0, slot, lam[l], Hs[l], H0[l], s, dh[l], glam[l],
                     gB0 if l == 0 else dummy)


# ---------------------------------------------------------------------- drivers
@njit(**JIT)
def stacked_backward(kind, code, Whh, Wih, lam, B, ids, starts, sent, offsets, loss_pos, lo, dH, full, Hs, Cs, H0, C0,
                     G, per_lag, gWih0, gWih, gWhh, gbih, gbhh, glam, gB0, gB, row0, hnorm, cnorm):
    """kind 0 = GRU, 1 = LSTM, 2 = linear, 3 = nn.RNN (activation ``code``). ``sent``: the sentence of every
    position; H0, C0 (L, n_sentences, H): every layer's initial states (no rows: zeros; C0 read by the LSTM
    only). ``full``: one accumulated sweep per sentence with dH (N, H) the injected signals; else one sweep
    per loss l through loss_pos[l] .. lo[l] with dH[l] its signal.
    ``row0`` empty: no norms. Unused arrays of the other kinds may be empty placeholders."""
    L = Hs.shape[0]
    H = Hs.shape[2]
    S = gB0.shape[0] if kind == 2 else gWih0.shape[0]
    dh = np.zeros((L, H))
    dc = np.zeros((L, H))
    rows = 3 * H if kind == 0 else (H if kind == 3 else 4 * H)
    dummy = np.zeros((S, rows, 1))
    hp, dnew = np.empty(H), np.empty(H)
    di, dg = np.empty(rows), np.empty(rows)
    n_outer = offsets.size - 1 if full else loss_pos.size
    for l in range(n_outer):
        if full:
            t, stop = offsets[l + 1] - 1, offsets[l]
        else:
            t, stop = loss_pos[l], lo[l]
        dh[:] = 0.0
        dc[:] = 0.0
        if not full:
            dh[L - 1] = dH[l]
        for j in range(t, stop - 1, -1):
            if full:
                for u in range(H):
                    dh[L - 1, u] += dH[j, u]
            k = t - j
            slot = k if per_lag else 0
            row = row0[l] + k if row0.size else -1
            first = j == starts[j]
            last = j == stop
            if kind == 0:
                _gru_layers(j, first, ids[j], slot, last, Whh, Wih, Hs, H0, sent[j], G, dh, (hp, di, dg, dnew), dummy,
                            gWih0, gWih, gWhh, gbih, gbhh, row, hnorm)
            elif kind == 1:
                _lstm_layers(j, first, ids[j], slot, last, Whh, Wih, Hs, Cs, H0, C0, sent[j], G, dh, dc, (hp, di, dnew),
                             dummy, gWih0, gWih, gWhh, gbih, gbhh, row, hnorm, cnorm)
            elif kind == 3:
                _rnn_layers(j, first, ids[j], slot, last, code, Whh, Wih, Hs, H0, sent[j], dh, (hp, di, dnew), dummy,
                            gWih0, gWih, gWhh, gbih, gbhh, row, hnorm)
            else:
                _linear_layers(j, first, ids[j], slot, lam, B, Hs, H0, sent[j], dh, dummy, glam, gB0, gB, row, hnorm)
