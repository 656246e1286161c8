"""The trainer's updates: one SGD step, tau >= T vs full, block schemes vs a reference loop, determinism.

The block-scheme reference below is written from the definition in
gradlab/train/trainer.py's docstring with plain numpy loops (forward from a given
initial state, full BPTT of the window's losses loss by loss, lag by lag), sharing
no code with the engine; naive.py supplies only the activation and softmax helpers.
"""
from __future__ import annotations

import numpy as np
import pytest

import naive
from conftest import random_problem

from gradlab import Batch, Block, Full, RNN, Sliding, chunked, gradient, load_dataset, mikolov
from gradlab.train import Trainer, learning_rate_at

#: Trainer vs the numpy reference loop: the same float64 maths in another summation
#: order (the engine accumulates deltas, the reference sums loss by loss); after a few
#: dozen updates differences stay at a few ulps of the parameters.
RTOL = 1e-9
ATOL = 1e-12


def trainer(**kw) -> Trainer:
    kw.setdefault("progress", False)
    return Trainer(**kw)


def models_equal(a: RNN, b: RNN) -> None:
    for name in ("U", "V", "W"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


#: The trainer (fused, Numba calling SciPy's BLAS) against engine calls (NumPy's BLAS):
#: the same operations in the same order, but two BLAS builds may round a small product
#: differently in the last bit, and a few epochs carry that along.
TRAJECTORY_RTOL = 1e-12


def models_close(a: RNN, b: RNN) -> None:
    for name in ("U", "V", "W"):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=TRAJECTORY_RTOL, atol=1e-15,
                                   err_msg=name)


def strip_seconds(h):
    return h.drop(columns="seconds")


@pytest.fixture
def lm_problem(rng):
    return random_problem(rng, hidden_size=4, vocab_size=6, lengths=(7, 1, 4, 9, 3, 5), scale=0.5)


# --------------------------------------------------------------------------- one step
@pytest.mark.parametrize("batch_size", [1, 2, 4])
@pytest.mark.parametrize("scheme", ["full", "tbptt:0", "tbptt:2"])
def test_one_sgd_step_is_lr_times_the_engine_gradient_over_batch_size(lm_problem, batch_size, scheme):
    p = lm_problem
    lr = 0.3
    res = trainer(scheme=scheme, learning_rate=lr, batch_size=batch_size, shuffle=False, max_updates=1).fit(
        p.model, p.batch)
    g = gradient(p.model, p.batch.select(np.arange(batch_size)), scheme)
    assert res.updates == 1 and not res.completed and res.stopped_by == "max_updates"
    np.testing.assert_allclose(res.model.U, p.model.U - lr * (g.U / batch_size), rtol=TRAJECTORY_RTOL,
                               atol=1e-15)
    np.testing.assert_allclose(res.model.V, p.model.V - lr * (g.V / batch_size), rtol=TRAJECTORY_RTOL,
                               atol=1e-15)
    np.testing.assert_allclose(res.model.W, p.model.W - lr * (g.W / batch_size), rtol=TRAJECTORY_RTOL,
                               atol=1e-15)


def test_fit_does_not_modify_the_model_it_is_given(lm_problem):
    p = lm_problem
    before = p.model.copy()
    trainer(epochs=1).fit(p.model, p.batch)
    models_equal(p.model, before)


def test_per_sentence_epoch_is_sequential_sgd_in_the_drawn_order(lm_problem):
    p = lm_problem
    lr = 0.2
    res = trainer(scheme="tbptt:1", learning_rate=lr, epochs=1, seed=7).fit(p.model, p.batch)
    order = np.random.default_rng(7).permutation(p.batch.n_sentences)
    m = p.model.copy()
    for i in order:
        g = gradient(m, p.batch.select([i]), Sliding(1))
        m.U -= lr * (g.U / 1)
        m.V -= lr * (g.V / 1)
        m.W -= lr * (g.W / 1)
    models_close(res.model, m)
    h = res.history.iloc[0]
    assert h["update"] == h["n_updates"] == p.batch.n_sentences
    assert h.sentences_seen == p.batch.n_sentences and h.tokens_seen == p.batch.n_tokens
    assert h.n_losses == p.batch.n_losses


