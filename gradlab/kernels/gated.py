"""Gated and linear cells (GRU, LSTM, diagonal linear recurrence): forward pass and per-loss backward sweeps.

PyTorch's equations (docs/maths.md, "Other cells"). Inputs are one-hot: the input
product of a step is column x(t) of ``Wih`` (or ``B``). Every sentence starts from its
initial states (``H0``, ``C0``: (n_sentences, H), constants the gradient does not flow into;
arrays without rows mean zero states).

The GRU and LSTM kernels run in lockstep. Forward, the sentences run longest first and
W_hh h(t-1) of every running sentence is one matrix product per step; the forward pass keeps
what the sweeps read (gates, tanh c(t)), so that they evaluate no exp or tanh. Backward
(``gru_sweep``, ``lstm_sweep``), groups of losses carry their error signals back together:
a group starts at its latest loss, adds dJ(t)/dh(t) of its other losses as it passes them
and stops at the window's start; all groups move back one step at a time, so that W_hh^T of
their gate signals is one matrix product per step. A gradient groups the consecutive losses
of a sentence that share a window start (one group per sentence under full BPTT, O(N H^2)) and
sums their signals per position: W_hh's gradient is then one product over all positions
(``_position_grads``). Contributions have one group per loss, write the outer products with
h(j-1) of each lag's rows into slot t - j (the per-lag sums G[k]) as one product, and write
||dJ(t)/dh(j)|| (and ||dJ(t)/dc(j)|| for the LSTM) in rows ``row0[l] + (t - j)``:
O(sum of window lengths x H^2).
The linear cell (elementwise, no matrix product) sweeps each loss alone (``linear_backward``;
``linear_backward_full`` one sweep per sentence).
"""
import numpy as np
from numba import njit

from .._config import JIT
from ._common import lockstep_order, rows_times, running


@njit(**JIT)
def _sig(x):
    return 1.0 / (1.0 + np.exp(-x))


@njit(inline="always", **JIT)
def prev(Hs, H0, s, p, first, u):
    """Unit u of the state before flat position p: Hs[p - 1], or at a sentence's first step the
    sentence's initial state H0[s] (zero when H0 has no rows: no initial states given)."""
    if not first:
        return Hs[p - 1, u]
    return H0[s, u] if H0.shape[0] else 0.0


@njit(inline="always", **JIT)
def prev_row(Hs, H0, s, p, first, out):
    """out = the whole state before flat position p (``prev`` of every unit), copied row by row so that
    the loops that read it have no branch per unit."""
    if not first:
        for u in range(out.size):
            out[u] = Hs[p - 1, u]
    elif H0.shape[0]:
        for u in range(out.size):
            out[u] = H0[s, u]
    else:
        for u in range(out.size):
            out[u] = 0.0


@njit(**JIT)
def _gru_gates(gi, gh, hp, Hs, G, p):
    """h(t) of step p from the input and recurrent pre-activations gi = W_ih x + b_ih,
    gh = W_hh h + b_hh and h(t-1) = hp; G[p] = (r, z, n, gh_n). Shared by one-hot and dense-input layers."""
    H = gh.size // 3
    for u in range(H):
        r = _sig(gi[u] + gh[u])
        z = _sig(gi[H + u] + gh[H + u])
        n = np.tanh(gi[2 * H + u] + r * gh[2 * H + u])
        Hs[p, u] = (1.0 - z) * n + z * hp[u]
        G[p, u] = r
        G[p, H + u] = z
        G[p, 2 * H + u] = n
        G[p, 3 * H + u] = gh[2 * H + u]


