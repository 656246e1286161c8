"""gradlab.compat.coursework.RNN against a literal re-implementation of the coursework's RNN.

``CourseworkRNN`` below is written the way the coursework's equations read (and the
way a student writes them): plain numpy, one time step at a time, the sigmoid, ``s``
with T + 1 rows whose last row is the zero initial state (so ``s[t - 1]`` works at
t = 0), and *update directions* (negative gradients) accumulated in deltaU/V/W.
It shares no code with gradlab. Every public method of the compat class is compared
with it on random sizes (hypothesis) and on explicit edge cases (T = 1, H = 1,
vocabulary of one word, steps = 0, steps >= T).

Layout:
1. the literal reference;
2. forward: predict, losses, accuracies;
3. backward: acc_deltas*, accumulation, in-place weights, the y and s given;
4. agreement with gradlab.gradient (update = -gradient) for Full/Sliding;
5. construction, seeds, apply_deltas/reset_deltas;
6. bad input.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from gradlab import Batch, Full, Sliding, gradient
from gradlab.compat.coursework import RNN
from gradlab.model import RNN as Model

# --------------------------------------------------------------------------- tolerances
#: Compat vs literal reference: the same float64 maths summed in a different order
#: (the kernels carry the error signals of several losses back together, the reference
#: walks loss by loss). A few ulps per term over at most ~T^2 terms: far below 1e-9.
RTOL = 1e-9
#: Entries that cancel to ~0 (an unused column of V is exactly 0, a balanced sum ~1e-17).
ATOL = 1e-12
#: Discrete outputs (argmax, p(d0) > p(d1)) are only compared when the margin between the
#: competing probabilities exceeds this, many times the ~1e-15 rounding of the two forwards.
TIE_MARGIN = 1e-9
#: The coursework initialises every matrix from N(0, 0.1).
INIT_STD = np.sqrt(0.1)
#: Weight scale of the random problems: large enough that the recurrence matters
#: (the signals of earlier steps are far from negligible), small enough for no saturation.
WEIGHT_SCALE = 1.0

HYPOTHESIS = settings(max_examples=40, deadline=None)


# =========================================================================== 1. reference
def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def softmax(x):
    e = np.exp(x - np.max(x))
    return e / np.sum(e)


def make_onehot(i, n):
    v = np.zeros(n)
    v[i] = 1.0
    return v


class CourseworkRNN:
    """The coursework's RNN, literally: per-timestep loops, updates = negative gradients."""

    def __init__(self, U, V, W):
        self.U, self.V, self.W = np.array(U, dtype=float), np.array(V, dtype=float), np.array(W, dtype=float)
        self.hidden_dims = self.U.shape[0]
        self.vocab_size = self.V.shape[1]
        self.out_vocab_size = self.W.shape[0]
        self.deltaU = np.zeros_like(self.U)
        self.deltaV = np.zeros_like(self.V)
        self.deltaW = np.zeros_like(self.W)

    def predict(self, x):
        s = np.zeros((len(x) + 1, self.hidden_dims))
        y = np.zeros((len(x), self.out_vocab_size))
        for t in range(len(x)):
            net_in = self.V @ make_onehot(x[t], self.vocab_size) + self.U @ s[t - 1]
            s[t] = sigmoid(net_in)
            y[t] = softmax(self.W @ s[t])
        return y, s

    def compute_loss(self, x, d):
        y, _ = self.predict(x)
        loss = 0.0
        for t in range(len(x)):
            loss -= np.log(y[t][d[t]])
        return loss

    def compute_mean_loss(self, X, D):
        total = sum(self.compute_loss(x, d) for x, d in zip(X, D))
        return total / sum(len(d) for d in D)

    def compute_loss_np(self, x, d):
        y, _ = self.predict(x)
        return -np.log(y[-1][d[0]])

    def compute_acc_np(self, x, d):
        y, _ = self.predict(x)
        return 1 if np.argmax(y[-1]) == d[0] else 0

    def compare_num_pred(self, x, d):
        y, _ = self.predict(x)
        return 1 if y[-1][d[0]] > y[-1][d[1]] else 0

    def _back(self, x, t, delta_out, s, steps):
        """One loss at step t with output error delta_out = onehot(d) - y[t]."""
        self.deltaW += np.outer(delta_out, s[t])
        delta_in = (self.W.T @ delta_out) * s[t] * (1 - s[t])
        self.deltaV[:, x[t]] += delta_in
        self.deltaU += np.outer(delta_in, s[t - 1])
        tau = 1
        while tau <= steps and t - tau >= 0:
            delta_in = (self.U.T @ delta_in) * s[t - tau] * (1 - s[t - tau])
            self.deltaV[:, x[t - tau]] += delta_in
            self.deltaU += np.outer(delta_in, s[t - tau - 1])
            tau += 1

    def acc_deltas(self, x, d, y, s):
        for t in reversed(range(len(x))):
            self._back(x, t, make_onehot(d[t], self.out_vocab_size) - y[t], s, 0)

    def acc_deltas_bptt(self, x, d, y, s, steps):
        for t in reversed(range(len(x))):
            self._back(x, t, make_onehot(d[t], self.out_vocab_size) - y[t], s, steps)

    def acc_deltas_np(self, x, d, y, s):
        t = len(x) - 1
        self._back(x, t, make_onehot(d[0], self.out_vocab_size) - y[t], s, 0)

    def acc_deltas_bptt_np(self, x, d, y, s, steps):
        t = len(x) - 1
        self._back(x, t, make_onehot(d[0], self.out_vocab_size) - y[t], s, steps)


