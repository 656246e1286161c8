"""The fused trainer (one compiled call for many minibatches) against the step-by-step reference.

``Trainer(fused=False)`` is the step-by-step path: one :func:`gradlab.gradient` call
per update and the update applied in NumPy (tests/train/test_train_updates.py checks
it against a plain-numpy reference loop). The fused path must follow the same
trajectory over several epochs, with every scheme, carry mode, clipping, minibatch
size and objective, and report divergence the same way.
"""
from __future__ import annotations

import numpy as np
import pytest

from conftest import random_problem

import gradlab.train.trainer as trainer_module
from gradlab import Batch, RNN
from gradlab.kernels.train import pairwise_sum
from gradlab.train import DivergenceError, Trainer

#: fused vs step-by-step: the same operations in the same order, except that a small
#: product may be rounded differently in its last bit by SciPy's BLAS (called from
#: Numba) and NumPy's; over a few epochs this stays far below 1e-12 (relative).
RTOL = 1e-12
ATOL = 1e-14

SCHEMES = ("full", "tbptt:0", "tbptt:2", "chunked:3", "block:2,5", "mikolov:2,3")


def run(problem, fused: bool, **kw):
    kw.setdefault("progress", False)
    return Trainer(fused=fused, **kw).fit(problem.model, problem.batch)


def assert_same_trajectory(a, b):
    for name in ("U", "V", "W"):
        np.testing.assert_allclose(getattr(a.model, name), getattr(b.model, name), rtol=RTOL, atol=ATOL,
                                   err_msg=name)
    ha, hb = a.history, b.history
    np.testing.assert_allclose(ha["train_loss"], hb["train_loss"], rtol=RTOL)
    ints = ["epoch", "update", "n_updates", "clipped", "sentences_seen", "tokens_seen", "n_losses"]
    assert ha[ints].equals(hb[ints])
    assert a.updates == b.updates


@pytest.fixture
def lm(rng):
    # lengths up to 23 and minibatches of 4: more than one output tile (64 losses) and
    # several output groups per update, sentences that end before others (lockstep blocks)
    lengths = rng.integers(1, 24, size=14)
    return random_problem(rng, hidden_size=5, vocab_size=9, lengths=lengths, scale=0.5, drop_targets=0.2)


@pytest.fixture
def number(rng):
    return random_problem(rng, objective="final", hidden_size=4, vocab_size=7,
                          lengths=rng.integers(1, 12, size=12), scale=0.7)


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("batch_size", [1, 4])
@pytest.mark.parametrize("clip", [None, 0.2])
def test_fused_equals_step_by_step_lm(lm, scheme, batch_size, clip):
    kw = dict(scheme=scheme, batch_size=batch_size, clip=clip, learning_rate=0.5, epochs=4, seed=3)
    a, b = run(lm, True, **kw), run(lm, False, **kw)
    assert_same_trajectory(a, b)
    if clip is not None:
        assert a.history["clipped"].sum() > 0  # the clipped branch really ran


@pytest.mark.parametrize("scheme", ["chunked:3", "block:2,5", "mikolov:1,2"])
@pytest.mark.parametrize("carry", ["before_update", "after_update"])
@pytest.mark.parametrize("batch_size", [1, 3])
def test_fused_block_carry_equals_step_by_step(lm, scheme, carry, batch_size):
    kw = dict(scheme=scheme, carry=carry, batch_size=batch_size, learning_rate=0.4, epochs=3, seed=1, clip=0.5)
    assert_same_trajectory(run(lm, True, **kw), run(lm, False, **kw))


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("batch_size", [1, 5])
def test_fused_equals_step_by_step_number_task(number, scheme, batch_size):
    kw = dict(scheme=scheme, batch_size=batch_size, learning_rate=0.8, epochs=4, seed=2, anneal=2.0)
    assert_same_trajectory(run(number, True, **kw), run(number, False, **kw))


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_fused_equals_step_by_step_other_activations(rng, activation):
    p = random_problem(rng, hidden_size=4, vocab_size=6, lengths=rng.integers(1, 15, size=8),
                       activation=activation, scale=0.4)
    for scheme in ("full", "tbptt:1", "block:2,3"):
        kw = dict(scheme=scheme, batch_size=2, learning_rate=0.2, epochs=3)
        assert_same_trajectory(run(p, True, **kw), run(p, False, **kw))


def test_chunk_size_does_not_change_the_result(lm, monkeypatch):
    kw = dict(scheme="block:2,4", batch_size=2, learning_rate=0.3, epochs=2, clip=0.3)
    whole = run(lm, True, **kw)
    monkeypatch.setattr(trainer_module, "CHUNK_SENTENCES", 1)
    small = run(lm, True, **kw)
    for name in ("U", "V", "W"):
        np.testing.assert_array_equal(getattr(whole.model, name), getattr(small.model, name))


