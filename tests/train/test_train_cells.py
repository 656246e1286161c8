"""Training GRU, LSTM (1 and 2 layers), linear-recurrence and embedding cell models.

The reference below is the documented update rule written out: for every minibatch of
the seeded order, ``cell_engine.gradient`` of its sentences, g / B (rescaled to norm
``clip``), theta -= lr_epoch * g / B for every array of ``model.cell.names``.
"""
from __future__ import annotations

import numpy as np
import pytest

from gradlab import Adaptive, Batch, Block, CellModel, RNN, Sliding, cell_engine, load_dataset
from gradlab.train import CheckpointError, DivergenceError, Trainer, evaluate
from gradlab.train.adaptive import estimate_truncation

#: The trainer scales the engine's arrays in place (g / B, then * clip / norm, then * lr);
#: the reference computes lr * ((g / B) * f): the same products, possibly rounded in another
#: order, carried over a few updates.
RTOL, ATOL = 1e-12, 1e-14

#: (cell, num_layers, embedding_size); "rnn" is PyTorch's nn.RNN with biases (relu here)
MODELS = [("gru", 1, None), ("lstm", 1, None), ("lstm", 2, None), ("linear", 1, None), ("gru", 1, 2),
          ("rnn", 2, None)]
VOCAB, HIDDEN = 5, 3


def trainer(**kw) -> Trainer:
    kw.setdefault("progress", False)
    return Trainer(**kw)


def cell_model(cell, num_layers=1, embedding_size=None, seed=0, activation=None) -> CellModel:
    if cell == "rnn" and activation is None:
        activation = "relu"
    return CellModel.init(cell, VOCAB, HIDDEN, seed=seed, num_layers=num_layers, embedding_size=embedding_size,
                          activation=activation)


def random_batch(rng, lengths=(5, 1, 3, 6, 2, 4, 3)) -> Batch:
    xs = [rng.integers(0, VOCAB, T) for T in lengths]
    ds = [rng.integers(0, VOCAB, T) for T in lengths]
    return Batch.for_language_model(xs, ds)


def reference_sgd(model, batch, scheme, *, learning_rate, epochs=1, batch_size=1, clip=None, anneal=0.0, seed=0,
                  shuffle=True, max_updates=None):
    m = model.copy()
    rng = np.random.default_rng(seed)
    n, done = batch.n_sentences, 0
    for epoch in range(epochs):
        lr = learning_rate / (1 + epoch / anneal) if anneal else learning_rate
        order = rng.permutation(n) if shuffle else np.arange(n)
        for a in range(0, n, batch_size):
            idx = order[a:a + batch_size]
            g = cell_engine.gradient(m, batch.select(idx), scheme).as_dict()
            step = {name: g[name] / len(idx) for name in m.cell.names}
            if clip is not None:
                norm = np.sqrt(sum(np.sum(s * s) for s in step.values()))
                if norm > clip:
                    step = {name: s * (clip / norm) for name, s in step.items()}
            for name in m.cell.names:
                m.params[name] -= lr * step[name]
            done += 1
            if max_updates is not None and done >= max_updates:
                return m
    return m


def assert_models_close(a: CellModel, b: CellModel) -> None:
    assert a.cell.name == b.cell.name
    for name in a.cell.names:
        np.testing.assert_allclose(a.params[name], b.params[name], rtol=RTOL, atol=ATOL, err_msg=name)


def assert_models_equal(a: CellModel, b: CellModel) -> None:
    for name in a.cell.names:
        np.testing.assert_array_equal(a.params[name], b.params[name], err_msg=name)


@pytest.mark.parametrize("cell,num_layers,embedding_size", MODELS)
@pytest.mark.parametrize("opts", [dict(scheme="full", learning_rate=0.3, epochs=1),
                                  dict(scheme="tbptt:2", learning_rate=0.5, batch_size=3, clip=0.5, anneal=1.0,
                                       epochs=2, seed=4)])
def test_training_equals_the_update_rule_written_out(rng, cell, num_layers, embedding_size, opts):
    model, batch = cell_model(cell, num_layers, embedding_size), random_batch(rng)
    res = trainer(**opts).fit(model, batch)
    ref = reference_sgd(model, batch, opts["scheme"], **{k: v for k, v in opts.items() if k != "scheme"})
    assert_models_close(res.model, ref)
    assert res.completed and res.updates == res.history.n_updates.sum()
    assert isinstance(res.model, CellModel) and res.model is not model


def test_clipping_is_counted_and_uses_every_parameter(rng):
    model, batch = cell_model("lstm"), random_batch(rng)
    res = trainer(learning_rate=0.5, clip=1e-3, batch_size=2, shuffle=False, epochs=1).fit(model, batch)
    assert res.history.clipped.tolist() == res.history.n_updates.tolist()
    ref = reference_sgd(model, batch, "full", learning_rate=0.5, clip=1e-3, batch_size=2, shuffle=False)
    assert_models_close(res.model, ref)


