"""gradlab.check_gradient: it passes on correct gradients, fails on wrong ones, rejects bad arguments.

Layout:
1. passes: the engine's own gradient (default) and naive.py's gradient handed in as a
   dict, on random problems for every activation and both objectives;
2. what it returns: sampled entries, analytic values, numeric values against an
   independent central difference of naive.py's loss, the frame, reproducibility;
3. fails: a scaled U, a truncated gradient of a model with long memory;
4. bad arguments.
"""
from __future__ import annotations

import numpy as np
import pytest

import naive
from conftest import ACTIVATIONS, OBJECTIVES, random_problem

from gradlab import Batch, GradientCheck, RNN, Sliding, check_gradient, gradient

# --------------------------------------------------------------------------- tolerances
#: Central-difference step: truncation error ~ eps^2 |J'''| ~ 1e-12, rounding error
#: ~ 1e-16 |J| / eps ~ 1e-9 for |J| ~ 10; eps = 1e-6 balances the two.
EPS = 1e-6
#: Denominator floor of the relative error: entries below ~1e-3 would otherwise turn the
#: ~1e-9 absolute error of a difference quotient into large relative errors.
FLOOR = 1e-3
#: A correct gradient: worst entry a few times the ~1e-9 / 1e-3 bound above ...
PASS_MAX_REL = 1e-5
#: ... and on average much better (most entries are O(0.1) with ~1e-8 relative error).
PASS_MEAN_REL = 1e-6
#: A wrong gradient: scaling U by 1.5 gives |0.5 g| / |2.5 g| = 0.2 on every entry above
#: the floor, and truncation on a long-memory model misses most of the gradient of U.
FAIL_MIN_REL = 0.1
#: relu is not differentiable at 0: only problems whose every |net_in| exceeds this margin
#: (many times the O(eps) change a perturbation makes to net_in) have a gradient to check.
RELU_MARGIN = 1e-3
#: Independent difference quotient of naive.total_loss vs check_gradient's numeric column:
#: the two forwards differ by ~1e-15 relative in J ~ 10, i.e. ~1e-14 / 2e-6 ~ 1e-8 absolute.
NUMERIC_ATOL = 1e-7


def problem(objective, activation, seed, **kw):
    """A random problem; for relu, the first seed from ``seed`` on that stays away from the kink."""
    for k in range(200):
        p = random_problem(np.random.default_rng(seed + k), objective=objective, activation=activation,
                           scale=0.8 if activation == "relu" else 1.0, **kw)
        if activation != "relu":
            return p
        net = naive.forward(*p.arrays).net
        if np.min(np.abs(net)) > RELU_MARGIN and np.any(net > 0):
            return p
    raise RuntimeError("no relu problem away from the kink")


def all_entries(p) -> int:
    """n_samples large enough to check every entry of every matrix."""
    m = p.model
    return max(m.U.size, m.V.size, m.W.size)


