"""gradient() against PyTorch autograd on the same RNN in float64.

Two independent oracles for truncated schemes:
- chunked training exactly as people write it in PyTorch: ``s = s.detach()`` every h
  steps, one ``backward()`` over the summed losses;
- any lag limit L(t): every loss t gets its own graph that starts from the detached
  state s(t - L - 1) and runs forward the L + 1 steps to t.
"""
from __future__ import annotations

import numpy as np
import pytest

from conftest import ACTIVATIONS, OBJECTIVES, import_torch, random_problem

torch = import_torch()

from gradlab import Block, Full, Sliding, chunked, gradient, mikolov  # noqa: E402
from test_extreme_logits import extreme_problem  # noqa: E402
from test_large_batches import BATCHES, large_problem  # noqa: E402

#: float64 on both sides, the same maths in a different order: rounding only.
RTOL = 1e-9
ATOL = 1e-12

TORCH_ACT = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu, "identity": lambda net: net}


def _params(model):
    return [torch.tensor(np.array(a), dtype=torch.float64, requires_grad=True) for a in (model.U, model.V, model.W)]


def _step_loss(W, s, target):
    return torch.nn.functional.cross_entropy((W @ s)[None, :], torch.tensor([int(target)]), reduction="sum")


def torch_detach_every(p, h=None):
    """Autograd gradient of the summed loss; with ``h``, the state is detached every h steps."""
    U, V, W = _params(p.model)
    f = TORCH_ACT[p.activation]
    total = torch.zeros((), dtype=torch.float64)
    for x, d in zip(p.xs, p.ds):
        s = torch.zeros(U.shape[0], dtype=torch.float64)
        for t in range(len(x)):
            if h is not None and t % h == 0:
                s = s.detach()
            s = f(V[:, int(x[t])] + U @ s)
            if d[t] != -1:
                total = total + _step_loss(W, s, d[t])
    total.backward()
    return U.grad.numpy(), V.grad.numpy(), W.grad.numpy(), total.item()


def torch_lag_limited(p, lag_limit):
    """Autograd gradient where loss t backpropagates only through lags 0..min(L(t), t)."""
    U, V, W = _params(p.model)
    f = TORCH_ACT[p.activation]
    total = torch.zeros((), dtype=torch.float64)
    for x, d in zip(p.xs, p.ds):
        with torch.no_grad():
            states = []
            s = torch.zeros(U.shape[0], dtype=torch.float64)
            for t in range(len(x)):
                s = f(V[:, int(x[t])] + U @ s)
                states.append(s)
        for t in range(len(x)):
            if d[t] == -1:
                continue
            start = t - min(int(lag_limit(t)), t)
            s = states[start - 1] if start > 0 else torch.zeros(U.shape[0], dtype=torch.float64)
            for j in range(start, t + 1):
                s = f(V[:, int(x[j])] + U @ s)
            total = total + _step_loss(W, s, d[t])
    total.backward()
    return U.grad.numpy(), V.grad.numpy(), W.grad.numpy(), total.item()


def _check(g, ref):
    gU, gV, gW, loss = ref
    np.testing.assert_allclose(g.U, gU, rtol=RTOL, atol=ATOL, err_msg="U")
    np.testing.assert_allclose(g.V, gV, rtol=RTOL, atol=ATOL, err_msg="V")
    np.testing.assert_allclose(g.W, gW, rtol=RTOL, atol=ATOL, err_msg="W")
    assert g.loss == pytest.approx(loss, rel=1e-12)


def _problem(rng, objective, activation):
    return random_problem(rng, objective=objective, activation=activation, hidden_size=4, vocab_size=5,
                          lengths=(9, 1, 5, 3), n_classes=3, scale=0.8)


