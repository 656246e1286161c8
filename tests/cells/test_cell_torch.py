"""Gated and linear cells against PyTorch autograd (float64), and gradlab.from_torch / to_torch.

Oracles:
- full BPTT: PyTorch's own fused nn.GRU / nn.LSTM over each sentence, one backward;
- any lag limit L(t): every loss t gets its own graph, run by the fused module from the
  detached states at step t - L - 1 over steps t - L .. t;
- contributions: autograd.grad of each J(t) with respect to every h(t-k) (and c(t-k)) of a
  step-by-step graph built with nn.GRUCell / nn.LSTMCell holding the same weights.
"""
from __future__ import annotations

import numpy as np
import pytest

from conftest import import_torch
from helpers import random_cell_problem

torch = import_torch()
from torch import nn  # noqa: E402

import gradlab  # noqa: E402
from gradlab import RNN, Batch, Block, Full, Sliding, chunked  # noqa: E402
from gradlab import cell_engine as ce  # noqa: E402
from gradlab import engine  # noqa: E402
from gradlab.cellmodel import CellModel  # noqa: E402

RTOL, ATOL = 1e-9, 1e-12
F64 = torch.float64


def _onehot(x, vocab):
    return torch.nn.functional.one_hot(torch.as_tensor(np.asarray(x)), vocab).to(F64)


def _run(rnn, x, vocab, state=None):
    """Outputs (T, H) and final state of the module over one sentence (batch of one, either layout)."""
    inp = _onehot(x, vocab)
    inp = inp[None] if rnn.batch_first else inp[:, None]
    out, state = rnn(inp, state)
    return (out[0] if rnn.batch_first else out[:, 0]), state


def _torch_grads(rnn, linear):
    g = {f"rnn.{n}": p.grad.numpy().copy() for n, p in rnn.named_parameters()}
    g.update({f"linear.{n}": p.grad.numpy().copy() for n, p in linear.named_parameters()})
    return g


def torch_lag_limited(rnn, linear, xs, ds, vocab, window, run=None, initial=None):
    """Autograd gradient where loss t backpropagates through steps t - min(window(t), t) .. t only
    (``run(rnn, x, vocab, state)``: how the module reads a sentence, one-hot by default; ``initial``:
    per sentence the module's state before its first step, h0 or (h0, c0), None for zeros)."""
    _run = run or globals()["_run"]
    rnn.zero_grad()
    linear.zero_grad()
    total = torch.zeros((), dtype=F64)
    for s, (x, d) in enumerate(zip(xs, ds)):
        with torch.no_grad():
            state = None if initial is None else initial[s]
            states = [state]
            for t in range(len(x)):
                _, state = _run(rnn, x[t:t + 1], vocab, state)
                states.append(tuple(s.clone() for s in state) if isinstance(state, tuple) else state.clone())
        for t in range(len(x)):
            if d[t] == -1:
                continue
            start = t - min(window(t), t)
            out, _ = _run(rnn, x[start:t + 1], vocab, states[start])
            total = total + nn.functional.cross_entropy(linear(out[-1:]), torch.tensor([int(d[t])]),
                                                        reduction="sum")
    total.backward()
    return _torch_grads(rnn, linear), total.item()


def torch_full(rnn, linear, xs, ds, vocab, initial=None):
    rnn.zero_grad()
    linear.zero_grad()
    total = torch.zeros((), dtype=F64)
    for s, (x, d) in enumerate(zip(xs, ds)):
        out, _ = _run(rnn, x, vocab, None if initial is None else initial[s])
        keep = torch.as_tensor(np.flatnonzero(np.asarray(d) != -1))
        if keep.numel():
            total = total + nn.functional.cross_entropy(linear(out[keep]), torch.as_tensor(np.asarray(d))[keep],
                                                        reduction="sum")
    total.backward()
    return _torch_grads(rnn, linear), total.item()


def _compare(ours: dict, theirs: dict):
    assert set(ours) == set(theirs)
    for n in theirs:
        np.testing.assert_allclose(ours[n], theirs[n], rtol=RTOL, atol=ATOL, err_msg=n)


