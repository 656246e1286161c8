"""Slow, obviously-correct references for the engine, straight from docs/maths.md.

Everything here is plain numpy with Python loops: one sentence at a time, one loss t
at a time, one lag k at a time. Nothing is imported from ``gradlab`` so that the
references share no code (and no bugs) with the kernels they check.

Inputs are plain arrays:

- ``U`` (H, H), ``V`` (H, |V|), ``W`` (|O|, H), float64;
- ``activation`` in {"sigmoid", "tanh", "relu"};
- ``xs``: list of int arrays, the input ids x(0..T-1) of each sentence;
- ``ds``: list of int arrays of the same lengths, the target d(t) of each step, or
  ``NO_LOSS`` (-1) for a step without a loss;
- ``lag_limit``: a function t -> L(t) (t = step within its sentence), or None for full
  BPTT. Loss t backpropagates through lags k = 0 .. min(L(t), t);
- ``initial_states`` (optional, ``forward`` and ``gradient``): an (n_sentences, H) array
  whose row i is s(-1) of sentence i instead of 0, a constant (no signal flows into it).

Model (docs/maths.md)::

    net_in(t) = V[:, x(t)] + U s(t-1),   s(-1) = 0
    s(t)      = f(net_in(t))
    y(t)      = softmax(W s(t)),   J(t) = -log y(t)[d(t)]
    delta_out(t)    = y(t) - onehot(d(t))
    delta(t, t)     = (W^T delta_out(t)) * f'(net_in(t))
    delta(t, t-k-1) = (U^T delta(t, t-k)) * f'(net_in(t-k-1))
    dJ(t)/dU += delta(t, t-k) (x) s(t-k-1),  dJ(t)/dV[:, x(t-k)] += delta(t, t-k),
    dJ(t)/dW += delta_out(t) (x) s(t)   (lag 0 only)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

NO_LOSS = -1
ACTIVATIONS = ("sigmoid", "tanh", "relu")


# ---------------------------------------------------------------------------- activations
def activate(name: str, net: np.ndarray) -> np.ndarray:
    """f(net) elementwise."""
    if name == "sigmoid":
        return 1.0 / (1.0 + np.exp(-net))
    if name == "tanh":
        return np.tanh(net)
    if name == "relu":
        return np.maximum(net, 0.0)
    if name == "identity":
        return np.array(net, dtype=np.float64)
    raise ValueError(f"unknown activation {name!r}")


def activate_prime(name: str, net: np.ndarray) -> np.ndarray:
    """f'(net) elementwise, computed from net_in (not from s), relu'(0) = 0."""
    if name == "sigmoid":
        sig = 1.0 / (1.0 + np.exp(-net))
        return sig * (1.0 - sig)
    if name == "tanh":
        return 1.0 - np.tanh(net) ** 2
    if name == "relu":
        return (net > 0.0).astype(np.float64)
    if name == "identity":
        return np.ones_like(net, dtype=np.float64)
    raise ValueError(f"unknown activation {name!r}")


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - np.max(z))
    return e / np.sum(e)


def cross_entropy(z: np.ndarray, target: int) -> float:
    """-log softmax(z)[target] = logsumexp(z) - z[target], finite even where y underflows."""
    m = np.max(z)
    return float(m + np.log(np.sum(np.exp(z - m))) - z[target])


# ---------------------------------------------------------------------------- lag limits
def full_limit() -> Callable[[int], int]:
    """Full BPTT: L(t) = t."""
    return lambda t: t


def sliding_limit(tau: int) -> Callable[[int], int]:
    """Coursework TBPTT(tau): L(t) = tau."""
    return lambda t: tau


def block_limit(k1: int, k2: int) -> Callable[[int], int]:
    """Block (k1, k2): L(t) = (k2 - k1) + (t mod k1)."""
    return lambda t: (k2 - k1) + t % k1


def chunked_limit(h: int) -> Callable[[int], int]:
    """Detach every h steps = block (h, h): L(t) = t mod h."""
    return lambda t: t % h


def mikolov_limit(bptt: int, block: int) -> Callable[[int], int]:
    """rnnlm -bptt N -bptt-block B = block (B, N + B): L(t) = N + (t mod B)."""
    return lambda t: bptt + t % block


# ---------------------------------------------------------------------------- forward
@dataclass
class NaiveForward:
    net: np.ndarray             # (N, H) net_in(t) of every token, flat in batch order
    s: np.ndarray               # (N, H)
    probs: np.ndarray           # (N, |O|)
    losses: np.ndarray          # (n_losses,) J(t), flat order
    loss_positions: np.ndarray  # (n_losses,) flat token index of each loss
    loss: float


def forward_sentence(U, V, W, activation, x, s_init=None):
    """net_in, s, y and the logits W s of one sentence, each with one row per step.

    ``s_init`` is s(-1) (default 0).
    """
    H = U.shape[0]
    T = len(x)
    net = np.zeros((T, H))
    s = np.zeros((T, H))
    y = np.zeros((T, W.shape[0]))
    z = np.zeros((T, W.shape[0]))
    s_prev = np.zeros(H) if s_init is None else np.array(s_init, dtype=np.float64)
    for t in range(T):
        net[t] = V[:, x[t]] + U @ s_prev
        s[t] = activate(activation, net[t])
        z[t] = W @ s[t]
        y[t] = softmax(z[t])
        s_prev = s[t]
    return net, s, y, z


def _initial(initial_states, i):
    """s(-1) of sentence i: None (zeros) or row i of ``initial_states``."""
    return None if initial_states is None else initial_states[i]


def forward(U, V, W, activation: str, xs: Sequence, ds: Sequence, initial_states=None) -> NaiveForward:
    nets, ss, ys, losses, positions = [], [], [], [], []
    offset = 0
    for i, (x, d) in enumerate(zip(xs, ds)):
        net, s, y, z = forward_sentence(U, V, W, activation, x, _initial(initial_states, i))
        for t in range(len(x)):
            if d[t] != NO_LOSS:
                losses.append(cross_entropy(z[t], d[t]))
                positions.append(offset + t)
        nets.append(net)
        ss.append(s)
        ys.append(y)
        offset += len(x)
    losses = np.array(losses, dtype=np.float64)
    return NaiveForward(np.concatenate(nets), np.concatenate(ss), np.concatenate(ys), losses,
                        np.array(positions, dtype=np.int64), float(sum(losses)))


def total_loss(U, V, W, activation, xs, ds) -> float:
    """J = sum over every loss of the batch (the quantity gradient(Full) differentiates)."""
    total = 0.0
    for x, d in zip(xs, ds):
        _, _, _, z = forward_sentence(U, V, W, activation, x)
        for t in range(len(x)):
            if d[t] != NO_LOSS:
                total += cross_entropy(z[t], d[t])
    return total


# ---------------------------------------------------------------------------- gradient
@dataclass
class NaiveGradient:
    U: np.ndarray
    V: np.ndarray
    W: np.ndarray
    loss: float
    n_losses: int


def _walk_back(U, W, activation, x, net, s, y, t, d_t, kmax, s_init=None):
    """Yield (k, delta(t, t-k), s(t-k-1)) for k = 0..kmax, plus delta_out(t) first; s(-1) = ``s_init`` or 0."""
    H = U.shape[0]
    delta_out = y[t].copy()
    delta_out[d_t] -= 1.0
    delta = (W.T @ delta_out) * activate_prime(activation, net[t])
    steps = []
    for k in range(kmax + 1):
        j = t - k
        s_prev = s[j - 1] if j > 0 else (np.zeros(H) if s_init is None else s_init)
        steps.append((k, delta.copy(), s_prev))
        if k < kmax:
            delta = (U.T @ delta) * activate_prime(activation, net[j - 1])
    return delta_out, steps


def gradient(U, V, W, activation: str, xs: Sequence, ds: Sequence,
             lag_limit: Callable[[int], int] | None = None, initial_states=None) -> NaiveGradient:
    """dJ/dU, dJ/dV, dJ/dW summed over all losses, loss t keeping lags 0..min(L(t), t).

    With ``initial_states``, s(-1) of sentence i is its row i, a constant: it enters the
    forward pass and U's lag-t term delta(t, 0) (x) s(-1), and receives no signal.
    """
    if lag_limit is None:
        lag_limit = full_limit()
    gU, gV, gW = np.zeros_like(U), np.zeros_like(V), np.zeros_like(W)
    loss, n_losses = 0.0, 0
    for i, (x, d) in enumerate(zip(xs, ds)):
        s_init = _initial(initial_states, i)
        net, s, y, z = forward_sentence(U, V, W, activation, x, s_init)
        for t in range(len(x)):
            if d[t] == NO_LOSS:
                continue
            loss += cross_entropy(z[t], d[t])
            n_losses += 1
            kmax = min(int(lag_limit(t)), t)
            delta_out, steps = _walk_back(U, W, activation, x, net, s, y, t, d[t], kmax, s_init)
            gW += np.outer(delta_out, s[t])
            for k, delta, s_prev in steps:
                gU += np.outer(delta, s_prev)
                gV[:, x[t - k]] += delta
    return NaiveGradient(gU, gV, gW, float(loss), n_losses)


# ---------------------------------------------------------------------------- contributions
@dataclass
class NaiveContributions:
    sentence: np.ndarray    # (n_pairs,) int64
    t: np.ndarray           # (n_pairs,) int64, step within the sentence
    lag: np.ndarray         # (n_pairs,) int64
    delta_norm: np.ndarray  # (n_pairs,) ||delta(t, t-k)||
    U_norm: np.ndarray      # (n_pairs,) ||delta(t, t-k) (x) s(t-k-1)||_F
    V_norm: np.ndarray      # (n_pairs,) ||delta(t, t-k)||
    G_U: np.ndarray         # (K+1, H, H)
    G_V: np.ndarray         # (K+1, H, |V|)
    G_W: np.ndarray         # (|O|, H)
    loss: float
    n_losses: int


def contributions(U, V, W, activation: str, xs: Sequence, ds: Sequence, max_lag: int) -> NaiveContributions:
    """One row per (sentence, loss step t, lag k <= min(t, max_lag)) and per-lag gradients."""
    K = max_lag
    H = U.shape[0]
    G_U = np.zeros((K + 1, H, H))
    G_V = np.zeros((K + 1, H, V.shape[1]))
    G_W = np.zeros_like(W)
    rows = []
    loss, n_losses = 0.0, 0
    for i, (x, d) in enumerate(zip(xs, ds)):
        net, s, y, z = forward_sentence(U, V, W, activation, x)
        for t in range(len(x)):
            if d[t] == NO_LOSS:
                continue
            loss += cross_entropy(z[t], d[t])
            n_losses += 1
            delta_out, steps = _walk_back(U, W, activation, x, net, s, y, t, d[t], min(t, K))
            G_W += np.outer(delta_out, s[t])
            for k, delta, s_prev in steps:
                outer = np.outer(delta, s_prev)
                G_U[k] += outer
                G_V[k][:, x[t - k]] += delta
                rows.append((i, t, k, np.linalg.norm(delta), np.linalg.norm(outer), np.linalg.norm(delta)))
    cols = list(zip(*rows)) if rows else [()] * 6
    ints = [np.array(c, dtype=np.int64) for c in cols[:3]]
    floats = [np.array(c, dtype=np.float64) for c in cols[3:]]
    return NaiveContributions(*ints, *floats, G_U, G_V, G_W, float(loss), n_losses)


# ---------------------------------------------------------------------------- per-sentence gaps
def _gap_measures(g_tau: Sequence[np.ndarray], g_full: Sequence[np.ndarray]):
    """(||g_tau - g_full|| / ||g_full||, cos(g_tau, g_full)) of two gradients given as lists of arrays."""
    a = np.concatenate([g.ravel() for g in g_tau])
    b = np.concatenate([g.ravel() for g in g_full])
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.linalg.norm(a - b) / np.linalg.norm(b), np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b))


def sentence_gaps(U, V, W, activation: str, xs: Sequence, ds: Sequence, max_lag: int):
    """Per sentence i and tau = 0..K: rel_error and cosine of TBPTT(tau) against full BPTT of i's own losses.

    Returns two (n, K+1, 3) arrays, the last axis U, V and all parameters (U, V, W).
    g_tau = sum over k <= tau of the sentence's own per-lag gradients (``contributions``
    of the sentence alone), g_full = ``gradient`` of the sentence alone. Where
    ||g_full|| = 0 (U of a one-step sentence, a sentence without losses) both are NaN.
    """
    K = max_lag
    rel = np.empty((len(xs), K + 1, 3))
    cos = np.empty((len(xs), K + 1, 3))
    for i, (x, d) in enumerate(zip(xs, ds)):
        c = contributions(U, V, W, activation, [x], [d], K)
        full = gradient(U, V, W, activation, [x], [d])
        gU, gV = np.zeros_like(U), np.zeros_like(V)
        for tau in range(K + 1):
            gU = gU + c.G_U[tau]
            gV = gV + c.G_V[tau]
            for j, (g_tau, g_full) in enumerate((([gU], [full.U]), ([gV], [full.V]),
                                                 ([gU, gV, c.G_W], [full.U, full.V, full.W]))):
                rel[i, tau, j], cos[i, tau, j] = _gap_measures(g_tau, g_full)
    return rel, cos


# ---------------------------------------------------------------------------- finite differences
def central_differences(f: Callable[[], float], arrays: Sequence[np.ndarray], eps: float) -> list[np.ndarray]:
    """(f(a + eps e_i) - f(a - eps e_i)) / (2 eps) for every entry of every array, perturbed in place."""
    out = []
    for a in arrays:
        g = np.zeros_like(a)
        for idx in np.ndindex(a.shape):
            old = a[idx]
            a[idx] = old + eps
            plus = f()
            a[idx] = old - eps
            minus = f()
            a[idx] = old
            g[idx] = (plus - minus) / (2.0 * eps)
        out.append(g)
    return out


def fd_errors(numeric: np.ndarray, analytic: np.ndarray, floor: float) -> np.ndarray:
    """|numeric - analytic| / max(|numeric|, |analytic|, floor), entrywise."""
    scale = np.maximum(np.maximum(np.abs(numeric), np.abs(analytic)), floor)
    return np.abs(numeric - analytic) / scale
