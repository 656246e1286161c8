"""Learning sanity on small built-in data: the trainer learns what the data hold.

Settings were chosen to train in a few seconds on two cores; they are seeded, so the
outcomes are deterministic on a given machine, and the margins are wide.
"""
from __future__ import annotations

import numpy as np

from gradlab import RNN, load_dataset
from gradlab.train import Trainer, evaluate


def unigram_entropy(ds, task="lm") -> float:
    """Mean loss of the best context-free predictor: the entropy of the target distribution."""
    b = ds.batch(task)
    t = b.targets[b.targets >= 0]
    p = np.bincount(t) / t.size
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def test_language_model_beats_the_unigram_baseline_on_agreement_data():
    ds = load_dataset("agreement:n=300,distance=3")
    train, dev = ds.split(0.2, seed=0)
    baseline = unigram_entropy(dev)
    model = RNN.init(len(ds.vocab), 16, rng=0)
    res = Trainer(scheme="tbptt:2", learning_rate=0.5, epochs=2, progress=False).fit(model, train, dev)
    h = res.history
    assert h.dev_loss.iloc[-1] < 0.6 * baseline, (h, baseline)
    assert h.train_loss.iloc[-1] < h.train_loss.iloc[0]


def test_full_bptt_solves_delayed_recall_at_a_short_distance():
    ds = load_dataset("recall:distance=3,n_keys=2,n=300")
    train, dev = ds.split(0.2, seed=0)
    model = RNN.init(len(ds.vocab), 16, rng=0)
    res = Trainer(task="recall", scheme="full", learning_rate=2.0, epochs=3, progress=False).fit(model, train)
    ev = evaluate(res.model, dev, "recall")
    assert ev.accuracy >= 0.95 and ev.mean_loss < 0.1, (res.history, ev.to_frame())
    assert ev.by_distance.distance.tolist() == [3]


def test_one_step_backpropagation_cannot_learn_recall_that_full_bptt_learns():
    """tau = 0 never sends the copy's error back to the key (lag 2): chance level after the same training."""
    ds = load_dataset("recall:distance=3,n_keys=2,n=300")
    train, dev = ds.split(0.2, seed=0)
    model = RNN.init(len(ds.vocab), 16, rng=0)
    kw = dict(task="recall", learning_rate=2.0, epochs=5, progress=False)
    full = evaluate(Trainer(scheme="full", **kw).fit(model, train).model, dev, "recall")
    zero = evaluate(Trainer(scheme="tbptt:0", **kw).fit(model, train).model, dev, "recall")
    assert full.accuracy >= 0.95
    assert zero.accuracy < 0.75


def test_number_prediction_learns_above_chance():
    ds = load_dataset("agreement:n=300,distance=2,p_attractor=0")
    train, dev = ds.split(0.2, seed=0)
    model = RNN.init(len(ds.vocab), 12, output_size=2, rng=0)
    res = Trainer(task="number", scheme="full", learning_rate=1.0, epochs=3, progress=False).fit(model, train, dev)
    assert res.history.dev_accuracy.iloc[-1] > 0.9, res.history