@pytest.mark.parametrize("kind", ["rnn", "rnn:relu", "gru", "lstm"])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("objective", ["lm", "final"])
def test_full_gradient_matches_the_fused_pytorch_module(kind, batch_first, objective, rng):
    m, b, xs, ds = random_cell_problem(rng, kind, objective=objective, hidden=4, vocab=5, lengths=(6, 1, 3),
                                       drop=0.3)
    rnn, linear = m.to_torch(batch_first=batch_first)
    theirs, J = torch_full(rnn, linear, xs, ds, m.vocab_size)
    g = ce.gradient(m, b, Full())
    assert g.loss == pytest.approx(J, rel=1e-12)
    _compare(g.as_dict(torch_names=True), theirs)


@pytest.mark.parametrize("kind", ["rnn", "rnn:relu", "gru", "lstm"])
@pytest.mark.parametrize("scheme", [Sliding(0), Sliding(2), Sliding(10), Block(2, 3), chunked(3)], ids=str)
def test_truncated_gradients_match_detached_pytorch_graphs(kind, scheme, rng):
    m, b, xs, ds = random_cell_problem(rng, kind, hidden=3, vocab=4, lengths=(7, 2, 4), drop=0.2)
    rnn, linear = m.to_torch()
    window = lambda t: int(scheme.lag_limit(np.array([t]))[0])  # noqa: E731
    theirs, _ = torch_lag_limited(rnn, linear, xs, ds, m.vocab_size, window)
    _compare(ce.gradient(m, b, scheme).as_dict(torch_names=True), theirs)


def test_truncated_linear_recurrence_matches_autograd(rng):
    m, b, xs, ds = random_cell_problem(rng, "linear", hidden=3, vocab=4, lengths=(6, 3), drop=0.2)
    P = {n: torch.tensor(a, requires_grad=True) for n, a in m.params.items()}
    for tau in (0, 2, 10):
        for p in P.values():
            p.grad = None
        total = torch.zeros((), dtype=F64)
        for x, d in zip(xs, ds):
            hs = [torch.zeros(3, dtype=F64)]
            for t in range(len(x)):
                hs.append(P["lambda"] * hs[-1] + P["B"][:, int(x[t])])
            for t in range(len(x)):
                if d[t] == -1:
                    continue
                start = t - min(tau, t)
                h = hs[start].detach()
                for j in range(start, t + 1):
                    h = P["lambda"] * h + P["B"][:, int(x[j])]
                total = total + nn.functional.cross_entropy((P["W"] @ h + P["b"])[None], torch.tensor([int(d[t])]),
                                                            reduction="sum")
        total.backward()
        g = ce.gradient(m, b, Sliding(tau))
        _compare(g.as_dict(), {n: p.grad.numpy() for n, p in P.items()})


def _torch_cell(model, input_size):
    """nn.RNNCell (with the model's nonlinearity), nn.GRUCell or nn.LSTMCell, float64 (weights to be copied in)."""
    if model.base == "rnn":
        return nn.RNNCell(input_size, model.hidden_size, nonlinearity=model.activation, dtype=F64)
    return (nn.GRUCell if model.base == "gru" else nn.LSTMCell)(input_size, model.hidden_size, dtype=F64)