# --------------------------------------------------------------------------- helpers
def assert_close(actual, expected, what="", rtol=RTOL, atol=ATOL):
    np.testing.assert_allclose(np.asarray(actual, dtype=float), np.asarray(expected, dtype=float),
                               rtol=rtol, atol=atol, err_msg=what)


def assert_deltas_close(r, ref, what=""):
    assert_close(r.deltaU, ref.deltaU, f"{what} deltaU")
    assert_close(r.deltaV, ref.deltaV, f"{what} deltaV")
    assert_close(r.deltaW, ref.deltaW, f"{what} deltaW")


def make_pair(rng, vocab, hidden, out, scale=WEIGHT_SCALE):
    """A compat RNN whose weights were written in place, and the literal reference with copies of them."""
    r = RNN(vocab, hidden, out, rng=int(rng.integers(2**31)))
    r.U[...] = rng.standard_normal(r.U.shape) * scale
    r.V[...] = rng.standard_normal(r.V.shape) * scale
    r.W[...] = rng.standard_normal(r.W.shape) * scale
    return r, CourseworkRNN(r.U, r.V, r.W)


def ids(rng, upper, T):
    return rng.integers(0, upper, size=T).astype(np.int64)


@st.composite
def problems(draw, max_T=8):
    """(rng, vocab, H, out, T, steps), steps covering 0, < T, = T - 1 and >= T."""
    vocab = draw(st.integers(1, 6))
    hidden = draw(st.integers(1, 5))
    out = draw(st.integers(1, 6))
    T = draw(st.integers(1, max_T))
    steps = draw(st.integers(0, max_T + 2))
    seed = draw(st.integers(0, 2**32 - 1))
    return np.random.default_rng(seed), vocab, hidden, out, T, steps


#: Explicit edge cases: (vocab, H, out, T, steps).
EDGES = [
    (1, 1, 1, 1, 0),    # everything of size one: y == 1, every update is zero
    (1, 3, 2, 4, 2),    # one input word, number prediction output
    (4, 1, 4, 5, 3),    # H = 1
    (5, 3, 5, 1, 0),    # T = 1
    (5, 3, 5, 1, 4),    # T = 1, steps > T
    (5, 3, 5, 6, 0),    # one-step BP
    (5, 3, 5, 6, 5),    # steps = T - 1: full BPTT
    (5, 3, 5, 6, 50),   # steps >> T
    (3, 4, 2, 7, 3),    # |O| = 2 (number prediction)
    (6, 2, 1, 3, 1),    # |O| = 1
]


# =========================================================================== 2. forward
@HYPOTHESIS
@given(problems())
def test_predict_matches_reference(p):
    rng, vocab, hidden, out, T, _ = p
    r, ref = make_pair(rng, vocab, hidden, out)
    x = ids(rng, vocab, T)
    y, s = r.predict(x)
    y_ref, s_ref = ref.predict(x)
    assert y.shape == (T, out) and s.shape == (T + 1, hidden)
    assert y.dtype == np.float64 and s.dtype == np.float64
    assert np.all(s[-1] == 0.0), "the last row of s is the zero initial state"
    assert_close(y, y_ref, "y")
    assert_close(s, s_ref, "s")
    assert_close(y.sum(axis=1), np.ones(T), "rows of y are distributions")


@pytest.mark.parametrize("vocab, hidden, out, T, steps", EDGES)
def test_predict_edge_cases(vocab, hidden, out, T, steps, rng):
    r, ref = make_pair(rng, vocab, hidden, out)
    x = ids(rng, vocab, T)
    y, s = r.predict(x)
    y_ref, s_ref = ref.predict(x)
    assert y.shape == (T, out) and s.shape == (T + 1, hidden)
    assert np.all(s[T] == 0.0)
    assert_close(y, y_ref)
    assert_close(s, s_ref)


def test_predict_accepts_lists_and_int_dtypes(rng):
    r, ref = make_pair(rng, 5, 3, 5)
    x = [0, 4, 2]
    y_ref, s_ref = ref.predict(x)
    for form in (x, np.array(x, dtype=np.int32), np.array(x, dtype=np.uint8), tuple(x)):
        y, s = r.predict(form)
        assert_close(y, y_ref)
        assert_close(s, s_ref)


@HYPOTHESIS
@given(problems())
def test_losses_match_reference(p):
    rng, vocab, hidden, out, T, _ = p
    r, ref = make_pair(rng, vocab, hidden, out)
    x, d = ids(rng, vocab, T), ids(rng, out, T)
    assert_close(r.compute_loss(x, d), ref.compute_loss(x, d), "compute_loss")
    assert_close(r.compute_loss_np(x, d[:1]), ref.compute_loss_np(x, d[:1]), "compute_loss_np")
    lengths = rng.integers(1, 6, size=int(rng.integers(1, 4)))
    X = [ids(rng, vocab, n) for n in lengths]
    D = [ids(rng, out, n) for n in lengths]
    assert_close(r.compute_mean_loss(X, D), ref.compute_mean_loss(X, D), "compute_mean_loss")


