"""The identity activation (a linear Elman recurrence s(t) = U s(t-1) + V x(t)) against its closed forms."""
from __future__ import annotations

import numpy as np

import gradlab as gl


def test_linear_recurrence_signals_are_powers_of_U_transposed():
    """With f' = 1, delta(t, t-k) = (U^T)^k delta(t, t) and delta(t, t) = dJ(t)/ds(t) = W^T (y - onehot)."""
    rng = np.random.default_rng(3)
    H, n_vocab, T = 4, 6, 7
    model = gl.RNN.init(n_vocab, H, rng=1, activation="identity", scale=0.5)
    x, d = rng.integers(0, n_vocab, T), rng.integers(0, n_vocab, T)
    batch = gl.Batch.for_language_model([x], [d])
    c = gl.contributions(model, batch, max_lag=T)
    s = np.zeros(H)
    states = []
    for t in range(T):
        s = model.U @ s + model.V[:, x[t]]
        states.append(s)
    for t in range(T):
        z = model.W @ states[t]
        y = np.exp(z - z.max())
        y /= y.sum()
        y[d[t]] -= 1.0
        delta = model.W.T @ y
        for k in range(t + 1):
            row = np.flatnonzero((c.t == t) & (c.lag == k))
            np.testing.assert_allclose(c.delta_norm[row], np.linalg.norm(np.linalg.matrix_power(model.U.T, k) @ delta),
                                       rtol=1e-12)


def test_linear_states_are_affine_in_the_inputs():
    """s(t) = sum_j U^(t-j) V x(j): the forward pass of a linear recurrence is that sum."""
    rng = np.random.default_rng(5)
    model = gl.RNN.init(5, 3, rng=2, activation="identity", scale=0.7)
    x = rng.integers(0, 5, 6)
    f = gl.forward(model, gl.Batch.for_language_model([x], [x]))
    for t in range(x.size):
        want = sum(np.linalg.matrix_power(model.U, t - j) @ model.V[:, x[j]] for j in range(t + 1))
        np.testing.assert_allclose(f.s[t], want, rtol=1e-12)