def test_clipping_rescales_to_the_global_norm_and_is_counted(lm_problem):
    p = lm_problem
    lr, clip = 0.5, 1e-3
    res = trainer(learning_rate=lr, clip=clip, batch_size=2, shuffle=False, max_updates=1).fit(p.model, p.batch)
    g = gradient(p.model, p.batch.select([0, 1]), Full())
    norm = np.sqrt(sum(np.sum((a / 2) ** 2) for a in (g.U, g.V, g.W)))
    assert norm > clip
    np.testing.assert_allclose(res.model.U, p.model.U - lr * (g.U / 2) * (clip / norm), rtol=1e-14, atol=1e-17)
    np.testing.assert_allclose(res.model.V, p.model.V - lr * (g.V / 2) * (clip / norm), rtol=1e-14, atol=1e-17)
    full = trainer(learning_rate=lr, clip=clip, batch_size=2, epochs=2).fit(p.model, p.batch)
    assert full.history.clipped.tolist() == full.history.n_updates.tolist()
    loose = trainer(learning_rate=lr, clip=1e6, batch_size=2, epochs=2).fit(p.model, p.batch)
    assert loose.history.clipped.tolist() == [0, 0]
    models_equal(loose.model, trainer(learning_rate=lr, batch_size=2, epochs=2).fit(p.model, p.batch).model)


def test_annealing_follows_the_coursework_schedule(lm_problem):
    p = lm_problem
    res = trainer(learning_rate=0.4, anneal=2, epochs=4).fit(p.model, p.batch)
    assert res.history.lr.tolist() == [0.4 / (1 + e / 2) for e in range(4)]
    assert learning_rate_at(0.4, 0, 9) == 0.4
    const = trainer(learning_rate=0.4, epochs=3).fit(p.model, p.batch)
    assert const.history.lr.tolist() == [0.4] * 3


# --------------------------------------------------------------------------- tau >= T
@pytest.mark.parametrize("batch_size", [1, 3])
def test_sliding_with_tau_at_least_max_T_trains_exactly_like_full(lm_problem, batch_size):
    p = lm_problem
    kw = dict(learning_rate=0.5, epochs=3, batch_size=batch_size, seed=3)
    full = trainer(scheme=Full(), **kw).fit(p.model, p.batch)
    for tau in (p.max_T - 1, p.max_T + 5):
        slid = trainer(scheme=Sliding(tau), **kw).fit(p.model, p.batch)
        models_equal(slid.model, full.model)
        assert slid.history.train_loss.tolist() == full.history.train_loss.tolist()


def test_truncation_changes_the_trajectory(lm_problem):
    p = lm_problem
    kw = dict(learning_rate=0.5, epochs=2, seed=3)
    a = trainer(scheme="full", **kw).fit(p.model, p.batch).model
    b = trainer(scheme="tbptt:0", **kw).fit(p.model, p.batch).model
    assert not np.array_equal(a.U, b.U)


# --------------------------------------------------------------------------- block schemes
def window_gradient(U, V, W, act, x, d, s_init):
    """Full BPTT of the losses of one window started from the constant state s_init (numpy loops)."""
    H, T = U.shape[0], len(x)
    net, s, z = np.zeros((T, H)), np.zeros((T, H)), np.zeros((T, W.shape[0]))
    prev = s_init
    for t in range(T):
        net[t] = V[:, x[t]] + U @ prev
        s[t] = naive.activate(act, net[t])
        z[t] = W @ s[t]
        prev = s[t]
    gU, gV, gW, loss, n = np.zeros_like(U), np.zeros_like(V), np.zeros_like(W), 0.0, 0
    for t in range(T):
        if d[t] == naive.NO_LOSS:
            continue
        loss += naive.cross_entropy(z[t], d[t])
        n += 1
        dout = naive.softmax(z[t])
        dout[d[t]] -= 1.0
        gW += np.outer(dout, s[t])
        delta = (W.T @ dout) * naive.activate_prime(act, net[t])
        for j in range(t, -1, -1):
            gU += np.outer(delta, s[j - 1] if j > 0 else s_init)
            gV[:, x[j]] += delta
            if j > 0:
                delta = (U.T @ delta) * naive.activate_prime(act, net[j - 1])
    return gU, gV, gW, loss, n


def block_states(U, V, act, x, s_init):
    """s(t) over x from s_init (numpy)."""
    out, prev = np.zeros((len(x), U.shape[0])), s_init
    for t in range(len(x)):
        prev = naive.activate(act, V[:, x[t]] + U @ prev)
        out[t] = prev
    return out