def test_compute_mean_loss_divides_by_words_in_D(rng):
    """Mean over words, not over sentences: sentences of different lengths weigh by their length."""
    r, _ = make_pair(rng, 6, 3, 6)
    X = [ids(rng, 6, 1), ids(rng, 6, 7), ids(rng, 6, 3)]
    D = [ids(rng, 6, 1), ids(rng, 6, 7), ids(rng, 6, 3)]
    total = sum(r.compute_loss(x, d) for x, d in zip(X, D))
    assert_close(r.compute_mean_loss(X, D), total / 11)
    assert_close(r.compute_mean_loss(X[:1], D[:1]), r.compute_loss(X[0], D[0]))


def test_loss_of_one_word_vocabulary_is_zero(rng):
    r, _ = make_pair(rng, 1, 2, 1)
    assert r.compute_loss([0, 0, 0], [0, 0, 0]) == pytest.approx(0.0, abs=ATOL)
    assert r.compute_loss_np([0, 0], [0]) == pytest.approx(0.0, abs=ATOL)


def test_compute_loss_np_is_final_step_loss(rng):
    """compute_loss_np only counts the last step, against d[0]."""
    r, _ = make_pair(rng, 5, 3, 2)
    x = [1, 3, 0, 4]
    y, _ = r.predict(x)
    for label in (0, 1):
        assert_close(r.compute_loss_np(x, [label]), -np.log(y[-1][label]))
        assert_close(r.compute_loss_np(np.array(x), np.array([label])), -np.log(y[-1][label]))


@HYPOTHESIS
@given(problems(), st.integers(0, 2**32 - 1))
def test_number_prediction_scores_match_reference(p, seed2):
    rng, vocab, hidden, out, T, _ = p
    r, ref = make_pair(rng, vocab, hidden, out, scale=3.0)  # larger weights: clearer winners
    x = ids(rng, vocab, T)
    d = ids(np.random.default_rng(seed2), out, 2)
    y_ref = ref.predict(x)[0][-1]
    if np.sort(y_ref)[-1] - (np.sort(y_ref)[-2] if out > 1 else -1.0) > TIE_MARGIN:
        assert r.compute_acc_np(x, d[:1]) == ref.compute_acc_np(x, d[:1])
        assert r.compute_acc_np(x, d) == ref.compute_acc_np(x, d), "only d[0] counts"
    if d[0] == d[1] or abs(y_ref[d[0]] - y_ref[d[1]]) > TIE_MARGIN:
        assert r.compare_num_pred(x, d) == ref.compare_num_pred(x, d)
    assert isinstance(r.compute_acc_np(x, d[:1]), int)
    assert isinstance(r.compare_num_pred(x, d), int)


def test_number_prediction_scores_explicit():
    """A model whose final-step output is known: W pushes class 1 up whatever s is (s > 0)."""
    r = RNN(3, 2, 2, rng=0)
    r.W[...] = [[-5.0, -5.0], [5.0, 5.0]]
    x = [0, 2, 1]
    assert r.compute_acc_np(x, [1]) == 1
    assert r.compute_acc_np(x, [0]) == 0
    assert r.compare_num_pred(x, [1, 0]) == 1
    assert r.compare_num_pred(x, [0, 1]) == 0
    assert r.compare_num_pred(x, [1, 1]) == 0, "strictly greater"
    r.W[...] = 0.0  # a tie everywhere: argmax is the first class
    assert r.compute_acc_np(x, [0]) == 1
    assert r.compute_acc_np(x, [1]) == 0


# =========================================================================== 3. backward
METHODS = ("acc_deltas", "acc_deltas_bptt", "acc_deltas_np", "acc_deltas_bptt_np")


def call(obj, method, x, d, y, s, steps):
    if method.startswith("acc_deltas_bptt"):
        return getattr(obj, method)(x, d, y, s, steps)
    return getattr(obj, method)(x, d, y, s)


def targets(rng, method, out, T):
    return ids(rng, out, T) if not method.endswith("_np") else ids(rng, out, 1)


@HYPOTHESIS
@given(problems(), st.sampled_from(METHODS))
def test_acc_deltas_match_reference(p, method):
    rng, vocab, hidden, out, T, steps = p
    r, ref = make_pair(rng, vocab, hidden, out)
    x, d = ids(rng, vocab, T), targets(rng, method, out, T)
    y, s = r.predict(x)
    call(r, method, x, d, y, s, steps)
    call(ref, method, x, d, *ref.predict(x), steps)
    assert_deltas_close(r, ref, method)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("vocab, hidden, out, T, steps", EDGES)
def test_acc_deltas_edge_cases(vocab, hidden, out, T, steps, method, rng):
    r, ref = make_pair(rng, vocab, hidden, out)
    x, d = ids(rng, vocab, T), targets(rng, method, out, T)
    call(r, method, x, d, *r.predict(x), steps)
    call(ref, method, x, d, *ref.predict(x), steps)
    assert_deltas_close(r, ref, f"{method} {(vocab, hidden, out, T, steps)}")
    if T == 1:
        assert np.all(r.deltaU == 0.0), "s(-1) = 0: with T = 1, U gets nothing"
    if out == 1:
        for a in (r.deltaU, r.deltaV, r.deltaW):
            assert np.all(a == 0.0), "one output class: y = 1 = onehot(d), no error"


