"""PyTorch interop: gradlab models from ``nn.GRU`` / ``nn.LSTM`` / ``nn.RNN`` plus ``nn.Linear``, and back.

torch is optional: it is imported inside these functions only. Unidirectional modules (1..n
layers) on one-hot inputs (``input_size`` equal to the vocabulary; column j of ``weight_ih_l0``
reads word j) or behind an ``nn.Embedding``:

- ``nn.RNN`` (tanh or relu) -> :class:`gradlab.RNN` when it is the coursework's Elman form: one
  layer, no bias, one-hot words, and a bias-free ``nn.Linear``; anything else (biases, an
  embedding, several layers) -> :class:`gradlab.CellModel` "rnn" with its ``nonlinearity`` as
  activation;
- ``nn.GRU`` / ``nn.LSTM`` -> :class:`gradlab.CellModel` ("gru" / "lstm", "-embedding" with an
  embedding, "-<n>layers" when stacked).

A module built with ``bias=False`` gets zero biases, an ``nn.Linear`` without bias a zero ``b``.
``batch_first`` does not change the parameters; either is accepted. Bidirectional modules, LSTM
projections, dropout and embeddings with ``max_norm`` or ``padding_idx`` raise errors naming what
is not supported.
"""
from __future__ import annotations

import numpy as np

from .cellmodel import CellModel
from .model import RNN

__all__ = ["from_torch", "to_torch"]


def _array(t) -> np.ndarray:
    return t.detach().cpu().double().numpy().copy()


def from_torch(rnn, linear, embedding=None):
    """A gradlab model holding the parameters of ``rnn`` (nn.GRU, nn.LSTM or nn.RNN) and ``linear``."""
    from torch import nn

    kinds = (nn.GRU, nn.LSTM, nn.RNN)
    if not isinstance(rnn, kinds):
        raise TypeError(f"rnn must be a torch.nn.GRU, nn.LSTM or nn.RNN; received {type(rnn).__name__}, "
                        "which is not supported")
    if not isinstance(linear, nn.Linear):
        raise TypeError(f"linear must be a torch.nn.Linear (the output layer); received {type(linear).__name__}")
    kind = type(rnn).__name__
    if embedding is not None:
        if not isinstance(embedding, nn.Embedding):
            raise TypeError(f"embedding must be a torch.nn.Embedding; received {type(embedding).__name__}")
        for attr, default in (("max_norm", None), ("padding_idx", None)):
            if getattr(embedding, attr) != default:
                raise NotImplementedError(f"nn.Embedding with {attr}={getattr(embedding, attr)} is not supported "
                                          "(it changes the embedding or its gradient)")
        if embedding.embedding_dim != rnn.input_size:
            raise ValueError(f"embedding.embedding_dim ({embedding.embedding_dim}) must equal the rnn's "
                             f"input_size ({rnn.input_size})")
    if rnn.bidirectional:
        raise NotImplementedError(f"bidirectional {kind} is not supported (gradlab's losses look only backwards)")
    if getattr(rnn, "proj_size", 0):
        raise NotImplementedError(f"{kind} with proj_size={rnn.proj_size} (projections) is not supported")
    if rnn.dropout:
        raise NotImplementedError(f"{kind} with dropout={rnn.dropout} is not supported (exact gradients need a "
                                  "deterministic model)")
    if linear.in_features != rnn.hidden_size:
        raise ValueError(f"linear.in_features ({linear.in_features}) must equal the rnn's hidden_size "
                         f"({rnn.hidden_size})")
    p = {n: _array(t) for n, t in rnn.named_parameters()}
    W = _array(linear.weight)
    if (isinstance(rnn, nn.RNN) and embedding is None and rnn.num_layers == 1 and not rnn.bias
            and linear.bias is None):
        return RNN(p["weight_hh_l0"], p["weight_ih_l0"], W, rnn.nonlinearity)   # the coursework's Elman form
    H = rnn.hidden_size
    gates = {nn.RNN: 1, nn.GRU: 3, nn.LSTM: 4}[type(rnn)]
    zeros = np.zeros(gates * H)
    arrays = {}
    for layer in range(rnn.num_layers):
        for n in (f"weight_ih_l{layer}", f"weight_hh_l{layer}"):
            arrays[n] = p[n]
        for n in (f"bias_ih_l{layer}", f"bias_hh_l{layer}"):
            arrays[n] = p.get(n, zeros)
    arrays["W"] = W
    arrays["b"] = np.zeros(W.shape[0]) if linear.bias is None else _array(linear.bias)
    name = {1: "rnn", 3: "gru", 4: "lstm"}[gates]
    if embedding is not None:
        arrays["embedding"] = _array(embedding.weight)
        name += "-embedding"
    if rnn.num_layers > 1:
        name += f"-{rnn.num_layers}layers"
    return CellModel(name, arrays, rnn.nonlinearity if gates == 1 else None)


