"""Recurrent cells: their parameters by name, and the hidden activations, declared once.

A :class:`Cell` says which named arrays a model of that cell holds, in which order,
their shapes from (vocab_size, hidden_size, output_size), and the role of each:

- "recurrent": multiplies the previous state (truncation changes its gradient);
- "input": reads the word at each step (truncation changes its gradient);
- "output": reads the state of the step it predicts (its gradient is the same under
  every truncation scheme).

Everything that loops over parameters (results, the gradient checker, the trainer,
checkpoints, the report's parameter columns) reads these names instead of spelling
U, V, W. A new cell (GRU, LSTM) is one module declaring its ``Cell`` and kernels, plus
``register(cell)``.

:class:`Activation` holds everything about a hidden activation: its kernel code (the
integer the compiled kernels dispatch on, see ``gradlab.kernels._common``), its numpy
function, its derivative written from the state s = f(net) and the largest value of
that derivative.

This module sits beside ``model``, ``batch`` and ``schemes``: it imports only numpy.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Callable

import numpy as np

__all__ = ["Activation", "ACTIVATIONS", "activation", "Parameter", "Cell", "ELMAN", "TORCH_RNN", "GRU", "LSTM",
           "LINEAR", "CELLS", "register", "cell", "stacked", "ROLES"]


# ---------------------------------------------------------------------- activations
@dataclass(frozen=True)
class Activation:
    """A hidden activation f.

    Attributes
    ----------
    name : str
    code : int
        What the compiled kernels dispatch on (``gradlab.kernels._common``: SIGMOID, TANH, RELU, IDENTITY).
    function : callable
        f(net) on numpy arrays.
    derivative : callable
        f'(net) from the state s = f(net) (what backpropagation has at hand).
    max_derivative : float
        max over net of f'(net): the per-step growth of an error signal is at most
        ||U|| times this.
    """

    name: str
    code: int
    function: Callable[[np.ndarray], np.ndarray]
    derivative: Callable[[np.ndarray], np.ndarray]
    max_derivative: float


def _sigmoid(net):
    return 1.0 / (1.0 + np.exp(-net))


ACTIVATIONS: dict[str, Activation] = {a.name: a for a in (
    Activation("sigmoid", 0, _sigmoid, lambda s: s * (1.0 - s), 0.25),
    Activation("tanh", 1, np.tanh, lambda s: 1.0 - s * s, 1.0),
    Activation("relu", 2, lambda net: np.maximum(net, 0.0), lambda s: (s > 0.0).astype(s.dtype), 1.0),
    # a linear recurrence s(t) = U s(t-1) + V x(t): the signal decays exactly as powers of U^T
    Activation("identity", 3, lambda net: np.asarray(net) + 0.0, lambda s: np.ones_like(s), 1.0),
)}


def activation(name: str) -> Activation:
    """The :class:`Activation` called ``name``, with a clear error for unknown names."""
    try:
        return ACTIVATIONS[name]
    except (KeyError, TypeError):
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}; received {name!r}") from None


# ---------------------------------------------------------------------- cells
ROLES = ("recurrent", "input", "output")
_DIMS = ("vocab", "hidden", "output", "embed")


def _dim(d: str) -> tuple[int, str] | None:
    """("3*hidden") -> (3, "hidden"); ("hidden") -> (1, "hidden"); None for anything else.

    Gated cells stack their gates' rows as PyTorch does: weight_ih_l0 of a GRU is
    ("3*hidden", "vocab"), rows r, z, n."""
    if not isinstance(d, str):
        return None
    mult, star, base = d.partition("*")
    if not star:
        mult, base = "1", d
    if base not in _DIMS or not mult.isdigit() or int(mult) < 1:
        return None
    return int(mult), base


@dataclass(frozen=True)
class Parameter:
    """One named array of a cell.

    Attributes
    ----------
    name : str
        Attribute and file key ("U").
    shape : tuple of {"vocab", "hidden", "output", "embed"}, each optionally "m*dim"
        Its shape in terms of the model's sizes, e.g. ("hidden", "hidden"), or
        ("4*hidden", "hidden") for the four stacked gates of an LSTM.
    role : {"recurrent", "input", "output"}
        A bias joins the role of the product it is added to (PyTorch's bias_hh: recurrent).
    doc : str
    torch_name : str
        Its key in ``named_parameters()`` of the PyTorch modules (prefixed "rnn.",
        "linear." or "embedding."), or "" where PyTorch has no such parameter.
    """

    name: str
    shape: tuple[str, ...]
    role: str
    doc: str = ""
    torch_name: str = ""

    def __post_init__(self):
        if self.role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}; received {self.role!r}")
        bad = [d for d in self.shape if _dim(d) is None]
        if bad:
            raise ValueError(f"shape of {self.name} uses {bad}; dimensions are {_DIMS}, each optionally "
                             "multiplied as 'm*dim' (e.g. '3*hidden')")


@dataclass(frozen=True)
class Cell:
    """A recurrent cell: its parameters in order, the activations it supports and the parts of its
    recurrent state per layer (("h",), or ("h", "c") for the LSTM)."""

    name: str
    parameters: tuple[Parameter, ...]
    activations: tuple[str, ...] = tuple(ACTIVATIONS)
    doc: str = ""
    states: tuple[str, ...] = ("h",)

    # names, truncated and the parsed shapes are read on every engine call: computed once per cell
    @cached_property
    def names(self) -> tuple[str, ...]:
        """Parameter names in order (the order of initialisation draws, files and flat vectors)."""
        return tuple(p.name for p in self.parameters)

    def with_role(self, *roles: str) -> tuple[str, ...]:
        """Names of the parameters with one of ``roles``, in order."""
        return tuple(p.name for p in self.parameters if p.role in roles)

    @cached_property
    def truncated(self) -> tuple[str, ...]:
        """Parameters whose gradient depends on the truncation scheme (recurrent and input ones)."""
        return self.with_role("recurrent", "input")

    @cached_property
    def _dims(self) -> tuple[tuple[str, tuple[tuple[int, str], ...]], ...]:
        return tuple((p.name, tuple(map(_dim, p.shape))) for p in self.parameters)

    def shapes(self, vocab_size: int, hidden_size: int, output_size: int,
               embed_size: int | None = None) -> dict[str, tuple[int, ...]]:
        """{name: shape} for a model of these sizes (``embed_size``: for cells with an embedding layer)."""
        size = {"vocab": vocab_size, "hidden": hidden_size, "output": output_size, "embed": embed_size}
        return {name: tuple(m * size[d] for m, d in dims) for name, dims in self._dims}

    def torch_names(self) -> dict[str, str]:
        """{gradlab name: PyTorch name} ("rnn.weight_hh_l0", "linear.weight"); a ValueError when
        the cell has no PyTorch counterpart for some parameter."""
        missing = [p.name for p in self.parameters if not p.torch_name]
        if missing:
            raise ValueError(f"the {self.name} cell has no PyTorch module; parameters {missing} have no "
                             "PyTorch names")
        return {p.name: p.torch_name for p in self.parameters}

    def parameter(self, name: str) -> Parameter:
        for p in self.parameters:
            if p.name == name:
                return p
        raise ValueError(f"parameter must be one of {self.names}; received {name!r}")


#: The Elman cell (docs/maths.md): net_in(t) = V[:, x(t)] + U s(t-1), s(t) = f(net_in(t)), y(t) = softmax(W s(t)).
ELMAN = Cell("elman", (
    Parameter("U", ("hidden", "hidden"), "recurrent", "recurrent weights", "rnn.weight_hh_l0"),
    Parameter("V", ("hidden", "vocab"), "input", "input weights; column j is the embedding of word j",
              "rnn.weight_ih_l0"),
    Parameter("W", ("output", "hidden"), "output", "output weights", "linear.weight"),
), doc="Elman network")


def _output_parameters() -> tuple[Parameter, ...]:
    return (Parameter("W", ("output", "hidden"), "output", "output weights", "linear.weight"),
            Parameter("b", ("output",), "output", "output bias", "linear.bias"))


def _gated(name: str, gates: int, order: str, doc: str, activations: tuple[str, ...] = (),
           states: tuple[str, ...] = ("h",)) -> Cell:
    """A PyTorch recurrence (weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0) with ``gates`` blocks of H rows."""
    g = f"{gates}*hidden" if gates > 1 else "hidden"
    rows = f", gate rows {order}" if order else ""
    return Cell(name, (
        Parameter("weight_ih_l0", (g, "vocab"), "input", f"input weights{rows}; column j reads word j",
                  "rnn.weight_ih_l0"),
        Parameter("weight_hh_l0", (g, "hidden"), "recurrent", f"recurrent weights{rows}", "rnn.weight_hh_l0"),
        Parameter("bias_ih_l0", (g,), "input", "bias added to the input product", "rnn.bias_ih_l0"),
        Parameter("bias_hh_l0", (g,), "recurrent", "bias added to the recurrent product", "rnn.bias_hh_l0"),
    ) + _output_parameters(), activations=activations, doc=doc, states=states)


#: PyTorch's nn.RNN (Elman with biases): h(t) = f(W_ih x(t) + b_ih + W_hh h(t-1) + b_hh), f one of the
#: activations (stored with the model: CellModel.activation); one-hot input, single layer.
TORCH_RNN = _gated("rnn", 1, "", "Elman cell with biases (torch.nn.RNN)", activations=tuple(ACTIVATIONS))


#: PyTorch's nn.GRU (gates r, z, n), one-hot input, single layer (docs/maths.md, "Other cells").
GRU = _gated("gru", 3, "r, z, n", "gated recurrent unit (torch.nn.GRU)")

#: PyTorch's nn.LSTM (gates i, f, g, o), one-hot input, single layer; state (h, c).
LSTM = _gated("lstm", 4, "i, f, g, o", "long short-term memory (torch.nn.LSTM)", states=("h", "c"))

#: Diagonal linear recurrence h(t) = lambda * h(t-1) + B[:, x(t)] (real lambda per unit).
LINEAR = Cell("linear", (
    Parameter("lambda", ("hidden",), "recurrent", "per-unit decay of the state"),
    Parameter("B", ("hidden", "vocab"), "input", "input weights; column j reads word j"),
) + _output_parameters(), activations=(), doc="diagonal linear recurrence")

#: Registered cells by name.
CELLS: dict[str, Cell] = {}


def register(new: Cell) -> Cell:
    """Add a cell to :data:`CELLS` (a name can be registered once)."""
    if new.name in CELLS and CELLS[new.name] is not new:
        raise ValueError(f"a cell named {new.name!r} is already registered")
    CELLS[new.name] = new
    return new


def cell(name: str) -> Cell:
    """The registered cell called ``name``."""
    try:
        return CELLS[name]
    except (KeyError, TypeError):
        raise ValueError(f"cell must be one of {sorted(CELLS)}; received {name!r}") from None




def _embedded(base: Cell, input_weights: str) -> Cell:
    """``base`` reading an embedding layer (nn.Embedding, |V| x E) instead of one-hot words: the
    input weights read the embedding of x(t) (E columns) instead of column x(t)."""
    params = [Parameter("embedding", ("vocab", "embed"), "input", "embedding of each word (row j: word j)",
                        "embedding.weight")]
    for p in base.parameters:
        if p.name == input_weights:
            p = Parameter(p.name, (p.shape[0], "embed"), p.role, p.doc.split(";")[0] + "; reads the embedding",
                          p.torch_name)
        params.append(p)
    return Cell(f"{base.name}-embedding", tuple(params), activations=base.activations,
                doc=base.doc + " with an embedding layer", states=base.states)


GRU_EMBEDDING = _embedded(GRU, "weight_ih_l0")
LSTM_EMBEDDING = _embedded(LSTM, "weight_ih_l0")
LINEAR_EMBEDDING = _embedded(LINEAR, "B")
RNN_EMBEDDING = _embedded(TORCH_RNN, "weight_ih_l0")

for _c in (ELMAN, TORCH_RNN, GRU, LSTM, LINEAR, RNN_EMBEDDING, GRU_EMBEDDING, LSTM_EMBEDDING, LINEAR_EMBEDDING):
    register(_c)


def stacked(base: Cell, num_layers: int) -> Cell:
    """``base`` (rnn, gru, lstm, linear, with or without embedding) with ``num_layers`` layers, as PyTorch
    stacks them: layer l >= 1 reads h_{l-1}(t). Its parameters follow layer 0's, named as PyTorch names
    them (weight_ih_l1 (gates*H x H), weight_hh_l1, bias_ih_l1, bias_hh_l1), for the linear recurrence
    lambda_l1 (H), B_l1 (H x H); the output layer comes last. Registered as "<base>-<n>layers" on first
    use (num_layers = 1 is ``base`` itself)."""
    if isinstance(num_layers, bool) or not isinstance(num_layers, int) or num_layers < 1:
        raise ValueError(f"num_layers must be an integer >= 1; received {num_layers!r}")
    if base.name == ELMAN.name or "layers" in base.name:
        raise ValueError(f"stacked layers are built from a CellModel's one-layer cells (rnn, gru, lstm, linear, ...); "
                         f"received {base.name!r}")
    if num_layers == 1:
        return base
    name = f"{base.name}-{num_layers}layers"
    if name in CELLS:
        return CELLS[name]
    layer0 = [p for p in base.parameters if p.role != "output"]
    out = [p for p in base.parameters if p.role == "output"]
    params = list(layer0)
    for l in range(1, num_layers):
        for p in layer0:
            if p.name == "embedding":
                continue
            if p.name.endswith("_l0"):             # PyTorch's names: weight_ih_l0 -> weight_ih_l1
                n = p.name[:-1] + str(l)
                torch_name = "rnn." + n if p.torch_name else ""
            else:
                n, torch_name = f"{p.name}_l{l}", ""
            shape = (p.shape[0], "hidden") if p.role == "input" and len(p.shape) == 2 else p.shape
            doc = f"layer {l}: " + (p.doc.split(";")[0] + "; reads h of the layer below" if len(shape) == 2 and
                                    p.role == "input" else p.doc)
            params.append(Parameter(n, shape, p.role, doc, torch_name))
    return register(Cell(name, tuple(params + out), activations=base.activations,
                         doc=f"{base.doc}, {num_layers} layers", states=base.states))