def test_adaptive_training_chooses_tau_from_the_cell_profile(rng):
    model, batch = cell_model("gru"), random_batch(rng)
    scheme = Adaptive(delta=0.1, every=1000, sentences=4, max_tau=4)
    res = trainer(scheme=scheme, learning_rate=0.4, seed=2, epochs=1).fit(model, batch)
    order = np.random.default_rng(2).permutation(batch.n_sentences)
    tau = estimate_truncation(model, batch.select(order[:4]), scheme)["tau"]
    assert res.truncation.tau.tolist() == [tau] and res.history.tau.tolist() == [tau]
    assert_models_close(res.model, reference_sgd(model, batch, Sliding(tau), learning_rate=0.4, seed=2))


def test_max_updates_and_callback_stop_a_cell_run(rng):
    model, batch = cell_model("linear"), random_batch(rng)
    res = trainer(learning_rate=0.2, batch_size=2, max_updates=3, epochs=5).fit(model, batch)
    assert res.updates == 3 and res.stopped_by == "max_updates" and not res.completed
    assert_models_close(res.model, reference_sgd(model, batch, "full", learning_rate=0.2, batch_size=2,
                                                 epochs=5, max_updates=3))
    seen = []

    def stop(info):
        seen.append((info.update, type(info.model).__name__))
        return info.update == 2

    res = trainer(learning_rate=0.2, callback=stop).fit(model, batch)
    assert seen == [(1, "CellModel"), (2, "CellModel")] and res.stopped_by == "callback"


def test_dev_evaluation_of_a_cell_model():
    train, dev = load_dataset("agreement:n=24,distance=3").split(0.25, seed=0)
    model = CellModel.init("gru", len(train.vocab), 4, seed=1)
    res = trainer(epochs=2, learning_rate=0.3).fit(model, train, dev)
    assert res.history.dev_loss.iloc[-1] == evaluate(res.model, dev, "lm").mean_loss
    assert "dev_agreement_accuracy" in res.history


# --------------------------------------------------------------------------- block schemes
def one_sentence(x, d) -> Batch:
    return Batch.for_language_model([x], [d])


def reference_block_training(model, xs, ds, k1, k2, *, learning_rate, batch_size, seed, carry, epochs=1):
    """Block(k1, k2) as documented, sentence by sentence: for block [b0, b1) of every sentence of the minibatch
    still running, the full gradient of the window [b0 - (k2 - k1), b1) from the stored state before it, losses
    only in the block; one update per block with their sum / B; the block's states stored for the next blocks,
    with the parameters before or after the update."""
    m = model.copy()
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        order = rng.permutation(len(xs))
        for a in range(0, len(xs), batch_size):
            mb = order[a:a + batch_size]
            stored = {i: np.zeros((len(xs[i]), m.state_size)) for i in mb}

            def state_before(i, t):
                return stored[i][t - 1][None] if t > 0 else np.zeros((1, m.state_size))

            def block_states(i, b0, b1):
                return cell_engine.forward(m, one_sentence(xs[i][b0:b1], ds[i][b0:b1]),
                                           initial_states=state_before(i, b0)).state

            for b0 in range(0, max(len(xs[i]) for i in mb), k1):
                active = [i for i in mb if len(xs[i]) > b0]
                w0 = max(0, b0 - (k2 - k1))
                step, new = {n: 0.0 for n in m.cell.names}, {}
                any_loss = False
                for i in active:
                    b1 = min(b0 + k1, len(xs[i]))
                    d = ds[i][w0:b1].copy()
                    d[:b0 - w0] = -1
                    if carry == "before_update":
                        new[i] = block_states(i, b0, b1)
                    if (d != -1).any():
                        any_loss = True
                        g = cell_engine.gradient(m, one_sentence(xs[i][w0:b1], d), "full",
                                                 initial_states=state_before(i, w0))
                        step = {n: step[n] + g.as_dict()[n] for n in m.cell.names}
                if any_loss:
                    for n in m.cell.names:
                        m.params[n] -= learning_rate * (step[n] / len(mb))
                for i in active:
                    b1 = min(b0 + k1, len(xs[i]))
                    if carry == "after_update" or not any_loss:
                        new[i] = block_states(i, b0, b1)
                    stored[i][b0:b1] = new[i]
    return m


@pytest.mark.parametrize("cell,num_layers,embedding_size", MODELS)
@pytest.mark.parametrize("k1,k2,batch_size,carry", [(2, 2, 1, "before_update"), (2, 4, 3, "after_update"),
                                                    (3, 4, 2, "before_update")])
def test_block_training_equals_the_reference_loop(rng, cell, num_layers, embedding_size, k1, k2, batch_size, carry):
    model = cell_model(cell, num_layers, embedding_size)
    lengths = (6, 1, 3, 7, 5, 2)
    xs = [rng.integers(0, VOCAB, T) for T in lengths]
    ds = [np.where(rng.random(T) < 0.3, -1, rng.integers(0, VOCAB, T)) for T in lengths]  # some blocks lose nothing
    batch = Batch.for_language_model(xs, ds)
    res = trainer(scheme=Block(k1, k2), carry=carry, learning_rate=0.4, batch_size=batch_size, seed=6,
                  epochs=2).fit(model, batch)
    ref = reference_block_training(model, xs, ds, k1, k2, learning_rate=0.4, batch_size=batch_size, seed=6,
                                   carry=carry, epochs=2)
    assert_models_close(res.model, ref)


