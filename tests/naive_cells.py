"""Slow loop references for the cells of gradlab.CellModel (nn.RNN with biases, GRU, LSTM, diagonal linear
recurrence).

Written apart from gradlab/kernels/gated.py, in whole-vector NumPy: per sentence, a
forward pass keeping every step's values, then for every loss its own backward sweep
through its lag window. Parameters are a dict {name: array} with the names of
gradlab.cells (PyTorch's for the rnn and gated cells); a cell name may end in ":<activation>"
("rnn:relu", "rnn-2layers:identity": the rnn cells' f, tanh by default); inputs are one-hot, so the input product
of step t is column x(t) of the input weights, or (cells "...-embedding") the input weights
times row x(t) of P["embedding"].

Initial states (``initial``): None (zeros) or one row per sentence of the engine's layout, per layer
h_l then c_l (LSTM), split by ``layer_states``; they are constants (nothing is sent back into them).
"""
from __future__ import annotations

import numpy as np


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


#: f and f' of the rnn cell, both written from the pre-activation
F = {"tanh": np.tanh, "relu": lambda a: np.maximum(a, 0.0), "sigmoid": sigmoid, "identity": lambda a: a + 0.0}
DF = {"tanh": lambda a: 1.0 - np.tanh(a) ** 2, "relu": lambda a: (a > 0).astype(float),
      "sigmoid": lambda a: sigmoid(a) * (1.0 - sigmoid(a)), "identity": np.ones_like}


def kind(cell):
    """(recurrence, activation) of a cell name such as "rnn-embedding:relu" -> ("rnn", "relu")."""
    name, _, act = cell.partition(":")
    return name.split("-")[0], act or "tanh"


def _read(A, P, x):
    """The input product A x(t): column x of A (one-hot), A times the embedding of x, or, for a layer
    above the first (x a vector: the state of the layer below), A x."""
    if np.ndim(x) == 1:
        return A @ x
    return A @ P["embedding"][x] if "embedding" in P else A[:, x]


def _read_back(A, P, x, d, g):
    """Gradients of the input product with respect to A (and the embedding) for output gradient d."""
    name = "B" if "B" in P else "weight_ih_l0"
    if np.ndim(x) == 1:
        g[name] = np.outer(d, x)
        g["__dx__"] = A.T @ d
    elif "embedding" in P:
        g[name] = np.outer(d, P["embedding"][x])
        E = np.zeros_like(P["embedding"])
        E[x] = A.T @ d
        g["embedding"] = E
    else:
        G = np.zeros_like(A)
        G[:, x] = d
        g[name] = G


def _x(x):
    return x if np.ndim(x) == 1 else int(x)


def step(cell, P, x, h, c):
    """One step from (h, c) reading word x: returns (h', c', cache)."""
    cell, act = kind(cell)
    if cell == "linear":
        return P["lambda"] * h + _read(P["B"], P, x), None, {}
    Wih, Whh, bih, bhh = P["weight_ih_l0"], P["weight_hh_l0"], P["bias_ih_l0"], P["bias_hh_l0"]
    H = h.size
    if cell == "rnn":
        net = _read(Wih, P, x) + bih + Whh @ h + bhh
        return F[act](net), None, dict(net=net)
    gi = _read(Wih, P, x) + bih
    gh = Whh @ h + bhh
    if cell == "gru":
        r = sigmoid(gi[:H] + gh[:H])
        z = sigmoid(gi[H:2 * H] + gh[H:2 * H])
        n = np.tanh(gi[2 * H:] + r * gh[2 * H:])
        return (1 - z) * n + z * h, None, dict(r=r, z=z, n=n, ghn=gh[2 * H:])
    a = gi + gh
    i, f, g, o = sigmoid(a[:H]), sigmoid(a[H:2 * H]), np.tanh(a[2 * H:3 * H]), sigmoid(a[3 * H:])
    c2 = f * c + i * g
    return o * np.tanh(c2), c2, dict(i=i, f=f, g=g, o=o)


