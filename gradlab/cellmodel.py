"""Models of PyTorch's recurrent cells and the linear one (nn.RNN, GRU, LSTM, diagonal linear recurrence).

A :class:`CellModel` is a registered cell (``gradlab.cells``: "rnn", "gru", "lstm", "linear")
plus its parameters as an ordered dict of named float64 arrays, in the cell's order,
with PyTorch's names for the rnn and gated cells (``weight_ih_l0`` ...) and ``W``, ``b`` for the
output layer (logits = W h(t) + b, softmax cross-entropy, as the Elman cell's output plus
a bias). Input words are one-hot: column x(t) of ``weight_ih_l0`` (or ``B``) is read. The "rnn"
cell (nn.RNN: h(t) = f(W_ih x(t) + b_ih + W_hh h(t-1) + b_hh)) holds its activation f
(``activation``: tanh, relu, sigmoid or identity); the other cells have none.

The Elman :class:`gradlab.RNN` is unchanged; the engine functions for these models are
in ``gradlab.cell_engine``. With ``embedding_size`` (cells "gru-embedding", ...) the words are read through an
embedding layer, ``embedding`` (|V| x E, PyTorch's ``nn.Embedding``), and the input
weights have E columns. Conversion to and from PyTorch modules is in
``gradlab.interop`` (``gradlab.from_torch``, :meth:`CellModel.to_torch`).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ._io import atomic_savez
from ._validate import check_int
from .cells import CELLS, ELMAN, Cell, activation as _activation, cell as _cell, stacked

__all__ = ["CellModel", "CELL_NAMES", "load_model"]



def _cell_names() -> tuple[str, ...]:
    """The registered one-layer cells a CellModel holds (all but the Elman cell, which is gradlab.RNN)."""
    return tuple(n for n in CELLS if n != ELMAN.name and not n.endswith("layers"))


#: The cells a CellModel holds (the Elman cell is gradlab.RNN); "-embedding": reading an embedding layer.
CELL_NAMES = _cell_names()

_CELL_KEY = "__cell__"
_ACTIVATION_KEY = "__activation__"


def _as_cell(c) -> Cell:
    name = c.name if isinstance(c, Cell) else c
    base, _, layers = name.rpartition("-") if isinstance(name, str) and name.endswith("layers") else (name, "", "")
    if base not in _cell_names() or (layers and not (layers[:-6].isdigit() and int(layers[:-6]) >= 2)):
        raise ValueError(f"cell must be one of {_cell_names()}, optionally stacked as '<cell>-<n>layers' "
                         f"(the Elman cell is gradlab.RNN); received {name!r}")
    if layers:
        return stacked(_cell(base), int(layers[:-6]))
    return _cell(name)


def _check_activation(c: Cell, activation) -> str | None:
    """The activation a model of cell ``c`` holds: one of the cell's (default tanh, nn.RNN's) for the rnn
    cells, None for the others (which take none)."""
    if not c.activations:
        if activation is not None:
            raise ValueError(f"activation is for the rnn cells (nn.RNN's nonlinearity); a {c.name} model has none: "
                             f"received activation={activation!r}")
        return None
    if activation is None:
        return "tanh"
    if not isinstance(activation, str) or activation not in c.activations:
        _activation(activation)  # the error for an unknown name
        raise ValueError(f"activation must be one of {c.activations} for a {c.name} model; received {activation!r}")
    return activation


class CellModel:
    """An Elman cell with biases (nn.RNN), GRU, LSTM or diagonal linear recurrence with a softmax output layer.

    Parameters
    ----------
    cell : {"rnn", "gru", "lstm", "linear"} (optionally "-embedding", "-<n>layers") or gradlab.cells.Cell
    parameters : mapping of str to array
        Exactly the cell's parameters (``gradlab.cells.cell(name).names``); the sizes are
        read from them and checked (:meth:`validate`).
    activation : {"tanh", "relu", "sigmoid", "identity"}, optional
        The rnn cells' f (default "tanh", nn.RNN's); the other cells take none.
    """

    def __init__(self, cell, parameters, activation: str | None = None):
        object.__setattr__(self, "cell", _as_cell(cell))
        object.__setattr__(self, "activation", _check_activation(self.cell, activation))
        names = self.cell.names
        if not hasattr(parameters, "keys"):
            raise TypeError(f"parameters must be a mapping {{name: array}} with names {names}; "
                            f"received {type(parameters).__name__}")
        if set(parameters) != set(names):
            raise ValueError(f"parameters of a {self.cell.name} model must be exactly {names}; "
                             f"missing {[n for n in names if n not in parameters]}, "
                             f"unexpected {[n for n in parameters if n not in names]}")
        arrays = {}
        for n in names:
            try:
                arrays[n] = np.array(parameters[n], dtype=np.float64)
            except (TypeError, ValueError) as exc:
                raise TypeError(f"parameter {n} must be an array of numbers; {exc}") from None
        object.__setattr__(self, "params", arrays)
        self.validate()

    def __setattr__(self, name, value):
        raise AttributeError(f"set a CellModel's arrays in place through model.params[...]; cannot set {name!r}")

    # ------------------------------------------------------------------ sizes
    @property
    def num_layers(self) -> int:
        """Stacked layers (1 unless the cell is '<cell>-<n>layers')."""
        name = self.cell.name
        return int(name.rpartition("-")[2][:-6]) if name.endswith("layers") else 1

    def layer_names(self, layer: int) -> tuple[str, ...]:
        """The recurrent and input parameters of one layer, in the cell's order (without the embedding):
        the cell declares every layer's in turn, as many each."""
        names = [n for n in self.cell.truncated if n != "embedding"]
        per = len(names) // self.num_layers
        return tuple(names[layer * per:(layer + 1) * per])

    @property
    def base(self) -> str:
        """The recurrence: "rnn", "gru", "lstm" or "linear" (with or without an embedding layer)."""
        return self.cell.name.split("-")[0]

    @property
    def input_weights(self) -> str:
        """Name of the weights that read the input ("weight_ih_l0", or "B"): layer 0's first input parameter."""
        return next(n for n in self.layer_names(0) if self.cell.parameter(n).role == "input")

    @property
    def hidden_size(self) -> int:
        """H: the last dimension of layer 0's first recurrent parameter (weight_hh_l0's columns, lambda's size)."""
        first = next(n for n in self.layer_names(0) if self.cell.parameter(n).role == "recurrent")
        return int(self.params[first].shape[-1])

    @property
    def vocab_size(self) -> int:
        p = self.params
        return int((p["embedding"].shape[0] if "embedding" in p else p[self.input_weights].shape[-1]))

    @property
    def embedding_size(self) -> int | None:
        """E, or None for one-hot input."""
        return int(self.params["embedding"].shape[-1]) if "embedding" in self.params else None

    @property
    def output_size(self) -> int:
        return int(self.params["W"].shape[0])

    #: The arrays' type: CellModels are float64 only (as gradlab.RNN's ``dtype``, for code written for both).
    dtype = np.dtype(np.float64)

    @property
    def state_size(self) -> int:
        """S = num_layers x H x (2 for an LSTM: h and c, else 1): the width of ``CellForward.state`` and of
        the engine's ``initial_states`` rows (per layer h_l, then c_l, layer 0 first)."""
        return self.num_layers * self.hidden_size * len(self.cell.states)

    @property
    def shapes(self) -> dict[str, tuple[int, ...]]:
        return self.cell.shapes(self.vocab_size, self.hidden_size, self.output_size, self.embedding_size)

    def parameters(self) -> dict[str, np.ndarray]:
        """The arrays by name, in the cell's order (the arrays themselves, not copies)."""
        return dict(self.params)

    # ------------------------------------------------------------------ checks
    def validate(self) -> None:
        """Every array has the shape the sizes imply and only finite values; the error names the parameter."""
        p = self.params
        for n in self.cell.names:
            if p[n].ndim != len(self.cell.parameter(n).shape) or 0 in p[n].shape:
                raise ValueError(f"parameter {n} of a {self.cell.name} model must have "
                                 f"{len(self.cell.parameter(n).shape)} non-empty dimension(s) "
                                 f"{self.cell.parameter(n).shape}; received shape {p[n].shape}")
        expected = self.shapes
        for n in self.cell.names:
            if p[n].shape != expected[n]:
                raise ValueError(f"parameter {n} of a {self.cell.name} model must have shape {expected[n]} "
                                 f"{self.cell.parameter(n).shape} (vocab {self.vocab_size}, hidden "
                                 f"{self.hidden_size}, output {self.output_size}); received {p[n].shape}")
            if not np.isfinite(p[n]).all():
                raise ValueError(f"parameter {n} holds non-finite values (nan or inf)")

    # ------------------------------------------------------------------ construction
    @classmethod
    def init(cls, cell, vocab_size: int, hidden_size: int, output_size: int | None = None, *,
             embedding_size: int | None = None, num_layers: int = 1, activation: str | None = None,
             seed=None) -> "CellModel":
        """PyTorch's initialisation: every array uniform(-1/sqrt(H), 1/sqrt(H)), drawn in the cell's order
        from ``numpy.random.default_rng(seed)``; the linear recurrence's lambda uniform(0, 1) and an
        embedding N(0, 1) (nn.Embedding's). ``embedding_size`` E: read words through an embedding layer
        (cell "gru" becomes "gru-embedding", ...); ``num_layers``: stacked layers ("gru-2layers", ...);
        ``activation``: the rnn cells' f (default tanh)."""
        c = _as_cell(cell)
        _check_activation(c, activation)
        vocab_size = check_int(vocab_size, "vocab_size", 1)
        hidden_size = check_int(hidden_size, "hidden_size", 1)
        output_size = vocab_size if output_size is None else check_int(output_size, "output_size", 1)
        if embedding_size is not None:
            embedding_size = check_int(embedding_size, "embedding_size", 1)
            if not c.name.endswith("-embedding"):
                c = _as_cell(c.name + "-embedding")
        elif c.name.endswith("-embedding"):
            raise ValueError(f"a {c.name} model needs embedding_size")
        if num_layers != 1:
            if c.name.endswith("layers"):
                raise ValueError(f"cell {c.name!r} is already stacked; pass its base cell with num_layers")
            c = stacked(c, num_layers)
        rng = np.random.default_rng(seed)
        bound = 1.0 / np.sqrt(hidden_size)
        arrays = {}
        for n, shape in c.shapes(vocab_size, hidden_size, output_size, embedding_size).items():
            if n == "embedding":
                arrays[n] = rng.standard_normal(shape)
            elif n == "lambda" or n.startswith("lambda_l"):
                arrays[n] = rng.uniform(0.0, 1.0, size=shape)
            else:
                arrays[n] = rng.uniform(-bound, bound, size=shape)
        return cls(c, arrays, activation)

    def copy(self) -> "CellModel":
        return CellModel(self.cell, {n: a.copy() for n, a in self.params.items()}, self.activation)

    def __repr__(self) -> str:
        emb = "" if self.embedding_size is None else f", embedding_size={self.embedding_size}"
        emb += "" if self.num_layers == 1 else f", num_layers={self.num_layers}"
        emb += "" if self.activation is None else f", activation={self.activation!r}"
        return (f"CellModel({self.cell.name!r}, vocab_size={self.vocab_size}, hidden_size={self.hidden_size}, "
                f"output_size={self.output_size}{emb})")

    # ------------------------------------------------------------------ files
    def save(self, path: str | os.PathLike, *, extra: dict[str, np.ndarray] | None = None) -> Path:
        """The arrays, the cell's name (and the rnn cells' activation) in one .npz file, written atomically.

        ``extra`` arrays (names other than the parameters' and the two entries above) are stored
        beside them and ignored by :meth:`load` (a training checkpoint keeps its run state there)."""
        arrays = {_CELL_KEY: np.array(self.cell.name), **self.params}
        if self.activation is not None:
            arrays[_ACTIVATION_KEY] = np.array(self.activation)
        clash = sorted(set(arrays) & set(extra or {}))
        if clash:
            raise ValueError(f"extra arrays may not be named {clash}: the model's own arrays have those names")
        return atomic_savez(path, **arrays, **(extra or {}))

    @classmethod
    def load(cls, path: str | os.PathLike) -> "CellModel":
        path = Path(path)
        with np.load(path, allow_pickle=False) as data:
            if _CELL_KEY not in data.files:
                raise ValueError(f"{path} is not a saved CellModel (no {_CELL_KEY!r} entry); "
                                 "an Elman model loads with gradlab.RNN.load")
            name = str(data[_CELL_KEY])
            c = _as_cell(name)
            missing = [n for n in c.names if n not in data.files]
            if missing:
                raise ValueError(f"{path}: a {name} model needs arrays {c.names}; missing {missing}")
            activation = str(data[_ACTIVATION_KEY]) if _ACTIVATION_KEY in data.files else None
            if c.activations and activation is None:
                raise ValueError(f"{path}: a {name} model needs its activation ({_ACTIVATION_KEY!r} entry)")
            return cls(c, {n: data[n] for n in c.names}, activation)

    # ------------------------------------------------------------------ PyTorch
    def to_torch(self, *, batch_first: bool = False, dtype=None):
        """(rnn, linear) PyTorch modules holding these parameters, or (rnn, linear, embedding) for a model
        with an embedding layer (torch imported here; float64 by default): nn.RNN (tanh or relu), nn.GRU or
        nn.LSTM. A linear-recurrence model has no PyTorch module (ValueError), nor an rnn model with the
        sigmoid or identity activation (NotImplementedError)."""
        from .interop import to_torch
        return to_torch(self, batch_first=batch_first, dtype=dtype)


def load_model(path: str | os.PathLike):
    """The model saved in ``path``: a :class:`CellModel` (``CellModel.save`` names its cell in the file) or
    else an Elman :class:`gradlab.RNN` (``RNN.save``; a missing or unreadable file gets RNN.load's error,
    which names it)."""
    from .model import RNN
    try:
        with np.load(path, allow_pickle=False) as data:
            cell = _CELL_KEY in data.files
    except Exception:  # noqa: BLE001 - a missing or unreadable file: RNN.load's error names it and what is wrong
        cell = False
    return CellModel.load(path) if cell else RNN.load(path)