def test_bptt_steps_zero_equals_one_step_bp(rng):
    r1, _ = make_pair(rng, 5, 3, 5)
    r2 = RNN(5, 3, 5, rng=0)
    r2.U[...], r2.V[...], r2.W[...] = r1.U, r1.V, r1.W
    x, d = ids(rng, 5, 6), ids(rng, 5, 6)
    y, s = r1.predict(x)
    r1.acc_deltas(x, d, y, s)
    r2.acc_deltas_bptt(x, d, y, s, 0)
    for a, b in ((r1.deltaU, r2.deltaU), (r1.deltaV, r2.deltaV), (r1.deltaW, r2.deltaW)):
        np.testing.assert_array_equal(a, b)
    r1.reset_deltas()
    r2.reset_deltas()
    r1.acc_deltas_np(x, d[:1], y, s)
    r2.acc_deltas_bptt_np(x, d[:1], y, s, 0)
    for a, b in ((r1.deltaU, r2.deltaU), (r1.deltaV, r2.deltaV), (r1.deltaW, r2.deltaW)):
        np.testing.assert_array_equal(a, b)


def test_bptt_steps_saturate_at_T_minus_1(rng):
    """steps >= T - 1 all give the full BPTT updates; steps = T - 2 misses lag T - 1 of V.

    U's lag T - 1 term is delta (x) s(-1) = 0, so for U already steps = T - 2 is full.
    """
    T = 5
    r, _ = make_pair(rng, 4, 3, 4)
    x, d = ids(rng, 4, T), ids(rng, 4, T)
    y, s = r.predict(x)
    results = {}
    for steps in (T - 3, T - 2, T - 1, T, 10 * T, 10**12):
        r.reset_deltas()
        r.acc_deltas_bptt(x, d, y, s, steps)
        results[steps] = (r.deltaU.copy(), r.deltaV.copy())
    for steps in (T, 10 * T, 10**12):
        assert_close(results[steps][0], results[T - 1][0])
        assert_close(results[steps][1], results[T - 1][1])
    assert_close(results[T - 2][0], results[T - 1][0])
    assert not np.allclose(results[T - 2][1], results[T - 1][1], rtol=1e-6, atol=0)
    assert not np.allclose(results[T - 3][0], results[T - 1][0], rtol=1e-6, atol=0)


@pytest.mark.parametrize("method", METHODS)
def test_deltas_accumulate_over_calls(method, rng):
    """Several calls add up, exactly like the reference's running sums."""
    r, ref = make_pair(rng, 6, 3, 4)
    start = rng.standard_normal(r.deltaU.shape)  # accumulators need not start at zero
    r.deltaU[...] = start
    ref.deltaU[...] = start
    singles = []
    for T, steps in ((4, 2), (1, 3), (7, 1), (4, 2)):
        x, d = ids(rng, 6, T), targets(rng, method, 4, T)
        y, s = r.predict(x)
        call(r, method, x, d, y, s, steps)
        call(ref, method, x, d, *ref.predict(x), steps)
        solo = RNN(6, 3, 4, rng=0)
        solo.U[...], solo.V[...], solo.W[...] = r.U, r.V, r.W
        call(solo, method, x, d, y, s, steps)
        singles.append(solo)
    assert_deltas_close(r, ref, method)
    assert_close(r.deltaU, start + sum(o.deltaU for o in singles))
    assert_close(r.deltaV, sum(o.deltaV for o in singles))
    assert_close(r.deltaW, sum(o.deltaW for o in singles))


def test_deltas_are_updated_in_place(rng):
    r, _ = make_pair(rng, 5, 3, 5)
    dU, dV, dW = r.deltaU, r.deltaV, r.deltaW
    x, d = ids(rng, 5, 4), ids(rng, 5, 4)
    r.acc_deltas_bptt(x, d, *r.predict(x), 2)
    assert r.deltaU is dU and r.deltaV is dV and r.deltaW is dW
    assert np.any(dU != 0) and np.any(dV != 0) and np.any(dW != 0)


