"""gradlab.sentence_gaps against direct computations from gradients.

For every sentence i, the direct computation builds ``batch.select([i])`` and the
gradients of its own losses under Full() and Sliding(tau), tau = 0..K, and takes

    rel_error = ||g_tau - g_full|| / ||g_full||,   cosine = <g_tau, g_full> / (||g_tau|| ||g_full||)

for U, V and all parameters (U, V, W concatenated). Where ||g_full|| = 0 (U of a
T = 1 sentence: its only term is delta (x) s(-1) = 0; every parameter of a sentence
without losses) both are 0/0 = NaN, and the NaN positions must match.

Layout:
1. direct computation with gradlab.gradient (hypothesis + edge cases), both objectives;
2. direct computation with naive.py's reference gradients;
3. invariants: tau >= T - 1 is exact, sentences are independent;
4. the frame; bad input.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import naive
from conftest import ACTIVATIONS, OBJECTIVES, n_sentences, random_problem

from gradlab import Batch, Full, RNN, SentenceGaps, Sliding, gradient, sentence_gaps

# --------------------------------------------------------------------------- tolerances
#: sentence_gaps vs the direct computation: the same float64 sums in a different order.
#: Norms and dots agree to a few ulps relative.
RTOL = 1e-9
#: Relative errors that are zero up to rounding (tau >= T - 1) come out as ~1e-16 on one
#: side and exactly 0 on the other: compared in absolute terms, far above that rounding
#: (||g_tau - g_full|| of two roundings of one sum is ~1e-15 ||g_full||).
ATOL = 1e-12
#: "Exact" truncation (tau >= T - 1): rel_error below this, cosine within this of 1.
EXACT = 1e-12

PARAMETERS = ("U", "V", "all")
HYPOTHESIS = settings(max_examples=30, deadline=None)


# =========================================================================== direct computation
def gap_measures(g_tau: dict, g_full: dict):
    """(rel_error, cosine), each of shape (3,) for U, V, all, from gradients given as dicts of arrays."""
    rel, cos = np.empty(3), np.empty(3)
    pairs = [(g_tau["U"].ravel(), g_full["U"].ravel()), (g_tau["V"].ravel(), g_full["V"].ravel()),
             (np.concatenate([g_tau[n].ravel() for n in "UVW"]), np.concatenate([g_full[n].ravel() for n in "UVW"]))]
    with np.errstate(invalid="ignore", divide="ignore"):
        for j, (a, b) in enumerate(pairs):
            rel[j] = np.linalg.norm(a - b) / np.linalg.norm(b)
            cos[j] = np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b))
    return rel, cos


def direct_gaps(model, batch, K):
    """rel_error and cosine (n, K+1, 3) from gradlab.gradient on one-sentence batches."""
    n = batch.n_sentences
    rel, cos = np.empty((n, K + 1, 3)), np.empty((n, K + 1, 3))
    for i in range(n):
        sub = batch.select([i])
        full = gradient(model, sub, Full()).as_dict()
        for tau in range(K + 1):
            rel[i, tau], cos[i, tau] = gap_measures(gradient(model, sub, Sliding(tau)).as_dict(), full)
    return rel, cos


def naive_gaps(p, K):
    """The same from naive.py's loop references (shares no code with gradlab)."""
    U, V, W, activation, xs, ds = p.arrays
    n = len(xs)
    rel, cos = np.empty((n, K + 1, 3)), np.empty((n, K + 1, 3))
    for i, (x, d) in enumerate(zip(xs, ds)):
        g = naive.gradient(U, V, W, activation, [x], [d])
        full = {"U": g.U, "V": g.V, "W": g.W}
        for tau in range(K + 1):
            g = naive.gradient(U, V, W, activation, [x], [d], naive.sliding_limit(tau))
            rel[i, tau], cos[i, tau] = gap_measures({"U": g.U, "V": g.V, "W": g.W}, full)
    return rel, cos


