"""Training-study keys for the truncation-learning study: model init, clipping, distance distributions."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from gradlab import RNN
from gradlab.train import Trainer
from gradlab.study import training as study
from gradlab.study.training import curriculum_stages, initial_model, load_data, run_study, runs, train_spec_from_dict

BASE = {"name": "d", "train": "recall:distance=8,n=40", "dev": "recall:distance=8,min_distance=2,n=21,seed=1",
        "task": "recall", "hidden_sizes": [5], "schemes": ["tbptt:1"], "learning_rates": [0.3], "seeds": [0],
        "epochs": 4, "batch_size": 5, "activation": "tanh", "recurrent_init": "orthogonal", "scale": 0.3,
        "clip": 1.0}


def spec(**kw):
    return train_spec_from_dict({**BASE, **kw})


@pytest.mark.parametrize("kw, words", [
    ({"activation": "gelu"}, ["activation", "sigmoid", "tanh", "relu"]),
    ({"recurrent_init": "haar"}, ["recurrent_init", "orthogonal"]),
    ({"recurrent_gain": -1.0}, ["recurrent_gain", ">= 0"]),
    ({"clip": 0.0}, ["clip", "> 0"]),
    ({"distribution": "zipf"}, ["distribution", "fixed", "uniform", "curriculum"]),
    ({"distribution": "uniform"}, ["min_distance", "needs min_distance"]),
    ({"min_distance": 2}, ["min_distance", "applies to distribution"]),
    ({"distribution": "uniform", "min_distance": 1}, ["min_distance", ">= 2; received 1"]),
    ({"distribution": "uniform", "min_distance": 9}, ["min_distance", "between 2 and distance=8"]),
    ({"distribution": "uniform", "min_distance": 2, "train": "recall:distance=8,min_distance=3"},
     ["train", "sets min_distance itself"]),
    ({"distribution": "uniform", "min_distance": 2, "train": "markov:n=10", "task": "lm", "dev": "markov:n=5"},
     ["distribution", "distance and min_distance"]),
    ({"distribution": "curriculum", "min_distance": 2, "curriculum_stages": 5}, ["curriculum_stages", "epochs (4)"]),
    ({"task": "closing"}, ["task", "closing"]),
])
def test_bad_keys_name_the_key(kw, words):
    with pytest.raises(ValueError) as err:
        spec(**kw)
    for w in words:
        assert w in str(err.value)


def test_model_keys_reach_the_initial_model():
    s = spec(recurrent_gain=0.9)
    train, _ = load_data(s)
    model = initial_model(s, runs(s)[0], train)
    assert model.activation == "tanh"
    np.testing.assert_allclose(model.U @ model.U.T, 0.81 * np.eye(5), atol=1e-12)
    default = initial_model(spec(activation="sigmoid", recurrent_init="normal"), runs(s)[0], train)
    np.testing.assert_array_equal(default.V, model.V)       # the same draw, whatever U's initialisation


def test_uniform_distribution_spreads_the_training_distances():
    train, _ = load_data(spec(distribution="uniform", min_distance=2))
    assert set(train.describe()["distance"]) == set(range(2, 9))
    fixed, _ = load_data(spec())
    assert set(fixed.describe()["distance"]) == {8}


def test_curriculum_stages():
    s = spec(distribution="curriculum", min_distance=2, epochs=7, curriculum_stages=3)
    train, _ = load_data(s)
    assert curriculum_stages(s, train) == [(4, 2), (6, 2), (8, 3)]


def test_curriculum_run_equals_stages_trained_one_after_another(tmp_path):
    s = spec(distribution="curriculum", min_distance=2, epochs=4, curriculum_stages=2, snapshots=True, max_lag=3,
             snapshot_sentences=5)
    root = run_study(s, tmp_path, progress=False, render=False)
    run = runs(s)[0]
    train, dev = load_data(s)
    model = initial_model(s, run, train)
    dist = train.describe()["distance"].to_numpy()
    for d_max, n_epochs in curriculum_stages(s, train):
        model = Trainer(task="recall", scheme="tbptt:1", learning_rate=0.3, batch_size=5, seed=0, clip=1.0,
                        epochs=n_epochs, progress=False).fit(model, train.select(dist <= d_max)).model
    got = RNN.load(root / "runs" / run["slug"] / "model.npz")
    np.testing.assert_array_equal(got.U, model.U)
    np.testing.assert_array_equal(got.W, model.W)
    hist = pd.read_csv(root / "history.csv")
    assert hist["epoch"].tolist() == [0, 1, 2, 3] and hist["stage"].tolist() == [1, 1, 2, 2]
    assert hist["max_distance"].tolist() == [5, 5, 8, 8]
    assert hist["sentences_seen"].is_monotonic_increasing
    snaps = pd.read_csv(root / "snapshots_decay.csv")
    assert dict(zip(snaps["snapshot"], snaps["epochs_trained"])) == {"init": 0, "mid": 2, "end": 4}


def test_curriculum_resumes_from_its_stage_checkpoints(tmp_path, monkeypatch):
    s = spec(distribution="curriculum", min_distance=2, epochs=4, curriculum_stages=2)
    reference = run_study(s, tmp_path / "ref", progress=False, render=False)
    real = study._make_trainer
    stop = {"done": False}

    class Interrupt(KeyboardInterrupt):  # Ctrl-C stops the study (a failing run would not)
        pass

    def interrupting(**options):
        if "stage2" in str(options["checkpoint"]) and not stop["done"]:
            def cb(p):
                if p.update >= 3:
                    stop["done"] = True
                    raise Interrupt
            return real(callback=cb, checkpoint_every=1, **{k: v for k, v in options.items()
                                                           if k != "checkpoint_every"})
        return real(**options)

    monkeypatch.setattr(study, "_make_trainer", interrupting)
    with pytest.raises(Interrupt):
        run_study(s, tmp_path / "b", progress=False, render=False)
    monkeypatch.setattr(study, "_make_trainer", real)
    again = run_study(s, tmp_path / "b", progress=False, render=False)
    for name in ("history", "summary", "by_distance"):
        assert (again / f"{name}.csv").read_bytes() == (reference / f"{name}.csv").read_bytes(), name


def test_clip_reaches_the_trainer(tmp_path):
    root = run_study(spec(clip=1e-6, epochs=1), tmp_path, progress=False, render=False)
    hist = pd.read_csv(root / "history.csv")
    assert (hist["clipped"] == hist["n_updates"]).all()      # every update is clipped at this norm
    root = run_study(replace(spec(epochs=1), clip=None, name="noclip"), tmp_path, progress=False, render=False)
    assert (pd.read_csv(root / "history.csv")["clipped"] == 0).all()


def test_quick_curriculum_runs_in_one_epoch(tmp_path):
    q = spec(distribution="curriculum", min_distance=2, epochs=4, curriculum_stages=3).quick()
    assert q.epochs == 1 and q.curriculum_stages == 1
    root = run_study(q, tmp_path, progress=False, render=False)
    assert pd.read_csv(root / "history.csv")["stage"].tolist() == [1]