def reference_block_training(model, xs, ds, k1, k2, lr, epochs, batch_size, seed, carry, anneal=0.0):
    """Truncated training Block(k1, k2), lockstep minibatches, as documented: returns (U, V, W, updates)."""
    U, V, W = model.U.copy(), model.V.copy(), model.W.copy()
    act = model.activation
    H = U.shape[0]
    rng = np.random.default_rng(seed)
    n_updates = 0
    losses = []
    for epoch in range(epochs):
        rate = lr / (1 + epoch / anneal) if anneal else lr
        order = rng.permutation(len(xs))
        epoch_loss, epoch_n = 0.0, 0
        for a in range(0, len(xs), batch_size):
            mb = order[a:a + batch_size]
            B = len(mb)
            stored = {i: np.zeros((len(xs[i]), H)) for i in mb}
            for b0 in range(0, max(len(xs[i]) for i in mb), k1):
                active = [i for i in mb if len(xs[i]) > b0]
                w0 = max(0, b0 - (k2 - k1))
                gU, gV, gW = np.zeros_like(U), np.zeros_like(V), np.zeros_like(W)
                any_loss = False
                new_states = {}
                for i in active:
                    b1 = min(b0 + k1, len(xs[i]))
                    d = ds[i][w0:b1].copy()
                    d[:b0 - w0] = naive.NO_LOSS
                    s_block0 = stored[i][b0 - 1] if b0 > 0 else np.zeros(H)
                    if carry == "before_update":
                        new_states[i] = block_states(U, V, act, xs[i][b0:b1], s_block0)
                    if (d != naive.NO_LOSS).any():
                        any_loss = True
                        s_init = stored[i][w0 - 1] if w0 > 0 else np.zeros(H)
                        u, v, w, loss, n = window_gradient(U, V, W, act, xs[i][w0:b1], d, s_init)
                        gU += u
                        gV += v
                        gW += w
                        epoch_loss += loss
                        epoch_n += n
                if any_loss:
                    U = U - rate * (gU / B)
                    V = V - rate * (gV / B)
                    W = W - rate * (gW / B)
                    n_updates += 1
                for i in active:
                    b1 = min(b0 + k1, len(xs[i]))
                    if carry == "after_update" or not any_loss:
                        s_block0 = stored[i][b0 - 1] if b0 > 0 else np.zeros(H)
                        new_states[i] = block_states(U, V, act, xs[i][b0:b1], s_block0)
                    stored[i][b0:b1] = new_states[i]
        losses.append(epoch_loss / epoch_n)
    return U, V, W, n_updates, losses


BLOCK_CASES = [
    # (k1, k2, batch_size, carry)
    (1, 1, 1, "after_update"),
    (2, 2, 1, "after_update"),
    (2, 5, 1, "after_update"),
    (3, 4, 2, "after_update"),
    (2, 2, 1, "before_update"),
    (2, 5, 3, "before_update"),
    (4, 6, 6, "after_update"),
]


