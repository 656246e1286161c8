"""Gated and linear cells (GRU, LSTM, diagonal linear recurrence): forward pass and per-loss backward sweeps.

PyTorch's equations (docs/maths.md, "Other cells"). Inputs are one-hot: the input
product of a step is column x(t) of ``Wih`` (or ``B``). Every sentence starts from
zero states.

The backward kernels take, for every loss (flat position ``loss_pos[l]``), the error
signal dJ(t)/dh(t) of its own output (``dH[l]``) and sweep it back alone through steps
t, t-1, ..., ``lo[l]`` (its lag window), adding the parameter gradient of each step into
slot 0 (a gradient) or slot t - j (per-lag sums G[k], contributions), and, when asked,
writing the norms ||dJ(t)/dh(j)|| (and ||dJ(t)/dc(j)|| for the LSTM) in rows
``row0[l] + (t - j)``. O(sum of window lengths x H^2). Under full BPTT every loss reaches its
sentence's start, and the ``*_backward_full`` kernels sum the signals in one sweep per
sentence (O(N H^2)).
"""
import numpy as np
from numba import njit

from .._config import JIT


@njit(**JIT)
def _sig(x):
    return 1.0 / (1.0 + np.exp(-x))


@njit(**JIT)
def _gru_gates(gi, gh, Hs, G, p, first):
    """h(t) of step p from the input and recurrent pre-activations gi = W_ih x + b_ih, gh = W_hh h + b_hh;
    G[p] = (r, z, n, gh_n). Shared by one-hot and dense-input layers."""
    H = gh.size // 3
    for u in range(H):
        r = _sig(gi[u] + gh[u])
        z = _sig(gi[H + u] + gh[H + u])
        n = np.tanh(gi[2 * H + u] + r * gh[2 * H + u])
        hp = 0.0 if first else Hs[p - 1, u]
        Hs[p, u] = (1.0 - z) * n + z * hp
        G[p, u] = r
        G[p, H + u] = z
        G[p, 2 * H + u] = n
        G[p, 3 * H + u] = gh[2 * H + u]


@njit(**JIT)
def _lstm_gates(pre, Hs, Cs, G, p, first):
    """c(t), h(t) of step p from the gates' pre-activations; G[p] = (i, f, g, o). Shared by one-hot and
    dense-input layers."""
    H = pre.size // 4
    for u in range(H):
        i = _sig(pre[u])
        f = _sig(pre[H + u])
        g = np.tanh(pre[2 * H + u])
        o = _sig(pre[3 * H + u])
        cp = 0.0 if first else Cs[p - 1, u]
        c = f * cp + i * g
        Cs[p, u] = c
        Hs[p, u] = o * np.tanh(c)
        G[p, u] = i
        G[p, H + u] = f
        G[p, 2 * H + u] = g
        G[p, 3 * H + u] = o


# ---------------------------------------------------------------------- forward
@njit(**JIT)
def gru_forward(Wih, Whh, bih, bhh, ids, offsets, Hs, G):
    """Hs[p] = h(t); G[p] = (r, z, n, W_hn h(t-1) + b_hn) of every step, each H wide."""
    H = Whh.shape[1]
    gi = np.empty(3 * H)
    gh = np.empty(3 * H)
    for s in range(offsets.size - 1):
        for p in range(offsets[s], offsets[s + 1]):
            x = ids[p]
            first = p == offsets[s]
            for a in range(3 * H):
                acc = bhh[a]
                if not first:
                    for v in range(H):
                        acc += Whh[a, v] * Hs[p - 1, v]
                gh[a] = acc
            for a in range(3 * H):
                gi[a] = Wih[a, x] + bih[a]
            _gru_gates(gi, gh, Hs, G, p, first)


@njit(**JIT)
def lstm_forward(Wih, Whh, bih, bhh, ids, offsets, Hs, Cs, G):
    """Hs[p] = h(t), Cs[p] = c(t), G[p] = (i, f, g, o) of every step."""
    H = Whh.shape[1]
    pre = np.empty(4 * H)
    for s in range(offsets.size - 1):
        for p in range(offsets[s], offsets[s + 1]):
            x = ids[p]
            first = p == offsets[s]
            for a in range(4 * H):
                acc = Wih[a, x] + bih[a] + bhh[a]
                if not first:
                    for v in range(H):
                        acc += Whh[a, v] * Hs[p - 1, v]
                pre[a] = acc
            _lstm_gates(pre, Hs, Cs, G, p, first)


