"""Training GRU and LSTM cell models against a PyTorch training loop (float64).

The oracle is the loop people write: ``model.to_torch()`` modules, ``torch.optim.SGD``
with the same learning rate, and for every minibatch the sum of its sentences' losses
divided by its number of sentences, one ``backward`` and one ``step``.
"""
from __future__ import annotations

import numpy as np
import pytest

from conftest import import_torch

torch = import_torch()
from torch import nn  # noqa: E402

from gradlab import Batch, CellModel, from_torch  # noqa: E402
from gradlab.train import Trainer  # noqa: E402

#: Two float64 implementations of the same updates (PyTorch's fused CPU modules against
#: gradlab's loops) differ in summation order; after a dozen updates that stays near 1e-14.
RTOL, ATOL = 1e-10, 1e-12
VOCAB, HIDDEN = 5, 3
F64 = torch.float64


def random_data(rng, lengths=(4, 1, 3, 5, 2, 3)):
    xs = [rng.integers(0, VOCAB, T) for T in lengths]
    ds = [rng.integers(0, VOCAB, T) for T in lengths]
    return xs, ds, Batch.for_language_model(xs, ds)


def sentence_loss(rnn, linear, embedding, x, d, state=None):
    """(sum of the cross-entropy losses of one sentence, final state), batch of one, time first."""
    ids = torch.as_tensor(np.asarray(x))
    inp = embedding(ids) if embedding is not None else nn.functional.one_hot(ids, VOCAB).to(F64)
    out, state = rnn(inp[:, None], state)
    loss = nn.functional.cross_entropy(linear(out[:, 0]), torch.as_tensor(np.asarray(d)), reduction="sum")
    return loss, state


def torch_training(model, xs, ds, order, *, lr, batch_size):
    modules = model.to_torch()
    rnn, linear = modules[:2]
    embedding = modules[2] if len(modules) > 2 else None
    params = [p for m in modules for p in m.parameters()]
    opt = torch.optim.SGD(params, lr=lr)
    for a in range(0, len(order), batch_size):
        idx = order[a:a + batch_size]
        opt.zero_grad()
        total = sum(sentence_loss(rnn, linear, embedding, xs[i], ds[i])[0] for i in idx)
        (total / len(idx)).backward()
        opt.step()
    return from_torch(*modules)


@pytest.mark.parametrize("cell,num_layers,embedding_size", [("gru", 1, None), ("lstm", 1, None), ("lstm", 2, None),
                                                             ("gru", 1, 2)])
@pytest.mark.parametrize("batch_size", [1, 2])
def test_full_bptt_training_equals_a_pytorch_sgd_loop(rng, cell, num_layers, embedding_size, batch_size):
    model = CellModel.init(cell, VOCAB, HIDDEN, seed=3, num_layers=num_layers, embedding_size=embedding_size)
    xs, ds, batch = random_data(rng)
    lr, epochs, seed = 0.3, 2, 7
    res = Trainer(scheme="full", learning_rate=lr, epochs=epochs, batch_size=batch_size, seed=seed,
                  progress=False).fit(model, batch)
    draws = np.random.default_rng(seed)
    order = np.concatenate([draws.permutation(len(xs)) for _ in range(epochs)])
    ref = torch_training(model, xs, ds, order, lr=lr, batch_size=batch_size)
    assert ref.cell.name == res.model.cell.name
    assert res.updates == epochs * -(-len(xs) // batch_size)
    for name in model.cell.names:
        np.testing.assert_allclose(res.model.params[name], ref.params[name], rtol=RTOL, atol=ATOL, err_msg=name)
        assert not np.allclose(res.model.params[name], model.params[name]), name   # training moved it