@pytest.mark.parametrize("k1,k2,batch_size,carry", BLOCK_CASES)
@pytest.mark.parametrize("objective", ["lm", "final"])
def test_block_training_equals_the_reference_loop(rng, k1, k2, batch_size, carry, objective):
    p = random_problem(rng, objective=objective, hidden_size=3, vocab_size=5, lengths=(6, 1, 3, 8, 5, 2),
                       scale=0.6, drop_targets=0.2 if objective == "lm" else 0.0)
    lr, epochs, seed = 0.4, 2, 11
    res = trainer(scheme=Block(k1, k2), learning_rate=lr, epochs=epochs, batch_size=batch_size, seed=seed,
                  carry=carry, anneal=1.0).fit(p.model, p.batch)
    U, V, W, n_updates, losses = reference_block_training(p.model, p.xs, p.ds, k1, k2, lr, epochs, batch_size,
                                                          seed, carry, anneal=1.0)
    np.testing.assert_allclose(res.model.U, U, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(res.model.V, V, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(res.model.W, W, rtol=RTOL, atol=ATOL)
    assert res.updates == n_updates
    np.testing.assert_allclose(res.history.train_loss, losses, rtol=RTOL)


def test_carry_modes_differ_and_chunked_text_forms_agree(lm_problem):
    p = lm_problem
    kw = dict(learning_rate=0.5, epochs=2, seed=1)
    after = trainer(scheme="chunked:2", carry="after_update", **kw).fit(p.model, p.batch).model
    before = trainer(scheme="chunked:2", **kw).fit(p.model, p.batch).model  # the default carry
    assert not np.array_equal(after.U, before.U)
    models_equal(before, trainer(scheme=chunked(2), carry="before_update", **kw).fit(p.model, p.batch).model)
    models_equal(trainer(scheme=mikolov(3, 2), **kw).fit(p.model, p.batch).model,
                 trainer(scheme="block:2,5", **kw).fit(p.model, p.batch).model)


def test_block_at_least_as_long_as_the_sentences_is_one_full_update_per_minibatch(lm_problem):
    """k1 >= max T: one block per sentence, the window is the whole sentence = full BPTT training."""
    p = lm_problem
    kw = dict(learning_rate=0.5, epochs=2, seed=5, batch_size=2)
    blk = trainer(scheme=Block(p.max_T, p.max_T), **kw).fit(p.model, p.batch)
    full = trainer(scheme="full", **kw).fit(p.model, p.batch)
    np.testing.assert_allclose(blk.model.U, full.model.U, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(blk.model.V, full.model.V, rtol=1e-12, atol=1e-15)
    assert blk.updates == full.updates


# --------------------------------------------------------------------------- determinism
@pytest.mark.parametrize("scheme", ["tbptt:2", "block:2,4"])
def test_same_seed_same_result_other_seed_other_order(lm_problem, scheme):
    p = lm_problem
    kw = dict(scheme=scheme, learning_rate=0.5, epochs=3, batch_size=2)
    a = trainer(seed=4, **kw).fit(p.model, p.batch)
    b = trainer(seed=4, **kw).fit(p.model, p.batch)
    models_equal(a.model, b.model)
    assert strip_seconds(a.history).equals(strip_seconds(b.history))
    c = trainer(seed=5, **kw).fit(p.model, p.batch)
    assert not np.array_equal(a.model.U, c.model.U)


def test_no_shuffle_keeps_the_data_order(lm_problem):
    p = lm_problem
    res = trainer(shuffle=False, learning_rate=0.3, epochs=2, scheme="tbptt:1").fit(p.model, p.batch)
    m = p.model.copy()
    for _ in range(2):
        for i in range(p.batch.n_sentences):
            g = gradient(m, p.batch.select([i]), Sliding(1))
            m.U -= 0.3 * (g.U / 1)
            m.V -= 0.3 * (g.V / 1)
            m.W -= 0.3 * (g.W / 1)
    models_close(res.model, m)


# --------------------------------------------------------------------------- datasets and history
def test_dataset_training_with_dev_history_columns():
    ds = load_dataset("agreement:n=40,distance=3")
    train, dev = ds.split(0.25, seed=0)
    model = RNN.init(len(ds.vocab), 5, rng=0)
    res = trainer(learning_rate=0.3, epochs=2, batch_size=4).fit(model, train, dev)
    h = res.history
    assert h.epoch.tolist() == [0, 1]
    for col in ("update", "n_updates", "clipped", "sentences_seen", "tokens_seen", "train_loss", "seconds",
                "dev_loss", "dev_perplexity", "dev_adjusted_perplexity", "dev_accuracy", "dev_agreement_accuracy"):
        assert col in h.columns, col
    assert h.sentences_seen.tolist() == [len(train), 2 * len(train)]
    assert h.tokens_seen.tolist() == [train.batch("lm").n_tokens * k for k in (1, 2)]
    assert h.n_updates.tolist() == [8, 8]
    assert np.isfinite(h.dev_loss).all() and (h.seconds > 0).all()


def test_number_task_trains_a_two_output_model():
    ds = load_dataset("agreement:n=30,distance=3")
    model = RNN.init(len(ds.vocab), 4, output_size=2, rng=0)
    res = trainer(task="number", scheme="tbptt:2", epochs=1, learning_rate=0.5).fit(model, ds, ds)
    assert res.history.n_losses.tolist() == [30]
    assert 0.0 <= res.history.dev_accuracy.iloc[0] <= 1.0


def test_progress_bar_shows_the_running_loss(lm_problem, capsys):
    p = lm_problem
    Trainer(epochs=1, progress=True).fit(p.model, p.batch)
    err = capsys.readouterr().err
    assert "loss=" in err and "epoch 0/0" in err and "6/6" in err


def test_callback_sees_every_minibatch_and_can_stop(lm_problem):
    p = lm_problem
    seen = []

    def cb(info):
        seen.append((info.epoch, info.update, info.position, info.lr))
        return info.update == 4

    res = trainer(batch_size=2, epochs=3, callback=cb).fit(p.model, p.batch)
    assert seen == [(0, 1, 2, 0.5), (0, 2, 4, 0.5), (0, 3, 6, 0.5), (1, 4, 2, 0.5)]
    assert not res.completed and res.stopped_by == "callback" and res.updates == 4
    assert len(res.history) == 1


def test_epoch_batches_count_whole_data(lm_problem):
    p = lm_problem
    batch = Batch.for_language_model(p.xs, p.ds)
    res = trainer(batch_size=4, epochs=1).fit(p.model, batch)
    assert res.history.n_updates.tolist() == [2]   # 6 sentences: 4 + 2
