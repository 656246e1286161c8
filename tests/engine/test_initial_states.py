"""initial_states: s(-1) given per sentence, so that a segment continues where the last one stopped."""
from __future__ import annotations

import numpy as np
import pytest

import naive
from conftest import ACTIVATIONS, random_problem
from test_engine import FD_EPS, assert_close, assert_fd_agrees, assert_grad_close, make_scheme

import gradlab as gl
from gradlab.schemes import Scheme

#: Two computations of the same sums in different orders agree to this.
RTOL = 1e-12


class _StartAt(Scheme):
    """Every loss goes back to flat step ``start`` of its sentence and no further."""

    def __init__(self, start):
        self.start = start

    def lag_limit(self, t):
        return np.asarray(t) - self.start

    @property
    def label(self):
        return f"start:{self.start}"


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu"])
@pytest.mark.parametrize("cut", [1, 4, 9])
def test_segment_with_carried_state_equals_the_tail_of_the_whole_sentence(rng, activation, cut):
    model = gl.RNN.init(7, 5, rng=int(rng.integers(1000)), scale=1.0, activation=activation)
    x = rng.integers(0, 7, 10)
    d = rng.integers(0, 7, 10)
    whole = gl.forward(model, gl.Batch.for_language_model([x], [d]))
    seg = gl.Batch.for_language_model([x[cut:]], [d[cut:]])
    carried = whole.s[cut - 1:cut]
    part = gl.forward(model, seg, initial_states=carried)
    np.testing.assert_allclose(part.s, whole.s[cut:], rtol=RTOL, atol=1e-15)
    np.testing.assert_allclose(part.losses, whole.losses[cut:], rtol=RTOL)
    # the gradient of the segment treats s(cut - 1) as a constant: the whole sentence with
    # losses only from `cut` on, each going back to step `cut` and no further
    g = gl.gradient(model, seg, initial_states=carried)
    targets = np.full(10, gl.NO_LOSS)
    targets[cut:] = d[cut:]
    ref = gl.gradient(model, gl.Batch(x, targets, np.array([0, 10])), _StartAt(cut))
    for name in ("U", "V", "W"):
        np.testing.assert_allclose(getattr(g, name), getattr(ref, name), rtol=RTOL, atol=1e-14)


def test_zero_initial_states_change_nothing(rng):
    model = gl.RNN.init(6, 4, rng=3)
    batch = gl.Batch.for_language_model([[1, 2, 3], [4, 5]], [[2, 3, 4], [5, 0]])
    a = gl.gradient(model, batch)
    b = gl.gradient(model, batch, initial_states=np.zeros((2, 4)))
    for name in ("U", "V", "W"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


@pytest.mark.parametrize("states, error, match", [
    (np.zeros((3, 4)), ValueError, r"initial_states must have shape \(2, 4\)"),
    (np.zeros((2, 5)), ValueError, r"initial_states must have shape \(2, 4\)"),
    (np.full((2, 4), np.nan), ValueError, "initial_states contains a non-finite value"),
    (np.array([["a"] * 4] * 2), TypeError, "initial_states must be a real-valued array"),
])
def test_bad_initial_states_are_rejected(states, error, match):
    model = gl.RNN.init(6, 4, rng=3)
    batch = gl.Batch.for_language_model([[1, 2, 3], [4, 5]], [[2, 3, 4], [5, 0]])
    with pytest.raises(error, match=match):
        gl.forward(model, batch, initial_states=states)
    with pytest.raises(error, match=match):
        gl.gradient(model, batch, initial_states=states)


# --------------------------------------------------------------------------- several sentences vs naive.py
def _states(rng, n, H, activation):
    """A different s(-1) for each sentence, in the range of the activation."""
    S0 = rng.uniform(-0.9, 0.9, size=(n, H))
    return np.abs(S0) if activation == "relu" else S0


def test_naive_initial_states_match_finite_differences(rng):
    """The reference itself: its gradient with given s(-1) is the derivative of its own loss."""
    p = random_problem(rng, hidden_size=3, vocab_size=4, lengths=(4, 1, 3), activation="tanh", scale=0.8)
    S0 = _states(rng, 3, 3, "tanh")
    U, V, W = p.model.U.copy(), p.model.V.copy(), p.model.W.copy()
    ref = naive.gradient(U, V, W, "tanh", p.xs, p.ds, initial_states=S0)
    numeric = naive.central_differences(
        lambda: naive.forward(U, V, W, "tanh", p.xs, p.ds, initial_states=S0).loss, [U, V, W], FD_EPS)
    assert_fd_agrees(numeric, [ref.U, ref.V, ref.W])


def test_naive_initial_state_continues_a_sentence(rng):
    """The reference itself: a tail started from the carried state is the tail of the whole sentence."""
    p = random_problem(rng, hidden_size=3, vocab_size=4, lengths=(9,), activation="sigmoid")
    U, V, W, act, (x,), (d,) = p.arrays
    whole = naive.forward(U, V, W, act, [x], [d])
    tail = naive.forward(U, V, W, act, [x[4:]], [d[4:]], initial_states=whole.s[3:4])
    assert_close(tail.s, whole.s[4:])
    assert_close(tail.losses, whole.losses[4:])


@pytest.mark.parametrize("spec", [("full",), ("sliding", 0), ("sliding", 2), ("block", 2, 3), ("chunked", 3)],
                         ids=str)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_several_sentences_match_a_numpy_loop(rng, activation, spec):
    """Each sentence its own s(-1): forward and gradient against naive.py's loop over sentences."""
    p = random_problem(rng, hidden_size=4, vocab_size=5, lengths=(6, 1, 4, 9, 3, 2), activation=activation,
                       scale=0.6 if activation == "relu" else 1.0, drop_targets=0.2)
    S0 = _states(rng, 6, 4, activation)
    ref = naive.forward(*p.arrays, initial_states=S0)
    fw = gl.forward(p.model, p.batch, initial_states=S0)
    assert_close(fw.s, ref.s, "s")
    assert_close(fw.losses, ref.losses, "losses")
    scheme, limit = make_scheme(spec)
    assert_grad_close(gl.gradient(p.model, p.batch, scheme, initial_states=S0),
                      naive.gradient(*p.arrays, limit, initial_states=S0), str(spec))
