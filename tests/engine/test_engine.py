"""The engine (forward, gradient, contributions) against the slow references of naive.py.

Layout:
1. the references checked against themselves (finite differences, a chunked-training
   simulation), so that a disagreement below points at the engine;
2. engine vs reference: forward, gradient under every scheme, contributions;
3. invariants of docs/maths.md: per-lag sums, prefixes, tau >= T, losses;
4. finite differences of the engine's own loss vs its gradient;
5. determinism (run to run, and 1 vs 2 threads).
"""
from __future__ import annotations

import numba
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import naive
from conftest import ACTIVATIONS, OBJECTIVES, Problem, n_sentences, random_problem, run_without_jit

from gradlab import Batch, Block, Full, Sliding, chunked, contributions, forward, gradient, mikolov

# --------------------------------------------------------------------------- tolerances
#: Engine vs reference: the same float64 maths summed in a different order (the reference
#: sums loss by loss, lag by lag; the kernels accumulate deltas). Differences are a few
#: ulps per term times at most ~T*(T+1)/2 terms, far below 1e-9 relative.
RTOL = 1e-9
#: Entries that cancel to ~0 (e.g. a V column that is never used is exactly 0, a
#: nearly balanced sum is ~1e-17) are compared in absolute terms.
ATOL = 1e-12

#: Central-difference step: truncation error ~ eps^2 * |J'''| ~ 1e-12, rounding error
#: ~ 1e-16 * |J| / eps ~ 1e-9 for |J| ~ 10; eps = 1e-6 balances the two.
FD_EPS = 1e-6
#: Gradient entries smaller than this are compared in absolute terms (relative error
#: of a ~1e-9 absolute FD error on a 1e-3 entry is 1e-6).
FD_FLOOR = 1e-3
#: Worst single entry: a few times the 1e-6 bound above.
FD_MAX_REL = 1e-5
#: Average over all entries: most entries are O(0.1) with ~1e-8 relative error.
FD_MEAN_REL = 1e-6
#: relu is not differentiable at 0: FD is only meaningful when every |net_in| exceeds
#: this margin, many times the O(eps) change a perturbation makes to net_in.
RELU_MARGIN = 1e-3

HYPOTHESIS = settings(max_examples=30, deadline=None)


def assert_close(actual, expected, what="", rtol=RTOL, atol=ATOL):
    np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), rtol=rtol, atol=atol, err_msg=what)


def assert_grad_close(g, ref, what=""):
    assert_close(g.U, ref.U, f"{what} U")
    assert_close(g.V, ref.V, f"{what} V")
    assert_close(g.W, ref.W, f"{what} W")


# --------------------------------------------------------------------------- schemes
#: (gradlab scheme, naive lag limit, label) builders from a plain spec tuple.
def make_scheme(spec):
    kind, *args = spec
    if kind == "full":
        return Full(), naive.full_limit()
    if kind == "sliding":
        return Sliding(*args), naive.sliding_limit(*args)
    if kind == "block":
        return Block(*args), naive.block_limit(*args)
    if kind == "chunked":
        return chunked(*args), naive.chunked_limit(*args)
    if kind == "mikolov":
        return mikolov(*args), naive.mikolov_limit(*args)
    if kind == "string":
        text, limit = args
        return text, limit
    raise ValueError(spec)


EDGE_SCHEMES = [
    ("full",),
    ("sliding", 0),          # one-step BP (coursework Q1c)
    ("sliding", 1),
    ("sliding", 3),          # the coursework's "steps = 3"
    ("sliding", 50),         # tau >= T: full BPTT
    ("block", 1, 1),         # = sliding(0)
    ("block", 1, 3),         # = sliding(2)
    ("block", 2, 3),
    ("block", 3, 7),
    ("block", 20, 25),       # one block longer than every sentence
    ("chunked", 1),
    ("chunked", 2),
    ("chunked", 3),
    ("mikolov", 0, 3),       # = chunked(3)
    ("mikolov", 2, 3),
    ("mikolov", 4, 1),       # block size 1 = sliding(4)
    ("string", "full", naive.full_limit()),
    ("string", "tbptt:2", naive.sliding_limit(2)),
    ("string", "block:2,5", naive.block_limit(2, 5)),
    ("string", "chunked:4", naive.chunked_limit(4)),
    ("string", "mikolov:1,3", naive.mikolov_limit(1, 3)),
]


def _spec_id(spec):
    return "-".join(str(a) for a in spec[:2] if not callable(a)) + ("" if len(spec) < 3 or callable(spec[2]) else f"-{spec[2]}")