def test_weights_written_in_place_are_used(rng):
    """U, V, W changed by the user between calls (in place, by slices, or rebound) are read afresh."""
    r, ref = make_pair(rng, 5, 3, 5)
    x, d = ids(rng, 5, 5), ids(rng, 5, 5)
    r.predict(x)
    r.compute_loss(x, d)
    # in place, element by element
    r.U[0, 1] += 0.7
    ref.U[0, 1] += 0.7
    r.V[:, 2] = -1.5
    ref.V[:, 2] = -1.5
    r.W *= 2.0
    ref.W *= 2.0
    assert_close(r.predict(x)[0], ref.predict(x)[0])
    assert_close(r.compute_loss(x, d), ref.compute_loss(x, d))
    r.acc_deltas_bptt(x, d, *r.predict(x), 3)
    ref.acc_deltas_bptt(x, d, *ref.predict(x), 3)
    assert_deltas_close(r, ref, "after in-place writes")
    # rebound to new arrays, one of them not C-contiguous and one a list of lists
    U = np.asfortranarray(rng.standard_normal((3, 3)))
    r.U, ref.U = U, U.copy()
    W = rng.standard_normal((5, 3))
    r.W, ref.W = W.tolist(), W.copy()
    assert_close(r.predict(x)[1], ref.predict(x)[1])
    assert_close(r.compute_loss_np(x, d[:1]), ref.compute_loss_np(x, d[:1]))
    r.reset_deltas()
    ref.deltaU[...], ref.deltaV[...], ref.deltaW[...] = 0, 0, 0
    r.acc_deltas_bptt_np(x, d[:1], *r.predict(x), 4)
    ref.acc_deltas_bptt_np(x, d[:1], *ref.predict(x), 4)
    assert_deltas_close(r, ref, "after rebinding")


def perturbed(rng, y, s, keep_last_row=True):
    """Arrays of predict's shapes that no forward pass produced: y rows positive (not normalised), s in (0, 1)."""
    y2 = y * rng.uniform(0.5, 1.5, size=y.shape) + rng.uniform(0.0, 0.3, size=y.shape)
    s2 = rng.uniform(0.05, 0.95, size=s.shape)
    if keep_last_row:
        s2[-1] = 0.0
    return y2, s2


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("T, steps", [(1, 0), (1, 2), (5, 0), (5, 2), (5, 4), (5, 9)])
def test_acc_deltas_use_the_y_and_s_given(method, T, steps, rng):
    """The coursework's equations read y and s as given: f' = s(1 - s) of the given s, y - onehot(d) of the given y."""
    r, ref = make_pair(rng, 5, 3, 4)
    x, d = ids(rng, 5, T), targets(rng, method, 4, T)
    y, s = r.predict(x)
    y2, s2 = perturbed(rng, y, s)
    call(r, method, x, d, y2, s2, steps)
    call(ref, method, x, d, y2, s2, steps)
    assert_deltas_close(r, ref, f"{method} on given y, s")
    honest = CourseworkRNN(r.U, r.V, r.W)
    call(honest, method, x, d, y, s, steps)
    assert not np.allclose(r.deltaW, honest.deltaW), "the perturbed arrays must change the result"


@pytest.mark.parametrize("method", METHODS)
def test_acc_deltas_accept_s_and_y_as_lists(method, rng):
    r, ref = make_pair(rng, 5, 3, 4)
    x, d = ids(rng, 5, 4), targets(rng, method, 4, 4)
    y, s = r.predict(x)
    call(r, method, list(x), list(d), y.tolist(), s.tolist(), 2)
    call(ref, method, x, d, y, s, 2)
    assert_deltas_close(r, ref, method)


@pytest.mark.parametrize("method", ["acc_deltas", "acc_deltas_bptt", "acc_deltas_bptt_np"])
def test_acc_deltas_read_the_given_last_row_of_s(method, rng):
    """s[t - 1] at t = 0 is s[-1]: a student's s whose last row is not zero changes deltaU, literally.

    (acc_deltas reaches t = 0 from the loss at t = 0; the bptt variants with steps = 3 from t = 3.)
    """
    r, ref = make_pair(rng, 5, 3, 4)
    x, d = ids(rng, 5, 4), targets(rng, method, 4, 4)
    y, s = r.predict(x)
    y2, s2 = perturbed(rng, y, s, keep_last_row=False)
    call(r, method, x, d, y2, s2, 3)
    call(ref, method, x, d, y2, s2, 3)
    assert_deltas_close(r, ref, method)


def test_np_variants_use_only_the_final_step(rng):
    """Rows of y before T - 1 do not matter to the _np variants; d may hold more than one id (d[0] counts)."""
    r, ref = make_pair(rng, 5, 3, 2)
    x = ids(rng, 5, 6)
    y, s = r.predict(x)
    y2 = y.copy()
    y2[:-1] = 123.0
    r.acc_deltas_bptt_np(x, [1, 0], y2, s, 3)
    ref.acc_deltas_bptt_np(x, [1], y, s, 3)
    assert_deltas_close(r, ref)