def layer_states(cell, row, L, H):
    """[(h0_l, c0_l)] per layer from one row of initial states (zeros when ``row`` is None); c0 is zero
    for the cells without c."""
    if row is None:
        return [(np.zeros(H), np.zeros(H)) for _ in range(L)]
    lstm = kind(cell)[0] == "lstm"
    width = 2 * H if lstm else H
    out = []
    for layer in range(L):
        block = np.asarray(row[layer * width:(layer + 1) * width], dtype=float)
        out.append((block[:H].copy(), block[H:].copy() if lstm else np.zeros(H)))
    return out


def run(cell, P, xs, h0=None, c0=None):
    """States of one sentence: lists hs, cs (index t), caches; h(-1) = h0, c(-1) = c0 (zeros by default)."""
    H = P["W"].shape[1]
    h = np.zeros(H) if h0 is None else np.array(h0, dtype=float)
    c = np.zeros(H) if c0 is None else np.array(c0, dtype=float)
    hs, cs, caches = [], [], []
    for x in xs:
        h, c2, cache = step(cell, P, _x(x), h, c)
        c = c2 if c2 is not None else c
        hs.append(h)
        cs.append(c)
        caches.append(cache)
    return hs, cs, caches


def output(P, h, d):
    """(J, dJ/dh, dJ/dW, dJ/db) of one step's softmax cross-entropy."""
    logits = P["W"] @ h + P["b"]
    y = np.exp(logits - logits.max())
    y /= y.sum()
    J = -np.log(y[d])
    e = y.copy()
    e[d] -= 1
    return J, P["W"].T @ e, np.outer(e, h), e


def step_back(cell, P, x, hprev, cprev, c, cache, dh, dc):
    """Gradient of one step's use of the parameters, and (dh_prev, dc_prev), from dh = dJ/dh(t) and
    dc = the part of dJ/dc(t) that comes from later steps (LSTM). Also returns the total dJ/dc(t)."""
    g = {}
    cell, act = kind(cell)
    if cell == "linear":
        g["lambda"] = dh * hprev
        _read_back(P["B"], P, x, dh, g)
        return g, P["lambda"] * dh, None, None
    Whh = P["weight_hh_l0"]
    if cell == "rnn":
        d_in = d_hid = dh * DF[act](cache["net"])
        dprev = Whh.T @ d_hid
        dc_total, dcprev = None, None
    elif cell == "gru":
        r, z, n, ghn = cache["r"], cache["z"], cache["n"], cache["ghn"]
        da_n = dh * (1 - z) * (1 - n ** 2)
        da_z = dh * (hprev - n) * z * (1 - z)
        da_r = da_n * ghn * r * (1 - r)
        d_in = np.concatenate([da_r, da_z, da_n])
        d_hid = np.concatenate([da_r, da_z, da_n * r])
        dprev = dh * z + Whh.T @ d_hid
        dc_total, dcprev = None, None
    else:
        i, f, gg, o = cache["i"], cache["f"], cache["g"], cache["o"]
        tc = np.tanh(c)
        dc_total = dc + dh * o * (1 - tc ** 2)
        d_in = np.concatenate([dc_total * gg * i * (1 - i), dc_total * cprev * f * (1 - f),
                               dc_total * i * (1 - gg ** 2), dh * tc * o * (1 - o)])
        d_hid = d_in
        dprev = Whh.T @ d_hid
        dcprev = dc_total * f
    _read_back(P["weight_ih_l0"], P, x, d_in, g)
    g["weight_hh_l0"] = np.outer(d_hid, hprev)
    g["bias_ih_l0"] = d_in
    g["bias_hh_l0"] = d_hid
    return g, dprev, dcprev, dc_total