def assert_gaps_close(gaps: SentenceGaps, rel, cos, what=""):
    assert gaps.rel_error.shape == rel.shape and gaps.cosine.shape == cos.shape
    np.testing.assert_array_equal(np.isnan(gaps.rel_error), np.isnan(rel), err_msg=f"{what} NaN positions of rel_error")
    np.testing.assert_array_equal(np.isnan(gaps.cosine), np.isnan(cos), err_msg=f"{what} NaN positions of cosine")
    np.testing.assert_allclose(gaps.rel_error, rel, rtol=RTOL, atol=ATOL, err_msg=f"{what} rel_error")
    np.testing.assert_allclose(gaps.cosine, cos, rtol=RTOL, atol=ATOL, err_msg=f"{what} cosine")


@st.composite
def problems(draw, max_T=8):
    """A random problem and K: H 1..4, |V| 1..5, 1..4 or more than N_CHUNKS sentences of 1..max_T steps, K 0..max_T + 1."""
    H = draw(st.integers(1, 4))
    vocab = draw(st.integers(1, 5))
    n = draw(n_sentences())
    lengths = draw(st.lists(st.integers(1, max_T), min_size=n, max_size=n))
    objective = draw(st.sampled_from(OBJECTIVES))
    activation = draw(st.sampled_from(ACTIVATIONS))
    scale = draw(st.sampled_from([0.3, 0.6] if activation == "relu" else [0.5, 1.0, 2.0]))
    drop = draw(st.sampled_from([0.0, 0.0, 0.5])) if objective == "lm" else 0.0
    K = draw(st.integers(0, max_T + 1))
    seed = draw(st.integers(0, 2**32 - 1))
    p = random_problem(np.random.default_rng(seed), objective=objective, hidden_size=H, vocab_size=vocab,
                       lengths=lengths, activation=activation, n_classes=draw(st.integers(1, 3)), scale=scale,
                       drop_targets=drop)
    return p, K


# =========================================================================== 1. vs gradlab.gradient
@HYPOTHESIS
@given(problems())
def test_matches_direct_computation(pk):
    p, K = pk
    gaps = sentence_gaps(p.model, p.batch, K)
    assert isinstance(gaps, SentenceGaps) and gaps.max_lag == K
    assert_gaps_close(gaps, *direct_gaps(p.model, p.batch, K))