@pytest.mark.parametrize("kind", ["rnn", "rnn:relu", "gru", "lstm"])
def test_contributions_match_autograd_grad_of_each_loss(kind, rng):
    m, b, xs, ds = random_cell_problem(rng, kind, hidden=3, vocab=4, lengths=(6, 1, 4), drop=0.3)
    rnn, linear = m.to_torch()
    cell = _torch_cell(m, m.vocab_size)
    for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        getattr(cell, n).data.copy_(getattr(rnn, n + "_l0").data)
    K = 3
    c = ce.contributions(m, b, K)
    h_rows, c_rows = [], []
    for x, d in zip(xs, ds):
        H = m.hidden_size
        h = torch.zeros(1, H, dtype=F64)
        cc = torch.zeros(1, H, dtype=F64)
        hs, cs = [], []
        for t in range(len(x)):
            if kind != "lstm":
                h = cell(_onehot(x[t:t + 1], m.vocab_size), h)
            else:
                h, cc = cell(_onehot(x[t:t + 1], m.vocab_size), (h, cc))
                cs.append(cc)
            hs.append(h)
        for t in range(len(x)):
            if d[t] == -1:
                continue
            J = nn.functional.cross_entropy(linear(hs[t]), torch.tensor([int(d[t])]), reduction="sum")
            lags = range(min(K, t) + 1)
            wrt = [hs[t - k] for k in lags] + ([cs[t - k] for k in lags] if kind == "lstm" else [])
            grads = torch.autograd.grad(J, wrt, retain_graph=True)
            n = len(lags)
            h_rows += [float(g.norm()) for g in grads[:n]]
            c_rows += [float(g.norm()) for g in grads[n:]]
    np.testing.assert_allclose(c.h_norm, h_rows, rtol=RTOL, atol=ATOL)
    if kind == "lstm":
        np.testing.assert_allclose(c.c_norm, c_rows, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("kind", [nn.RNN, nn.GRU, nn.LSTM])
@pytest.mark.parametrize("batch_first", [False, True])
def test_from_torch_and_back_round_trip(kind, batch_first):
    torch.manual_seed(0)
    rnn = kind(6, 4, batch_first=batch_first, dtype=F64)
    linear = nn.Linear(4, 5, dtype=F64)
    m = gradlab.from_torch(rnn, linear)
    assert isinstance(m, CellModel) and m.cell.name == kind.__name__.lower()
    assert (m.vocab_size, m.hidden_size, m.output_size) == (6, 4, 5)
    rnn2, linear2 = m.to_torch(batch_first=batch_first)
    assert rnn2.batch_first == batch_first
    for (n, p), (n2, p2) in zip(list(rnn.named_parameters()) + list(linear.named_parameters()),
                                list(rnn2.named_parameters()) + list(linear2.named_parameters())):
        assert n == n2
        assert torch.equal(p, p2)
    # float32 modules come in as float64 arrays
    m32 = gradlab.from_torch(kind(6, 4), nn.Linear(4, 5))
    assert m32.params["weight_hh_l0"].dtype == np.float64
    # bias-free modules get zero biases (a bias-free nn.RNN with a bias-free nn.Linear is gradlab.RNN, below)
    mb = gradlab.from_torch(kind(6, 4, bias=False, dtype=F64), nn.Linear(4, 5, bias=kind is nn.RNN, dtype=F64))
    assert isinstance(mb, CellModel) and not mb.params["bias_hh_l0"].any()
    if kind is not nn.RNN:
        assert not mb.params["b"].any()


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_a_bias_free_nn_rnn_is_gradlabs_elman_rnn(nonlinearity, rng):
    torch.manual_seed(1)
    rnn = nn.RNN(5, 3, nonlinearity=nonlinearity, bias=False, batch_first=True, dtype=F64)
    linear = nn.Linear(3, 5, bias=False, dtype=F64)
    m = gradlab.from_torch(rnn, linear)
    assert isinstance(m, RNN) and m.activation == nonlinearity
    xs = [rng.integers(0, 5, T) for T in (5, 2)]
    ds = [rng.integers(0, 5, T) for T in (5, 2)]
    theirs, J = torch_full(rnn, linear, xs, ds, 5)
    g = engine.gradient(m, Batch.for_language_model(xs, ds), Full())
    assert g.loss == pytest.approx(J, rel=1e-12)
    _compare(g.as_dict(torch_names=True), theirs)
    rnn2, linear2 = gradlab.interop.to_torch(m)
    assert torch.equal(rnn2.weight_hh_l0, rnn.weight_hh_l0) and torch.equal(linear2.weight, linear.weight)


def test_unsupported_modules_say_what_is_not_supported():
    lin = nn.Linear(4, 5)
    with pytest.raises(NotImplementedError, match="bidirectional"):
        gradlab.from_torch(nn.GRU(6, 4, bidirectional=True), lin)
    with pytest.raises(NotImplementedError, match="proj_size"):
        gradlab.from_torch(nn.LSTM(6, 4, proj_size=2), lin)
    with pytest.warns(UserWarning, match="dropout"):
        dropped = nn.GRU(6, 4, num_layers=1, dropout=0.5)
    with pytest.raises(NotImplementedError, match="dropout"):
        gradlab.from_torch(dropped, lin)
    with pytest.raises(NotImplementedError, match="padding_idx"):
        gradlab.from_torch(nn.GRU(6, 4), lin, nn.Embedding(10, 6, padding_idx=0))
    with pytest.raises(NotImplementedError, match="max_norm"):
        gradlab.from_torch(nn.GRU(6, 4), lin, nn.Embedding(10, 6, max_norm=1.0))
    with pytest.raises(ValueError, match="embedding_dim"):
        gradlab.from_torch(nn.GRU(6, 4), lin, nn.Embedding(10, 5))
    with pytest.raises(NotImplementedError, match="an rnn model with activation 'sigmoid' has no nn.RNN"):
        CellModel.init("rnn", 3, 2, activation="sigmoid", seed=0).to_torch()
    with pytest.raises(TypeError, match="Conv1d.*not supported"):
        gradlab.from_torch(nn.Conv1d(6, 4, 2), lin)
    with pytest.raises(TypeError, match="nn.Linear"):
        gradlab.from_torch(nn.GRU(6, 4), nn.Identity())
    with pytest.raises(ValueError, match="in_features"):
        gradlab.from_torch(nn.GRU(6, 4), nn.Linear(3, 5))
    with pytest.raises(ValueError, match="no PyTorch module"):
        CellModel.init("linear", 3, 2, seed=0).to_torch()
    with pytest.raises(NotImplementedError, match="sigmoid"):
        gradlab.interop.to_torch(RNN.init(3, 2, rng=0))


class _Embedded(nn.Module):
    """nn.Embedding in front of the recurrent module: the one-hot runner's interface on word ids."""

    def __init__(self, embedding, rnn):
        super().__init__()
        self.embedding, self.rnn, self.batch_first = embedding, rnn, rnn.batch_first


def _run_embedded(mod, x, state=None):
    inp = mod.embedding(torch.as_tensor(np.asarray(x)))
    inp = inp[None] if mod.batch_first else inp[:, None]
    out, state = mod.rnn(inp, state)
    return (out[0] if mod.batch_first else out[:, 0]), state


@pytest.mark.parametrize("kind", [nn.RNN, nn.GRU, nn.LSTM])
@pytest.mark.parametrize("tau", [None, 0, 2])
def test_embedding_models_from_torch_match_autograd(kind, tau, rng):
    torch.manual_seed(3)
    V, E, H, O = 7, 3, 4, 5
    embedding = nn.Embedding(V, E, dtype=F64)
    rnn = kind(E, H, batch_first=True, dtype=F64)
    linear = nn.Linear(H, O, dtype=F64)
    m = gradlab.from_torch(rnn, linear, embedding)
    assert m.cell.name == kind.__name__.lower() + "-embedding" and m.embedding_size == E
    xs = [rng.integers(0, V, T) for T in (6, 1, 4)]
    ds = [rng.integers(0, O, T) for T in (6, 1, 4)]
    mod = _Embedded(embedding, rnn)
    window = (lambda t: 10 ** 9) if tau is None else (lambda t: tau)
    embedding.zero_grad()
    theirs, J = torch_lag_limited(rnn, linear, xs, ds, V, window,
                                  run=lambda r, x, vocab, state=None: _run_embedded(mod, x, state))
    theirs["embedding.weight"] = embedding.weight.grad.numpy().copy()
    g = ce.gradient(m, Batch.for_language_model(xs, ds), Full() if tau is None else Sliding(tau))
    assert g.loss == pytest.approx(J, rel=1e-12)
    _compare(g.as_dict(torch_names=True), theirs)
    rnn2, linear2, embedding2 = m.to_torch(batch_first=True)
    assert torch.equal(embedding2.weight, embedding.weight) and torch.equal(rnn2.weight_ih_l0, rnn.weight_ih_l0)


@pytest.mark.parametrize("kind", [nn.RNN, nn.GRU, nn.LSTM])
@pytest.mark.parametrize("scheme", [Full(), Sliding(0), Sliding(2), Block(2, 3)], ids=str)
@pytest.mark.parametrize("num_layers", [2, 3])
def test_stacked_gradients_match_pytorchs_multilayer_modules(kind, scheme, num_layers, rng):
    """TBPTT(tau) = every loss's graph starts from the detached states of all layers at step t - tau - 1."""
    torch.manual_seed(num_layers)
    V, H, O = 5, 3, 4
    rnn = kind(V, H, num_layers=num_layers, batch_first=bool(num_layers % 2), dtype=F64)
    linear = nn.Linear(H, O, dtype=F64)
    m = gradlab.from_torch(rnn, linear)
    assert m.num_layers == num_layers and m.cell.name == f"{kind.__name__.lower()}-{num_layers}layers"
    xs = [rng.integers(0, V, T) for T in (6, 1, 4)]
    ds = [rng.integers(0, O, T) for T in (6, 1, 4)]
    ds[0][2] = -1
    window = lambda t: int(scheme.lag_limit(np.array([t]))[0])  # noqa: E731
    theirs, J = torch_lag_limited(rnn, linear, xs, ds, V, window)
    g = ce.gradient(m, Batch.for_language_model(xs, ds), scheme)
    assert g.loss == pytest.approx(J, rel=1e-12)
    _compare(g.as_dict(torch_names=True), theirs)
    rnn2, linear2 = m.to_torch(batch_first=rnn.batch_first)
    assert rnn2.num_layers == num_layers
    for (n, p), (n2, p2) in zip(rnn.named_parameters(), rnn2.named_parameters()):
        assert n == n2 and torch.equal(p, p2)


@pytest.mark.parametrize("kind", ["rnn", "rnn:relu", "gru", "lstm"])
def test_stacked_contributions_match_autograd_grad_of_each_loss(kind, rng):
    L, K, V, H = 2, 3, 4, 3
    name, _, act = kind.partition(":")
    m = CellModel.init(name, V, H, V, num_layers=L, activation=act or None, seed=5)
    kind = name
    rnn, linear = m.to_torch()
    cells = []
    for layer in range(L):
        cell = _torch_cell(m, V if layer == 0 else H)
        for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(cell, n).data.copy_(getattr(rnn, f"{n}_l{layer}").data)
        cells.append(cell)
    xs = [rng.integers(0, V, T) for T in (5, 2)]
    ds = [rng.integers(0, V, T) for T in (5, 2)]
    ds[0][1] = -1
    c = ce.contributions(m, Batch.for_language_model(xs, ds), K)
    h_rows, c_rows = [[] for _ in range(L)], [[] for _ in range(L)]
    for x, d in zip(xs, ds):
        hs = [[] for _ in range(L)]
        cs = [[] for _ in range(L)]
        state = [(torch.zeros(1, H, dtype=F64), torch.zeros(1, H, dtype=F64)) for _ in range(L)]
        for t in range(len(x)):
            inp = _onehot(x[t:t + 1], V)
            for layer in range(L):
                if kind != "lstm":
                    h = cells[layer](inp, state[layer][0])
                    state[layer] = (h, None)
                else:
                    h, cc = cells[layer](inp, state[layer])
                    state[layer] = (h, cc)
                    cs[layer].append(cc)
                hs[layer].append(h)
                inp = h
        for t in range(len(x)):
            if d[t] == -1:
                continue
            J = nn.functional.cross_entropy(linear(hs[-1][t]), torch.tensor([int(d[t])]), reduction="sum")
            lags = list(range(min(K, t) + 1))
            for layer in range(L):
                wrt = [hs[layer][t - k] for k in lags] + ([cs[layer][t - k] for k in lags] if kind == "lstm" else [])
                grads = torch.autograd.grad(J, wrt, retain_graph=True, allow_unused=True)
                zero = torch.zeros(1, H, dtype=F64)
                grads = [zero if gr is None else gr for gr in grads]
                h_rows[layer] += [float(gr.norm()) for gr in grads[:len(lags)]]
                c_rows[layer] += [float(gr.norm()) for gr in grads[len(lags):]]
    np.testing.assert_allclose(c.layer_h_norm, np.array(h_rows), rtol=RTOL, atol=ATOL)
    if kind == "lstm":
        np.testing.assert_allclose(c.layer_c_norm, np.array(c_rows), rtol=RTOL, atol=ATOL)


def _torch_initial(model, S0):
    """Per sentence the module's state from rows of initial states (per layer h_l, then c_l for an LSTM):
    h0 (num_layers, 1, H) for nn.RNN and nn.GRU, (h0, c0) for nn.LSTM."""
    L, H = model.num_layers, model.hidden_size
    per = 2 if model.base == "lstm" else 1
    out = []
    for row in S0:
        blocks = torch.as_tensor(row.reshape(L, per, 1, H), dtype=F64)
        out.append((blocks[:, 0].contiguous(), blocks[:, 1].contiguous()) if per == 2 else blocks[:, 0].contiguous())
    return out


@pytest.mark.parametrize("kind", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("scheme", [Full(), Sliding(0), Sliding(2), Block(2, 3)], ids=str)
def test_initial_states_match_pytorch_with_h0_given(kind, num_layers, scheme, rng):
    """h0 (and c0) passed to nn.GRU / nn.LSTM, detached: the gradient does not flow into them; a lag limit
    stops the signal at t - L(t) (from there on the states are the detached ones of the forward pass)."""
    m, b, xs, ds = random_cell_problem(rng, kind, hidden=3, vocab=4, lengths=(6, 1, 4), drop=0.2,
                                       num_layers=num_layers)
    S0 = rng.standard_normal((b.n_sentences, m.state_size)) * 0.8
    rnn, linear = m.to_torch()
    init = _torch_initial(m, S0)
    if isinstance(scheme, Full):
        theirs, J = torch_full(rnn, linear, xs, ds, m.vocab_size, init)
    else:
        window = lambda t: int(scheme.lag_limit(np.array([t]))[0])  # noqa: E731
        theirs, J = torch_lag_limited(rnn, linear, xs, ds, m.vocab_size, window, initial=init)
    g = ce.gradient(m, b, scheme, initial_states=S0)
    assert g.loss == pytest.approx(J, rel=1e-12)
    _compare(g.as_dict(torch_names=True), theirs)
    with torch.no_grad():
        out, _ = _run(rnn, xs[0], m.vocab_size, init[0])
    f = ce.forward(m, b, initial_states=S0)
    np.testing.assert_allclose(f.h[: len(xs[0])], out.numpy(), rtol=RTOL, atol=ATOL)


def test_an_nn_rnn_beyond_the_coursework_form_is_an_rnn_cell_model(rng):
    """Biases (in the RNN or the nn.Linear), an embedding or several layers: CellModel "rnn..." with the
    module's nonlinearity; only a one-layer bias-free nn.RNN on one-hot words with a bias-free nn.Linear
    is gradlab.RNN."""
    torch.manual_seed(4)
    V, H = 5, 3
    cases = [(nn.RNN(V, H, nonlinearity="relu", dtype=F64), nn.Linear(H, V, bias=False, dtype=F64), None,
              "rnn", "relu"),
             (nn.RNN(V, H, bias=False, dtype=F64), nn.Linear(H, V, dtype=F64), None, "rnn", "tanh"),
             (nn.RNN(V, H, num_layers=2, bias=False, nonlinearity="relu", dtype=F64),
              nn.Linear(H, V, bias=False, dtype=F64), None, "rnn-2layers", "relu"),
             (nn.RNN(2, H, bias=False, dtype=F64), nn.Linear(H, V, bias=False, dtype=F64),
              nn.Embedding(V, 2, dtype=F64), "rnn-embedding", "tanh")]
    xs = [rng.integers(0, V, T) for T in (5, 1, 3)]
    ds = [rng.integers(0, V, T) for T in (5, 1, 3)]
    b = Batch.for_language_model(xs, ds)
    for rnn, linear, embedding, name, act in cases:
        m = gradlab.from_torch(rnn, linear, embedding)
        assert isinstance(m, CellModel) and m.cell.name == name and m.activation == act
        if not rnn.bias:
            assert not m.params["bias_ih_l0"].any() and not m.params["bias_hh_l0"].any()
        if embedding is None:
            theirs, J = torch_full(rnn, linear, xs, ds, V)
        else:
            mod = _Embedded(embedding, rnn)
            embedding.zero_grad()
            theirs, J = torch_lag_limited(rnn, linear, xs, ds, V, lambda t: 10 ** 9,
                                          run=lambda r, x, vocab, state=None: _run_embedded(mod, x, state))
            theirs["embedding.weight"] = embedding.weight.grad.numpy().copy()
        g = ce.gradient(m, b)
        assert g.loss == pytest.approx(J, rel=1e-12)
        ours = g.as_dict(torch_names=True)   # plus the biases gradlab holds as zeros where torch has none
        assert set(theirs) < set(ours) and len(ours) - len(theirs) == (linear.bias is None) + 2 * (not rnn.bias) * \
            rnn.num_layers
        _compare({n: ours[n] for n in theirs}, theirs)
        back = m.to_torch()[0]
        assert isinstance(back, nn.RNN) and back.nonlinearity == act and back.num_layers == rnn.num_layers
        assert torch.equal(back.weight_hh_l0, rnn.weight_hh_l0)
