"""GRU, LSTM and the diagonal linear recurrence (gradlab.cell_engine) against the loop references of
tests/naive_cells.py, central finite differences and closed forms."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from helpers import ALL_CELLS, CELLS, random_cell_problem
import naive_cells as nc

from gradlab import Batch, Block, Full, Sliding, chunked
from gradlab import cell_engine as ce
from gradlab.cellmodel import CellModel

RTOL, ATOL = 1e-10, 1e-12
BIG = 10 ** 9


def _close(got, want):
    for n in want:
        np.testing.assert_allclose(got[n], want[n], rtol=RTOL, atol=ATOL, err_msg=n)


def _window(scheme):
    return lambda t: int(scheme.lag_limit(np.array([t]))[0])


SCHEMES = [Full(), Sliding(0), Sliding(1), Sliding(3), Sliding(50), Block(2, 3), chunked(2), Block(3, 7)]


@pytest.mark.parametrize("cell", ALL_CELLS)
@pytest.mark.parametrize("objective", ["lm", "final"])
def test_forward_matches_the_loop_reference(cell, objective, rng):
    m, b, xs, ds = random_cell_problem(rng, cell, objective=objective)
    f = ce.forward(m, b, return_probs=True)
    for s, x in enumerate(xs):
        hs, cs, _ = nc.run(cell, m.params, x)
        a = b.offsets[s]
        np.testing.assert_allclose(f.h[a:a + len(x)], np.array(hs), rtol=RTOL, atol=ATOL)
        if cell.startswith("lstm"):
            np.testing.assert_allclose(f.c[a:a + len(x)], np.array(cs), rtol=RTOL, atol=ATOL)
    assert (f.c is None) == (not cell.startswith("lstm"))
    assert f.loss == pytest.approx(nc.loss(cell, m.params, xs, ds), rel=1e-12)
    np.testing.assert_allclose(f.probs.sum(axis=1), 1.0)


@pytest.mark.parametrize("cell", ALL_CELLS)
@pytest.mark.parametrize("scheme", SCHEMES, ids=str)
@pytest.mark.parametrize("objective", ["lm", "final"])
def test_gradient_under_every_scheme_matches_the_loop_reference(cell, scheme, objective, rng):
    m, b, xs, ds = random_cell_problem(rng, cell, objective=objective, lengths=(7, 1, 4), drop=0.2)
    g = ce.gradient(m, b, scheme)
    want, J = nc.gradient(cell, m.params, xs, ds, _window(scheme))
    assert g.scheme == scheme.label and list(g.arrays) == list(m.cell.names)
    assert g.loss == pytest.approx(J, rel=1e-12) and g.n_losses == b.n_losses
    _close(g.arrays, want)


@pytest.mark.parametrize("cell", ALL_CELLS)
def test_full_gradient_matches_finite_differences(cell, rng):
    m, b, xs, ds = random_cell_problem(rng, cell, hidden=2, vocab=3, lengths=(4, 2))
    g = ce.gradient(m, b, "full")
    fd = nc.finite_differences(cell, m.params, xs, ds)
    for n in fd:
        np.testing.assert_allclose(g.arrays[n], fd[n], rtol=1e-6, atol=1e-8, err_msg=n)


@pytest.mark.parametrize("cell", ALL_CELLS)
def test_sliding_tau_at_least_T_is_full_and_output_gradient_ignores_the_scheme(cell, rng):
    m, b, *_ = random_cell_problem(rng, cell, lengths=(6, 3))
    full, long, none = (ce.gradient(m, b, s) for s in (Full(), Sliding(5), Sliding(0)))
    _close(long.arrays, full.arrays)
    assert list(full.arrays) == list(m.cell.names)
    _close({n: none.arrays[n] for n in ("W", "b")}, {n: full.arrays[n] for n in ("W", "b")})


@pytest.mark.parametrize("cell", ALL_CELLS)
@pytest.mark.parametrize("objective", ["lm", "final"])
def test_contributions_match_the_loop_reference(cell, objective, rng):
    m, b, xs, ds = random_cell_problem(rng, cell, objective=objective, lengths=(6, 1, 4), drop=0.3)
    K = 3
    c = ce.contributions(m, b, K)
    rows, G = nc.contributions(cell, m.params, xs, ds, K)
    assert [(s, t, k) for s, t, k, *_ in rows] == list(zip(c.sentence.tolist(), c.t.tolist(), c.lag.tolist()))
    np.testing.assert_allclose(c.h_norm, [r[3] for r in rows], rtol=RTOL, atol=ATOL)
    if cell.startswith("lstm"):
        np.testing.assert_allclose(c.c_norm, [r[4] for r in rows], rtol=RTOL, atol=ATOL)
    else:
        assert c.c_norm is None
    _close(c.G, G)
    assert set(c.G) == set(m.cell.truncated) and set(c.G_out) == {"W", "b"}
    assert c.n_pairs == len(rows) and c.n_losses == b.n_losses


@pytest.mark.parametrize("cell", ALL_CELLS)
def test_per_lag_sums_add_up_to_the_truncated_gradients(cell, rng):
    m, b, *_ = random_cell_problem(rng, cell, lengths=(8, 2, 5), drop=0.2)
    K = 8
    c = ce.contributions(m, b, K)
    for tau in range(K + 1):
        _close(c.truncated(tau).arrays, ce.gradient(m, b, Sliding(tau)).arrays)
    _close(c.truncated(K).arrays, ce.gradient(m, b, Full()).arrays)
    with pytest.raises(ValueError, match="max_lag"):
        c.truncated(K + 1)


@settings(max_examples=25, deadline=None)
@given(cell=st.sampled_from(ALL_CELLS), seed=st.integers(0, 2 ** 31), hidden=st.integers(1, 4),
       vocab=st.integers(1, 4), lengths=st.lists(st.integers(1, 7), min_size=1, max_size=4),
       tau=st.integers(0, 8), objective=st.sampled_from(["lm", "final"]), drop=st.sampled_from([0.0, 0.5, 1.0]))
def test_random_sizes_match_the_loop_reference(cell, seed, hidden, vocab, lengths, tau, objective, drop):
    rng = np.random.default_rng(seed)
    m, b, xs, ds = random_cell_problem(rng, cell, objective=objective, hidden=hidden, vocab=vocab,
                                       lengths=lengths, drop=drop)
    g = ce.gradient(m, b, Sliding(tau))
    want, J = nc.gradient(cell, m.params, xs, ds, lambda t: tau)
    _close(g.arrays, want)
    c = ce.contributions(m, b, tau)
    rows, G = nc.contributions(cell, m.params, xs, ds, tau)
    np.testing.assert_allclose(c.h_norm, [r[3] for r in rows], rtol=RTOL, atol=ATOL)
    _close(c.G, G)
    _close(c.truncated(tau).arrays, g.arrays)


def test_scalar_linear_recurrence_closed_forms(rng):
    """h(t) = lam h(t-1) + B x(t): dJ(t)/dh(t-k) = lam^k dJ(t)/dh(t); the lag-k term of dJ(t)/dB is
    lam^k dJ(t)/dh(t) in column x(t-k), of dJ(t)/dlam it is lam^k dJ(t)/dh(t) h(t-k-1)."""
    lam = -0.7
    m = CellModel("linear", {"lambda": [lam], "B": rng.standard_normal((1, 3)), "W": rng.standard_normal((3, 1)),
                             "b": rng.standard_normal(3)})
    x = np.array([2, 0, 1, 1, 2, 0])
    d = np.array([-1, -1, -1, -1, -1, 1])
    b = Batch.for_language_model([x], [d])
    T = x.size
    c = ce.contributions(m, b, T - 1)
    f = ce.forward(m, b)
    # the closed-form state: h(t) = sum_j lam^(t-j) B[x(j)]
    Bv = m.params["B"][0]
    np.testing.assert_allclose(f.h[:, 0], [sum(lam ** (t - j) * Bv[x[j]] for j in range(t + 1)) for t in range(T)])
    np.testing.assert_allclose(c.h_norm, c.h_norm[0] * abs(lam) ** np.arange(T), rtol=1e-13)
    dh = ce.gradient(m, b, Sliding(0)).arrays["B"][0, x[-1]]   # lag 0: dJ/dh(t) in column x(t)
    for k in range(T):
        expect_B = np.zeros(3)
        expect_B[x[T - 1 - k]] = lam ** k * dh
        np.testing.assert_allclose(c.G["B"][k, 0], expect_B, rtol=1e-13, atol=1e-15)
        hprev = f.h[T - 2 - k, 0] if T - 2 - k >= 0 else 0.0
        assert c.G["lambda"][k, 0] == pytest.approx(lam ** k * dh * hprev, rel=1e-12, abs=1e-15)


def test_single_step_and_single_unit_sentences(rng):
    for cell in ALL_CELLS:
        m, b, xs, ds = random_cell_problem(rng, cell, hidden=1, vocab=1, lengths=(1,))
        g = ce.gradient(m, b, Full())
        _close(g.arrays, nc.gradient(cell, m.params, xs, ds, lambda t: BIG)[0])
        c = ce.contributions(m, b, 0)
        assert c.n_pairs == 1


def test_a_batch_without_losses_has_zero_gradient(rng):
    m, _, xs, _ = random_cell_problem(rng, "lstm")
    b = Batch.for_language_model(xs, [np.full(x.size, -1) for x in xs])
    g = ce.gradient(m, b)
    assert g.loss == 0.0 and g.n_losses == 0 and g.norm() == 0.0
    c = ce.contributions(m, b, 2)
    assert c.n_pairs == 0 and c.G["weight_hh_l0"].shape == (3, 12, 3)


def test_bad_input_gives_clear_errors(rng):
    m, b, xs, ds = random_cell_problem(rng, "gru", vocab=4)
    with pytest.raises(TypeError, match="gradlab.CellModel"):
        ce.gradient(object(), b)
    with pytest.raises(TypeError, match="gradlab.Batch"):
        ce.forward(m, xs)
    with pytest.raises(IndexError, match="batch ids"):
        ce.forward(m, Batch.for_language_model([[0, 9]], [[1, 1]]))
    with pytest.raises(IndexError, match="batch targets"):
        ce.gradient(m, Batch.for_language_model([[0, 1]], [[1, 7]]))
    with pytest.raises(ValueError, match="max_lag must be >= 0"):
        ce.contributions(m, b, -1)
    with pytest.raises(TypeError, match="fixed lag limit"):
        ce.gradient(m, b, "adaptive:delta=0.1")
    with pytest.raises(ValueError, match="unknown scheme"):
        ce.gradient(m, b, "nope")
    m.params["weight_hh_l0"][0, 0] = np.nan
    with pytest.raises(ValueError, match="weight_hh_l0 holds non-finite"):
        ce.gradient(m, b)


@pytest.mark.parametrize("cell", CELLS)
def test_many_sentences_match_the_loop_reference_and_not_the_thread_count(cell, rng):
    """Enough sentences and losses that every lockstep chunk multiplies through BLAS, several chunks of
    loss groups run in parallel, and the results are the same bits on 1 and 2 threads."""
    from gradlab import _config
    m, b, xs, ds = random_cell_problem(rng, cell, hidden=5, vocab=6, lengths=rng.integers(1, 9, 60), drop=0.3)
    runs = []
    for threads in (1, 2):
        _config.set_threads(threads)
        try:
            runs.append((ce.gradient(m, b, Full()), ce.gradient(m, b, Sliding(2)), ce.contributions(m, b, 3)))
        finally:
            _config.set_threads(None)
    for one, two in zip(*runs):
        for a, c in zip(_arrays(one), _arrays(two)):
            assert np.array_equal(a, c)
    full, tbptt, contrib = runs[0]
    for g, scheme in ((full, Full()), (tbptt, Sliding(2))):
        _close(g.arrays, nc.gradient(cell, m.params, xs, ds, _window(scheme))[0])
    want = nc.gradient(cell, m.params, xs, ds, lambda t: 2)[0]
    _close({n: G[:3].sum(axis=0) for n, G in contrib.lag_sums().items()}, {n: want[n] for n in contrib.lag_sums()})


def _arrays(result):
    if hasattr(result, "as_dict"):
        return list(result.as_dict().values())
    return [result.h_norm] + ([] if result.c_norm is None else [result.c_norm]) + list(result.lag_sums().values())