# --------------------------------------------------------------------------- checkpoints
@pytest.mark.parametrize("cell,num_layers,embedding_size,scheme", [("lstm", 2, None, "tbptt:1"),
                                                                    ("gru", 1, 2, "chunked:2"),
                                                                    ("rnn", 1, None, "mikolov:3,2")])
def test_resume_equals_an_uninterrupted_run_bitwise(tmp_path, rng, cell, num_layers, embedding_size, scheme):
    model, batch = cell_model(cell, num_layers, embedding_size), random_batch(rng)
    opts = dict(scheme=scheme, learning_rate=0.4, batch_size=2, epochs=3, seed=5, clip=2.0)
    whole = trainer(**opts).fit(model, batch)
    first = trainer(**opts, checkpoint=tmp_path, max_updates=5).fit(model, batch)
    assert first.updates >= 5 and not first.completed   # block schemes stop at the end of the minibatch
    saved = CellModel.load(first.checkpoint)
    assert saved.cell.name == model.cell.name and saved.activation == model.activation
    assert_models_equal(saved, first.model)
    rest = trainer(**opts, checkpoint=tmp_path, resume=True).fit(model, batch)
    assert rest.resumed_from == first.updates and rest.completed
    assert_models_equal(rest.model, whole.model)
    assert rest.history.drop(columns="seconds").equals(whole.history.drop(columns="seconds"))


def test_resuming_with_another_model_kind_or_cell_fails_naming_it(tmp_path, rng):
    model, batch = cell_model("gru"), random_batch(rng)
    trainer(checkpoint=tmp_path, max_updates=2).fit(model, batch)
    with pytest.raises(CheckpointError, match="CellModel with cell 'gru' but the model given is a CellModel with "
                                              "cell 'lstm'"):
        trainer(checkpoint=tmp_path, resume=True).fit(cell_model("lstm"), batch)
    with pytest.raises(CheckpointError, match="CellModel with cell 'gru' but the model given is an Elman RNN"):
        trainer(checkpoint=tmp_path, resume=True).fit(RNN.init(VOCAB, HIDDEN, rng=0), batch)
    with pytest.raises(CheckpointError, match="initial model differs"):
        trainer(checkpoint=tmp_path, resume=True).fit(cell_model("gru", seed=1), batch)
    with pytest.raises(CheckpointError, match="hidden_size=3 \\(model given: 4\\)"):
        trainer(checkpoint=tmp_path, resume=True).fit(CellModel.init("gru", VOCAB, 4, seed=0), batch)
    relu = tmp_path / "relu"
    trainer(checkpoint=relu, max_updates=2).fit(cell_model("rnn", activation="relu"), batch)
    with pytest.raises(CheckpointError, match="activation='relu' \\(model given: 'tanh'\\)"):
        trainer(checkpoint=relu, resume=True).fit(cell_model("rnn", activation="tanh"), batch)
    elman = tmp_path / "elman"
    trainer(checkpoint=elman, max_updates=2).fit(RNN.init(VOCAB, HIDDEN, rng=0), batch)
    with pytest.raises(CheckpointError, match="holds an Elman RNN but the model given is a CellModel with cell 'gru'"):
        trainer(checkpoint=elman, resume=True).fit(model, batch)


# --------------------------------------------------------------------------- bad input
def test_a_cell_model_of_the_wrong_vocabulary_size_fails(rng):
    small = CellModel.init("lstm", VOCAB - 2, HIDDEN, seed=0)
    with pytest.raises(ValueError, match="vocab_size 3"):
        trainer().fit(small, random_batch(rng))


def test_fused_true_with_a_cell_model_is_an_error_and_none_means_step_by_step(rng):
    model, batch = cell_model("gru"), random_batch(rng)
    with pytest.raises(ValueError, match="fused=True.*Elman RNN only.*cell 'gru'"):
        trainer(fused=True).fit(model, batch)
    a = trainer(fused=None, max_updates=3).fit(model, batch)
    b = trainer(fused=False, max_updates=3).fit(model, batch)
    assert_models_equal(a.model, b.model)
    with pytest.raises(TypeError, match="fused must be True or False"):
        trainer(fused="yes")


def test_a_model_that_is_not_a_model_fails(rng):
    with pytest.raises(TypeError, match="gradlab.RNN or a gradlab.CellModel; received dict"):
        trainer().fit({"W": 1}, random_batch(rng))


def test_divergence_names_epoch_update_and_sentences(rng):
    model, batch = cell_model("linear"), random_batch(rng)
    with pytest.raises(DivergenceError, match=r"training diverged in epoch 0, update \d+ \(sentence \d+ of the "
                                              r"training data\)") as err, np.errstate(all="ignore"):
        trainer(learning_rate=1e308, shuffle=False).fit(model, batch)
    e = err.value
    assert e.epoch == 0 and f"update {e.update} (sentence {e.update - 1} " in str(e)
    assert e.sentences == (e.update - 1,)   # shuffle=False, one sentence per update