@pytest.mark.parametrize("objective", OBJECTIVES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("K", [0, 1, 3, 9])
def test_edge_cases(K, activation, objective, rng):
    """T = 1 and longer sentences side by side; K = 0, K < T, K >= T."""
    p = random_problem(rng, objective=objective, activation=activation, hidden_size=3, vocab_size=4,
                       lengths=(1, 6, 2, 1, 9), scale=0.6 if activation == "relu" else 1.0)
    gaps = sentence_gaps(p.model, p.batch, K)
    rel, cos = direct_gaps(p.model, p.batch, K)
    assert_gaps_close(gaps, rel, cos, f"K={K}")
    # a T = 1 sentence has no U gradient at all: NaN for U, finite for V and all
    for i in (0, 3):
        assert np.all(np.isnan(gaps.rel_error[i, :, 0])) and np.all(np.isnan(gaps.cosine[i, :, 0]))
        assert np.all(np.isfinite(gaps.rel_error[i, :, 1:])) and np.all(np.isfinite(gaps.cosine[i, :, 1:]))


def test_hidden_size_one(rng):
    p = random_problem(rng, hidden_size=1, vocab_size=3, lengths=(5, 3), scale=1.5)
    assert_gaps_close(sentence_gaps(p.model, p.batch, 4), *direct_gaps(p.model, p.batch, 4))


def test_sentence_without_losses_is_nan():
    """Language modelling with every target of a sentence missing: g_full = 0, so everything is NaN."""
    rng = np.random.default_rng(1)
    model = RNN(rng.standard_normal((3, 3)), rng.standard_normal((3, 4)), rng.standard_normal((4, 3)))
    batch = Batch.for_language_model([[0, 1, 2], [3, 2, 1, 0], [1]], [[1, 2, 3], [-1, -1, -1, -1], [2]])
    gaps = sentence_gaps(model, batch, 3)
    rel, cos = direct_gaps(model, batch, 3)
    assert_gaps_close(gaps, rel, cos)
    assert np.all(np.isnan(gaps.rel_error[1])) and np.all(np.isnan(gaps.cosine[1]))
    assert np.all(np.isfinite(gaps.rel_error[0]))


def test_final_step_losses_only_see_their_own_sentence(rng):
    """Classification: the gaps of sentence i use sentence i's label, in a batch of different labels."""
    p = random_problem(rng, objective="final", hidden_size=3, vocab_size=5, lengths=(6, 6, 6), n_classes=3,
                       scale=1.0)
    gaps = sentence_gaps(p.model, p.batch, 5)
    rel, cos = direct_gaps(p.model, p.batch, 5)
    assert_gaps_close(gaps, rel, cos)


# =========================================================================== 2. vs naive.py
@pytest.mark.parametrize("objective", OBJECTIVES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_matches_naive_reference(activation, objective, rng):
    p = random_problem(rng, objective=objective, activation=activation, hidden_size=3, vocab_size=4,
                       lengths=(5, 1, 7), scale=0.6 if activation == "relu" else 1.0)
    K = 7
    assert_gaps_close(sentence_gaps(p.model, p.batch, K), *naive_gaps(p, K), "vs naive")


def test_matches_naive_reference_with_missing_targets(rng):
    p = random_problem(rng, objective="lm", hidden_size=4, vocab_size=5, lengths=(6, 4, 8), drop_targets=0.5,
                       scale=1.0)
    assert_gaps_close(sentence_gaps(p.model, p.batch, 5), *naive_gaps(p, 5), "vs naive")


# =========================================================================== 3. invariants
@HYPOTHESIS
@given(problems())
def test_tau_at_least_T_minus_1_is_exact(pk):
    """tau >= T - 1 keeps every lag: rel_error ~ 0 and cosine ~ 1 (U already at tau >= T - 2)."""
    p, K = pk
    gaps = sentence_gaps(p.model, p.batch, K)
    for i, T in enumerate(p.batch.lengths):
        for j, name in enumerate(PARAMETERS):
            first_exact = max(T - 2, 0) if name == "U" else T - 1
            r = gaps.rel_error[i, first_exact:, j]
            c = gaps.cosine[i, first_exact:, j]
            finite = ~np.isnan(r)
            assert np.all(r[finite] < EXACT), (i, name, r)
            assert np.all(np.abs(c[finite] - 1.0) < EXACT), (i, name, c)
            np.testing.assert_array_equal(np.isnan(c), ~finite)


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_short_windows_lose_something(objective):
    """A long-memory model: tau = 0 is far from full BPTT, and the gap closes as tau grows to T - 1."""
    rng = np.random.default_rng(4)
    H, vocab, T = 4, 5, 10
    Q, _ = np.linalg.qr(rng.standard_normal((H, H)))
    model = RNN(1.2 * Q, rng.standard_normal((H, vocab)), rng.standard_normal((vocab if objective == "lm" else 2, H)),
                "tanh")
    x = rng.integers(0, vocab, T)
    batch = (Batch.for_language_model([x], [rng.integers(0, vocab, T)]) if objective == "lm"
             else Batch.for_classification([x], [1]))
    gaps = sentence_gaps(model, batch, T - 1)
    assert gaps.rel_error[0, 0, 0] > 0.1 and gaps.cosine[0, 0, 0] < 0.99
    assert gaps.rel_error[0, -1, 2] < EXACT
    # "all" includes W, which truncation keeps exactly: its error is at most that of U and V together
    assert np.all(gaps.rel_error[:, :, 2] <= np.hypot(gaps.rel_error[:, :, 0], gaps.rel_error[:, :, 1]) + ATOL)


def test_sentences_are_independent(rng):
    """Row i of a batch's gaps equals the gaps of sentence i alone."""
    p = random_problem(rng, hidden_size=3, vocab_size=4, lengths=(4, 1, 7, 3), scale=1.0)
    gaps = sentence_gaps(p.model, p.batch, 4)
    for i in range(p.batch.n_sentences):
        alone = sentence_gaps(p.model, p.batch.select([i]), 4)
        np.testing.assert_allclose(gaps.rel_error[i], alone.rel_error[0], rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(gaps.cosine[i], alone.cosine[0], rtol=RTOL, atol=ATOL)
    rev = sentence_gaps(p.model, p.batch.select([3, 2, 1, 0]), 4)
    np.testing.assert_allclose(rev.rel_error[::-1], gaps.rel_error, rtol=RTOL, atol=ATOL)


def test_prefix_of_larger_max_lag(rng):
    """Gaps for tau <= K do not depend on K."""
    p = random_problem(rng, hidden_size=3, vocab_size=4, lengths=(6, 3), scale=1.0)
    small = sentence_gaps(p.model, p.batch, 2)
    big = sentence_gaps(p.model, p.batch, 8)
    np.testing.assert_allclose(small.rel_error, big.rel_error[:, :3], rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(small.cosine, big.cosine[:, :3], rtol=RTOL, atol=ATOL)


def test_deterministic(rng):
    p = random_problem(rng, hidden_size=4, vocab_size=5, lengths=(9, 2, 5, 7), scale=1.0)
    a = sentence_gaps(p.model, p.batch, 5)
    b = sentence_gaps(p.model, p.batch, 5)
    np.testing.assert_array_equal(a.rel_error, b.rel_error)
    np.testing.assert_array_equal(a.cosine, b.cosine)


# =========================================================================== 4. frame, bad input
def test_to_frame(rng):
    p = random_problem(rng, hidden_size=3, vocab_size=4, lengths=(1, 5, 3))
    K = 3
    gaps = sentence_gaps(p.model, p.batch, K)
    frame = gaps.to_frame()
    assert list(frame.columns) == ["sentence", "tau", "parameter", "rel_error", "cosine"]
    assert len(frame) == 3 * (K + 1) * 3
    assert set(frame["parameter"]) == set(PARAMETERS)
    assert sorted(frame["sentence"].unique()) == [0, 1, 2]
    assert sorted(frame["tau"].unique()) == list(range(K + 1))
    assert not frame.duplicated(["sentence", "tau", "parameter"]).any()
    for row in frame.itertuples():
        j = PARAMETERS.index(row.parameter)
        np.testing.assert_equal(row.rel_error, gaps.rel_error[row.sentence, row.tau, j])
        np.testing.assert_equal(row.cosine, gaps.cosine[row.sentence, row.tau, j])
    assert frame["rel_error"].isna().sum() == np.isnan(gaps.rel_error).sum() > 0  # U of the T = 1 sentence


@pytest.fixture
def small(rng):
    return random_problem(rng, hidden_size=3, vocab_size=4, lengths=(3, 2))


@pytest.mark.parametrize("max_lag", [-1, -10])
def test_negative_max_lag_raises(max_lag, small):
    with pytest.raises(ValueError, match=rf"^max_lag must be >= 0; received {max_lag}"):
        sentence_gaps(small.model, small.batch, max_lag)


@pytest.mark.parametrize("max_lag", [1.5, "2", None, True])
def test_non_integer_max_lag_raises(max_lag, small):
    with pytest.raises(TypeError, match=r"^max_lag must be an integer"):
        sentence_gaps(small.model, small.batch, max_lag)


def test_bad_model_or_batch_raises(small):
    with pytest.raises(TypeError, match=r"^model must be a gradlab.RNN"):
        sentence_gaps("model", small.batch, 2)
    with pytest.raises(TypeError, match=r"^batch must be a gradlab.Batch"):
        sentence_gaps(small.model, [[0, 1]], 2)


def test_out_of_range_ids_raise(small):
    bad = Batch.for_language_model([[0, 7]], [[1, 2]])
    with pytest.raises(IndexError, match=r"^batch ids holds id 7"):
        sentence_gaps(small.model, bad, 2)