@njit(**JIT)
def _lstm_gates(pre, cp, Hs, Cs, G, p):
    """c(t), h(t) of step p from the gates' pre-activations and c(t-1) = cp; G[p] = (i, f, g, o, tanh c(t)),
    so that the sweeps evaluate no tanh. Shared by one-hot and dense-input layers."""
    H = pre.size // 4
    for u in range(H):
        i = _sig(pre[u])
        f = _sig(pre[H + u])
        g = np.tanh(pre[2 * H + u])
        o = _sig(pre[3 * H + u])
        c = f * cp[u] + i * g
        tc = np.tanh(c)
        Cs[p, u] = c
        Hs[p, u] = o * tc
        G[p, u] = i
        G[p, H + u] = f
        G[p, 2 * H + u] = g
        G[p, 3 * H + u] = o
        G[p, 4 * H + u] = tc


# ---------------------------------------------------------------------- forward
@njit(**JIT)
def gru_forward(Wih, Whh, bih, bhh, ids, offsets, H0, Hs, G):
    """Hs[p] = h(t); G[p] = (r, z, n, W_hn h(t-1) + b_hn) of every step, each H wide. H0: the
    sentences' initial states h(-1), (n_sentences, H), or no rows for zeros.

    The sentences run in lockstep, longest first: W_hh h(t-1) of every running sentence
    is one matrix product per step (``rows_times``)."""
    H = Whh.shape[1]
    n = offsets.size - 1
    if n == 0:
        return
    order, start, lengths = lockstep_order(offsets)
    WhhT = np.ascontiguousarray(Whh.T)
    WihT = np.ascontiguousarray(Wih.T)  # row x is the input column of word x
    P = _initial_rows(H0, order, n, H)
    GH = np.empty((n, 3 * H))
    gi = np.empty(3 * H)
    gh = np.empty(3 * H)
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
            for a in range(3 * H):
                gh[a] = GH[r, a] + bhh[a]
                gi[a] = WihT[x, a] + bih[a]
            _gru_gates(gi, gh, P[r], Hs, G, p)
            for u in range(H):
                P[r, u] = Hs[p, u]
        t += 1


@njit(**JIT)
def lstm_forward(Wih, Whh, bih, bhh, ids, offsets, H0, C0, Hs, Cs, G):
    """Hs[p] = h(t), Cs[p] = c(t), G[p] = (i, f, g, o, tanh c(t)) of every step from initial states H0, C0
    (or no rows: zeros); sentences in lockstep as ``gru_forward``."""
    H = Whh.shape[1]
    n = offsets.size - 1
    if n == 0:
        return
    order, start, lengths = lockstep_order(offsets)
    WhhT = np.ascontiguousarray(Whh.T)
    WihT = np.ascontiguousarray(Wih.T)
    P = _initial_rows(H0, order, n, H)
    CP = _initial_rows(C0, order, n, H)
    GH = np.empty((n, 4 * H))
    pre = np.empty(4 * H)
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
            for a in range(4 * H):
                pre[a] = WihT[x, a] + bih[a] + bhh[a] + GH[r, a]
            _lstm_gates(pre, CP[r], Hs, Cs, G, p)
            for u in range(H):
                P[r, u] = Hs[p, u]
                CP[r, u] = Cs[p, u]
        t += 1


@njit(**JIT)
def _initial_rows(H0, order, n, H):
    """The lockstep rows' states before their first step: H0[order[r]], or zeros when H0 has no rows."""
    P = np.zeros((n, H))
    if H0.shape[0]:
        for r in range(n):
            for u in range(H):
                P[r, u] = H0[order[r], u]
    return P


@njit(**JIT)
def linear_forward(lam, B, ids, offsets, H0, Hs):
    """Hs[p] = lambda * h(t-1) + B[:, x(t)] (h(-1) = H0[s], or zero when H0 has no rows)."""
    H = lam.size
    for s in range(offsets.size - 1):
        for p in range(offsets[s], offsets[s + 1]):
            x = ids[p]
            for u in range(H):
                hp = prev(Hs, H0, s, p, p == offsets[s], u)
                Hs[p, u] = lam[u] * hp + B[u, x]


# ---------------------------------------------------------------------- backward steps
@njit(**JIT)
def _norm(v):
    acc = 0.0
    for u in range(v.size):
        acc += v[u] * v[u]
    return np.sqrt(acc)