def test_lag_limit_can_change_between_chunks(lm, monkeypatch):
    """A scheme that picks tau as it trains (chosen per chunk) needs only ``_lag_parameters``."""
    monkeypatch.setattr(trainer_module, "CHUNK_SENTENCES", 2)
    taus = iter([0, 5] * 100)

    class Switching(Trainer):
        def _lag_parameters(self, state):
            return trainer_module.UNLIMITED, 0, next(taus)

    res = Switching(scheme="tbptt:0", batch_size=1, learning_rate=0.3, epochs=1, shuffle=False,
                    progress=False).fit(lm.model, lm.batch)
    # the reference: sentences in pairs, alternately TBPTT(0) and TBPTT(5)
    m = lm.model.copy()
    for j, start in enumerate(range(0, lm.batch.n_sentences, 2)):
        part = lm.batch.select(np.arange(start, min(start + 2, lm.batch.n_sentences)))
        m = Trainer(scheme=f"tbptt:{5 * (j % 2)}", learning_rate=0.3, epochs=1, shuffle=False, progress=False,
                    fused=False).fit(m, part).model
    for name in ("U", "V", "W"):
        np.testing.assert_allclose(getattr(res.model, name), getattr(m, name), rtol=RTOL, atol=ATOL)


def test_only_the_columns_of_seen_words_change(rng):
    p = random_problem(rng, hidden_size=3, vocab_size=12, lengths=(4, 6, 3), scale=0.5)
    xs = [np.minimum(x, 5) for x in p.xs]  # words 6..11 never occur
    batch = Batch.for_language_model(xs, [np.asarray(d) for d in p.ds])
    res = Trainer(epochs=2, progress=False, learning_rate=0.5).fit(p.model, batch)
    np.testing.assert_array_equal(res.model.V[:, 6:], p.model.V[:, 6:])
    assert not np.array_equal(res.model.V[:, :6], p.model.V[:, :6])


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the step-by-step path warns on overflow
@pytest.mark.parametrize("scheme", ["full", "chunked:2"])
@pytest.mark.parametrize("batch_size", [1, 3])
def test_divergence_is_reported_like_the_step_by_step_path(rng, scheme, batch_size):
    p = random_problem(rng, hidden_size=4, vocab_size=6, lengths=(6, 3, 8, 5, 7, 2), activation="relu", scale=1.5)
    kw = dict(scheme=scheme, batch_size=batch_size, learning_rate=1e150, epochs=2)
    errors = []
    for fused in (True, False):
        with pytest.raises(DivergenceError) as info:
            run(p, fused, **kw)
        errors.append(info.value)
    a, b = errors
    assert str(a) == str(b)
    assert (a.epoch, a.update, a.sentences) == (b.epoch, b.update, b.sentences)


def test_fused_training_is_deterministic_and_thread_count_independent(lm):
    import numba
    kw = dict(scheme="mikolov:2,3", batch_size=3, learning_rate=0.3, epochs=2)
    a = run(lm, True, **kw)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        b = run(lm, True, **kw)
    finally:
        numba.set_num_threads(before)
    for name in ("U", "V", "W"):
        np.testing.assert_array_equal(getattr(a.model, name), getattr(b.model, name))


@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 100, 128, 129, 255, 256, 1000, 4097])
def test_pairwise_sum_is_numpys_sum(rng, n):
    a = rng.standard_normal(n) * 10.0 ** rng.uniform(-8, 8, size=n)
    assert pairwise_sum(a, 0, n) == np.sum(a)


def test_fused_option_is_checked():
    with pytest.raises(TypeError, match="fused"):
        Trainer(fused="yes")


def test_fused_model_loads_like_any_model(lm, tmp_path):
    res = run(lm, True, epochs=1)
    path = res.model.save(tmp_path / "m.npz")
    assert np.array_equal(RNN.load(path).V, res.model.V)


@pytest.mark.parametrize("objective", ["lm", "final"])
@pytest.mark.parametrize("batch_size", [1, 3])
def test_one_fused_update_is_minus_lr_times_the_finite_difference_gradient(rng, objective, batch_size):
    """(theta_0 - theta_1) / lr * B is the minibatch loss's gradient, checked by central differences."""
    from gradlab import check_gradient
    p = random_problem(rng, objective=objective, hidden_size=3, vocab_size=5, lengths=(5, 3, 6), scale=0.6)
    lr = 1e-3
    res = Trainer(learning_rate=lr, batch_size=batch_size, shuffle=False, max_updates=1, progress=False).fit(
        p.model, p.batch)
    grad = {name: (getattr(p.model, name) - getattr(res.model, name)) / lr * batch_size for name in "UVW"}
    check = check_gradient(p.model, p.batch.select(np.arange(batch_size)), grad, n_samples=40, rng=0)
    assert check.max_rel_error < 1e-6, check.to_frame()


@pytest.mark.parametrize("batch_size", [1, 3])
def test_fused_adaptive_truncation_equals_step_by_step(lm, batch_size):
    """Adaptive truncation re-estimates tau every few updates: the fused path ends its chunks there,
    so it picks the same taus at the same updates and follows the same trajectory."""
    kw = dict(scheme="adaptive:delta=0.2,every=3,sentences=4,max_tau=6", batch_size=batch_size,
              learning_rate=0.5, epochs=3, seed=2)
    a, b = run(lm, True, **kw), run(lm, False, **kw)
    assert_same_trajectory(a, b)
    ta, tb = a.truncation, b.truncation
    assert ta[["update", "epoch", "tau", "n_losses"]].equals(tb[["update", "epoch", "tau", "n_losses"]])
    np.testing.assert_allclose(ta[["beta", "bias_bound"]], tb[["beta", "bias_bound"]], rtol=1e-9)
    assert len(ta) > 3 and ta["tau"].nunique() > 1