@st.composite
def scheme_specs(draw):
    kind = draw(st.sampled_from(["full", "sliding", "block", "chunked", "mikolov"]))
    if kind == "full":
        return ("full",)
    if kind == "sliding":
        return ("sliding", draw(st.integers(0, 12)))
    if kind == "block":
        k1 = draw(st.integers(1, 6))
        return ("block", k1, k1 + draw(st.integers(0, 6)))
    if kind == "chunked":
        return ("chunked", draw(st.integers(1, 8)))
    return ("mikolov", draw(st.integers(0, 5)), draw(st.integers(1, 5)))


@st.composite
def problems(draw, objective=None, activation=None, max_T=9):
    """A random model + batch: H in 1..5, |V| in 1..6, 1..4 or more than N_CHUNKS sentences of 1..max_T steps."""
    H = draw(st.integers(1, 5))
    vocab = draw(st.integers(1, 6))
    n = draw(n_sentences())
    lengths = draw(st.lists(st.integers(1, max_T), min_size=n, max_size=n))
    objective = objective or draw(st.sampled_from(OBJECTIVES))
    activation = activation or draw(st.sampled_from(ACTIVATIONS))
    n_classes = draw(st.integers(1, 3))
    # relu and identity are unbounded: with a large scale s(t) grows geometrically and y underflows,
    # which tests overflow handling, not the gradient. Bounded activations get saturating scales.
    scale = draw(st.sampled_from([0.3, 0.6] if activation in ("relu", "identity") else [0.3, 1.0, 2.0]))
    drop = draw(st.sampled_from([0.0, 0.0, 0.4]))
    seed = draw(st.integers(0, 2**32 - 1))
    return random_problem(np.random.default_rng(seed), objective=objective, hidden_size=H, vocab_size=vocab,
                          lengths=lengths, activation=activation, n_classes=n_classes, scale=scale,
                          drop_targets=drop)


# --------------------------------------------------------------------------- a chunked-training reference
def detach_every_h_reference(U, V, W, activation, xs, ds, h):
    """Gradient of chunked training at fixed parameters ("detach every h steps").

    Each sentence is cut into chunks of h steps. A chunk starts from the previous
    chunk's last state treated as a constant, runs forward, and one ordinary backward
    sweep (accumulating dJ/ds from the chunk's later losses) carries its losses back
    to the chunk start only. Written independently of naive.gradient: no lag loop.
    """
    H = U.shape[0]
    gU, gV, gW = np.zeros_like(U), np.zeros_like(V), np.zeros_like(W)
    for x, d in zip(xs, ds):
        T = len(x)
        s_carry = np.zeros(H)
        for start in range(0, T, h):
            steps = range(start, min(start + h, T))
            nets, ss, ys = [], [], []
            s_prev = s_carry
            for j in steps:
                net = V[:, x[j]] + U @ s_prev
                s_prev = naive.activate(activation, net)
                nets.append(net)
                ss.append(s_prev)
                ys.append(naive.softmax(W @ s_prev))
            ds_next = np.zeros(H)  # dJ(chunk)/ds(j) arriving from step j + 1
            for i in reversed(range(len(nets))):
                j = start + i
                dh = ds_next.copy()
                if d[j] != naive.NO_LOSS:
                    delta_out = ys[i].copy()
                    delta_out[d[j]] -= 1.0
                    gW += np.outer(delta_out, ss[i])
                    dh += W.T @ delta_out
                dnet = dh * naive.activate_prime(activation, nets[i])
                gU += np.outer(dnet, ss[i - 1] if i > 0 else s_carry)
                gV[:, x[j]] += dnet
                ds_next = U.T @ dnet
            s_carry = ss[-1]
    return naive.NaiveGradient(gU, gV, gW, float("nan"), -1)


def relu_safe_problem(objective, hidden_size=3, vocab_size=4, lengths=(4, 1, 3)):
    """A relu problem whose every |net_in| exceeds RELU_MARGIN (searched over seeds)."""
    for seed in range(1000):
        p = random_problem(np.random.default_rng(seed), objective=objective, hidden_size=hidden_size,
                           vocab_size=vocab_size, lengths=lengths, activation="relu", scale=0.8)
        fw = naive.forward(*p.arrays)
        if np.min(np.abs(fw.net)) > RELU_MARGIN and np.any(fw.net > 0):
            return p
    raise RuntimeError("no relu problem away from the kink")


def fd_problem(objective, activation, seed=7):
    if activation == "relu":
        return relu_safe_problem(objective)
    return random_problem(np.random.default_rng(seed), objective=objective, hidden_size=3, vocab_size=4,
                          lengths=(4, 1, 3), activation=activation, scale=0.8)