# ---------------------------------------------------------------------- lockstep sweeps
@njit(**JIT)
def _group_order(last, stop):
    span = last - stop + 1
    return span, np.argsort(-span, kind="mergesort")


@njit(inline="always", **JIT)
def _take_in(DH, r, g, k, last, first, loss_at, dH, row0, hnorm):
    """Row r (group g) at lag k: add dJ(t)/dh(t) of a loss of the group at position j = last[g] - k,
    record ||dJ/dh(j)|| for the contributions; return j."""
    j = last[g] - k
    l = loss_at[j]
    if j >= first[g] and l >= 0:
        for u in range(DH.shape[1]):
            DH[r, u] += dH[l, u]
    if row0.size:
        hnorm[row0[g] + k] = _norm(DH[r])
    return j


@njit(inline="always", **JIT)
def gru_signals(dh, hp, g, di, dg):
    """Step j of the GRU backward for one row: from dh = dJ/dh(j), h(j-1) = hp and the step's cache
    g = G[j], the input and recurrent pre-activations' gradients di, dg; dh becomes the direct part
    of dJ/dh(j-1), dh z (W_hh^T dg is the caller's product)."""
    H = dh.size
    for u in range(H):
        rg = g[u]
        z = g[H + u]
        nn = g[2 * H + u]
        ghn = g[3 * H + u]
        d = dh[u]
        dnp = d * (1.0 - z) * (1.0 - nn * nn)
        dzp = d * (hp[u] - nn) * z * (1.0 - z)
        drp = dnp * ghn * rg * (1.0 - rg)
        di[u] = drp
        di[H + u] = dzp
        di[2 * H + u] = dnp
        dg[u] = drp
        dg[H + u] = dzp
        dg[2 * H + u] = dnp * rg
        dh[u] = d * z


@njit(inline="always", **JIT)
def lstm_signals(dh, dc, cp, g, d):
    """Step j of the LSTM backward for one row: from dh = dJ/dh(j), dc = the part of dJ/dc(j) from later
    steps, c(j-1) = cp and the cache g = G[j] (i, f, g, o, tanh c), the gates' pre-activation gradient d
    (input and recurrent alike); dc becomes the total dJ/dc(j)."""
    H = dh.size
    for u in range(H):
        i = g[u]
        f = g[H + u]
        gg = g[2 * H + u]
        o = g[3 * H + u]
        tc = g[4 * H + u]
        dcu = dc[u] + dh[u] * o * (1.0 - tc * tc)
        d[u] = dcu * gg * i * (1.0 - i)
        d[H + u] = dcu * cp[u] * f * (1.0 - f)
        d[2 * H + u] = dcu * i * (1.0 - gg * gg)
        d[3 * H + u] = dh[u] * tc * o * (1.0 - o)
        dc[u] = dcu


@njit(**JIT)
def _positions(per_lag, last, stop, width):
    """A gradient's per-position signal sums: (first position, zeroed (positions, width) sums, touched flags)
    over the groups' span; nothing (no rows) for per-lag sums."""
    if per_lag:
        return 0, np.zeros((0, width)), np.zeros(0, dtype=np.bool_)
    base = stop.min()
    n = last.max() - base + 1
    return base, np.zeros((n, width)), np.zeros(n, dtype=np.bool_)


