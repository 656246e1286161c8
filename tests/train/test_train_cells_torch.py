"""Training GRU, LSTM and nn.RNN cell models against a PyTorch training loop (float64).

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
#: (cell, num_layers, embedding_size); "rnn": nn.RNN (tanh) with biases
CASES = [("gru", 1, None), ("lstm", 1, None), ("lstm", 2, None), ("gru", 1, 2), ("rnn", 2, None)]
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


@pytest.mark.parametrize("cell,num_layers,embedding_size", CASES)
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


def _detached(state):
    return tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()


def torch_chunked_training(model, xs, ds, order, *, lr, batch_size, h, carry):
    """PyTorch's truncated training: every h steps one update with the losses of the block, the state carried
    (detached) to the next block of the sentence, computed before the update or, ``carry="after_update"``, again
    with the updated parameters."""
    modules = model.to_torch()
    rnn, linear = modules[:2]
    embedding = modules[2] if len(modules) > 2 else None
    opt = torch.optim.SGD([p for m in modules for p in m.parameters()], lr=lr)
    for a in range(0, len(order), batch_size):
        idx = order[a:a + batch_size]
        state = {i: None for i in idx}
        for b0 in range(0, max(len(xs[i]) for i in idx), h):
            active = [i for i in idx if len(xs[i]) > b0]
            opt.zero_grad()
            total, carried = 0.0, {}
            for i in active:
                loss, end = sentence_loss(rnn, linear, embedding, xs[i][b0:b0 + h], ds[i][b0:b0 + h], state[i])
                total = total + loss
                carried[i] = _detached(end)
            (total / len(idx)).backward()
            opt.step()
            if carry == "after_update":
                with torch.no_grad():
                    carried = {i: sentence_loss(rnn, linear, embedding, xs[i][b0:b0 + h], ds[i][b0:b0 + h],
                                                state[i])[1] for i in active}
            state.update(carried)
    return from_torch(*modules)


@pytest.mark.parametrize("cell,num_layers,embedding_size", CASES)
@pytest.mark.parametrize("batch_size,carry", [(1, "before_update"), (2, "after_update"), (3, "before_update")])
def test_chunked_training_equals_detaching_every_h_steps_in_pytorch(rng, cell, num_layers, embedding_size,
                                                                    batch_size, carry):
    model = CellModel.init(cell, VOCAB, HIDDEN, seed=4, num_layers=num_layers, embedding_size=embedding_size)
    xs, ds, batch = random_data(rng, lengths=(7, 2, 5, 3, 6))
    lr, h, seed = 0.3, 2, 1
    res = Trainer(scheme=f"chunked:{h}", carry=carry, learning_rate=lr, epochs=1, batch_size=batch_size,
                  seed=seed, progress=False).fit(model, batch)
    order = np.random.default_rng(seed).permutation(len(xs))
    ref = torch_chunked_training(model, xs, ds, order, lr=lr, batch_size=batch_size, h=h, carry=carry)
    assert res.updates > len(xs) // batch_size   # several blocks per minibatch
    for name in model.cell.names:
        np.testing.assert_allclose(res.model.params[name], ref.params[name], rtol=RTOL, atol=ATOL, err_msg=name)