@njit(**JIT)
def linear_forward(lam, B, ids, offsets, Hs):
    """Hs[p] = lambda * h(t-1) + B[:, x(t)]."""
    H = lam.size
    for s in range(offsets.size - 1):
        for p in range(offsets[s], offsets[s + 1]):
            x = ids[p]
            for u in range(H):
                hp = 0.0 if p == offsets[s] else Hs[p - 1, u]
                Hs[p, u] = lam[u] * hp + B[u, x]


# ---------------------------------------------------------------------- backward steps
# Each step function takes dh = dJ/dh(j) (and the LSTM's dc = the part of dJ/dc(j) from later
# steps), adds the gradient of step j's use of the parameters into ``slot``, and writes
# dJ/dh(j-1) (and dc(j-1)) into dh (and dc) unless ``last``.

@njit(**JIT)
def _gru_step(j, first, x, slot, last, Whh, Hs, G, dh, hp, di, dg, dnew, gWih, gWhh, gbih, gbhh):
    H = Whh.shape[1]
    for u in range(H):
        hp[u] = 0.0 if first else Hs[j - 1, u]
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
        if not first:
            for v in range(H):
                gWhh[slot, a, v] += dg[a] * hp[v]
    if not last:
        for a in range(3 * H):
            for v in range(H):
                dnew[v] += Whh[a, v] * dg[a]
        for u in range(H):
            dh[u] = dnew[u]


@njit(**JIT)
def _lstm_step(j, first, x, slot, last, Whh, Hs, Cs, G, dh, dc, hp, d, dnew, gWih, gWhh, gbih, gbhh):
    """Also leaves the total dJ/dc(j) in dc when ``last``."""
    H = Whh.shape[1]
    for u in range(H):
        hp[u] = 0.0 if first else Hs[j - 1, u]
        i = G[j, u]
        f = G[j, H + u]
        g = G[j, 2 * H + u]
        o = G[j, 3 * H + u]
        tc = np.tanh(Cs[j, u])
        dcu = dc[u] + dh[u] * o * (1.0 - tc * tc)
        dc[u] = dcu
        cp = 0.0 if first else Cs[j - 1, u]
        d[u] = dcu * g * i * (1.0 - i)
        d[H + u] = dcu * cp * f * (1.0 - f)
        d[2 * H + u] = dcu * i * (1.0 - g * g)
        d[3 * H + u] = dh[u] * tc * o * (1.0 - o)
    for a in range(4 * H):
        gWih[slot, a, x] += d[a]
        gbih[slot, a] += d[a]
        gbhh[slot, a] += d[a]
        if not first:
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


# ---------------------------------------------------------------------- per-loss sweeps
@njit(**JIT)
def gru_backward(Whh, ids, starts, loss_pos, lo, dH, Hs, G, per_lag, gWih, gWhh, gbih, gbhh, row0, hnorm):
    H = Whh.shape[1]
    dh, dnew, hp = np.empty(H), np.empty(H), np.empty(H)
    di, dg = np.empty(3 * H), np.empty(3 * H)
    for l in range(loss_pos.size):
        t = loss_pos[l]
        dh[:] = dH[l]
        for j in range(t, lo[l] - 1, -1):
            k = t - j
            if row0.size:
                hnorm[row0[l] + k] = _norm(dh)
            _gru_step(j, j == starts[j], ids[j], k if per_lag else 0, j == lo[l], Whh, Hs, G, dh, hp, di, dg, dnew,
                      gWih, gWhh, gbih, gbhh)