# =========================================================================== 4. vs gradlab.gradient
@HYPOTHESIS
@given(problems())
def test_updates_are_negative_gradients(p):
    """acc_deltas_bptt(steps) = -gradient(Sliding(steps)); steps >= T - 1 = -gradient(Full()); both objectives."""
    rng, vocab, hidden, out, T, steps = p
    r, _ = make_pair(rng, vocab, hidden, out)
    model = Model(r.U.copy(), r.V.copy(), r.W.copy(), "sigmoid")
    x, d = ids(rng, vocab, T), ids(rng, out, T)
    y, s = r.predict(x)
    lm = Batch.for_language_model([x], [d])
    final = Batch.for_classification([x], d[:1])

    r.acc_deltas_bptt(x, d, y, s, steps)
    g = gradient(model, lm, Sliding(steps))
    assert_close(r.deltaU, -g.U)
    assert_close(r.deltaV, -g.V)
    assert_close(r.deltaW, -g.W)
    if steps >= T - 1:
        g_full = gradient(model, lm, Full())
        assert_close(r.deltaU, -g_full.U)
        assert_close(r.deltaV, -g_full.V)

    r.reset_deltas()
    r.acc_deltas(x, d, y, s)
    g0 = gradient(model, lm, Sliding(0))
    assert_close(r.deltaU, -g0.U)
    assert_close(r.deltaV, -g0.V)
    assert_close(r.deltaW, -g0.W)

    r.reset_deltas()
    r.acc_deltas_bptt_np(x, d[:1], y, s, steps)
    g = gradient(model, final, Full() if steps >= T - 1 else Sliding(steps))
    assert_close(r.deltaU, -g.U)
    assert_close(r.deltaV, -g.V)
    assert_close(r.deltaW, -g.W)

    r.reset_deltas()
    r.acc_deltas_np(x, d[:1], y, s)
    g0 = gradient(model, final, Sliding(0))
    assert_close(r.deltaU, -g0.U)
    assert_close(r.deltaV, -g0.V)
    assert_close(r.deltaW, -g0.W)

    # the losses agree with the engine's too
    assert_close(r.compute_loss(x, d), gradient(model, lm).loss)
    assert_close(r.compute_loss_np(x, d[:1]), gradient(model, final).loss)


# =========================================================================== 5. construction
def test_shapes_and_zero_accumulators():
    r = RNN(7, 3, 2, rng=1)
    assert (r.vocab_size, r.hidden_dims, r.out_vocab_size) == (7, 3, 2)
    assert r.U.shape == (3, 3) and r.V.shape == (3, 7) and r.W.shape == (2, 3)
    assert r.deltaU.shape == (3, 3) and r.deltaV.shape == (3, 7) and r.deltaW.shape == (2, 3)
    for a in (r.U, r.V, r.W, r.deltaU, r.deltaV, r.deltaW):
        assert a.dtype == np.float64
    for a in (r.deltaU, r.deltaV, r.deltaW):
        assert np.all(a == 0.0)


