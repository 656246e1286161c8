"""Training a float32 model: it stays float32, learns, the fused and step-by-step paths agree at float32
precision, it follows the float64 run of the same start, and checkpoints keep the type (resume included)."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import random_problem

from gradlab import RNN, Batch
from gradlab.train import CheckpointError, Trainer

F32 = np.dtype(np.float32)
SCHEMES = ("full", "tbptt:0", "tbptt:2", "chunked:3", "block:2,5", "mikolov:2,3")
#: fused vs step-by-step in float32: the same operations in the same order (the update rounds lr and
#: the clipping factor to float32 as NumPy does), except BLAS products that SciPy's and NumPy's
#: BLAS may round differently in the last bit; over a few epochs a few float32 ulp of the parameters.
ATOL = 2e-6
#: float32 vs float64 from the same start: rounding of ~1e-7 per step, a few hundred steps.
ATOL_VS_F64 = 1e-4


def run(problem, model, fused: bool, **kw):
    kw.setdefault("progress", False)
    return Trainer(fused=fused, **kw).fit(model, problem.batch)


def assert_trajectories_close(a, b, atol):
    for name in ("U", "V", "W"):
        np.testing.assert_allclose(getattr(a.model, name), getattr(b.model, name), rtol=0, atol=atol,
                                   err_msg=name)
    np.testing.assert_allclose(a.history["train_loss"], b.history["train_loss"], rtol=atol)
    assert a.updates == b.updates


@pytest.fixture
def lm(rng):
    lengths = rng.integers(1, 24, size=14)
    return random_problem(rng, hidden_size=5, vocab_size=9, lengths=lengths, scale=0.5, drop_targets=0.2)


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("batch_size", [1, 4])
@pytest.mark.parametrize("clip", [None, 0.2])
def test_fused_and_step_by_step_agree_in_float32(lm, scheme, batch_size, clip):
    m32 = lm.model.astype("float32")
    kw = dict(scheme=scheme, batch_size=batch_size, clip=clip, learning_rate=0.5, epochs=3, seed=3)
    a, b = run(lm, m32, True, **kw), run(lm, m32, False, **kw)
    for res in (a, b):
        assert res.model.dtype == F32 and all(x.dtype == F32 for x in res.model.parameters().values())
    assert_trajectories_close(a, b, ATOL)
    assert a.history["clipped"].tolist() == b.history["clipped"].tolist()
    if clip is not None:
        assert a.history["clipped"].sum() > 0


@pytest.mark.parametrize("scheme", ["full", "tbptt:2", "chunked:3", "mikolov:2,3"])
def test_float32_training_follows_float64(lm, scheme):
    m32 = lm.model.astype("float32")
    kw = dict(scheme=scheme, batch_size=2, learning_rate=0.3, epochs=2, seed=1)
    a = run(lm, m32, True, **kw)
    b = run(lm, m32.astype("float64"), True, **kw)
    assert b.model.dtype == np.float64
    assert_trajectories_close(a, b, ATOL_VS_F64)


@pytest.mark.parametrize("fused", [True, False])
def test_float32_training_learns(fused):
    """A deterministic successor language (x(t+1) = x(t) + 1 mod |V|): the loss falls every epoch."""
    rng = np.random.default_rng(0)
    n_vocab = 7
    starts = rng.integers(0, n_vocab, size=60)
    seqs = [(s + np.arange(int(T) + 1)) % n_vocab for s, T in zip(starts, rng.integers(3, 12, size=60))]
    batch = Batch.for_language_model([q[:-1] for q in seqs], [q[1:] for q in seqs])
    model = RNN.init(n_vocab, 8, rng=2, dtype="float32")
    res = Trainer(scheme="tbptt:3", learning_rate=0.5, epochs=6, batch_size=1, progress=False,
                  fused=fused).fit(model, batch)
    loss = res.history["train_loss"].to_numpy()
    assert res.model.dtype == F32
    assert np.all(np.diff(loss) < 0), loss
    assert loss[-1] < 0.5 * loss[0]


def test_checkpoint_keeps_float32_and_resume_equals_uninterrupted(tmp_path, lm):
    m32 = lm.model.astype("float32")
    kw = dict(scheme="chunked:3", batch_size=2, learning_rate=0.4, epochs=3, seed=2, clip=0.5, progress=False)
    whole = Trainer(**kw).fit(m32, lm.batch)
    ckpt = tmp_path / "run"
    first = Trainer(checkpoint=ckpt, max_updates=9, **kw).fit(m32, lm.batch)
    assert not first.completed
    saved = RNN.load(ckpt / "checkpoint.npz")
    assert saved.dtype == F32
    rest = Trainer(checkpoint=ckpt, resume=True, **kw).fit(m32, lm.batch)
    assert rest.completed and rest.model.dtype == F32
    for name in ("U", "V", "W"):
        np.testing.assert_array_equal(getattr(rest.model, name), getattr(whole.model, name))
    pd_a, pd_b = rest.history.drop(columns="seconds"), whole.history.drop(columns="seconds")
    assert pd_a.equals(pd_b)


def test_resume_with_the_other_dtype_is_refused(tmp_path, lm):
    m32 = lm.model.astype("float32")
    kw = dict(scheme="tbptt:1", learning_rate=0.4, epochs=2, progress=False)
    Trainer(checkpoint=tmp_path / "c.npz", max_updates=3, **kw).fit(m32, lm.batch)
    with pytest.raises(CheckpointError, match=r"dtype='float32' \(model given: 'float64'\)"):
        Trainer(checkpoint=tmp_path / "c.npz", resume=True, **kw).fit(m32.astype("float64"), lm.batch)