def truncated_names(cell):
    emb = ("embedding",) if "-embedding" in cell else ()
    base = kind(cell)[0]
    return emb + (("lambda", "B") if base == "linear" else ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"))


def per_loss(cell, P, xs, ds, window, initial=None):
    """Walk every loss back through lags 0..window(t) (clipped at t) and yield
    (sentence, t, k, dJ(t)/dh(t-k), dJ(t)/dc(t-k) or None, {name: gradient of step t-k's use}),
    plus, before each loss's sweep, ("loss", J, dW, db)."""
    H = P["W"].shape[1]
    for s, (x, d) in enumerate(zip(xs, ds)):
        h0, c0 = layer_states(cell, None if initial is None else initial[s], 1, H)[0]
        hs, cs, caches = run(cell, P, x, h0, c0)
        for t in range(len(x)):
            if d[t] == -1:
                continue
            J, dh, dW, db = output(P, hs[t], int(d[t]))
            yield ("loss", J, dW, db)
            dc = np.zeros(H)
            for k in range(min(window(t), t) + 1):
                j = t - k
                hprev = hs[j - 1] if j > 0 else h0
                cprev = cs[j - 1] if j > 0 else c0
                g, dprev, dcprev, dc_total = step_back(cell, P, int(x[j]), hprev, cprev, cs[j], caches[j], dh, dc)
                yield (s, t, k, dh.copy(), dc_total, g)
                dh, dc = dprev, dcprev


def loss(cell, P, xs, ds, initial=None):
    total = 0.0
    H = P["W"].shape[1]
    for s, (x, d) in enumerate(zip(xs, ds)):
        hs, _, _ = run(cell, P, x, *layer_states(cell, None if initial is None else initial[s], 1, H)[0])
        for t in range(len(x)):
            if d[t] != -1:
                total += output(P, hs[t], int(d[t]))[0]
    return total


def gradient(cell, P, xs, ds, window, initial=None):
    """{name: dJ/dtheta} and J, where loss t reaches lags 0..min(window(t), t)."""
    G = {n: np.zeros_like(a) for n, a in P.items()}
    J = 0.0
    for item in per_loss(cell, P, xs, ds, window, initial):
        if item[0] == "loss":
            J += item[1]
            G["W"] += item[2]
            G["b"] += item[3]
        else:
            for n, a in item[5].items():
                G[n] += a
    return G, J


def contributions(cell, P, xs, ds, K):
    """rows [(s, t, k, ||dh||, ||dc|| or None)] and {name: (K+1, *shape)} per-lag sums."""
    rows = []
    G = {n: np.zeros((K + 1,) + P[n].shape) for n in truncated_names(cell)}
    for item in per_loss(cell, P, xs, ds, lambda t: K):
        if item[0] == "loss":
            continue
        s, t, k, dh, dc, g = item
        rows.append((s, t, k, np.linalg.norm(dh), None if dc is None else np.linalg.norm(dc)))
        for n, a in g.items():
            G[n][k] += a
    return rows, G


def finite_differences(cell, P, xs, ds, eps=1e-6):
    G = {}
    for n, a in P.items():
        g = np.zeros_like(a)
        for idx in np.ndindex(a.shape):
            old = a[idx]
            a[idx] = old + eps
            up = loss(cell, P, xs, ds)
            a[idx] = old - eps
            down = loss(cell, P, xs, ds)
            a[idx] = old
            g[idx] = (up - down) / (2 * eps)
        G[n] = g
    return G


# ---------------------------------------------------------------------- stacked layers
def layer_params(cell, P, layer):
    """Layer ``layer``'s arrays under layer 0's names (so that step and step_back apply), the
    embedding only to layer 0."""
    base = kind(cell)[0]
    if base == "linear":
        names = ("lambda", "B") if layer == 0 else (f"lambda_l{layer}", f"B_l{layer}")
        sub = dict(zip(("lambda", "B"), (P[n] for n in names)))
    else:
        names = tuple(f"{n}_l{layer}" for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
        sub = dict(zip(("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"), (P[n] for n in names)))
    if layer == 0 and "embedding" in P:
        sub["embedding"] = P["embedding"]
    sub["W"] = P["W"]
    return sub, dict(zip(sub, names + (("embedding",) if "embedding" in sub else ()) + ("W",)))


def run_stacked(cell, P, xs, L, init=None):
    """Per layer (hs, cs, caches, inputs) of one sentence: layer 0 reads the words, layer l the states of l-1;
    ``init``: [(h0_l, c0_l)] (``layer_states``), zeros by default."""
    out = []
    inputs = list(xs)
    init = init or layer_states(cell, None, L, P["W"].shape[1])
    for layer in range(L):
        sub, _ = layer_params(cell, P, layer)
        hs, cs, caches = run(cell, sub, inputs, *init[layer])
        out.append((hs, cs, caches, inputs))
        inputs = hs
    return out


def per_loss_stacked(cell, P, xs, ds, window, L, initial=None):
    """As per_loss for a stacked model: yields ("loss", J, dW, db) and (s, t, k, [dJ/dh_l(t-k)], [dJ/dc_l(t-k)],
    {model name: gradient of step t-k's use}) with the layers' signals travelling together."""
    H = P["W"].shape[1]
    subs = [layer_params(cell, P, layer) for layer in range(L)]
    for s, (x, d) in enumerate(zip(xs, ds)):
        init = layer_states(cell, None if initial is None else initial[s], L, H)
        layers = run_stacked(cell, P, x, L, init)
        for t in range(len(x)):
            if d[t] == -1:
                continue
            J, dh_top, dW, db = output(P, layers[-1][0][t], int(d[t]))
            yield ("loss", J, dW, db)
            dh = [np.zeros(H) for _ in range(L)]
            dc = [np.zeros(H) for _ in range(L)]
            dh[-1] = dh_top
            for k in range(min(window(t), t) + 1):
                j = t - k
                grads, hn, cn = {}, [None] * L, [None] * L
                new_dh, new_dc = [None] * L, [None] * L
                for layer in range(L - 1, -1, -1):
                    hs, cs, caches, inputs = layers[layer]
                    sub, names = subs[layer]
                    hprev = hs[j - 1] if j > 0 else init[layer][0]
                    cprev = cs[j - 1] if j > 0 else init[layer][1]
                    hn[layer] = dh[layer].copy()
                    g, dprev, dcprev, dc_total = step_back(cell, sub, _x(inputs[j]), hprev, cprev, cs[j], caches[j],
                                                           dh[layer], dc[layer])
                    cn[layer] = dc_total
                    if layer > 0:
                        dh[layer - 1] = dh[layer - 1] + g.pop("__dx__")
                    grads.update({names[n]: a for n, a in g.items()})
                    new_dh[layer], new_dc[layer] = dprev, dcprev
                yield (s, t, k, hn, cn, grads)
                dh, dc = new_dh, new_dc


def gradient_stacked(cell, P, xs, ds, window, L, initial=None):
    G = {n: np.zeros_like(a) for n, a in P.items()}
    J = 0.0
    for item in per_loss_stacked(cell, P, xs, ds, window, L, initial):
        if item[0] == "loss":
            J += item[1]
            G["W"] += item[2]
            G["b"] += item[3]
        else:
            for n, a in item[5].items():
                G[n] += a
    return G, J


def contributions_stacked(cell, P, xs, ds, K, L):
    """rows [(s, t, k, [||dh_l||], [||dc_l|| or None])] and {name: (K+1, *shape)}."""
    rows = []
    G = {n: np.zeros((K + 1,) + a.shape) for n, a in P.items() if n not in ("W", "b")}
    for item in per_loss_stacked(cell, P, xs, ds, lambda t: K, L):
        if item[0] == "loss":
            continue
        s, t, k, hn, cn, g = item
        rows.append((s, t, k, [np.linalg.norm(v) for v in hn], [None if v is None else np.linalg.norm(v) for v in cn]))
        for n, a in g.items():
            G[n][k] += a
    return rows, G


def loss_stacked(cell, P, xs, ds, L, initial=None):
    total = 0.0
    H = P["W"].shape[1]
    for s, (x, d) in enumerate(zip(xs, ds)):
        top = run_stacked(cell, P, x, L, layer_states(cell, None if initial is None else initial[s], L, H))[-1][0]
        for t in range(len(x)):
            if d[t] != -1:
                total += output(P, top[t], int(d[t]))[0]
    return total