@pytest.mark.parametrize("objective", OBJECTIVES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_full_gradient_matches_autograd(rng, objective, activation):
    p = _problem(rng, objective, activation)
    _check(gradient(p.model, p.batch, scheme=Full()), torch_detach_every(p))


@pytest.mark.parametrize("h", [1, 2, 3, 4, 20])
@pytest.mark.parametrize("objective", OBJECTIVES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_chunked_matches_autograd_detach(rng, objective, activation, h):
    p = _problem(rng, objective, activation)
    _check(gradient(p.model, p.batch, scheme=chunked(h)), torch_detach_every(p, h))


@pytest.mark.parametrize("scheme, limit", [
    (Sliding(0), lambda t: 0),
    (Sliding(2), lambda t: 2),
    (Block(2, 5), lambda t: 3 + t % 2),
    (mikolov(1, 3), lambda t: 1 + t % 3),
], ids=str)
@pytest.mark.parametrize("objective", OBJECTIVES)
def test_truncated_matches_autograd_per_loss_graphs(rng, objective, scheme, limit):
    p = _problem(rng, objective, "tanh")
    _check(gradient(p.model, p.batch, scheme=scheme), torch_lag_limited(p, limit))


def test_per_loss_graph_oracle_agrees_with_detach_oracle(rng):
    """The two torch oracles agree with each other for chunked(h) (checks the oracles)."""
    p = _problem(rng, "lm", "sigmoid")
    a = torch_detach_every(p, 3)
    b = torch_lag_limited(p, lambda t: t % 3)
    for x, y in zip(a[:3], b[:3]):
        np.testing.assert_allclose(x, y, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_extreme_logits_match_autograd(objective):
    """W scaled x300: torch's log-sum-exp cross-entropy against gradlab's shifted softmax."""
    p = extreme_problem(objective, "tanh")
    _check(gradient(p.model, p.batch, scheme=Full()), torch_detach_every(p))
    _check(gradient(p.model, p.batch, scheme=chunked(3)), torch_detach_every(p, 3))


@pytest.mark.parametrize("name", sorted(BATCHES))
def test_large_batches_match_autograd(name):
    """More sentences than the kernels' chunks (several per chunk), some without losses."""
    p = large_problem(name)
    _check(gradient(p.model, p.batch, scheme=Full()), torch_detach_every(p))
    _check(gradient(p.model, p.batch, scheme=chunked(4)), torch_detach_every(p, 4))


# --------------------------------------------------------------------------- training
def torch_sgd(p, lr, epochs, h=None, clip=None):
    """Per-sentence SGD in the data order as a PyTorch user writes it.

    Full BPTT per sentence, or with ``h`` the "detach every h steps" loop that updates
    after every chunk of h steps (gradlab's ``chunked(h)`` training, carry before the
    update); ``clip`` rescales the update direction to that global norm.
    """
    U, V, W = _params(p.model)
    f = TORCH_ACT[p.activation]
    for _ in range(epochs):
        for x, d in zip(p.xs, p.ds):
            s = torch.zeros(U.shape[0], dtype=torch.float64)
            T = len(x)
            bounds = [(b, min(b + h, T)) for b in range(0, T, h)] if h else [(0, T)]
            for b0, b1 in bounds:
                s = s.detach()
                total = torch.zeros((), dtype=torch.float64)
                for t in range(b0, b1):
                    s = f(V[:, int(x[t])] + U @ s)
                    if d[t] != -1:
                        total = total + _step_loss(W, s, d[t])
                if not total.requires_grad:
                    continue
                for a in (U, V, W):
                    a.grad = None
                total.backward()
                with torch.no_grad():
                    grads = [a.grad for a in (U, V, W)]
                    if clip is not None:
                        norm = torch.sqrt(sum((g * g).sum() for g in grads))
                        if norm > clip:
                            grads = [g * (clip / norm) for g in grads]
                    for a, g in zip((U, V, W), grads):
                        a -= lr * g
    return [a.detach().numpy() for a in (U, V, W)]


@pytest.mark.parametrize("scheme,h", [("full", None), ("chunked:3", 3)])
@pytest.mark.parametrize("clip", [None, 0.4])
@pytest.mark.parametrize("objective", OBJECTIVES)
def test_fused_training_matches_torch_sgd(rng, scheme, h, clip, objective):
    from gradlab.train import Trainer
    p = random_problem(rng, objective=objective, lengths=(6, 2, 9, 4, 7), hidden_size=4, vocab_size=5,
                       scale=0.6, drop_targets=0.2 if objective == "lm" else 0.0)
    lr, epochs = 0.3, 3
    res = Trainer(scheme=scheme, learning_rate=lr, epochs=epochs, shuffle=False, clip=clip, progress=False).fit(
        p.model, p.batch)
    for name, ours, theirs in zip("UVW", (res.model.U, res.model.V, res.model.W), torch_sgd(p, lr, epochs, h, clip)):
        np.testing.assert_allclose(ours, theirs, rtol=RTOL, atol=ATOL, err_msg=name)
    if clip is not None:
        assert res.history["clipped"].sum() > 0