@njit(**JIT)
def _position_grads(base, DP, touched, r_block, ids, starts, sent, Hs, H0, G, gWihT, gWhh, gbih, gbhh):
    """A gradient's parameter sums from DP[q], the input pre-activations' gradient summed over the groups at
    position base + q: one scatter-add of rows into the input weights (a word's column is a row of ``gWihT``),
    the biases, and ONE product for W_hh, sum over positions of d_hh(j) h(j-1)^T. The recurrent signal
    d_hh equals DP but for block ``r_block`` (>= 0, the GRU's n gate), which is scaled by r(j) (G[j, :H]).
    Untouched positions take no part (their states may be anything, inf included); slot 0 of the gradient
    arrays must be zero on entry (W_hh's product is written, not added)."""
    n, rows = DP.shape
    H = Hs.shape[1]
    DG = np.empty((n, rows))
    HP = np.zeros((n, H))
    for q in range(n):
        if not touched[q]:
            for a in range(rows):
                DG[q, a] = 0.0
            continue
        j = base + q
        prev_row(Hs, H0, sent[j], j, j == starts[j], HP[q])
        x = ids[j]
        for a in range(rows):
            gWihT[0, x, a] += DP[q, a]
            gbih[0, a] += DP[q, a]
            DG[q, a] = DP[q, a]
        if r_block >= 0:
            for u in range(H):
                DG[q, r_block * H + u] *= G[j, u]
        for a in range(rows):
            gbhh[0, a] += DG[q, a]
    if n:
        np.dot(DG.T, HP, gWhh[0])


@njit(inline="always", **JIT)
def _add_signal(per_lag, slot, x, D, r, DP, touched, q, gWihT, gbih):
    """Row r's input signal D[r]: per lag, into the slot's input weights (column x) and b_ih; for a
    gradient, into the sums of its position q (``_position_grads``)."""
    if per_lag:
        for a in range(D.shape[1]):
            gWihT[slot, x, a] += D[r, a]
            gbih[slot, a] += D[r, a]
    else:
        touched[q] = True
        for a in range(D.shape[1]):
            DP[q, a] += D[r, a]


@njit(**JIT)
def gru_sweep(Whh, ids, starts, sent, last, first, stop, loss_at, dH, Hs, H0, G, per_lag, gWihT, gWhh, gbih, gbhh,
              row0, hnorm):
    """Groups of losses swept back together, all groups in lockstep (longest first).

    Group g starts at its latest loss ``last[g]`` and reaches back to ``stop[g]``; on the way it
    adds dJ(t)/dh(t) of its losses (positions ``first[g]..last[g]`` with ``loss_at`` >= 0, the row
    of ``dH``). A gradient (``per_lag`` False, one slot) groups consecutive losses with the same
    window start; contributions (``per_lag``: slot k = lag) have one group per loss and write
    ||dJ(t)/dh(t-k)|| at ``row0[g] + k`` (when ``row0`` is not empty). Per step, W_hh^T of every
    running group's gate signals is one matrix product. Per lag, the outer products with h(j-1) of
    the lag's rows are one product written into slot k; a gradient sums the signals per position and
    makes one product over all positions at the end (``_position_grads``). The gradient arrays must be
    zero on entry. ``gWihT`` is the input weights' gradient transposed, (slots, |V|, 3H): a word's
    column is a row. ``sent``: the sentence of every position; at a sentence's first step h(j-1) is its
    row of ``H0`` (zero when H0 has no rows), a constant: nothing flows into it.
    """
    H = Whh.shape[1]
    ng = last.size
    if ng == 0:
        return
    span, order = _group_order(last, stop)
    base, DP, touched = _positions(per_lag, last, stop, 3 * H)
    DH = np.zeros((ng, H))
    HP = np.empty((ng, H))
    DI = np.empty((ng, 3 * H))
    DG = np.empty((ng, 3 * H))
    TMP = np.empty((ng, H))
    active = ng
    k = 0
    while True:
        active = running(active, span, order, k)
        if active == 0:
            break
        for r in range(active):
            g = order[r]
            j = _take_in(DH, r, g, k, last, first, loss_at, dH, row0, hnorm)
            prev_row(Hs, H0, sent[j], j, j == starts[j], HP[r])
            gru_signals(DH[r], HP[r], G[j], DI[r], DG[r])
            _add_signal(per_lag, k, ids[j], DI, r, DP, touched, j - base, gWihT, gbih)
            if per_lag:
                for a in range(3 * H):
                    gbhh[k, a] += DG[r, a]
        if per_lag:
            np.dot(DG[:active].T, HP[:active], gWhh[k])     # rows at a sentence start have h(j-1) = 0
        rows_times(DG, active, Whh, TMP)
        for r in range(active):
            for u in range(H):
                DH[r, u] += TMP[r, u]
        k += 1
    if not per_lag:
        _position_grads(base, DP, touched, 2, ids, starts, sent, Hs, H0, G, gWihT, gWhh, gbih, gbhh)


