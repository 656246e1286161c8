"""Stacked layers (num_layers >= 2) of the rnn, gated and linear cells, as PyTorch stacks them.

Layer 0 reads the one-hot word (``gated.*_forward``, ``rnn_cell.rnn_forward``); layer l >= 1 reads h_{l-1}(t) of the
same step through dense input weights (``*_forward_dense``). Backward, a loss's signals of all layers travel
together: at each step j (from t down to the window's start) the layers are stepped back from the top, each
adding its input gradient W_ih,l^T d to the layer below at the same step, and its recurrent gradient to step
j - 1 of its own layer, which is not taken at the window's first step (what detaching the states of all layers
before step t - L(t) gives). The GRU, LSTM and nn.RNN layers run in lockstep (``lockstep_backward``: groups of
losses move back one step at a time, with one product per step and layer over the running rows, as the one-layer
sweeps of ``gated``); the linear recurrence sweeps one loss at a time (``linear_backward``). Arrays carry the
layer first.
"""
import numpy as np
from numba import njit

from .._config import JIT
from ._common import activate, derivative_from_state, rows_times, running
from .gated import _group_order, _gru_gates, _linear_step, _lstm_gates, _norm, gru_signals, lstm_signals, prev, prev_row


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
                acc = lam[u] * prev(Hs, H0, s, p, first, u)       # prev: zero before a sentence without H0
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


# ---------------------------------------------------------------------- the linear recurrence
@njit(**JIT)
def _dense_input(gWih, slot, d, x_in, Wih, below):
    """gWih[slot] += d (x) x_in; below += Wih^T d."""
    for a in range(d.size):
        for v in range(x_in.size):
            gWih[slot, a, v] += d[a] * x_in[v]
            below[v] += Wih[a, v] * d[a]


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


@njit(**JIT)
def linear_backward(lam, B, ids, starts, sent, offsets, loss_pos, lo, dH, full, Hs, H0, per_lag, glam, gB0, gB, row0,
                    hnorm):
    """Stacked diagonal linear layers, one loss at a time: at each step j (from t down to the window's start)
    the layers are stepped back from the top, each adding B_l^T dh to the layer below at the same step.
    ``sent``: the sentence of every position; H0 (L, n_sentences, H): every layer's initial states (no rows:
    zeros). ``full``: one accumulated sweep per sentence with dH (N, H) the injected signals; else one sweep
    per loss l through loss_pos[l] .. lo[l] with dH[l] its signal. ``row0`` empty: no norms."""
    L = Hs.shape[0]
    H = Hs.shape[2]
    dh = np.zeros((L, H))
    dummy = np.zeros((gB0.shape[0], H, 1))
    n_outer = offsets.size - 1 if full else loss_pos.size
    for l in range(n_outer):
        if full:
            t, stop = offsets[l + 1] - 1, offsets[l]
        else:
            t, stop = loss_pos[l], lo[l]
        dh[:] = 0.0
        if not full:
            dh[L - 1] = dH[l]
        for j in range(t, stop - 1, -1):
            if full:
                for u in range(H):
                    dh[L - 1, u] += dH[j, u]
            k = t - j
            _linear_layers(j, j == starts[j], ids[j], k if per_lag else 0, lam, B, Hs, H0, sent[j], dh, dummy, glam,
                           gB0, gB, row0[l] + k if row0.size else -1, hnorm)


# ---------------------------------------------------------------------- lockstep (GRU, LSTM, nn.RNN)
@njit(**JIT)
def _add_outer(A, B, n, out, tmp):
    """out += A[:n]^T B[:n] (a BLAS product into ``tmp``, then added)."""
    if n == 0:
        return
    np.dot(A[:n].T, B[:n], tmp)
    for a in range(out.shape[0]):
        for v in range(out.shape[1]):
            out[a, v] += tmp[a, v]


