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
from typing import Callable

import numpy as np

__all__ = ["Activation", "ACTIVATIONS", "activation", "Parameter", "Cell", "ELMAN", "CELLS", "register", "cell",
           "ROLES"]


# ---------------------------------------------------------------------- activations
@dataclass(frozen=True)
class Activation:
    """A hidden activation f.

    Attributes
    ----------
    name : str
    code : int
        What the compiled kernels dispatch on (``gradlab.kernels._common``: SIGMOID, TANH, RELU).
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
    Activation("relu", 2, lambda net: np.maximum(net, 0.0), lambda s: (s > 0.0).astype(np.float64), 1.0),
)}


def activation(name: str) -> Activation:
    """The :class:`Activation` called ``name``, with a clear error for unknown names."""
    try:
        return ACTIVATIONS[name]
    except (KeyError, TypeError):
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}; received {name!r}") from None


# ---------------------------------------------------------------------- cells
ROLES = ("recurrent", "input", "output")
_DIMS = ("vocab", "hidden", "output")


@dataclass(frozen=True)
class Parameter:
    """One named array of a cell.

    Attributes
    ----------
    name : str
        Attribute and file key ("U").
    shape : tuple of {"vocab", "hidden", "output"}
        Its shape in terms of the model's sizes, e.g. ("hidden", "hidden").
    role : {"recurrent", "input", "output"}
    doc : str
    """

    name: str
    shape: tuple[str, ...]
    role: str
    doc: str = ""

    def __post_init__(self):
        if self.role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}; received {self.role!r}")
        bad = [d for d in self.shape if d not in _DIMS]
        if bad:
            raise ValueError(f"shape of {self.name} uses {bad}; dimensions are {_DIMS}")


@dataclass(frozen=True)
class Cell:
    """A recurrent cell: its parameters in order and the activations it supports."""

    name: str
    parameters: tuple[Parameter, ...]
    activations: tuple[str, ...] = tuple(ACTIVATIONS)
    doc: str = ""

    @property
    def names(self) -> tuple[str, ...]:
        """Parameter names in order (the order of initialisation draws, files and flat vectors)."""
        return tuple(p.name for p in self.parameters)

    def with_role(self, *roles: str) -> tuple[str, ...]:
        """Names of the parameters with one of ``roles``, in order."""
        return tuple(p.name for p in self.parameters if p.role in roles)

    @property
    def truncated(self) -> tuple[str, ...]:
        """Parameters whose gradient depends on the truncation scheme (recurrent and input ones)."""
        return self.with_role("recurrent", "input")

    def shapes(self, vocab_size: int, hidden_size: int, output_size: int) -> dict[str, tuple[int, ...]]:
        """{name: shape} for a model of these sizes."""
        size = {"vocab": vocab_size, "hidden": hidden_size, "output": output_size}
        return {p.name: tuple(size[d] for d in p.shape) for p in self.parameters}

    def parameter(self, name: str) -> Parameter:
        for p in self.parameters:
            if p.name == name:
                return p
        raise ValueError(f"parameter must be one of {self.names}; received {name!r}")


#: The Elman cell (docs/maths.md): net_in(t) = V[:, x(t)] + U s(t-1), s(t) = f(net_in(t)), y(t) = softmax(W s(t)).
ELMAN = Cell("elman", (
    Parameter("U", ("hidden", "hidden"), "recurrent", "recurrent weights"),
    Parameter("V", ("hidden", "vocab"), "input", "input weights; column j is the embedding of word j"),
    Parameter("W", ("output", "hidden"), "output", "output weights"),
), doc="Elman network")

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


register(ELMAN)