@njit(**JIT)
def lstm_backward(Whh, ids, starts, loss_pos, lo, dH, Hs, Cs, G, per_lag, gWih, gWhh, gbih, gbhh, row0,
                  hnorm, cnorm):
    H = Whh.shape[1]
    dh, dc, dnew, hp = np.empty(H), np.empty(H), np.empty(H), np.empty(H)
    d = np.empty(4 * H)
    for l in range(loss_pos.size):
        t = loss_pos[l]
        dh[:] = dH[l]
        dc[:] = 0.0
        for j in range(t, lo[l] - 1, -1):
            k = t - j
            if row0.size:
                hnorm[row0[l] + k] = _norm(dh)
            _lstm_step(j, j == starts[j], ids[j], k if per_lag else 0, j == lo[l], Whh, Hs, Cs, G, dh, dc, hp, d,
                       dnew, gWih, gWhh, gbih, gbhh)
            if row0.size:
                cnorm[row0[l] + k] = _norm(dc)
            if j > lo[l]:
                _lstm_back(j, Whh, G, dh, dc, d, dnew)


@njit(**JIT)
def linear_backward(lam, ids, starts, loss_pos, lo, dH, Hs, per_lag, glam, gB, row0, hnorm):
    H = lam.size
    dh = np.empty(H)
    for l in range(loss_pos.size):
        t = loss_pos[l]
        dh[:] = dH[l]
        for j in range(t, lo[l] - 1, -1):
            k = t - j
            if row0.size:
                hnorm[row0[l] + k] = _norm(dh)
            _linear_step(j, j == starts[j], ids[j], k if per_lag else 0, lam, Hs, dh, glam, gB)


@njit(**JIT)
def _linear_step(j, first, x, slot, lam, Hs, dh, glam, gB):
    for u in range(lam.size):
        if not first:
            glam[slot, u] += dh[u] * Hs[j - 1, u]
        gB[slot, u, x] += dh[u]
        dh[u] *= lam[u]


# ---------------------------------------------------------------------- full BPTT: one accumulated sweep
@njit(**JIT)
def gru_backward_full(Whh, ids, offsets, dHall, Hs, G, gWih, gWhh, gbih, gbhh):
    """Full BPTT: per sentence one sweep from its last step, dJ/dh(j) = injected dHall[j] + what later
    steps send back (every loss reaches the sentence start, so the signals may be summed)."""
    H = Whh.shape[1]
    dh, dnew, hp = np.empty(H), np.empty(H), np.empty(H)
    di, dg = np.empty(3 * H), np.empty(3 * H)
    for s in range(offsets.size - 1):
        dh[:] = 0.0
        for j in range(offsets[s + 1] - 1, offsets[s] - 1, -1):
            for u in range(H):
                dh[u] += dHall[j, u]
            _gru_step(j, j == offsets[s], ids[j], 0, j == offsets[s], Whh, Hs, G, dh, hp, di, dg, dnew,
                      gWih, gWhh, gbih, gbhh)


@njit(**JIT)
def lstm_backward_full(Whh, ids, offsets, dHall, Hs, Cs, G, gWih, gWhh, gbih, gbhh):
    H = Whh.shape[1]
    dh, dc, dnew, hp = np.empty(H), np.empty(H), np.empty(H), np.empty(H)
    d = np.empty(4 * H)
    for s in range(offsets.size - 1):
        dh[:] = 0.0
        dc[:] = 0.0
        for j in range(offsets[s + 1] - 1, offsets[s] - 1, -1):
            for u in range(H):
                dh[u] += dHall[j, u]
            _lstm_step(j, j == offsets[s], ids[j], 0, j == offsets[s], Whh, Hs, Cs, G, dh, dc, hp, d, dnew,
                       gWih, gWhh, gbih, gbhh)
            if j > offsets[s]:
                _lstm_back(j, Whh, G, dh, dc, d, dnew)


@njit(**JIT)
def linear_backward_full(lam, ids, offsets, dHall, Hs, glam, gB):
    H = lam.size
    dh = np.empty(H)
    for s in range(offsets.size - 1):
        dh[:] = 0.0
        for j in range(offsets[s + 1] - 1, offsets[s] - 1, -1):
            for u in range(H):
                dh[u] += dHall[j, u]
            _linear_step(j, j == offsets[s], ids[j], 0, lam, Hs, dh, glam, gB)