def test_integer_seed_is_reproducible():
    a, b, c = RNN(6, 4, 6, rng=3), RNN(6, 4, 6, rng=3), RNN(6, 4, 6, rng=4)
    for name in ("U", "V", "W"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
        assert not np.array_equal(getattr(a, name), getattr(c, name))
    g1 = RNN(6, 4, 6, rng=np.random.default_rng(3))
    np.testing.assert_array_equal(g1.U, a.U)


def test_seed_does_not_touch_global_state():
    np.random.seed(11)
    expected = np.random.randn(3)
    np.random.seed(11)
    RNN(5, 3, 5, rng=1)
    np.testing.assert_array_equal(np.random.randn(3), expected)


def test_no_seed_uses_numpy_global_state_like_the_coursework():
    """np.random.seed(k) then RNN(...) gives the same weights twice; the draws are randn * sqrt(0.1)."""
    vocab, hidden, out = 7, 4, 3
    n = hidden * hidden + hidden * vocab + out * hidden
    np.random.seed(5)
    a = RNN(vocab, hidden, out)
    after_a = np.random.randn()
    np.random.seed(5)
    b = RNN(vocab, hidden, out)
    c = RNN(vocab, hidden, out)  # the global state moved on
    for name in ("U", "V", "W"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
        assert not np.array_equal(getattr(a, name), getattr(c, name))
    # exactly n standard normals were drawn, and they are the weights (in some order) times sqrt(0.1)
    np.random.seed(5)
    draws = np.random.randn(n)
    assert np.random.randn() == after_a
    weights = np.concatenate([a.U.ravel(), a.V.ravel(), a.W.ravel()])
    np.testing.assert_allclose(np.sort(weights), np.sort(draws * INIT_STD), rtol=1e-15, atol=0)


def test_initial_scale_is_sqrt_point_one():
    r = RNN(300, 60, 300, rng=0)
    w = np.concatenate([r.U.ravel(), r.V.ravel(), r.W.ravel()])
    assert abs(w.std() - INIT_STD) < 0.01 and abs(w.mean()) < 0.01


def test_apply_deltas_and_reset(rng):
    r, _ = make_pair(rng, 5, 3, 5)
    U0, V0, W0 = r.U.copy(), r.V.copy(), r.W.copy()
    arrays = (r.U, r.V, r.W, r.deltaU, r.deltaV, r.deltaW)
    x, d = ids(rng, 5, 4), ids(rng, 5, 4)
    r.acc_deltas_bptt(x, d, *r.predict(x), 2)
    dU, dV, dW = r.deltaU.copy(), r.deltaV.copy(), r.deltaW.copy()
    loss_before = r.compute_loss(x, d)
    r.apply_deltas(0.05)
    assert_close(r.U, U0 + 0.05 * dU, rtol=1e-15)
    assert_close(r.V, V0 + 0.05 * dV, rtol=1e-15)
    assert_close(r.W, W0 + 0.05 * dW, rtol=1e-15)
    for a in (r.deltaU, r.deltaV, r.deltaW):
        assert np.all(a == 0.0)
    assert all(a is b for a, b in zip(arrays, (r.U, r.V, r.W, r.deltaU, r.deltaV, r.deltaW))), "in place"
    assert r.compute_loss(x, d) < loss_before, "a small step along the update lowers the loss"
    # reset_deltas alone
    r.acc_deltas(x, d, *r.predict(x))
    U1 = r.U.copy()
    r.reset_deltas()
    for a in (r.deltaU, r.deltaV, r.deltaW):
        assert np.all(a == 0.0)
    np.testing.assert_array_equal(r.U, U1)
    r.apply_deltas(1.0)  # nothing accumulated: nothing changes
    np.testing.assert_array_equal(r.U, U1)


def test_training_with_full_bptt_matches_reference(rng):
    """A few SGD epochs through acc_deltas_bptt/apply_deltas follow the reference step for step."""
    r, ref = make_pair(rng, 5, 3, 5, scale=0.5)
    X = [ids(rng, 5, n) for n in (3, 5, 2)]
    D = [ids(rng, 5, n) for n in (3, 5, 2)]
    for _ in range(3):
        for x, d in zip(X, D):
            r.acc_deltas_bptt(x, d, *r.predict(x), 2)
            ref.acc_deltas_bptt(x, d, *ref.predict(x), 2)
        r.apply_deltas(0.1)
        for name in ("U", "V", "W"):
            w = getattr(ref, name)
            w += 0.1 * getattr(ref, "delta" + name)
            getattr(ref, "delta" + name)[...] = 0.0
    for name in ("U", "V", "W"):
        assert_close(getattr(r, name), getattr(ref, name), name, rtol=1e-8)
    assert_close(r.compute_mean_loss(X, D), ref.compute_mean_loss(X, D), rtol=1e-8)


# =========================================================================== 6. bad input
@pytest.fixture
def model(rng):
    r, _ = make_pair(rng, 5, 3, 4)
    return r


X_OK = [0, 4, 2]
D_OK = [3, 0, 1]


def test_out_of_range_input_id_raises(model):
    with pytest.raises(IndexError, match=r"^x holds id 5"):
        model.predict([0, 5, 1])
    with pytest.raises(IndexError, match=r"^x holds id -1"):
        model.compute_loss([0, -1, 1], D_OK)
    with pytest.raises(IndexError, match=r"^x holds id 9"):
        model.compute_acc_np([9], [0])
    with pytest.raises(IndexError, match=r"^x holds id 7"):
        model.acc_deltas([0, 7, 1], D_OK, *model.predict(X_OK))


def test_out_of_range_target_id_raises(model):
    with pytest.raises(IndexError, match=r"^d holds id 4"):
        model.compute_loss(X_OK, [0, 4, 1])
    with pytest.raises(IndexError, match=r"^d holds id -2"):
        model.compute_loss_np(X_OK, [-2])
    with pytest.raises(IndexError, match=r"^d holds id 4"):
        model.compare_num_pred(X_OK, [0, 4])
    with pytest.raises(IndexError, match=r"^d holds id 4"):
        model.compute_acc_np(X_OK, [4])
    # -1 is gradlab's internal "no loss here" marker: as a target it must be refused, not skipped
    with pytest.raises(IndexError, match=r"^d holds id -1"):
        model.compute_loss(X_OK, [0, -1, 1])
    with pytest.raises(IndexError, match=r"^d holds id -1"):
        model.acc_deltas_bptt(X_OK, [-1, 0, 1], *model.predict(X_OK), 2)
    with pytest.raises(IndexError, match=r"^D\[1\] holds id 6"):
        model.compute_mean_loss([X_OK, X_OK], [D_OK, [0, 6, 1]])
    with pytest.raises(IndexError, match=r"^X\[0\] holds id 5"):
        model.compute_mean_loss([[5, 0, 0], X_OK], [D_OK, D_OK])


@pytest.mark.parametrize("method", METHODS)
def test_bad_target_leaves_deltas_untouched(method, model):
    y, s = model.predict(X_OK)
    model.acc_deltas(X_OK, D_OK, y, s)
    before = [a.copy() for a in (model.deltaU, model.deltaV, model.deltaW)]
    bad = [0, 9, 1] if not method.endswith("_np") else [9]
    with pytest.raises(IndexError, match=r"^d holds id 9"):
        call(model, method, X_OK, bad, y, s, 1)
    for a, b in zip(before, (model.deltaU, model.deltaV, model.deltaW)):
        np.testing.assert_array_equal(a, b)


def test_empty_sentence_raises(model):
    with pytest.raises(ValueError, match=r"^x is an empty sentence"):
        model.predict([])
    with pytest.raises(ValueError, match=r"^x is an empty sentence"):
        model.compute_loss([], [])
    with pytest.raises(ValueError, match=r"^x is an empty sentence"):
        model.acc_deltas_bptt_np([], [0], np.zeros((0, 4)), np.zeros((1, 3)), 1)
    with pytest.raises(ValueError, match=r"^X\[1\] is an empty sentence"):
        model.compute_mean_loss([X_OK, []], [D_OK, []])


def test_target_length_mismatch_raises(model):
    with pytest.raises(ValueError, match=r"^d must hold 3 id"):
        model.compute_loss(X_OK, [0, 1])
    with pytest.raises(ValueError, match=r"^d must hold 3 id"):
        model.acc_deltas(X_OK, [0, 1, 2, 3], *model.predict(X_OK))
    with pytest.raises(ValueError, match=r"^d must hold 2 id"):
        model.compare_num_pred(X_OK, [0])
    with pytest.raises(ValueError, match=r"^d must hold 1 id"):
        model.acc_deltas_np(X_OK, [], *model.predict(X_OK))
    with pytest.raises(ValueError, match=r"^X and D must hold the same number"):
        model.compute_mean_loss([X_OK, X_OK], [D_OK])


@pytest.mark.parametrize("method", ["acc_deltas_bptt", "acc_deltas_bptt_np"])
def test_negative_steps_raises(method, model):
    y, s = model.predict(X_OK)
    d = D_OK if method == "acc_deltas_bptt" else [1]
    with pytest.raises(ValueError, match=r"^steps must be >= 0; received -1"):
        getattr(model, method)(X_OK, d, y, s, -1)
    with pytest.raises(TypeError, match=r"^steps must be an integer"):
        getattr(model, method)(X_OK, d, y, s, 1.5)
    assert np.all(model.deltaU == 0.0)


@pytest.mark.parametrize("method", METHODS)
def test_wrong_y_shape_raises(method, model):
    y, s = model.predict(X_OK)
    d = D_OK if not method.endswith("_np") else [1]
    with pytest.raises(ValueError, match=r"^y must have shape \(any, 4\)"):
        call(model, method, X_OK, d, y[:, :3], s, 1)
    with pytest.raises(ValueError, match=r"^y must be a 2-D matrix"):
        call(model, method, X_OK, d, y[0], s, 1)
    with pytest.raises(ValueError, match=r"^y needs at least T = 3 rows"):
        call(model, method, X_OK, d, y[:2], s, 1)
    y_nan = y.copy()
    y_nan[2, 1] = np.nan
    with pytest.raises(ValueError, match=r"^y contains a non-finite value"):
        call(model, method, X_OK, d, y_nan, s, 1)


@pytest.mark.parametrize("method", METHODS)
def test_wrong_s_shape_raises(method, model):
    y, s = model.predict(X_OK)
    d = D_OK if not method.endswith("_np") else [1]
    with pytest.raises(ValueError, match=r"^s must have shape \(any, 3\)"):
        call(model, method, X_OK, d, y, s[:, :2], 1)
    with pytest.raises(ValueError, match=r"^s must be a 2-D matrix"):
        call(model, method, X_OK, d, y, s.ravel(), 1)
    with pytest.raises(ValueError, match=r"s at least T"):
        call(model, method, X_OK, d, y, s[:2], 1)
    s_nan = s.copy()
    s_nan[1, 2] = np.inf
    with pytest.raises(ValueError, match=r"^s contains a non-finite value"):
        call(model, method, X_OK, d, y, s_nan, 1)


@pytest.mark.parametrize("name", ["U", "V", "W"])
def test_non_finite_weights_raise(name, model):
    getattr(model, name)[0, 0] = np.nan
    y = np.full((3, 4), 0.25)
    s = np.full((4, 3), 0.5)
    with pytest.raises(ValueError, match=rf"^{name} contains a non-finite value \(.*nan.* at index \(0, 0\)\)"):
        model.predict(X_OK)
    with pytest.raises(ValueError, match=rf"^{name} contains a non-finite value"):
        model.compute_loss(X_OK, D_OK)
    with pytest.raises(ValueError, match=rf"^{name} contains a non-finite value"):
        model.compute_mean_loss([X_OK], [D_OK])
    with pytest.raises(ValueError, match=rf"^{name} contains a non-finite value"):
        model.compare_num_pred(X_OK, [0, 1])
    if name != "V":  # backward passes read U and W, never V
        with pytest.raises(ValueError, match=rf"^{name} contains a non-finite value"):
            model.acc_deltas_bptt(X_OK, D_OK, y, s, 2)


@pytest.mark.parametrize("name, shape", [("U", (3, 4)), ("V", (3, 6)), ("W", (4, 2))])
def test_weights_of_wrong_shape_raise(name, shape, model):
    setattr(model, name, np.zeros(shape))
    with pytest.raises(ValueError, match=rf"^{name} must have shape"):
        model.predict(X_OK)


@pytest.mark.parametrize("arg, value, exc", [
    ("vocab_size", 0, ValueError), ("hidden_dims", 0, ValueError), ("out_vocab_size", 0, ValueError),
    ("vocab_size", 2.5, TypeError), ("hidden_dims", -1, ValueError), ("out_vocab_size", "2", TypeError),
])
def test_bad_sizes_raise(arg, value, exc):
    kwargs = {"vocab_size": 5, "hidden_dims": 3, "out_vocab_size": 5, arg: value}
    with pytest.raises(exc, match=rf"^{arg} must be"):
        RNN(**kwargs)


def test_non_integer_ids_raise(model):
    with pytest.raises(TypeError, match=r"^x must hold integer ids"):
        model.predict([0.5, 1.0])
    with pytest.raises(TypeError, match=r"^d must hold integer ids"):
        model.compute_loss(X_OK, ["a", "b", "c"])
    with pytest.raises(ValueError, match=r"^x must be a 1-D sequence"):
        model.predict([[0, 1], [2, 3]])