def _nonlinearity(model, what: str) -> str:
    """nn.RNN's ``nonlinearity`` for the model's activation (tanh or relu; the others have no nn.RNN)."""
    if model.activation not in ("tanh", "relu"):
        raise NotImplementedError(f"{what} with activation {model.activation!r} has no nn.RNN counterpart "
                                  "(nn.RNN has tanh and relu)")
    return model.activation


def to_torch(model, *, batch_first: bool = False, dtype=None):
    """(rnn, linear): ``nn.RNN``/``nn.GRU``/``nn.LSTM`` (a bias-free ``nn.RNN`` for a gradlab.RNN; tanh or relu only)
    and ``nn.Linear`` holding the model's parameters, float64 unless ``dtype`` says otherwise; plus the
    ``nn.Embedding`` as a third module for a model with an embedding layer."""
    import torch
    from torch import nn

    dtype = torch.float64 if dtype is None else dtype

    def _set(module, name, array):
        getattr(module, name).data.copy_(torch.as_tensor(np.asarray(array), dtype=dtype))

    if isinstance(model, RNN):
        rnn = nn.RNN(model.vocab_size, model.hidden_size, nonlinearity=_nonlinearity(model, "an Elman RNN"), bias=False,
                     batch_first=batch_first, dtype=dtype)
        linear = nn.Linear(model.hidden_size, model.output_size, bias=False, dtype=dtype)
        _set(rnn, "weight_ih_l0", model.V)
        _set(rnn, "weight_hh_l0", model.U)
        _set(linear, "weight", model.W)
        return rnn, linear
    if not isinstance(model, CellModel):
        raise TypeError(f"model must be a gradlab.CellModel or gradlab.RNN; received {type(model).__name__}")
    if model.base == "linear":
        raise ValueError("the diagonal linear recurrence has no PyTorch module (nn.GRU, nn.LSTM and nn.RNN are not it)")
    E = model.embedding_size
    size = (model.vocab_size if E is None else E, model.hidden_size)
    if model.base == "rnn":
        rnn = nn.RNN(*size, num_layers=model.num_layers, nonlinearity=_nonlinearity(model, "an rnn model"),
                     batch_first=batch_first, dtype=dtype)
    else:
        rnn = (nn.GRU if model.base == "gru" else nn.LSTM)(*size, num_layers=model.num_layers,
                                                           batch_first=batch_first, dtype=dtype)
    linear = nn.Linear(model.hidden_size, model.output_size, dtype=dtype)
    for layer in range(model.num_layers):
        for n in model.layer_names(layer):
            _set(rnn, n, model.params[n])
    _set(linear, "weight", model.params["W"])
    _set(linear, "bias", model.params["b"])
    if E is None:
        return rnn, linear
    embedding = nn.Embedding(model.vocab_size, E, dtype=dtype)
    _set(embedding, "weight", model.params["embedding"])
    return rnn, linear, embedding
