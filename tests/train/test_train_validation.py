"""Bad options fail before training with a message naming the option; divergence raises DivergenceError."""
from __future__ import annotations

import pytest

from conftest import random_problem

import gradlab.train.trainer as trainer_module
from gradlab import RNN, Sliding, load_dataset
from gradlab.engine import Gradient
from gradlab.train import DivergenceError, Trainer, evaluate


@pytest.fixture
def problem(rng):
    return random_problem(rng, hidden_size=3, vocab_size=5, lengths=(4, 2, 5))


@pytest.mark.parametrize("kw,exc,match", [
    (dict(learning_rate=-0.1), ValueError, r"learning_rate must be > 0; received -0\.1"),
    (dict(learning_rate=0), ValueError, r"learning_rate must be > 0; received 0\.0"),
    (dict(learning_rate=float("nan")), ValueError, "learning_rate must be a finite number"),
    (dict(learning_rate="0.1"), TypeError, "learning_rate must be a number"),
    (dict(anneal=-1), ValueError, "anneal must be >= 0"),
    (dict(scheme="tbptt:-1"), ValueError, r"scheme='tbptt:-1' is not a valid scheme: tau must be >= 0; received -1"),
    (dict(scheme="bogus:3"), ValueError, r"scheme='bogus:3' is not a valid scheme: unknown scheme 'bogus'"),
    (dict(scheme="block:5,2"), ValueError, "scheme='block:5,2'.*k2 >= k1"),
    (dict(scheme=3), TypeError, "scheme=3 is not a valid scheme"),
    (dict(epochs=0), ValueError, "epochs must be >= 1; received 0"),
    (dict(epochs=1.5), TypeError, "epochs must be an integer"),
    (dict(batch_size=0), ValueError, "batch_size must be >= 1; received 0"),
    (dict(clip=0), ValueError, r"clip must be > 0; received 0\.0"),
    (dict(clip=-2.0), ValueError, "clip must be > 0"),
    (dict(seed=-1), ValueError, "seed must be >= 0"),
    (dict(task="bogus"), ValueError, r"task must be one of \('lm', 'number'"),
    (dict(carry="late"), ValueError, "carry must be one of"),
    (dict(resume=True), ValueError, "resume=True needs a checkpoint"),
    (dict(checkpoint_every=5), ValueError, "checkpoint_every needs a checkpoint"),
    (dict(max_updates=0), ValueError, "max_updates must be >= 1"),
    (dict(callback=5), TypeError, "callback must be callable"),
    (dict(shuffle="yes"), TypeError, "shuffle must be True or False"),
])
def test_bad_options_fail_at_construction(kw, exc, match):
    with pytest.raises(exc, match=match):
        Trainer(**kw)


def test_sliding_object_with_negative_tau_fails_naming_tau():
    with pytest.raises(ValueError, match="tau must be >= 0"):
        Trainer(scheme=Sliding(-2))


def test_data_problems_fail_before_any_update():
    ds = load_dataset("markov:n=10")
    calls = []
    t = Trainer(task="number", callback=calls.append, progress=False)
    with pytest.raises(ValueError, match=r"task must be one of \('lm',\) for dataset 'markov"):
        t.fit(RNN.init(len(ds.vocab), 3, rng=0), ds)
    t = Trainer(callback=calls.append, progress=False)
    with pytest.raises(ValueError, match="output_size 7 but task 'lm' of data"):
        t.fit(RNN.init(len(ds.vocab), 3, output_size=7, rng=0), ds)
    with pytest.raises(ValueError, match="vocab_size 5 but data"):
        t.fit(RNN.init(5, 3, output_size=len(ds.vocab), rng=0), ds)
    ag = load_dataset("agreement:n=10")
    with pytest.raises(ValueError, match="task .*for the dev dataset"):
        Trainer(task="number", progress=False).fit(RNN.init(len(ag.vocab), 3, output_size=2, rng=0), ag, ds)
    with pytest.raises(TypeError, match="data must be a gradlab Dataset or Batch"):
        t.fit(RNN.init(len(ds.vocab), 3, rng=0), [[1, 2]])
    assert calls == []


def test_batch_with_ids_beyond_the_model_fails(problem):
    small = RNN.init(3, 3, output_size=5, rng=0)
    with pytest.raises(ValueError, match="input id 4 .* vocab_size 3"):
        Trainer(progress=False).fit(small, problem.batch)


def test_evaluate_checks_its_arguments():
    ds = load_dataset("agreement:n=10")
    m = RNN.init(len(ds.vocab), 3, rng=0)
    with pytest.raises(ValueError, match="task must be one of"):
        evaluate(m, ds, "recall")
    with pytest.raises(ValueError, match="output_size"):
        evaluate(m, ds, "number")
    with pytest.raises(ValueError, match="unk_fraction must be a number in"):
        evaluate(m, ds, "lm", unk_fraction=1.0)
    with pytest.raises(TypeError, match="dataset must be a gradlab Dataset"):
        evaluate(m, ds.batch("lm"))


# --------------------------------------------------------------------------- divergence
def test_exploding_parameters_raise_divergence_error_naming_epoch_and_sentence():
    ds = load_dataset("markov:n=20")
    model = RNN.init(len(ds.vocab), 4, rng=0, activation="relu")
    with pytest.raises(DivergenceError, match=r"epoch 0, update \d+ \(sentence \d+ of the training data\): "
                                              r"parameter\(s\) .* became non-finite") as info:
        Trainer(learning_rate=1e100, epochs=3, progress=False).fit(model, ds)
    assert isinstance(info.value, FloatingPointError)
    assert info.value.epoch == 0 and len(info.value.sentences) == 1


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning", "ignore:invalid value:RuntimeWarning")
def test_non_finite_loss_raises_before_updating():
    ds = load_dataset("markov:n=20")
    model = RNN.init(len(ds.vocab), 4, rng=0, activation="relu", scale=1e160)   # states overflow
    with pytest.raises(DivergenceError, match=r"epoch 0, update 1 .*the loss is nan"):
        Trainer(progress=False).fit(model, ds)


@pytest.mark.parametrize("scheme,batch_size", [("full", 2), ("chunked:2", 2)])
def test_nan_loss_from_the_engine_names_the_update(monkeypatch, problem, scheme, batch_size):
    """The step-by-step path (fused=False) reports a NaN loss that the engine returns."""
    real = trainer_module.gradient
    calls = []

    def fake(model, batch, scheme=None, **kw):
        g = real(model, batch, scheme, **kw)
        calls.append(1)
        if len(calls) == 2:
            return Gradient(g.U, g.V, g.W, float("nan"), g.n_losses, g.scheme)
        return g

    monkeypatch.setattr(trainer_module, "gradient", fake)
    with pytest.raises(DivergenceError, match=r"epoch 0, update 2 \(sentences? [\d, ]+ of the training data"):
        Trainer(scheme=scheme, batch_size=batch_size, epochs=2, progress=False, shuffle=False, fused=False).fit(
            problem.model, problem.batch)
