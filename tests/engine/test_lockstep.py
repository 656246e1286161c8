"""The lockstep recurrences against per-sentence loops written here.

``forward_states`` and ``accumulate_deltas`` run the sentences (or loss groups) of a range
together, longest first, one matrix product per step: with fewer than
``BLAS_MIN_ROWS`` rows in their own loops, else through BLAS. Both paths are checked
directly, on mixed lengths (equal lengths, length 1, one long sentence among short
ones), then the engine on batches large enough for every chunk to take the BLAS path.
"""
from __future__ import annotations

import numpy as np
import pytest

import naive
from conftest import ACTIVATIONS, random_problem
from test_engine import assert_grad_close, make_scheme

from gradlab import _config, gradient
from gradlab.kernels._common import BLAS_MIN_ROWS
from gradlab.kernels.backward import accumulate_deltas
from gradlab.kernels.forward import forward_states
from gradlab.model import activation_code

#: Row counts on both sides of the BLAS threshold.
ROWS = (1, BLAS_MIN_ROWS - 1, BLAS_MIN_ROWS, 3 * BLAS_MIN_ROWS + 1)

LENGTHS = {
    "mixed": lambda rng, n: rng.integers(1, 9, n),
    "equal": lambda rng, n: np.full(n, 5),
    "one long": lambda rng, n: np.r_[np.ones(n - 1, dtype=np.int64), 17] if n > 1 else np.array([17]),
}


def _f(activation, net):
    return naive.activate(activation, net)


def _f_prime_from_state(activation, s):
    return {"sigmoid": s * (1 - s), "tanh": 1 - s * s, "relu": (s > 0).astype(float)}[activation]


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("lengths", list(LENGTHS))
@pytest.mark.parametrize("n", ROWS)
def test_forward_states_against_a_loop(n, lengths, activation):
    rng = np.random.default_rng(n)
    H, n_vocab = 5, 7
    lens = LENGTHS[lengths](rng, n)
    offsets = np.r_[0, np.cumsum(lens)].astype(np.int64)
    ids = rng.integers(0, n_vocab, offsets[-1]).astype(np.int64)
    U = rng.standard_normal((H, H))
    V = rng.standard_normal((H, n_vocab))
    S0 = rng.standard_normal((n, H))
    S = np.full((offsets[-1], H), np.nan)
    forward_states(np.ascontiguousarray(U.T), np.ascontiguousarray(V.T), ids, offsets, activation_code(activation),
                   S0, S, 0, n)
    for i in range(n):
        s = S0[i]
        for p in range(offsets[i], offsets[i + 1]):
            s = _f(activation, V[:, ids[p]] + U @ s)
            np.testing.assert_allclose(S[p], s, rtol=1e-13, atol=1e-15, err_msg=f"sentence {i} position {p}")


@pytest.mark.parametrize("scheme", [("full",), ("sliding", 0), ("sliding", 2), ("block", 2, 4), ("chunked", 3),
                                    ("mikolov", 2, 3)])
@pytest.mark.parametrize("lengths", list(LENGTHS))
@pytest.mark.parametrize("n", ROWS)
def test_accumulate_deltas_against_a_loop(n, lengths, scheme):
    """D[j] = sum over losses p whose window reaches j of delta(p, j), each loss walked back alone."""
    rng = np.random.default_rng(100 + n)
    H, activation = 4, "tanh"
    lens = LENGTHS[lengths](rng, n)
    offsets = np.r_[0, np.cumsum(lens)].astype(np.int64)
    N = offsets[-1]
    U = rng.standard_normal((H, H)) * 0.7
    S = np.tanh(rng.standard_normal((N, H)))
    E = rng.standard_normal((N, H))
    limit = make_scheme(scheme)[1]
    has_loss = rng.random(N) < 0.7
    lo = np.full(N, -1, dtype=np.int64)
    for i in range(n):
        for t in range(lens[i]):
            p = offsets[i] + t
            if has_loss[p]:
                lo[p] = p - min(limit(t), t)
    D = np.zeros((N, H))
    accumulate_deltas(U, S, E, lo, offsets, activation_code(activation), D, 0, n)
    expected = np.zeros((N, H))
    for p in np.flatnonzero(lo >= 0):
        delta = E[p].copy()
        for j in range(p, lo[p] - 1, -1):
            expected[j] += delta
            if j > lo[p]:
                delta = (U.T @ delta) * _f_prime_from_state(activation, S[j - 1])
    np.testing.assert_allclose(D, expected, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("scheme", [("full",), ("sliding", 1), ("block", 2, 5), ("mikolov", 1, 3)])
@pytest.mark.parametrize("objective", ["lm", "final"])
def test_engine_on_chunks_that_take_the_blas_path(scheme, objective):
    """Enough sentences for two lockstep chunks, each of far more than BLAS_MIN_ROWS sentences."""
    rng = np.random.default_rng(7)
    n = 2 * _config.LOCKSTEP_MIN_SENTENCES + 3
    assert len(_config.lockstep_ranges(n)) == 2 and _config.LOCKSTEP_MIN_SENTENCES > BLAS_MIN_ROWS
    p = random_problem(rng, objective=objective, hidden_size=6, vocab_size=9, lengths=rng.integers(1, 12, n),
                       activation="sigmoid", drop_targets=0.2)
    sch, limit = make_scheme(scheme)
    assert_grad_close(gradient(p.model, p.batch, sch), naive.gradient(*p.arrays, limit), str(scheme))