def assert_fd_agrees(numeric, analytic):
    errs = np.concatenate([naive.fd_errors(n, a, FD_FLOOR).ravel() for n, a in zip(numeric, analytic)])
    assert errs.max() < FD_MAX_REL, f"max relative FD error {errs.max():.3g}"
    assert errs.mean() < FD_MEAN_REL, f"mean relative FD error {errs.mean():.3g}"


# =========================================================================== 1. the references
@pytest.mark.parametrize("objective", OBJECTIVES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_naive_gradient_matches_finite_differences(objective, activation):
    p = fd_problem(objective, activation)
    U, V, W = p.model.U.copy(), p.model.V.copy(), p.model.W.copy()
    ref = naive.gradient(U, V, W, activation, p.xs, p.ds)
    numeric = naive.central_differences(lambda: naive.total_loss(U, V, W, activation, p.xs, p.ds), [U, V, W], FD_EPS)
    assert_fd_agrees(numeric, [ref.U, ref.V, ref.W])


@pytest.mark.parametrize("h", [1, 2, 3, 100])
@pytest.mark.parametrize("objective", OBJECTIVES)
def test_naive_chunked_limit_matches_detach_reference(rng, h, objective):
    p = random_problem(rng, objective=objective, hidden_size=3, vocab_size=5, lengths=(7, 1, 4, 6), activation="tanh")
    assert_grad_close(naive.gradient(*p.arrays, naive.chunked_limit(h)), detach_every_h_reference(*p.arrays, h), f"h={h}")


def test_naive_contributions_sum_to_naive_gradients(rng):
    p = random_problem(rng, hidden_size=3, vocab_size=4, lengths=(6, 2, 5), activation="sigmoid")
    c = naive.contributions(*p.arrays, max_lag=10)
    full = naive.gradient(*p.arrays)
    assert_close(c.G_U.sum(0), full.U)
    assert_close(c.G_V.sum(0), full.V)
    for tau in range(6):
        g = naive.gradient(*p.arrays, naive.sliding_limit(tau))
        assert_close(c.G_U[:tau + 1].sum(0), g.U)
        assert_close(c.G_V[:tau + 1].sum(0), g.V)


@pytest.mark.parametrize("spec", [s for s in EDGE_SCHEMES if s[0] != "string"], ids=_spec_id)
def test_scheme_lag_limits_match_conventions_table(spec):
    scheme, limit = make_scheme(spec)
    t = np.arange(40)
    got = np.minimum(scheme.lag_limit(t), t)
    want = np.minimum([limit(int(i)) for i in t], t)
    np.testing.assert_array_equal(got, want)


# =========================================================================== 2. engine vs references
def check_forward(p: Problem):
    ref = naive.forward(*p.arrays)
    fw = forward(p.model, p.batch, return_probs=True)
    assert fw.s.shape == (p.batch.n_tokens, p.model.hidden_size)
    assert_close(fw.s, ref.s, "s")
    assert_close(fw.probs, ref.probs, "probs")
    np.testing.assert_array_equal(fw.loss_positions, ref.loss_positions)
    assert_close(fw.losses, ref.losses, "losses")
    assert fw.loss == pytest.approx(ref.loss, rel=RTOL, abs=ATOL)


@HYPOTHESIS
@given(p=problems())
def test_forward_matches_naive(p):
    check_forward(p)


def test_forward_probs_only_when_asked(rng):
    p = random_problem(rng)
    fw = forward(p.model, p.batch)
    assert fw.probs is None
    assert fw.losses.shape == (p.batch.n_losses,)
    assert fw.loss == pytest.approx(fw.losses.sum(), rel=1e-12)


def test_forward_probs_sum_to_one(rng):
    p = random_problem(rng, lengths=(3, 5), vocab_size=6)
    probs = forward(p.model, p.batch, return_probs=True).probs
    assert_close(probs.sum(axis=1), np.ones(p.batch.n_tokens))


@HYPOTHESIS
@given(p=problems(), spec=scheme_specs())
def test_gradient_matches_naive(p, spec):
    scheme, limit = make_scheme(spec)
    g = gradient(p.model, p.batch, scheme=scheme)
    ref = naive.gradient(*p.arrays, limit)
    assert_grad_close(g, ref, str(spec))
    assert g.loss == pytest.approx(ref.loss, rel=RTOL, abs=ATOL)
    assert g.n_losses == ref.n_losses


@pytest.mark.parametrize("spec", EDGE_SCHEMES, ids=_spec_id)
@pytest.mark.parametrize("objective", OBJECTIVES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_gradient_edge_schemes(rng, spec, objective, activation):
    p = random_problem(rng, objective=objective, activation=activation, hidden_size=3, vocab_size=4,
                       lengths=(7, 1, 4, 2, 9), n_classes=3, scale=0.8)
    scheme, limit = make_scheme(spec)
    assert_grad_close(gradient(p.model, p.batch, scheme=scheme), naive.gradient(*p.arrays, limit), str(spec))


def test_gradient_default_scheme_is_full(rng):
    p = random_problem(rng)
    g, ref = gradient(p.model, p.batch), naive.gradient(*p.arrays)
    assert_grad_close(g, ref)


EDGE_SHAPES = [
    # (objective, H, |V|, lengths, n_classes)
    ("lm", 1, 1, (1,), 2),            # smallest possible: one token, one unit, one word
    ("lm", 1, 3, (1, 1, 1), 2),       # T = 1 everywhere: every scheme is lag 0
    ("lm", 4, 1, (6, 2), 2),          # |V| = 1: one input column, one output class, zero loss
    ("lm", 1, 5, (8, 3), 2),          # H = 1
    ("final", 1, 1, (1,), 1),         # |O| = 1: softmax is 1, loss and gradient vanish
    ("final", 2, 3, (1, 5, 1), 2),
    ("final", 5, 2, (12,), 3),
    ("lm", 3, 4, tuple(range(1, 11)), 2),  # many lengths
]


@pytest.mark.parametrize("shape", EDGE_SHAPES, ids=str)
@pytest.mark.parametrize("spec", [("full",), ("sliding", 0), ("sliding", 2), ("block", 2, 3), ("chunked", 2),
                                  ("mikolov", 1, 2)], ids=_spec_id)
def test_gradient_edge_shapes(rng, shape, spec):
    objective, H, vocab, lengths, n_classes = shape
    p = random_problem(rng, objective=objective, hidden_size=H, vocab_size=vocab, lengths=lengths,
                       n_classes=n_classes, activation="tanh", scale=1.0)
    scheme, limit = make_scheme(spec)
    g = gradient(p.model, p.batch, scheme=scheme)
    assert g.U.shape == (H, H) and g.V.shape == (H, vocab) and g.W.shape == p.model.W.shape
    assert_grad_close(g, naive.gradient(*p.arrays, limit), str(spec))
    check_forward(p)


def test_single_output_class_has_zero_loss_and_gradient(rng):
    p = random_problem(rng, objective="final", n_classes=1, lengths=(3, 1))
    g = gradient(p.model, p.batch)
    assert g.loss == pytest.approx(0.0, abs=1e-15)
    for a in (g.U, g.V, g.W):
        np.testing.assert_allclose(a, 0.0, atol=1e-15)


def test_steps_without_targets_have_no_loss(rng):
    p = random_problem(rng, lengths=(6, 4), drop_targets=0.5)
    fw = forward(p.model, p.batch)
    assert fw.losses.size == sum(int((d != -1).sum()) for d in p.ds)
    assert_grad_close(gradient(p.model, p.batch, scheme=Sliding(1)), naive.gradient(*p.arrays, naive.sliding_limit(1)))


def test_batch_without_any_loss(rng):
    """All targets -1: zero loss, zero gradients, an empty contributions table."""
    p = random_problem(rng, lengths=(3, 1, 2), drop_targets=1.0)
    fw = forward(p.model, p.batch)
    assert fw.losses.size == 0 and fw.loss == 0.0
    g = gradient(p.model, p.batch, scheme=Sliding(1))
    assert g.loss == 0.0 and g.n_losses == 0
    for a in (g.U, g.V, g.W):
        assert np.all(a == 0.0)
    c = check_contributions(p, 2)
    assert c.lag.size == 0 and len(c.to_frame()) == 0
    assert np.all(c.G_U == 0.0) and np.all(c.G_V == 0.0)


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_sentences_without_losses_between_others(rng, objective):
    p = random_problem(rng, objective=objective, lengths=(4, 3, 5, 2, 6), n_classes=3)
    for i in (1, 3):  # no loss in sentences 1 and 3
        p.ds[i][:] = -1
    p.batch = Batch.for_language_model(p.xs, p.ds)
    for spec in (("full",), ("sliding", 1), ("block", 2, 3)):
        scheme, limit = make_scheme(spec)
        assert_grad_close(gradient(p.model, p.batch, scheme=scheme), naive.gradient(*p.arrays, limit), str(spec))
    check_contributions(p, 3)


@pytest.mark.parametrize("spec", [("full",), ("sliding", 5), ("block", 7, 12), ("chunked", 16), ("mikolov", 3, 4)],
                         ids=_spec_id)
def test_long_sentence(rng, spec):
    """T = 120: the linear-time paths (carrying several losses back together) over many blocks."""
    p = random_problem(rng, hidden_size=3, vocab_size=6, lengths=(120, 37), activation="tanh", scale=0.6)
    scheme, limit = make_scheme(spec)
    assert_grad_close(gradient(p.model, p.batch, scheme=scheme), naive.gradient(*p.arrays, limit), str(spec))




def test_gradient_is_a_sum_over_sentences(rng):
    p = random_problem(rng, lengths=(5, 3, 1, 4))
    total = gradient(p.model, p.batch, scheme=Block(2, 3))
    parts = [gradient(p.model, p.batch.select([i]), scheme=Block(2, 3)) for i in range(len(p.xs))]
    for name in "UVW":
        assert_close(getattr(total, name), sum(getattr(g, name) for g in parts), name)
    reordered = gradient(p.model, p.batch.select([3, 1, 0, 2]), scheme=Block(2, 3))
    assert_grad_close(reordered, total, "reordered")


def test_noncontiguous_weights(rng):
    """Weights assigned as transposed or strided views must be read correctly."""
    p = random_problem(rng, hidden_size=3, vocab_size=4, lengths=(5, 2))
    m = p.model
    m.U = np.asfortranarray(m.U)
    big = np.zeros((m.V.shape[0], 2 * m.V.shape[1]))
    big[:, ::2] = m.V
    m.V = big[:, ::2]
    m.W = np.ascontiguousarray(m.W.T).T
    assert not m.U.flags.c_contiguous and not m.V.flags.c_contiguous
    assert_grad_close(gradient(m, p.batch), naive.gradient(*p.arrays))
    check_forward(p)


def test_engine_does_not_modify_inputs(rng):
    p = random_problem(rng, lengths=(5, 3))
    before = [a.copy() for a in (p.model.U, p.model.V, p.model.W, p.batch.ids, p.batch.targets, p.batch.offsets)]
    forward(p.model, p.batch, return_probs=True)
    gradient(p.model, p.batch, scheme=Sliding(1))
    contributions(p.model, p.batch, max_lag=3)
    after = (p.model.U, p.model.V, p.model.W, p.batch.ids, p.batch.targets, p.batch.offsets)
    for b, a in zip(before, after):
        np.testing.assert_array_equal(a, b)


def test_W_gradient_is_the_same_for_every_scheme(rng):
    p = random_problem(rng, lengths=(6, 3))
    gW = gradient(p.model, p.batch).W
    for spec in EDGE_SCHEMES:
        scheme, _ = make_scheme(spec)
        assert_close(gradient(p.model, p.batch, scheme=scheme).W, gW, str(spec))


# --------------------------------------------------------------------------- contributions
def check_contributions(p: Problem, K: int):
    ref = naive.contributions(*p.arrays, max_lag=K)
    c = contributions(p.model, p.batch, max_lag=K)
    for name in ("sentence", "t", "lag"):
        got = getattr(c, name)
        assert got.dtype == np.int64, name
        np.testing.assert_array_equal(got, getattr(ref, name), err_msg=name)
    for name in ("delta_norm", "U_norm", "V_norm"):
        assert_close(getattr(c, name), getattr(ref, name), name)
    H, vocab = p.model.U.shape[0], p.model.V.shape[1]
    assert c.G_U.shape == (K + 1, H, H)
    assert c.G_V.shape == (K + 1, H, vocab)
    assert_close(c.G_U, ref.G_U, "G_U")
    assert_close(c.G_V, ref.G_V, "G_V")
    assert_close(c.G_W, ref.G_W, "G_W")
    assert c.loss == pytest.approx(ref.loss, rel=RTOL, abs=ATOL)
    assert c.n_losses == ref.n_losses
    return c


@HYPOTHESIS
@given(p=problems(), K=st.integers(0, 10))
def test_contributions_match_naive(p, K):
    check_contributions(p, K)


@pytest.mark.parametrize("K", [0, 1, 3, 8, 30])
@pytest.mark.parametrize("objective", OBJECTIVES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_contributions_edge_cases(rng, K, objective, activation):
    p = random_problem(rng, objective=objective, activation=activation, lengths=(9, 1, 4), n_classes=3, scale=0.8)
    check_contributions(p, K)


def test_contributions_pair_order_is_sentence_t_lag(rng):
    p = random_problem(rng, lengths=(4, 2, 3))
    c = contributions(p.model, p.batch, max_lag=2)
    expect = [(i, t, k) for i, T in enumerate((4, 2, 3)) for t in range(T) for k in range(min(t, 2) + 1)]
    np.testing.assert_array_equal(np.stack([c.sentence, c.t, c.lag], axis=1), np.array(expect))


def test_contributions_U_norm_is_zero_at_the_first_step(rng):
    p = random_problem(rng, lengths=(5, 3))
    c = contributions(p.model, p.batch, max_lag=6)
    first = (c.t - c.lag) == 0  # s(t-k-1) = s(-1) = 0
    assert np.all(c.U_norm[first] == 0.0)
    np.testing.assert_array_equal(c.V_norm, c.delta_norm)


def test_contributions_to_frame(rng):
    p = random_problem(rng, objective="final", lengths=(5, 3))
    c = contributions(p.model, p.batch, max_lag=2)
    df = c.to_frame()
    for col in ("sentence", "t", "lag", "delta_norm", "U_norm", "V_norm"):
        assert col in df.columns
    assert len(df) == c.lag.size == 3 + 3  # one loss per sentence: lags 0..2 each
    np.testing.assert_array_equal(df["lag"].to_numpy(), c.lag)
    np.testing.assert_allclose(df["delta_norm"].to_numpy(), c.delta_norm)


@pytest.mark.parametrize("G_V", [False, 0, 2, 5])
def test_contributions_without_what_was_not_asked_for(rng, G_V):
    """G_V for fewer lags (or none) and no V norms: everything else as before, G_V's lags equal the reference."""
    K = 5
    p = random_problem(rng, lengths=(7, 2, 5), vocab_size=6, hidden_size=3)
    ref = naive.contributions(*p.arrays, max_lag=K)
    c = contributions(p.model, p.batch, max_lag=K, G_V=G_V, V_norm=False)
    whole = contributions(p.model, p.batch, max_lag=K)
    assert c.V_norm is None and "V_norm" not in c.to_frame().columns
    for name in ("delta_norm", "U_norm", "G_U", "G_W"):
        np.testing.assert_array_equal(getattr(c, name), getattr(whole, name), err_msg=name)
    if G_V is False:
        assert c.G_V is None and c.G_VT is None and c.v_max_lag == -1
        with pytest.raises(ValueError, match="G_V"):
            c.truncated(0)
        return
    assert c.v_max_lag == G_V and c.G_V.shape == (G_V + 1, 3, 6)
    assert_close(c.G_V, ref.G_V[:G_V + 1], "G_V")
    assert_close(c.truncated(G_V).V, gradient(p.model, p.batch, Sliding(G_V)).V, "truncated V")
    if G_V < K:
        with pytest.raises(ValueError, match=rf"only up to lag {G_V}"):
            c.truncated(G_V + 1)


@pytest.mark.parametrize("bad,exc,match", [(6, ValueError, "G_V must be"), (-1, ValueError, "G_V"),
                                           (1.5, TypeError, "G_V")])
def test_contributions_G_V_is_checked(rng, bad, exc, match):
    p = random_problem(rng, lengths=(3,))
    with pytest.raises(exc, match=match):
        contributions(p.model, p.batch, max_lag=5, G_V=bad)
    with pytest.raises(TypeError, match="V_norm"):
        contributions(p.model, p.batch, max_lag=5, V_norm="no")


# =========================================================================== 3. invariants
@HYPOTHESIS
@given(p=problems(), extra=st.integers(0, 3))
def test_sum_of_lag_gradients_is_full_gradient(p, extra):
    c = contributions(p.model, p.batch, max_lag=p.max_T - 1 + extra)
    g = gradient(p.model, p.batch, scheme=Full())
    assert_close(c.G_U.sum(axis=0), g.U, "U")
    assert_close(c.G_V.sum(axis=0), g.V, "V")
    assert_close(c.G_W, g.W, "W")


@HYPOTHESIS
@given(p=problems(), K=st.integers(0, 10), data=st.data())
def test_lag_prefix_is_sliding_gradient(p, K, data):
    tau = data.draw(st.integers(0, K), label="tau")
    c = contributions(p.model, p.batch, max_lag=K)
    g = gradient(p.model, p.batch, scheme=Sliding(tau))
    t = c.truncated(tau)
    assert_grad_close(t, g, f"truncated({tau})")
    assert_close(c.G_U[:tau + 1].sum(axis=0), g.U, "direct sum U")
    assert_close(c.G_V[:tau + 1].sum(axis=0), g.V, "direct sum V")
    assert_close(c.G_W, g.W, "W")


@HYPOTHESIS
@given(p=problems(), h=st.integers(1, 10))
def test_chunked_equals_detach_every_h_steps(p, h):
    ref = detach_every_h_reference(*p.arrays, h)
    assert_grad_close(gradient(p.model, p.batch, scheme=Block(h, h)), ref, f"Block({h},{h})")
    assert_grad_close(gradient(p.model, p.batch, scheme=chunked(h)), ref, f"chunked({h})")


@HYPOTHESIS
@given(p=problems(), extra=st.integers(0, 5))
def test_sliding_tau_at_least_T_equals_full(p, extra):
    full = gradient(p.model, p.batch, scheme=Full())
    assert_grad_close(gradient(p.model, p.batch, scheme=Sliding(p.max_T - 1 + extra)), full)
    assert_grad_close(gradient(p.model, p.batch, scheme=Block(1, p.max_T + extra)), full, "block")


@pytest.mark.parametrize("a, b", [
    (Block(1, 1), Sliding(0)),
    (Block(1, 5), Sliding(4)),
    (mikolov(0, 3), chunked(3)),
    (mikolov(2, 3), Block(3, 5)),
    (chunked(4), "chunked:4"),
    (Sliding(3), "tbptt:3"),
    (Full(), "full"),
], ids=str)
def test_equivalent_schemes_give_equal_gradients(rng, a, b):
    p = random_problem(rng, lengths=(9, 4, 1))
    assert_grad_close(gradient(p.model, p.batch, scheme=a), gradient(p.model, p.batch, scheme=b))


@HYPOTHESIS
@given(p=problems(), spec=scheme_specs())
def test_gradient_loss_equals_forward_loss(p, spec):
    scheme, _ = make_scheme(spec)
    fw = forward(p.model, p.batch)
    g = gradient(p.model, p.batch, scheme=scheme)
    assert g.loss == pytest.approx(fw.loss, rel=1e-12, abs=1e-14)
    assert g.n_losses == fw.losses.size == p.batch.n_losses
    c = contributions(p.model, p.batch, max_lag=2)
    assert c.loss == pytest.approx(fw.loss, rel=1e-12, abs=1e-14)
    assert c.n_losses == fw.losses.size


def test_truncation_error_shrinks_to_zero(rng):
    """Sanity of the measure the package exists for: tau = T-1 has no gap, tau = 0 usually does."""
    p = random_problem(rng, lengths=(8, 8), hidden_size=4, scale=1.5)
    full = gradient(p.model, p.batch)
    gaps = [np.linalg.norm(gradient(p.model, p.batch, scheme=Sliding(tau)).U - full.U) for tau in range(8)]
    assert gaps[-1] == pytest.approx(0.0, abs=1e-12)
    assert gaps[0] > 0


# =========================================================================== 4. finite differences
@pytest.mark.parametrize("objective", OBJECTIVES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_full_gradient_matches_finite_differences(objective, activation):
    p = fd_problem(objective, activation)
    m = p.model
    g = gradient(m, p.batch, scheme=Full())
    numeric = naive.central_differences(lambda: forward(m, p.batch).loss, [m.U, m.V, m.W], FD_EPS)
    assert_fd_agrees(numeric, [g.U, g.V, g.W])


# =========================================================================== 5. determinism
def _results(p, K=4):
    fw = forward(p.model, p.batch, return_probs=True)
    out = [fw.s, fw.probs, fw.losses, np.array([fw.loss])]
    for scheme in (Full(), Sliding(2), Block(3, 5)):
        g = gradient(p.model, p.batch, scheme=scheme)
        out += [g.U, g.V, g.W, np.array([g.loss])]
    c = contributions(p.model, p.batch, max_lag=K)
    out += [c.delta_norm, c.U_norm, c.V_norm, c.G_U, c.G_V, c.G_W]
    return out


def _big_problem():
    rng = np.random.default_rng(99)
    lengths = rng.integers(1, 30, size=60)
    return random_problem(rng, hidden_size=8, vocab_size=25, lengths=lengths, activation="tanh", scale=0.5)


def test_results_are_bitwise_identical_run_to_run():
    p = _big_problem()
    first, second = _results(p), _results(p)
    for a, b in zip(first, second):
        assert np.array_equal(a, b)


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs at least 2 numba threads")
def test_results_do_not_depend_on_thread_count():
    p = _big_problem()
    old = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = _results(p)
        numba.set_num_threads(2)
        two = _results(p)
    finally:
        numba.set_num_threads(old)
    for a, b in zip(one, two):
        assert np.array_equal(a, b)


def test_big_problem_matches_naive():
    """The parallel paths (many sentences, several groups) against the reference."""
    p = _big_problem()
    assert_grad_close(gradient(p.model, p.batch, scheme=Sliding(3)), naive.gradient(*p.arrays, naive.sliding_limit(3)))
    check_contributions(p, 5)


#: The kernels the engine calls from Python (the others are inlined into them or called from them).
ENGINE_KERNELS = ("forward.forward_states", "output.softmax_rows", "output.output_tiles", "backward.injected_errors",
                  "backward.accumulate_deltas", "backward.scatter_rows", "contrib.sentence_gaps",
                  "train.sgd_minibatches")

_WARMUP_SCRIPT = """
import importlib, json, pkgutil
import numpy as np
from numba.core.registry import CPUDispatcher
import gradlab as gl
import gradlab.kernels as kernels
from gradlab.train import Trainer

mods = [importlib.import_module("gradlab.kernels." + m.name) for m in pkgutil.iter_modules(kernels.__path__)]
kernel = {mod.__name__.rsplit(".", 1)[1] + "." + name: f for mod in mods for name, f in vars(mod).items()
          if isinstance(f, CPUDispatcher) and f.py_func.__module__ == mod.__name__}
count = lambda: {name: len(f.signatures) for name, f in kernel.items()}
before = count()
seconds = gl.warmup()
after = count()
# other sizes, objectives, activations, schemes and options through every public entry point
rng = np.random.default_rng(0)
for activation in ("sigmoid", "tanh", "relu"):
    model = gl.RNN.init(7, 5, output_size=3, rng=1, activation=activation)
    xs = [rng.integers(0, 7, T) for T in (1, 6, 3, 9) * 10]
    for batch in (gl.Batch.for_classification(xs, rng.integers(0, 3, len(xs))),
                  gl.Batch.for_language_model(xs, [rng.integers(-1, 3, len(x)) for x in xs])):
        gl.forward(model, batch, return_probs=True, initial_states=rng.standard_normal((len(xs), 5)))
        for scheme in ("full", "tbptt:0", "tbptt:4", "block:2,5", "chunked:3", "mikolov:1,2"):
            gl.gradient(model, batch, scheme)
        gl.gradient(model, batch, "tbptt:2", initial_states=np.asfortranarray(rng.standard_normal((len(xs), 5))))
        gl.contributions(model, batch, max_lag=4)
        gl.sentence_gaps(model, batch, 3)
        for scheme, clip, carry in (("full", None, "before_update"), ("mikolov:1,2", 0.5, "after_update")):
            Trainer(scheme=scheme, clip=clip, carry=carry, batch_size=3, epochs=1, progress=False).fit(model, batch)
print("@@" + json.dumps(dict(seconds=seconds, before=before, after=after, final=count())))
"""


def test_warmup_compiles_every_kernel_the_engine_calls():
    """In a fresh process: importing compiles nothing; warmup() returns its time and compiles (or loads) every
    kernel, for the very signatures that later calls use: any batch, scheme or option then compiles nothing."""
    import json
    import os
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-c", _WARMUP_SCRIPT], cwd=root, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(next(line for line in proc.stdout.splitlines() if line.startswith("@@"))[2:])
    assert isinstance(out["seconds"], float) and out["seconds"] > 0
    assert set(ENGINE_KERNELS) <= set(out["before"])
    assert all(n == 0 for n in out["before"].values()), out["before"]
    assert all(out["after"][name] >= 1 for name in ENGINE_KERNELS), out["after"]
    assert out["final"] == out["after"]


_PURE_PYTHON_SCRIPT = """
import numpy as np
from gradlab import RNN, Batch, Sliding, forward, gradient, contributions
m = RNN.init(4, 3, rng=0, activation="tanh")
b = Batch.for_language_model([[0, 1, 2], [3]], [[1, 2, 3], [0]])
fw = forward(m, b, return_probs=True)
g = gradient(m, b, Sliding(1))
c = contributions(m, b, max_lag=2)
np.savez(OUT, s=fw.s, probs=fw.probs, losses=fw.losses, U=g.U, V=g.V, W=g.W, G_U=c.G_U, G_V=c.G_V)
"""


def test_kernels_run_as_plain_python(tmp_path):
    """NUMBA_DISABLE_JIT=1 (the coverage run) executes the kernels as Python, with bounds checks.

    Out-of-range indexing that compiled code silently tolerates fails here.
    """
    out = tmp_path / "out.npz"
    run_without_jit(_PURE_PYTHON_SCRIPT, out)
    from gradlab import RNN, Batch
    m = RNN.init(4, 3, rng=0, activation="tanh")
    b = Batch.for_language_model([[0, 1, 2], [3]], [[1, 2, 3], [0]])
    xs, ds = [np.array([0, 1, 2]), np.array([3])], [np.array([1, 2, 3]), np.array([0])]
    got = np.load(out)
    ref = naive.forward(m.U, m.V, m.W, "tanh", xs, ds)
    assert_close(got["s"], ref.s)
    assert_close(got["probs"], ref.probs)
    assert_close(got["losses"], ref.losses)
    g = naive.gradient(m.U, m.V, m.W, "tanh", xs, ds, naive.sliding_limit(1))
    assert_close(got["U"], g.U)
    assert_close(got["V"], g.V)
    assert_close(got["W"], g.W)
    c = naive.contributions(m.U, m.V, m.W, "tanh", xs, ds, 2)
    assert_close(got["G_U"], c.G_U)
    assert_close(got["G_V"], c.G_V)
    assert b.n_losses == 4