@njit(**JIT)
def lockstep_backward(kind, code, Whh, Wih, ids, starts, sent, last, first, stop, loss_at, dH, Hs, Cs, H0, C0, G,
                      per_lag, gWih0T, gWih, gWhh, gbih, gbhh, row0, hnorm, cnorm):
    """Stacked GRU (kind 0), LSTM (1) or nn.RNN (3, activation ``code``) layers swept back in lockstep.

    The groups of losses (``gated.gru_sweep``'s ``last``, ``first``, ``stop``, ``loss_at`` rows of ``dH``) move
    back one step at a time, longest first. At each step the layers are stepped back from the top: layer l's
    gate signals d of every running row, then W_ih,l^T d into the layer below at the same step and W_hh,l^T d
    into layer l's signal at the step before (one product over the rows each), and the outer products with
    h_l(j-1) and with the input h_{l-1}(j) (one product each) into slot k (``per_lag``) or 0. At its window's
    first step a row stops: nothing reaches the step before in any layer (the states of every layer are
    detached there). ``gWih0T``: layer 0's one-hot input weights' gradient transposed, (slots, |V|, rows).
    Norms of every layer at ``row0[g] + k`` when ``row0`` is not empty. Whh, Wih, gWih, gWhh, gbih, gbhh have
    the layer first (Wih[0], gWih[0] unused); Cs, C0 are read by the LSTM only, G by the gated cells."""
    L, _, H = Hs.shape
    rows = Whh.shape[1]
    ng = last.size
    if ng == 0:
        return
    span, order = _group_order(last, stop)
    DH = np.zeros((L, ng, H))
    DC = np.zeros((L, ng, H))
    HP = np.empty((ng, H))
    X = np.empty((ng, H))
    CP = np.empty(H)
    DI = np.empty((ng, rows))
    DG = np.empty((ng, rows)) if kind == 0 else DI
    TMP = np.empty((ng, H))
    tmpW = np.empty((rows, H))
    active = ng
    k = 0
    while True:
        active = running(active, span, order, k)
        if active == 0:
            break
        slot = k if per_lag else 0
        for r in range(active):
            g = order[r]
            j = last[g] - k
            lo = loss_at[j]
            if j >= first[g] and lo >= 0:
                for u in range(H):
                    DH[L - 1, r, u] += dH[lo, u]
        for l in range(L - 1, -1, -1):
            for r in range(active):
                g = order[r]
                j = last[g] - k
                fst = j == starts[j]
                if row0.size:
                    hnorm[l, row0[g] + k] = _norm(DH[l, r])
                prev_row(Hs[l], H0[l], sent[j], j, fst, HP[r])
                if kind == 0:
                    gru_signals(DH[l, r], HP[r], G[l, j], DI[r], DG[r])
                elif kind == 1:
                    prev_row(Cs[l], C0[l], sent[j], j, fst, CP)
                    lstm_signals(DH[l, r], DC[l, r], CP, G[l, j], DI[r])
                    if row0.size:
                        cnorm[l, row0[g] + k] = _norm(DC[l, r])
                    for u in range(H):
                        DC[l, r, u] *= G[l, j, H + u]
                else:
                    for u in range(H):
                        DI[r, u] = DH[l, r, u] * derivative_from_state(Hs[l, j, u], code)
                for a in range(rows):
                    gbih[l, slot, a] += DI[r, a]
                    gbhh[l, slot, a] += DG[r, a]
                if l == 0:
                    x = ids[j]
                    for a in range(rows):
                        gWih0T[slot, x, a] += DI[r, a]
                else:
                    for u in range(H):
                        X[r, u] = Hs[l - 1, j, u]
            _add_outer(DG, HP, active, gWhh[l, slot], tmpW)
            if l > 0:
                _add_outer(DI, X, active, gWih[l, slot], tmpW)
                rows_times(DI, active, Wih[l], TMP)
                for r in range(active):
                    for u in range(H):
                        DH[l - 1, r, u] += TMP[r, u]
            if kind == 0:       # the GRU's direct path h(j-1) -> h(j) is in DH already
                rows_times(DG, active, Whh[l], TMP)
                for r in range(active):
                    for u in range(H):
                        DH[l, r, u] += TMP[r, u]
            else:
                rows_times(DI, active, Whh[l], DH[l])
        k += 1
