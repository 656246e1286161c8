"""Gated and linear cells (GRU, LSTM, diagonal linear recurrence): forward pass and per-loss backward sweeps.

PyTorch's equations (docs/maths.md, "Other cells"). Inputs are one-hot: the input
product of a step is column x(t) of ``Wih`` (or ``B``). Every sentence starts from its
initial states (``H0``, ``C0``: (n_sentences, H), constants the gradient does not flow into;
arrays without rows mean zero states).

The GRU and LSTM kernels run in lockstep. Forward, the sentences run longest first and
W_hh h(t-1) of every running sentence is one matrix product per step. Backward
(``gru_sweep``, ``lstm_sweep``), groups of losses carry their error signals back together:
a group starts at its latest loss, adds dJ(t)/dh(t) of its other losses as it passes them
and stops at the window's start; all groups move back one step at a time, so that W_hh^T of
their gate signals and the outer products with h(j-1) are matrix products. A gradient
groups the consecutive losses of a sentence that share a window start (one group per
sentence under full BPTT, O(N H^2)); contributions have one group per loss, add each step's
parameter gradient into slot t - j (the per-lag sums G[k]) and write ||dJ(t)/dh(j)|| (and
||dJ(t)/dc(j)|| for the LSTM) in rows ``row0[l] + (t - j)``: O(sum of window lengths x H^2).
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


@njit(**JIT)
def _gru_gates(gi, gh, Hs, G, p, first, H0, s):
    """h(t) of step p (sentence s) from the input and recurrent pre-activations gi = W_ih x + b_ih,
    gh = W_hh h + b_hh; G[p] = (r, z, n, gh_n). Shared by one-hot and dense-input layers."""
    H = gh.size // 3
    for u in range(H):
        r = _sig(gi[u] + gh[u])
        z = _sig(gi[H + u] + gh[H + u])
        n = np.tanh(gi[2 * H + u] + r * gh[2 * H + u])
        hp = prev(Hs, H0, s, p, first, u)
        Hs[p, u] = (1.0 - z) * n + z * hp
        G[p, u] = r
        G[p, H + u] = z
        G[p, 2 * H + u] = n
        G[p, 3 * H + u] = gh[2 * H + u]


@njit(**JIT)
def _lstm_gates(pre, Hs, Cs, G, p, first, C0, s):
    """c(t), h(t) of step p (sentence s) from the gates' pre-activations; G[p] = (i, f, g, o). Shared by
    one-hot and dense-input layers."""
    H = pre.size // 4
    for u in range(H):
        i = _sig(pre[u])
        f = _sig(pre[H + u])
        g = np.tanh(pre[2 * H + u])
        o = _sig(pre[3 * H + u])
        cp = prev(Cs, C0, s, p, first, u)
        c = f * cp + i * g
        Cs[p, u] = c
        Hs[p, u] = o * np.tanh(c)
        G[p, u] = i
        G[p, H + u] = f
        G[p, 2 * H + u] = g
        G[p, 3 * H + u] = o


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
            _gru_gates(gi, gh, Hs, G, p, t == 0, H0, order[r])
            for u in range(H):
                P[r, u] = Hs[p, u]
        t += 1


@njit(**JIT)
def lstm_forward(Wih, Whh, bih, bhh, ids, offsets, H0, C0, Hs, Cs, G):
    """Hs[p] = h(t), Cs[p] = c(t), G[p] = (i, f, g, o) of every step from initial states H0, C0 (or no rows:
    zeros); sentences in lockstep as ``gru_forward``."""
    H = Whh.shape[1]
    n = offsets.size - 1
    if n == 0:
        return
    order, start, lengths = lockstep_order(offsets)
    WhhT = np.ascontiguousarray(Whh.T)
    WihT = np.ascontiguousarray(Wih.T)
    P = _initial_rows(H0, order, n, H)
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
            _lstm_gates(pre, Hs, Cs, G, p, t == 0, C0, order[r])
            for u in range(H):
                P[r, u] = Hs[p, u]
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
# Each step function takes dh = dJ/dh(j) (and the LSTM's dc = the part of dJ/dc(j) from later
# steps), adds the gradient of step j's use of the parameters into ``slot``, and writes
# dJ/dh(j-1) (and dc(j-1)) into dh (and dc) unless ``last``.

@njit(**JIT)
def _gru_step(j, first, x, slot, last, Whh, Hs, H0, s, G, dh, hp, di, dg, dnew, gWih, gWhh, gbih, gbhh):
    H = Whh.shape[1]
    for u in range(H):
        hp[u] = prev(Hs, H0, s, j, first, u)
    for u in range(H):
        r = G[j, u]
        z = G[j, H + u]
        n = G[j, 2 * H + u]
        ghn = G[j, 3 * H + u]
        dnp = dh[u] * (1.0 - z) * (1.0 - n * n)
        dzp = dh[u] * (hp[u] - n) * z * (1.0 - z)
        drp = dnp * ghn * r * (1.0 - r)
        di[u] = drp
        di[H + u] = dzp
        di[2 * H + u] = dnp
        dg[u] = drp
        dg[H + u] = dzp
        dg[2 * H + u] = dnp * r
        dnew[u] = dh[u] * z
    for a in range(3 * H):
        gWih[slot, a, x] += di[a]
        gbih[slot, a] += di[a]
        gbhh[slot, a] += dg[a]
        if not first or H0.shape[0]:
            for v in range(H):
                gWhh[slot, a, v] += dg[a] * hp[v]
    if not last:
        for a in range(3 * H):
            for v in range(H):
                dnew[v] += Whh[a, v] * dg[a]
        for u in range(H):
            dh[u] = dnew[u]


@njit(**JIT)
def _lstm_step(j, first, x, slot, last, Whh, Hs, Cs, H0, C0, s, G, dh, dc, hp, d, dnew, gWih, gWhh, gbih, gbhh):
    """Also leaves the total dJ/dc(j) in dc when ``last``."""
    H = Whh.shape[1]
    for u in range(H):
        hp[u] = prev(Hs, H0, s, j, first, u)
        i = G[j, u]
        f = G[j, H + u]
        g = G[j, 2 * H + u]
        o = G[j, 3 * H + u]
        tc = np.tanh(Cs[j, u])
        dcu = dc[u] + dh[u] * o * (1.0 - tc * tc)
        dc[u] = dcu
        cp = prev(Cs, C0, s, j, first, u)
        d[u] = dcu * g * i * (1.0 - i)
        d[H + u] = dcu * cp * f * (1.0 - f)
        d[2 * H + u] = dcu * i * (1.0 - g * g)
        d[3 * H + u] = dh[u] * tc * o * (1.0 - o)
    for a in range(4 * H):
        gWih[slot, a, x] += d[a]
        gbih[slot, a] += d[a]
        gbhh[slot, a] += d[a]
        if not first or H0.shape[0]:
            for v in range(H):
                gWhh[slot, a, v] += d[a] * hp[v]


@njit(**JIT)
def _lstm_back(j, Whh, G, dh, dc, d, dnew):
    """dh <- dJ/dh(j-1) = Whh^T d, dc <- dJ/dc(j) f(j) (after _lstm_step at j)."""
    H = Whh.shape[1]
    for v in range(H):
        dnew[v] = 0.0
    for a in range(4 * H):
        for v in range(H):
            dnew[v] += Whh[a, v] * d[a]
    for u in range(H):
        dh[u] = dnew[u]
        dc[u] = dc[u] * G[j, H + u]


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


@njit(**JIT)
def _add_product(A, B, n, out, tmp):
    """out += A[:n]^T B[:n] (a BLAS product into ``tmp``, then added)."""
    if n == 0:
        return
    np.dot(A[:n].T, B[:n], tmp)
    for a in range(out.shape[0]):
        for v in range(out.shape[1]):
            out[a, v] += tmp[a, v]


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


@njit(**JIT)
def gru_sweep(Whh, ids, starts, sent, last, first, stop, loss_at, dH, Hs, H0, G, per_lag, gWihT, gWhh, gbih, gbhh,
              row0, hnorm):
    """Groups of losses swept back together, all groups in lockstep (longest first).

    Group g starts at its latest loss ``last[g]`` and reaches back to ``stop[g]``; on the way it
    adds dJ(t)/dh(t) of its losses (positions ``first[g]..last[g]`` with ``loss_at`` >= 0, the row
    of ``dH``). A gradient (``per_lag`` False, one slot) groups consecutive losses with the same
    window start; contributions (``per_lag``: slot k = lag) have one group per loss and write
    ||dJ(t)/dh(t-k)|| at ``row0[g] + k`` (when ``row0`` is not empty). Per step: W_hh^T of every
    running group's gate signals and their outer products with h(j-1) are matrix products.
    ``gWihT`` is the input weights' gradient transposed, (slots, |V|, 3H): a word's column is a row.
    ``sent``: the sentence of every position; at a sentence's first step h(j-1) is its row of ``H0``
    (zero when H0 has no rows), a constant: nothing flows into it.
    """
    H = Whh.shape[1]
    ng = last.size
    if ng == 0:
        return
    span, order = _group_order(last, stop)
    DH = np.zeros((ng, H))
    HP = np.empty((ng, H))
    DI = np.empty((ng, 3 * H))
    DG = np.empty((ng, 3 * H))
    TMP = np.empty((ng, H))
    tmpW = np.empty((3 * H, H))
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
                hp = prev(Hs, H0, sent[j], j, fst, u)
                HP[r, u] = hp
                rg = G[j, u]
                z = G[j, H + u]
                nn = G[j, 2 * H + u]
                ghn = G[j, 3 * H + u]
                dh = DH[r, u]
                dnp = dh * (1.0 - z) * (1.0 - nn * nn)
                dzp = dh * (hp - nn) * z * (1.0 - z)
                drp = dnp * ghn * rg * (1.0 - rg)
                DI[r, u] = drp
                DI[r, H + u] = dzp
                DI[r, 2 * H + u] = dnp
                DG[r, u] = drp
                DG[r, H + u] = dzp
                DG[r, 2 * H + u] = dnp * rg
                DH[r, u] = dh * z          # the direct path h(j-1) -> h(j); W_hh^T dg is added below
            for a in range(3 * H):
                gWihT[slot, x, a] += DI[r, a]
                gbih[slot, a] += DI[r, a]
                gbhh[slot, a] += DG[r, a]
        _add_product(DG, HP, active, gWhh[slot], tmpW)   # rows at a sentence start have h(j-1) = 0
        rows_times(DG, active, Whh, TMP)
        for r in range(active):
            for u in range(H):
                DH[r, u] += TMP[r, u]
        k += 1


@njit(**JIT)
def lstm_sweep(Whh, ids, starts, sent, last, first, stop, loss_at, dH, Hs, Cs, H0, C0, G, per_lag, gWihT, gWhh,
               gbih, gbhh, row0, hnorm, cnorm):
    """``gru_sweep`` for the LSTM: the signal travels back through h and c; ``cnorm`` gets the
    total ||dJ(t)/dc(t-k)||."""
    H = Whh.shape[1]
    ng = last.size
    if ng == 0:
        return
    span, order = _group_order(last, stop)
    DH = np.zeros((ng, H))
    DC = np.zeros((ng, H))
    HP = np.empty((ng, H))
    D = np.empty((ng, 4 * H))
    tmpW = np.empty((4 * H, H))
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
                i = G[j, u]
                f = G[j, H + u]
                gg = G[j, 2 * H + u]
                o = G[j, 3 * H + u]
                tc = np.tanh(Cs[j, u])
                dcu = DC[r, u] + DH[r, u] * o * (1.0 - tc * tc)
                cp = prev(Cs, C0, sent[j], j, fst, u)
                D[r, u] = dcu * gg * i * (1.0 - i)
                D[r, H + u] = dcu * cp * f * (1.0 - f)
                D[r, 2 * H + u] = dcu * i * (1.0 - gg * gg)
                D[r, 3 * H + u] = DH[r, u] * tc * o * (1.0 - o)
                DC[r, u] = dcu
            if row0.size:
                cnorm[row0[g] + k] = _norm(DC[r])
            for u in range(H):
                DC[r, u] *= G[j, H + u]    # dJ/dc(j-1) gets dJ/dc(j) f(j)
            for a in range(4 * H):
                gWihT[slot, x, a] += D[r, a]
                gbih[slot, a] += D[r, a]
                gbhh[slot, a] += D[r, a]
        _add_product(D, HP, active, gWhh[slot], tmpW)
        rows_times(D, active, Whh, DH)       # dJ/dh(j-1) = W_hh^T d (only W_hh carries h back)
        k += 1


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
