"""Checkpoints: a resumed run equals an uninterrupted one bitwise; mismatches fail before training."""
from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import random_problem

from gradlab import RNN, load_dataset
from gradlab.train import CheckpointError, Trainer


def trainer(**kw) -> Trainer:
    kw.setdefault("progress", False)
    return Trainer(**kw)


def assert_same_run(a, b):
    for name in ("U", "V", "W"):
        np.testing.assert_array_equal(getattr(a.model, name), getattr(b.model, name), err_msg=name)
    ha, hb = a.history.drop(columns="seconds"), b.history.drop(columns="seconds")
    assert ha.equals(hb), f"\n{ha}\n{hb}"
    assert a.updates == b.updates


@pytest.fixture
def problem(rng):
    return random_problem(rng, hidden_size=4, vocab_size=6, lengths=(7, 1, 4, 9, 3, 5, 6, 2, 8, 4), scale=0.5)


@pytest.fixture
def agreement():
    ds = load_dataset("agreement:n=24,distance=3")
    return ds.split(0.25, seed=0)


OPTIONS = [
    dict(scheme="tbptt:2", batch_size=1),
    dict(scheme="full", batch_size=3, clip=0.5, anneal=1.0),
    dict(scheme="block:2,4", batch_size=2),
    dict(scheme="chunked:3", batch_size=1, carry="before_update"),
]


@pytest.mark.parametrize("opts", OPTIONS)
@pytest.mark.parametrize("stop_after", [1, 7, 10])
def test_resume_after_max_updates_equals_uninterrupted(tmp_path, problem, opts, stop_after):
    p = problem
    kw = dict(learning_rate=0.4, epochs=3, seed=2, **opts)
    whole = trainer(**kw).fit(p.model, p.batch)
    ckpt = tmp_path / "run"
    first = trainer(checkpoint=ckpt, max_updates=stop_after, **kw).fit(p.model, p.batch)
    assert not first.completed and first.stopped_by == "max_updates" and first.updates >= stop_after
    assert (ckpt / "checkpoint.npz").exists()
    rest = trainer(checkpoint=ckpt, resume=True, **kw).fit(p.model, p.batch)
    assert rest.completed and rest.resumed_from == first.updates
    assert_same_run(rest, whole)


def test_resume_with_dev_and_a_dataset(tmp_path, agreement):
    train, dev = agreement
    model = RNN.init(len(train.vocab), 4, rng=1)
    kw = dict(learning_rate=0.3, epochs=2, batch_size=2, scheme="tbptt:1")
    whole = trainer(**kw).fit(model, train, dev)
    trainer(checkpoint=tmp_path / "c.npz", max_updates=5, **kw).fit(model, train, dev)
    rest = trainer(checkpoint=tmp_path / "c.npz", resume=True, **kw).fit(model, train, dev)
    assert_same_run(rest, whole)
    assert "dev_loss" in rest.history.columns


def test_a_crash_resumes_from_the_last_periodic_checkpoint(tmp_path, problem):
    p = problem
    kw = dict(learning_rate=0.4, epochs=2, seed=0, scheme="tbptt:1", batch_size=2)
    whole = trainer(**kw).fit(p.model, p.batch)

    def crash(info):
        if info.update == 9:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        trainer(checkpoint=tmp_path, checkpoint_every=3, callback=crash, **kw).fit(p.model, p.batch)
    state = json.loads(str(np.load(tmp_path / "checkpoint.npz")["trainer_state"]))["state"]
    # 5 minibatches per epoch; checkpoints after updates 3, 5 (epoch end) and 5 + 3 = 8
    assert state["updates"] == 8
    rest = trainer(checkpoint=tmp_path, resume=True, **kw).fit(p.model, p.batch)
    assert rest.resumed_from == 8
    assert_same_run(rest, whole)
    assert not list(tmp_path.glob(".*tmp"))   # no temporary files left behind


def test_resume_without_a_checkpoint_starts_afresh_and_a_finished_run_returns_at_once(tmp_path, problem):
    p = problem
    kw = dict(learning_rate=0.4, epochs=2, scheme="tbptt:1")
    first = trainer(checkpoint=tmp_path, resume=True, **kw).fit(p.model, p.batch)
    assert first.resumed_from is None and first.completed
    again = trainer(checkpoint=tmp_path, resume=True, **kw).fit(p.model, p.batch)
    assert again.resumed_from == first.updates
    assert_same_run(again, first)
    more = trainer(checkpoint=tmp_path, resume=True, **{**kw, "epochs": 3}).fit(p.model, p.batch)
    longer = trainer(**{**kw, "epochs": 3}).fit(p.model, p.batch)
    assert_same_run(more, longer)


def test_the_checkpoint_is_a_model_file(tmp_path, problem):
    p = problem
    res = trainer(checkpoint=tmp_path / "m.npz", epochs=1).fit(p.model, p.batch)
    loaded = RNN.load(tmp_path / "m.npz")
    np.testing.assert_array_equal(loaded.V, res.model.V)
    assert res.checkpoint == tmp_path / "m.npz"


@pytest.mark.parametrize("change,match", [
    (dict(learning_rate=0.5), r"learning_rate: checkpoint 0\.4, now 0\.5"),
    (dict(scheme="tbptt:2"), r"scheme: checkpoint 'tbptt:1', now 'tbptt:2'"),
    (dict(batch_size=2), r"batch_size: checkpoint 1, now 2"),
    (dict(seed=9), r"seed: checkpoint 0, now 9"),
    (dict(clip=1.0), r"clip: checkpoint None, now 1\.0"),
])
def test_a_checkpoint_of_other_options_fails_naming_them(tmp_path, problem, change, match):
    p = problem
    kw = dict(learning_rate=0.4, epochs=2, scheme="tbptt:1", seed=0)
    trainer(checkpoint=tmp_path, max_updates=3, **kw).fit(p.model, p.batch)
    called = []
    with pytest.raises(CheckpointError, match=match):
        trainer(checkpoint=tmp_path, resume=True, callback=called.append, **{**kw, **change}).fit(p.model, p.batch)
    assert called == []   # nothing trained


def test_a_checkpoint_of_another_model_or_data_fails(tmp_path, problem, rng):
    p = problem
    kw = dict(learning_rate=0.4, epochs=2)
    trainer(checkpoint=tmp_path, max_updates=3, **kw).fit(p.model, p.batch)
    wider = RNN.init(6, 5, rng=0)
    with pytest.raises(CheckpointError, match=r"hidden_size=4 \(model given: 5\)"):
        trainer(checkpoint=tmp_path, resume=True, **kw).fit(wider, p.batch)
    other_init = RNN.init(6, 4, rng=123)
    with pytest.raises(CheckpointError, match="initial model differs"):
        trainer(checkpoint=tmp_path, resume=True, **kw).fit(other_init, p.batch)
    other = random_problem(rng, hidden_size=4, vocab_size=6, lengths=(3, 3))
    with pytest.raises(CheckpointError, match="training data differs"):
        trainer(checkpoint=tmp_path, resume=True, **kw).fit(p.model, other.batch)


def test_a_file_that_is_not_a_training_checkpoint_fails(tmp_path, problem):
    p = problem
    p.model.save(tmp_path / "plain.npz")
    with pytest.raises(CheckpointError, match="not a training checkpoint"):
        trainer(checkpoint=tmp_path / "plain.npz", resume=True).fit(p.model, p.batch)
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(CheckpointError, match="cannot be read"):
        trainer(checkpoint=tmp_path / "junk.npz", resume=True).fit(p.model, p.batch)
