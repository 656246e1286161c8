"""gradlab.kernels.kinds: every CellModel cell runs through its registered kind, and a new cell is one
declaration (gradlab.cells) plus one registered kind, without touching the engine."""
from __future__ import annotations

import numpy as np
import pytest

from helpers import random_cell_problem

from gradlab import Sliding, cells
from gradlab import cell_engine as ce
from gradlab.cellmodel import CELL_NAMES, CellModel
from gradlab.kernels import kinds
from gradlab.kernels.linear_cell import LinearKind


def test_every_cell_has_its_kind():
    for name in CELL_NAMES:
        base = name.split("-")[0]
        assert kinds.kind(base).name == base
    with pytest.raises(ValueError, match="no cell kind runs 'nope'"):
        kinds.kind("nope")
    with pytest.raises(ValueError, match="already registered"):
        kinds.register(LinearKind())


def test_a_new_cell_is_a_declaration_and_a_registered_kind(rng):
    """A cell "decay" declared with the linear recurrence's parameters and run by a kind of its own (the
    linear hooks) gives the linear recurrence's results, in one and two layers."""
    class DecayKind(LinearKind):
        name = "decay"

    cells.register(cells.Cell("decay", cells.LINEAR.parameters, activations=(), doc="decay"))
    kinds.register(DecayKind())
    try:
        for L in (1, 2):
            lin, b, _, _ = random_cell_problem(rng, "linear", lengths=(5, 1, 3), num_layers=L)
            new = CellModel("decay" if L == 1 else "decay-2layers", lin.params)
            S0 = rng.standard_normal((b.n_sentences, new.state_size))
            for scheme in ("full", Sliding(1)):
                g, want = (ce.gradient(m, b, scheme, initial_states=S0) for m in (new, lin))
                for n in lin.cell.names:
                    np.testing.assert_array_equal(g.arrays[n], want.arrays[n])
            np.testing.assert_array_equal(ce.contributions(new, b, 2).h_norm, ce.contributions(lin, b, 2).h_norm)
    finally:
        for name in ("decay", "decay-2layers"):
            cells.CELLS.pop(name, None)
        kinds._KINDS.pop("decay", None)
