"""Extreme logits: a saturated softmax stays finite and exact.

With W scaled x300 the logits W s(t) reach hundreds to thousands: exp of them overflows
(and exp of minus them underflows) unless the softmax subtracts the row's maximum first.
naive.py's softmax and cross-entropy do (log-sum-exp), so the engine is compared with
them at the usual tolerances; the one-class output (y = 1, J = 0 whatever the logit) and
logits such as [800, 0, -5] are checked directly.
"""
from __future__ import annotations

import numpy as np
import pytest

import naive
from conftest import ACTIVATIONS, OBJECTIVES, random_problem
from test_engine import ATOL, RTOL, assert_close, assert_grad_close, check_contributions, check_forward, make_scheme
from test_sentence_gaps import assert_gaps_close

from gradlab import Full, contributions, forward, gradient, sentence_gaps
from gradlab.kernels.output import softmax_rows

#: W ~ N(0, 1) scaled by this: logits of several hundred to a few thousand, past exp's
#: overflow at 709.78.
W_SCALE = 300.0
#: exp(x) overflows float64 above this.
EXP_OVERFLOW = np.log(np.finfo(np.float64).max)


def extreme_problem(objective, activation, n_classes=3, seed=16):
    rng = np.random.default_rng(seed)
    p = random_problem(rng, objective=objective, activation=activation, hidden_size=10, vocab_size=6,
                       lengths=(7, 1, 5, 9), n_classes=n_classes, scale=0.5 if activation == "relu" else 1.0,
                       drop_targets=0.2 if objective == "lm" else 0.0)
    p.model.W = rng.standard_normal(p.model.W.shape) * W_SCALE
    return p


def _logits(p):
    return naive.forward(*p.arrays).s @ p.model.W.T


@pytest.mark.parametrize("objective", OBJECTIVES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_extreme_logits_match_naive(objective, activation):
    p = extreme_problem(objective, activation)
    z = _logits(p)
    # the problem is extreme: an unshifted exp would overflow in some rows
    assert np.abs(z).max() > EXP_OVERFLOW
    check_forward(p)
    fw = forward(p.model, p.batch, return_probs=True)
    assert np.all(np.isfinite(fw.probs)) and np.all(np.isfinite(fw.losses))
    assert_close(fw.probs.sum(axis=1), np.ones(p.batch.n_tokens), "sum of probs")
    for spec in (("full",), ("sliding", 0), ("sliding", 2), ("chunked", 3)):
        scheme, limit = make_scheme(spec)
        g = gradient(p.model, p.batch, scheme=scheme)
        assert all(np.all(np.isfinite(a)) for a in (g.U, g.V, g.W)) and np.isfinite(g.loss)
        assert_grad_close(g, naive.gradient(*p.arrays, limit), str(spec))
    c = check_contributions(p, 4)
    assert np.all(np.isfinite(c.delta_norm)) and np.all(np.isfinite(c.G_U)) and np.all(np.isfinite(c.G_V))
    assert_gaps_close(sentence_gaps(p.model, p.batch, 4), *naive.sentence_gaps(*p.arrays, 4))


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_one_class_output_with_extreme_logits(activation):
    """|O| = 1: y(t) = 1 exactly, so every loss and gradient is 0, however large the logit."""
    p = extreme_problem("final", activation, n_classes=1)
    assert np.abs(_logits(p)).max() > EXP_OVERFLOW
    check_forward(p)
    fw = forward(p.model, p.batch, return_probs=True)
    np.testing.assert_array_equal(fw.probs, 1.0)
    np.testing.assert_array_equal(fw.losses, 0.0)
    g = gradient(p.model, p.batch, scheme=Full())
    assert g.loss == 0.0
    for a in (g.U, g.V, g.W):
        np.testing.assert_array_equal(a, 0.0)
    c = contributions(p.model, p.batch, max_lag=3)
    np.testing.assert_array_equal(c.delta_norm, 0.0)


@pytest.mark.parametrize("logits", [
    [800.0, 0.0, -5.0],
    [-5.0, 0.0, 800.0],
    [-800.0, -1000.0, -805.0],    # every exp(z) underflows without the shift
    [1e5, 1e5 - 1.0, -1e5],
    [0.0, 0.0, 0.0],
], ids=str)
def test_softmax_rows_is_stable(logits):
    """The output kernel row by row: losses for every target and probabilities against log-sum-exp."""
    z = np.array(logits)
    n_out = z.size
    L = np.tile(z, (n_out + 1, 1))
    d = np.array(list(range(n_out)) + [-1], dtype=np.int64)
    losses = np.empty(n_out + 1)
    softmax_rows(L, d, losses)
    y = naive.softmax(z)
    assert np.all(np.isfinite(L)) and np.all(np.isfinite(losses))
    for target in range(n_out):
        assert losses[target] == pytest.approx(naive.cross_entropy(z, target), rel=RTOL, abs=ATOL)
        expect = y.copy()
        expect[target] -= 1.0
        assert_close(L[target], expect, f"delta_out, target {target}")
    assert losses[-1] == 0.0
    assert_close(L[-1], y, "probabilities")