@njit(**JIT)
def lstm_sweep(Whh, ids, starts, sent, last, first, stop, loss_at, dH, Hs, Cs, H0, C0, G, per_lag, gWihT, gWhh,
               gbih, gbhh, row0, hnorm, cnorm):
    """``gru_sweep`` for the LSTM: the signal travels back through h and c; ``cnorm`` gets the
    total ||dJ(t)/dc(t-k)||. One signal d per step feeds W_ih, W_hh and both biases."""
    H = Whh.shape[1]
    ng = last.size
    if ng == 0:
        return
    span, order = _group_order(last, stop)
    base, DP, touched = _positions(per_lag, last, stop, 4 * H)
    DH = np.zeros((ng, H))
    DC = np.zeros((ng, H))
    HP = np.empty((ng, H))
    CP = np.empty(H)
    D = np.empty((ng, 4 * H))
    active = ng
    k = 0
    while True:
        active = running(active, span, order, k)
        if active == 0:
            break
        for r in range(active):
            g = order[r]
            j = _take_in(DH, r, g, k, last, first, loss_at, dH, row0, hnorm)
            fst = j == starts[j]
            if per_lag:
                prev_row(Hs, H0, sent[j], j, fst, HP[r])
            prev_row(Cs, C0, sent[j], j, fst, CP)
            lstm_signals(DH[r], DC[r], CP, G[j], D[r])
            if row0.size:
                cnorm[row0[g] + k] = _norm(DC[r])
            for u in range(H):
                DC[r, u] *= G[j, H + u]    # dJ/dc(j-1) gets dJ/dc(j) f(j)
            _add_signal(per_lag, k, ids[j], D, r, DP, touched, j - base, gWihT, gbih)
            if per_lag:
                for a in range(4 * H):
                    gbhh[k, a] += D[r, a]
        if per_lag:
            np.dot(D[:active].T, HP[:active], gWhh[k])
        rows_times(D, active, Whh, DH)       # dJ/dh(j-1) = W_hh^T d (only W_hh carries h back)
        k += 1
    if not per_lag:
        _position_grads(base, DP, touched, -1, ids, starts, sent, Hs, H0, G, gWihT, gWhh, gbih, gbhh)


@njit(**JIT)
def linear_backward(lam, ids, starts, sent, loss_pos, lo, dH, Hs, H0, per_lag, glam, gB, row0, hnorm):
    H = lam.size
    dh = np.empty(H)
    for l in range(loss_pos.size):
        t = loss_pos[l]
        dh[:] = dH[l]
        for j in range(t, lo[l] - 1, -1):
            k = t - j
            if row0.size:
                hnorm[row0[l] + k] = _norm(dh)
            _linear_step(j, j == starts[j], ids[j], k if per_lag else 0, lam, Hs, H0, sent[j], dh, glam, gB)


@njit(**JIT)
def _linear_step(j, first, x, slot, lam, Hs, H0, s, dh, glam, gB):
    for u in range(lam.size):
        if not first or H0.shape[0]:
            glam[slot, u] += dh[u] * prev(Hs, H0, s, j, first, u)
        gB[slot, u, x] += dh[u]
        dh[u] *= lam[u]


# ---------------------------------------------------------------------- full BPTT: one accumulated sweep
@njit(**JIT)
def linear_backward_full(lam, ids, offsets, dHall, Hs, H0, glam, gB):
    H = lam.size
    dh = np.empty(H)
    for s in range(offsets.size - 1):
        dh[:] = 0.0
        for j in range(offsets[s + 1] - 1, offsets[s] - 1, -1):
            for u in range(H):
                dh[u] += dHall[j, u]
            _linear_step(j, j == offsets[s], ids[j], 0, lam, Hs, H0, s, dh, glam, gB)