# =========================================================================== 1. passes
@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("objective", OBJECTIVES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_passes_on_engine_gradient(activation, objective, seed):
    p = problem(objective, activation, 100 * seed, hidden_size=3, vocab_size=4, lengths=(5, 1, 3))
    check = check_gradient(p.model, p.batch, n_samples=all_entries(p), eps=EPS, rng=seed, floor=FLOOR)
    assert isinstance(check, GradientCheck)
    assert check.max_rel_error < PASS_MAX_REL, check.to_frame().sort_values("rel_error").tail()
    assert check.mean_rel_error < PASS_MEAN_REL


@pytest.mark.parametrize("objective", OBJECTIVES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_passes_on_reference_gradient_given_as_dict(activation, objective):
    """Checking 'your own' gradient: naive.py's, handed in as a plain dict."""
    p = problem(objective, activation, 7, hidden_size=4, vocab_size=5, lengths=(6, 2))
    ref = naive.gradient(*p.arrays)
    check = check_gradient(p.model, p.batch, {"U": ref.U, "V": ref.V, "W": ref.W}, n_samples=8, eps=EPS,
                           rng=3, floor=FLOOR)
    assert check.max_rel_error < PASS_MAX_REL
    assert check.mean_rel_error < PASS_MEAN_REL


def test_passes_with_default_settings(rng):
    """Defaults (20 samples, eps = 1e-6, floor = 1e-8) on a model with O(0.1) gradients."""
    p = random_problem(rng, hidden_size=5, vocab_size=6, lengths=(8, 4), scale=1.0)
    check = check_gradient(p.model, p.batch)
    assert check.max_rel_error < 1e-4  # no floor to speak of: small entries carry ~1e-9 / |g| error
    assert check.mean_rel_error < PASS_MEAN_REL


# =========================================================================== 2. what it returns
def test_result_structure(rng):
    p = random_problem(rng, hidden_size=3, vocab_size=6, lengths=(4, 3))
    g = gradient(p.model, p.batch)
    n = 5
    check = check_gradient(p.model, p.batch, g, n_samples=n, eps=EPS, rng=1, floor=FLOOR)
    sizes = {"U": p.model.U.size, "V": p.model.V.size, "W": p.model.W.size}
    expected_counts = {name: min(n, size) for name, size in sizes.items()}
    names, counts = np.unique(check.parameter, return_counts=True)
    assert dict(zip(names.tolist(), counts.tolist())) == expected_counts
    total = sum(expected_counts.values())
    for a in (check.analytic, check.numeric, check.abs_error, check.rel_error):
        assert a.shape == (total,) and a.dtype == np.float64
    assert check.index.shape == (total, 2) and check.index.dtype == np.int64
    for name in "UVW":
        sel = check.parameter == name
        rows, cols = check.index[sel].T
        shape = getattr(p.model, name).shape
        assert np.all((rows >= 0) & (rows < shape[0]) & (cols >= 0) & (cols < shape[1]))
        assert len(set(zip(rows.tolist(), cols.tolist()))) == sel.sum(), "sampled without replacement"
        np.testing.assert_array_equal(check.analytic[sel], getattr(g, name)[rows, cols])
    np.testing.assert_array_equal(check.abs_error, np.abs(check.analytic - check.numeric))
    np.testing.assert_allclose(check.rel_error, check.abs_error / np.maximum(
        np.abs(check.analytic) + np.abs(check.numeric), FLOOR), rtol=1e-15)
    assert check.max_rel_error == check.rel_error.max()
    assert check.mean_rel_error == pytest.approx(check.rel_error.mean(), rel=1e-15)

    frame = check.to_frame()
    assert list(frame.columns) == ["parameter", "row", "col", "analytic", "numeric", "abs_error", "rel_error"]
    assert len(frame) == total
    np.testing.assert_array_equal(frame["row"].to_numpy(), check.index[:, 0])


def test_small_matrices_are_checked_entirely(rng):
    p = random_problem(rng, hidden_size=2, vocab_size=3, lengths=(3,))
    check = check_gradient(p.model, p.batch, n_samples=1000, rng=0)
    assert check.rel_error.size == p.model.U.size + p.model.V.size + p.model.W.size


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_numeric_matches_independent_difference_quotient(objective, rng):
    """check_gradient's numeric column equals a central difference of naive.total_loss."""
    p = random_problem(rng, objective=objective, hidden_size=3, vocab_size=4, lengths=(4, 2))
    check = check_gradient(p.model, p.batch, n_samples=4, eps=EPS, rng=5)
    U, V, W, activation, xs, ds = (a.copy() if isinstance(a, np.ndarray) else a for a in p.arrays)
    arrays = {"U": U, "V": V, "W": W}
    for name, (i, j), numeric in zip(check.parameter, check.index, check.numeric):
        a = arrays[name]
        old = a[i, j]
        a[i, j] = old + EPS
        plus = naive.total_loss(U, V, W, activation, xs, ds)
        a[i, j] = old - EPS
        minus = naive.total_loss(U, V, W, activation, xs, ds)
        a[i, j] = old
        assert numeric == pytest.approx((plus - minus) / (2 * EPS), abs=NUMERIC_ATOL)


def test_model_is_left_unchanged(rng):
    p = random_problem(rng, hidden_size=3, vocab_size=4, lengths=(4,))
    before = [p.model.U.copy(), p.model.V.copy(), p.model.W.copy()]
    check_gradient(p.model, p.batch, n_samples=6, rng=0)
    for a, b in zip(before, (p.model.U, p.model.V, p.model.W)):
        np.testing.assert_array_equal(a, b)


def test_rng_chooses_the_entries_reproducibly(rng):
    p = random_problem(rng, hidden_size=4, vocab_size=8, lengths=(5, 3))
    a = check_gradient(p.model, p.batch, n_samples=3, rng=42)
    b = check_gradient(p.model, p.batch, n_samples=3, rng=np.random.default_rng(42))
    c = check_gradient(p.model, p.batch, n_samples=3, rng=43)
    np.testing.assert_array_equal(a.index, b.index)
    np.testing.assert_array_equal(a.numeric, b.numeric)
    assert not np.array_equal(a.index, c.index)


# =========================================================================== 3. fails
@pytest.mark.parametrize("objective", OBJECTIVES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_fails_on_scaled_U(activation, objective):
    p = problem(objective, activation, 11, hidden_size=3, vocab_size=4, lengths=(5, 4))
    g = gradient(p.model, p.batch)
    wrong = {"U": 1.5 * g.U, "V": g.V, "W": g.W}
    check = check_gradient(p.model, p.batch, wrong, n_samples=all_entries(p), eps=EPS, rng=0, floor=FLOOR)
    on_U = check.parameter == "U"
    assert check.rel_error[on_U].max() > FAIL_MIN_REL
    assert check.max_rel_error > FAIL_MIN_REL
    assert check.rel_error[~on_U].max() < PASS_MAX_REL, "V and W are still right"


def long_memory_problem(objective):
    """tanh with U = 1.2 x an orthogonal matrix: the signal of the first word reaches the last loss."""
    rng = np.random.default_rng(3)
    H, vocab, T = 4, 5, 12
    Q, _ = np.linalg.qr(rng.standard_normal((H, H)))
    model = RNN(1.2 * Q, rng.standard_normal((H, vocab)), rng.standard_normal((2 if objective == "final" else vocab, H)),
                "tanh")
    xs = [rng.integers(0, vocab, T), rng.integers(0, vocab, T - 3)]
    if objective == "final":
        batch = Batch.for_classification(xs, [0, 1])
    else:
        batch = Batch.for_language_model(xs, [rng.integers(0, vocab, x.size) for x in xs])
    return model, batch


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_fails_on_truncated_gradient_of_long_memory_model(objective):
    model, batch = long_memory_problem(objective)
    truncated = gradient(model, batch, Sliding(0))
    check = check_gradient(model, batch, truncated, n_samples=100, eps=EPS, rng=0, floor=FLOOR)
    on_U = check.parameter == "U"
    on_W = check.parameter == "W"
    assert check.rel_error[on_U].max() > FAIL_MIN_REL
    assert check.rel_error[on_U].mean() > FAIL_MIN_REL / 2, "most of U's gradient is missing, not one entry"
    assert check.rel_error[on_W].max() < PASS_MAX_REL, "W does not depend on truncation"
    # and the full gradient of the same model passes
    full = check_gradient(model, batch, n_samples=100, eps=EPS, rng=0, floor=FLOOR)
    assert full.max_rel_error < PASS_MAX_REL


def test_fails_on_gradient_of_the_wrong_sign(rng):
    """A common mistake: handing in the coursework's update directions (= -gradient)."""
    p = random_problem(rng, hidden_size=3, vocab_size=4, lengths=(4, 2), scale=1.0)
    g = gradient(p.model, p.batch)
    check = check_gradient(p.model, p.batch, {"U": -g.U, "V": -g.V, "W": -g.W}, n_samples=50, rng=0,
                           floor=FLOOR)
    assert check.max_rel_error > 0.99  # |g + g| / (|g| + |g|) = 1 above the floor


# =========================================================================== 4. bad arguments
@pytest.fixture
def small(rng):
    return random_problem(rng, hidden_size=3, vocab_size=4, lengths=(3, 2))


@pytest.mark.parametrize("n_samples", [0, -3])
def test_n_samples_below_one_raises(n_samples, small):
    with pytest.raises(ValueError, match=rf"^n_samples must be >= 1; received {n_samples}"):
        check_gradient(small.model, small.batch, n_samples=n_samples)


def test_n_samples_not_an_integer_raises(small):
    with pytest.raises(TypeError, match=r"^n_samples must be an integer"):
        check_gradient(small.model, small.batch, n_samples=2.5)


@pytest.mark.parametrize("eps", [0.0, -1e-6, float("nan")])
def test_eps_not_positive_raises(eps, small):
    with pytest.raises(ValueError, match=r"^eps must be > 0"):
        check_gradient(small.model, small.batch, eps=eps)


@pytest.mark.parametrize("name", ["U", "V", "W"])
def test_grad_of_wrong_shape_raises(name, small):
    g = gradient(small.model, small.batch).as_dict()
    g[name] = g[name].T if name != "U" else np.zeros((3, 4))
    with pytest.raises(ValueError, match=rf"^grad\['{name}'\] has shape"):
        check_gradient(small.model, small.batch, g)


def test_grad_of_other_model_raises(small, rng):
    other = random_problem(rng, hidden_size=4, vocab_size=4, lengths=(3,))
    with pytest.raises(ValueError, match=r"^grad\['U'\] has shape \(4, 4\); the model's U has \(3, 3\)"):
        check_gradient(small.model, small.batch, gradient(other.model, other.batch))
